/**
 * `inbm apply --wait` shows the download of an update as it runs: the agent writes the transfer's
 * progress to a state file, the CLI reads it and prints it on stderr (one line per tenth when
 * stderr is not a terminal). The artifact is served slowly by a loopback server so the transfer
 * spans many looks; the file is gone once the step is over.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { promisify } from 'node:util';
import { progressPath } from '../../src/status/progress.js';
import { busyboxRootfs, cleanUp, engineUp, tagsOf, unique } from './engine.js';
import { BIN, makeRoot, type Root, type Running, startAgent, stopAgent, trustRepository } from './harness.js';

const run = promisify(execFile);
const REPO = unique('inbm-it-progress');
const CHUNK = 128 * 1024;
let dockerHost = '';
let server: Server;
let base = '';
let work = '';
let root: Root;
let agent: Running;

before(async () => {
  dockerHost = engineUp();
  work = await mkdtemp(join(tmpdir(), 'inbm-it-progress-'));
  // Random bytes do not compress: the tarball stays a few MiB, a transfer of many chunks.
  const tgz = await busyboxRootfs(work, ['sh'], (rootfs) => writeFile(join(rootfs, 'payload'), randomBytes(3 * 1024 * 1024)));
  const body = await readFile(tgz);
  // A slow server: one chunk every 40 ms, with its length announced so the CLI can show a percentage.
  server = createServer((req, res) => {
    if (req.url !== '/rootfs.tgz') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    let at = 0;
    const next = () => {
      if (at >= body.length) return void res.end();
      res.write(body.subarray(at, at + CHUNK));
      at += CHUNK;
      setTimeout(next, 40);
    };
    next();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  root = await makeRoot('resyncSeconds: 30\n');
  agent = await startAgent(root, { DOCKER_HOST: dockerHost });
  await trustRepository(root, `${base}/`);
});

after(async () => {
  if (agent) assert.equal(await stopAgent(agent), 0);
  server?.close();
  if (dockerHost) cleanUp([], [REPO]);
  if (root) await rm(root.dir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

it('apply --wait prints the download progress on stderr, then the result; the progress file goes with the step', async () => {
  const file = join(work, 'import.xml');
  await writeFile(
    file,
    `<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type><aota name="imp"><cmd>import</cmd><app>docker</app><fetch>${base}/rootfs.tgz</fetch><version>1.0</version><containerTag>${REPO}:1</containerTag></aota></type></ota></manifest>`,
  );
  // Not execFileSync: this process serves the download and must keep answering meanwhile.
  const { stdout, stderr } = await run(process.execPath, [BIN, '--root', root.dir, 'apply', '--wait', file], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.deepEqual(JSON.parse(stdout.trim()), { status: 200, message: 'AOTA docker import COMMAND SUCCESSFUL', job_id: '' });
  assert.deepEqual(tagsOf(REPO), ['1']);
  const lines = stderr.split('\n').filter((l) => l.startsWith('inbm: ContainerImage/'));
  const size = (await stat(join(work, 'rootfs.tgz'))).size;
  const percents = lines.map((l) => {
    const m = /^inbm: ContainerImage\/\S+ fetch \[[#.]{24}\] (\d+)% [\d.]+ MiB of ([\d.]+) MiB [\d.]+ MiB\/s$/.exec(l);
    assert.ok(m, `a progress line: ${l}`);
    assert.equal(m[2], (size / 1024 ** 2).toFixed(1), 'the total is the served length');
    return Number(m[1]);
  });
  // About 4 MiB at 3.2 MiB/s: over a second of transfer, looked at every 200 ms.
  assert.ok(percents.length >= 3, `several progress lines, got ${JSON.stringify(lines)}`);
  assert.deepEqual(
    percents,
    [...percents].sort((a, b) => a - b),
    'the percentage only grows',
  );
  assert.ok(percents.every((p) => p >= 0 && p <= 100));
  assert.equal(new Set(percents.map((p) => Math.floor(p / 10))).size, percents.length, 'one line per tenth, not per look');
  const key = lines[0]!.split(' ')[1]!;
  await assert.rejects(stat(progressPath(root.state, key)), { code: 'ENOENT' });
  assert.deepEqual(await readdir(join(root.state, 'status', 'progress')), [], 'no progress file left');
});
