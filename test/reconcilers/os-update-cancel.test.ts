/**
 * Cancel of a running download-only, on the reconciler itself: real apt in a real root fetching
 * from a loopback HTTP repository that never finishes sending the package.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { JournalView } from '../../src/controller/journal.js';
import { createLogger } from '../../src/core/log.js';
import { SnapshotDriver } from '../../src/drivers/snapshot.js';
import { osUpdateReconciler } from '../../src/reconcilers/os-update/index.js';
import type { OsStep } from '../../src/reconcilers/os-update/plan.js';
import { type AptRoot, makeAptRoot, sotaMount } from '../drivers/apt-root.js';
import { until } from '../until.js';

const mnt = sotaMount();
const log = createLogger('silent');
const view = (bootId = 'b1'): JournalView => ({ bootId, record: undefined, completed: () => undefined, step: () => undefined, boots: 0 });
const doc = (requestId: string, mode: 'download-only' | 'cancel') => ({
  apiVersion: 'inbm.dev/v1alpha1' as const,
  kind: 'OSUpdate' as const,
  metadata: { name: 'os-update' },
  spec: { requestId, mode, packages: [], reboot: false, logToFile: false },
});

describe('OS update: cancel a running download-only', () => {
  let r: AptRoot;
  let server: ReturnType<typeof createServer>;
  const asked: string[] = [];
  before(async () => {
    if (!mnt) return;
    r = await makeAptRoot(mnt, 'sota-cancel');
    await r.publish('2');
    const repo = join(r.root, 'srv', 'inbm-repo');
    // Indexes are served; a package starts and then stalls for ever.
    server = createServer((req, res) => {
      asked.push(req.url ?? '');
      if (req.url?.endsWith('.deb')) {
        // The right length, so apt keeps waiting for the rest rather than giving up at once.
        void readFile(join(repo, req.url)).then((b) => {
          res.writeHead(200, { 'content-length': String(b.length) });
          res.write(b.subarray(0, 10));
        });
        return;
      }
      readFile(join(repo, req.url ?? '/')).then(
        (b) => res.end(b),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const port = (server.address() as AddressInfo).port;
    await writeFile(join(r.root, 'etc', 'apt', 'sources.list.d', 'inbm.list'), `deb [trusted=yes] http://127.0.0.1:${port}/ ./\n`);
  });
  after(() => {
    server?.closeAllConnections();
    server?.close();
    r?.remove();
  });

  it('the cancel stops apt mid-download (200 "Request complete."); with nothing running it is 400', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const rec = osUpdateReconciler({
      stateDir: join(r.snapshots),
      cacheDir: join(r.snapshots, 'cache'),
      osRelease: join(r.root, 'etc', 'os-release'),
      apt: ['chroot', r.root],
      snapshots: new SnapshotDriver({}),
      graceMs: 60_000,
      conf: async () => ({ services: [], networkCheck: false, proceedWithoutRollback: true }),
      routeFile: '/proc/net/route',
      trusted: async () => [],
      credentials: async () => ({ username: '', password: '' }),
    });
    const download = doc('d1', 'download-only');
    const plan = rec.plan(download, await rec.observe(download, { log, journal: view() }), Date.now());
    assert.deepEqual(
      plan.steps.map((s) => s.id),
      ['apt-update', 'apt-install'],
    );
    const ctx = { log, signal: new AbortController().signal };
    await rec.execute(plan.steps[0]!, download, ctx);
    const running = rec.execute(plan.steps[1] as OsStep, download, ctx);
    await until('apt asks for the package', async () => (asked.some((u) => u.endsWith('.deb')) ? true : undefined), 30_000);
    assert.equal(rec.cancel('c1'), 'd1');
    await assert.rejects(running, /SOTA: apt-get -yq cancelled/);
    assert.equal(r.version(), '1', 'nothing was installed');

    const cancel = doc('c1', 'cancel');
    const answered = rec.plan(cancel, await rec.observe(cancel, { log, journal: view() }), Date.now());
    assert.deepEqual(answered.complete?.result, { status: 200, message: 'Request complete.', job_id: '' });

    assert.equal(rec.cancel('c2'), undefined, 'nothing runs now');
    const late = doc('c2', 'cancel');
    const refused = rec.plan(late, await rec.observe(late, { log, journal: view() }), Date.now());
    assert.equal(refused.complete?.result.status, 400);
    assert.match(refused.complete!.result.message, /Running thread manifest not found\./);
  });
});
