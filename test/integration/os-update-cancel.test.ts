/**
 * A SOTA cancel dropped while a download-only runs: it must get past the busy check (the
 * download holds the mutation slot), stop apt, and be answered 200 "Request complete.".
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { it } from 'node:test';
import { makeAptRoot, sotaMount } from '../drivers/apt-root.js';
import { loadFixtures } from '../fixtures.js';
import { until } from '../until.js';
import { drop, makeRoot, startAgent, stopAgent } from './harness.js';

const mnt = sotaMount();

it('cancel while a download-only runs: 200 "Request complete.", apt stopped, nothing installed', async (t) => {
  if (!mnt) return t.skip('needs root and the cached Debian root (scripts/sota-root.sh)');
  const apt = await makeAptRoot(mnt, 'sota-cancel-agent');
  t.after(() => apt.remove());
  await apt.publish('2');
  const repo = join(apt.root, 'srv', 'inbm-repo');
  const asked: string[] = [];
  // Indexes are served; the package starts and then stalls for ever, as a dead link would.
  const server = createServer((req, res) => {
    asked.push(req.url ?? '');
    void readFile(join(repo, req.url ?? '/')).then(
      (b) => {
        if (!req.url?.endsWith('.deb')) return void res.end(b);
        res.writeHead(200, { 'content-length': String(b.length) });
        res.write(b.subarray(0, 10));
      },
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  await writeFile(
    join(apt.root, 'etc', 'apt', 'sources.list.d', 'inbm.list'),
    `deb [trusted=yes] http://127.0.0.1:${(server.address() as AddressInfo).port}/ ./\n`,
  );
  const root = await makeRoot(`os:\n  aptPrefix: [chroot, ${apt.root}]\n`);
  const agent = await startAgent(root);
  t.after(() => stopAgent(agent));
  const fixtures = loadFixtures();
  const xml = (file: string) => fixtures.find((f) => f.dir === 'valid' && f.file === file)!.text;
  await drop(root, 'download.xml', xml('sota-download-only.xml'));
  await until('apt asks for the package', async () => (asked.some((u) => u.endsWith('.deb')) ? true : undefined), 60_000);

  await drop(root, 'cancel.xml', xml('sota-cancel.xml'));
  const answer = await until('cancel answered', async () =>
    JSON.parse(await readFile(join(root.state, 'status', 'files', 'cancel.xml.json'), 'utf8')),
  );
  assert.deepEqual(answer.result, { status: 200, message: 'Request complete.', job_id: '' });
  const stopped = await until('download-only ends', async () => {
    const s = JSON.parse(await readFile(join(root.state, 'status', 'OSUpdate', 'os-update.json'), 'utf8'));
    return s.lastResult?.status === 400 ? s : undefined;
  });
  assert.match(stopped.lastResult.message, /cancelled/);
  assert.equal(apt.version(), '1', 'nothing was installed');
  assert.equal(await readFile(root.rebootLog, 'utf8').catch(() => ''), '', 'download-only never reboots');
});
