/**
 * AOTA docker import through the real agent, as the reference answers it: an image already
 * present is refused with 401 "FAILED IMAGE IMPORT, IMAGE ALREADY PRESENT" (a new request each
 * time a manifest is dropped, so importing the same tag twice is refused the second time), and a
 * fetch answering 404 is 404. The engine is checked with the docker CLI.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { promisify } from 'node:util';
import { until } from '../until.js';
import { BASE_IMAGE, busyboxRootfs, cleanUp, docker, engineUp, imageIdsOf, tagsOf, unique } from './engine.js';
import { BIN, makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';

const run = promisify(execFile);
const ID = unique('inbm-it-import');
let dockerHost = '';
let server: Server;
let base = '';
let work = '';
let root: Root;
let agent: Running;
const repos: string[] = [];

const manifest = (repo: string, path = '/rootfs.tgz') =>
  `<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type><aota name="imp"><cmd>import</cmd><app>docker</app><fetch>${base}${path}</fetch><version>1.0</version><containerTag>${repo}:1</containerTag></aota></type></ota></manifest>`;

/** Drops the manifest with `inbm apply --wait`; the result JSON it printed. */
async function request(file: string, text: string): Promise<{ status: number; message: string }> {
  const path = join(work, file);
  await writeFile(path, text);
  // Not execFileSync: this process serves the download and must keep answering meanwhile.
  let out: string;
  try {
    out = (await run(process.execPath, [BIN, '--root', root.dir, 'apply', '--wait', path], { encoding: 'utf8', timeout: 60_000 })).stdout;
  } catch (err) {
    out = (err as { stdout?: string }).stdout ?? '';
  }
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

before(async () => {
  dockerHost = engineUp();
  work = await mkdtemp(join(tmpdir(), 'inbm-it-import-'));
  ({ server, base } = await serveFiles(new Map([['/rootfs.tgz', await busyboxRootfs(work)]])));
  root = await makeRoot('resyncSeconds: 1\n');
  agent = await startAgent(root, { DOCKER_HOST: dockerHost });
  await trustRepository(root, `${base}/`);
});

after(async () => {
  if (agent) assert.equal(await stopAgent(agent), 0);
  server?.close();
  if (dockerHost) cleanUp([], repos);
  if (root) await rm(root.dir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

it('an image already present: 401 FAILED IMAGE IMPORT, IMAGE ALREADY PRESENT, the image untouched', async () => {
  const repo = `${ID}/present`;
  repos.push(repo);
  docker(['tag', BASE_IMAGE, `${repo}:1`]);
  const before = imageIdsOf(repo);
  const result = await request('present.xml', manifest(repo));
  assert.equal(result.status, 401);
  assert.match(result.message, /FAILED IMAGE IMPORT, IMAGE ALREADY PRESENT$/);
  assert.deepEqual(imageIdsOf(repo), before, 'nothing was imported over it');
});

it('a new import: 200; the same import requested again: 401, still one image', async () => {
  const repo = `${ID}/fresh`;
  repos.push(repo);
  const first = await request('fresh.xml', manifest(repo));
  assert.deepEqual(first, { status: 200, message: 'AOTA docker import COMMAND SUCCESSFUL', job_id: '' });
  assert.deepEqual(tagsOf(repo), ['1']);
  const imported = imageIdsOf(repo);
  assert.equal(docker(['run', '--rm', '--network', 'none', `${repo}:1`, '/bin/busybox', 'echo', 'ok']), 'ok');
  // `apply --wait` would take the status the first request left (same resource, same generation)
  // for the answer, so the second request's answer is read from the result history instead.
  const name = `image-${repo.replace(/[^a-z0-9]+/g, '-')}`;
  const answers = async () =>
    (
      JSON.parse(await readFile(join(root.state, 'results.json'), 'utf8')) as Array<{
        name: string;
        result: { status: number; message: string };
      }>
    )
      .filter((r) => r.name === name)
      .map((r) => r.result);
  assert.equal((await answers()).length, 1);
  await writeFile(join(work, 'fresh-again.xml'), manifest(repo));
  await run(process.execPath, [BIN, '--root', root.dir, 'apply', join(work, 'fresh-again.xml')]);
  const again = await until('the second answer', async () => (await answers())[1], 30_000);
  assert.equal(again.status, 401);
  assert.match(again.message, /FAILED IMAGE IMPORT, IMAGE ALREADY PRESENT$/);
  assert.deepEqual(imageIdsOf(repo), imported);
});

it('an import whose fetch answers 404: 404, no image', async () => {
  const repo = `${ID}/missing`;
  repos.push(repo);
  const result = await request('missing.xml', manifest(repo, '/no-such.tgz'));
  assert.equal(result.status, 404);
  assert.match(result.message, /not found/);
  assert.deepEqual(tagsOf(repo), []);
  const s = JSON.parse(
    await readFile(join(root.state, 'status', 'ContainerImage', `image-${repo.replace(/[^a-z0-9]+/g, '-')}.json`), 'utf8'),
  );
  assert.equal(s.lastResult.status, 404);
});
