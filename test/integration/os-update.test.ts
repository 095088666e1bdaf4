/**
 * SOTA end to end on a real Debian root (a btrfs subvolume of the cached debootstrap image):
 * the agent runs apt in it through chroot, snapshots it, reboots (simulated: agent stopped, the
 * "bootloader" swaps in the rollback snapshot if one was staged, new boot id, agent started),
 * and commits or rolls back after the boot.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sotaMount } from '../drivers/apt-root.js';
import { until } from '../until.js';
import { BIN, drop, makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';
import { device, done, phase, reboot, reboots, record, results, snapshotsOf, statusOf, waitFor } from './sota-device.js';

const mnt = sotaMount();
const SUCCESS = 'SUCCESSFUL INSTALL: Overall SOTA update successful.  System has been properly updated.';

const sota = (mode: string, o: { packages?: string; reboot?: 'yes' | 'no' } = {}) =>
  `<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>sota</type><repo>remote</repo></header>` +
  `<type><sota><cmd logtofile="N">update</cmd><mode>${mode}</mode>` +
  (o.packages ? `<package_list>${o.packages}</package_list>` : '') +
  (o.reboot ? `<deviceReboot>${o.reboot}</deviceReboot>` : '') +
  '</sota></type></ota></manifest>';

describe('OS update (SOTA) through apt with a btrfs snapshot', { concurrency: 2 }, () => {
  it('upgrades inbm-demo 1 → 2, reboots once, healthy after the boot: snapshot deleted, success', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('sota-ok');
    try {
      await d.apt.publish('2');
      d.agent = await startAgent(d.root);
      await drop(d.root, 'sota.xml', sota('full'));
      await phase(d, 'Waiting', /SOTA command status: SUCCESSFUL/);
      await waitFor('reboot', async () => ((await reboots(d)) === 1 ? true : undefined));
      assert.equal(d.apt.version(), '2');
      assert.equal((await record(d)).Status, 'PENDING');
      assert.equal(snapshotsOf(d).length, 1, 'the snapshot is there until the verdict');
      await reboot(d);
      await phase(d, 'Ready', new RegExp(SUCCESS.replace(/[.]/g, '\\.')));
      assert.deepEqual(await results(d), ['200 SOTA command status: SUCCESSFUL', `200 ${SUCCESS}`]);
      assert.deepEqual(snapshotsOf(d), [], 'committed: snapshot deleted');
      assert.equal(d.apt.version(), '2');
      assert.equal((await record(d)).Status, 'SUCCESS');
      assert.equal(await reboots(d), 1);
    } finally {
      await done(d);
    }
  });

  it('a mandatory service failing after the boot: rolled back to the snapshot, inbm-demo back at 1', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('sota-revert');
    try {
      await d.apt.publish('2');
      d.agent = await startAgent(d.root);
      await drop(d.root, 'sota.xml', sota('full', { packages: 'inbm-demo' }));
      await waitFor('reboot', async () => ((await reboots(d)) === 1 ? true : undefined));
      assert.equal(d.apt.version(), '2');
      await writeFile(d.failing, 'docker\n'); // the update "broke" docker
      await reboot(d);
      const s = await phase(d, 'Failed', /^FAILED INSTALL: System has not been properly updated; reverting\./);
      assert.match(s.lastResult!.message, /services: inactive: docker/);
      assert.equal(s.lastResult!.status, 400);
      assert.equal(await reboots(d), 2, 'rebooted into the snapshot');
      assert.equal((await record(d)).Status, 'FAIL');
      await writeFile(d.failing, '');
      await reboot(d);
      assert.equal(d.apt.version(), '1', 'the bootloader started the snapshot: version 1 again');
      // After the rollback boot the request stays finished: no third reboot, same result.
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await reboots(d), 2);
      assert.equal((await statusOf(d)).phase, 'Failed');
    } finally {
      await done(d);
    }
  });

  it('the requested package not at its new version after the boot (the old root came up): rolled back, naming it', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('sota-pkgcheck');
    try {
      await d.apt.publish('2');
      d.agent = await startAgent(d.root);
      await drop(d.root, 'sota.xml', sota('full', { packages: 'inbm-demo' }));
      await waitFor('reboot', async () => ((await reboots(d)) === 1 ? true : undefined));
      assert.equal(d.apt.version(), '2');
      // The bootloader falls back to the root taken before the update: services fine, package at 1.
      const [snapshot] = snapshotsOf(d);
      assert.ok(snapshot, 'a snapshot was taken');
      await writeFile(d.nextBoot, join(mnt, snapshot));
      await reboot(d);
      assert.equal(d.apt.version(), '1');
      const s = await phase(d, 'Failed', /^FAILED INSTALL: System has not been properly updated; reverting\./);
      assert.match(s.lastResult!.message, /packages: inbm-demo 1 != 2/);
      assert.doesNotMatch(s.lastResult!.message, /services:/);
      assert.equal(s.lastResult!.status, 400);
      assert.equal((await record(d)).Status, 'FAIL');
    } finally {
      await done(d);
    }
  });

  it('apt failing before the reboot (a package whose postinst fails): rolled back at once, 400', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('sota-aptfail');
    try {
      await d.apt.publish('2', true);
      d.agent = await startAgent(d.root);
      await drop(d.root, 'sota.xml', sota('full'));
      const s = await phase(d, 'Failed');
      assert.equal(s.lastResult!.status, 400);
      assert.match(s.lastResult!.message, /apt-get -yq failed \(100\).*reverting to the snapshot taken before the update/);
      assert.equal(await reboots(d), 1, 'rebooted into the snapshot');
      assert.equal((await record(d)).Status, 'FAIL');
      await reboot(d);
      assert.equal(d.apt.version(), '1');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await reboots(d), 1);
    } finally {
      await done(d);
    }
  });

  it('download-only: fetches, never installs or reboots', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('sota-dl');
    try {
      await d.apt.publish('2');
      d.agent = await startAgent(d.root);
      await drop(d.root, 'sota.xml', sota('download-only', { reboot: 'yes' }));
      await phase(d, 'Ready', /SOTA command status: SUCCESSFUL/);
      assert.equal(d.apt.version(), '1');
      assert.equal(await reboots(d), 0);
      assert.equal((await record(d)).Status, 'SUCCESS');
      assert.deepEqual(snapshotsOf(d), []);
    } finally {
      await done(d);
    }
  });

  it('no snapshot possible and proceedWithoutRollback=false: refused before anything changes', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('sota-nosnap', { snapshots: false });
    try {
      await d.apt.publish('2');
      d.agent = await startAgent(d.root);
      const conf = join(d.root.dir, 'etc', 'intel_manageability.conf');
      await writeFile(
        conf,
        (await readFile(conf, 'utf8')).replace(
          /<proceedWithoutRollback>true<\/proceedWithoutRollback>/,
          '<proceedWithoutRollback>false</proceedWithoutRollback>',
        ),
      );
      await drop(d.root, 'sota.xml', sota('full'));
      const s = await phase(d, 'Stalled');
      assert.equal(s.lastResult!.status, 400);
      assert.match(s.lastResult!.message, /SOTA will not proceed without snapshot\/rollback support/);
      assert.equal(d.apt.version(), '1');
      assert.equal(await reboots(d), 0);
    } finally {
      await done(d);
    }
  });

  it('no snapshot possible and proceedWithoutRollback=true (the shipped default): updates without rollback', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('sota-norollback', { snapshots: false });
    try {
      await d.apt.publish('2');
      d.agent = await startAgent(d.root);
      await drop(d.root, 'sota.xml', sota('full', { reboot: 'no' }));
      await phase(d, 'Ready', new RegExp(SUCCESS.replace(/[.]/g, '\\.')));
      assert.equal(d.apt.version(), '2');
      assert.equal(await reboots(d), 0, 'deviceReboot no: verified and committed without a reboot');
    } finally {
      await done(d);
    }
  });
});

describe('OS update: nothing to do, and a reboot loop', { concurrency: 2 }, () => {
  it('full with nothing to upgrade: no reboot, snapshot dropped, NO_UPDATE_AVAILABLE', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('sota-noupdate');
    try {
      d.agent = await startAgent(d.root);
      await drop(d.root, 'sota.xml', sota('full'));
      const s = await phase(d, 'Ready', /SOTA command status: SUCCESSFUL/);
      assert.equal(s.lastResult?.status, 200);
      assert.equal((await record(d)).Status, 'NO_UPDATE_AVAILABLE');
      assert.equal(await reboots(d), 0);
      assert.deepEqual(snapshotsOf(d), []);
    } finally {
      await done(d);
    }
  });

  it('a cancel with no download-only running: 400 as the reference answers', async () => {
    const root = await makeRoot();
    const agent = await startAgent(root);
    try {
      await drop(root, 'cancel.xml', sota('cancel'));
      const s = await until(
        'cancel answered',
        async () => {
          const st = JSON.parse(await readFile(join(root.state, 'status', 'OSUpdate', 'os-update.json'), 'utf8'));
          return st.lastResult ? (st as { lastResult: { status: number; message: string } }) : undefined;
        },
        30_000,
      );
      assert.deepEqual(s.lastResult, { status: 400, message: 'FAILED TO INSTALL: Running thread manifest not found.', job_id: '' });
    } finally {
      await stopAgent(agent);
    }
  });

  it('the agent dying at every boot before the verdict: the reboot-loop breaker ends the request', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('sota-loop');
    try {
      await d.apt.publish('2');
      d.agent = await startAgent(d.root);
      await drop(d.root, 'sota.xml', sota('full'));
      await waitFor('reboot', async () => ((await reboots(d)) === 1 ? true : undefined));
      await stopAgent(d.agent);
      // Boots 2 and 3 of the run: the agent dies (SIGKILL) as it begins the verdict, maybe before it logs ready.
      for (let boot = 0; boot < 2; boot++) {
        await writeFile(join(d.root.dir, 'proc', 'sys', 'kernel', 'random', 'boot_id'), `loop-${boot}\n`);
        const p = spawn(process.execPath, [BIN, '--root', d.root.dir, 'agent'], {
          stdio: 'ignore',
          env: { ...process.env, INBM_CRASH_AT: 'OSUpdate/os-update:verdict:started' },
        });
        const [, signal] = (await once(p, 'exit')) as [number | null, string | null];
        assert.equal(signal, 'SIGKILL', `boot ${boot}: died at the verdict`);
      }
      // Boot 4 is one more than MAX_BOOTS_PER_RUN: the controller ends the run before any step.
      await writeFile(join(d.root.dir, 'proc', 'sys', 'kernel', 'random', 'boot_id'), 'loop-final\n');
      d.agent = await startAgent(d.root, { INBM_CRASH_AT: 'OSUpdate/os-update:verdict:started' });
      const s = await phase(d, 'Failed', /reboot loop/);
      assert.equal(s.lastResult?.status, 400);
      assert.equal(await reboots(d), 1, 'the loop breaker itself never reboots');
    } finally {
      await done(d);
    }
  });
});

/**
 * Yocto: the Mender client is a real script keeping A/B state in files; the simulated bootloader
 * boots a freshly installed artifact once and falls back unless it was committed.
 */
describe('OS update on Yocto through Mender', { concurrency: 2 }, () => {
  interface Yocto {
    root: Root;
    mender: string;
    agent?: Running;
    server: Awaited<ReturnType<typeof serveFiles>>['server'];
    url: string;
  }
  async function yocto(): Promise<Yocto> {
    const dir = await mkdtemp(join(tmpdir(), 'inbm-mender-'));
    const m = join(dir, 'mender');
    await mkdir(m);
    await writeFile(join(m, 'running'), 'Release-20200101\n');
    const script = join(dir, 'mender.sh');
    await writeFile(
      script,
      `#!/bin/sh
m=${m}
case "$1" in
  show-artifact) cat $m/running ;;
  install) head -n1 "$2" > $m/pending || exit 1 ;;
  commit) [ -f $m/trying ] || { echo "no update in progress" >&2; exit 2; }; rm $m/trying; echo commit >> $m/log ;;
  *) exit 2 ;;
esac
`,
    );
    await chmod(script, 0o755);
    const check = join(dir, 'service-check.sh');
    await writeFile(check, `#!/bin/sh\ntouch ${m}/failing\n! grep -qx "$1" ${m}/failing\n`);
    await chmod(check, 0o755);
    const artifact = join(dir, 'core-image-20210601.mender');
    await writeFile(artifact, 'Release-20210601\n');
    const { server, base } = await serveFiles(new Map([['/core-image-20210601.mender', artifact]]));
    const root = await makeRoot(`  serviceCheck: [${check}, '{service}']\nos:\n  mender: [${script}]\nrebootGraceSeconds: 120\n`);
    await writeFile(join(root.dir, 'etc', 'os-release'), 'ID=poky\nNAME="Poky (Yocto Project Reference Distro)"\n');
    return { root, mender: m, server, url: `${base}/core-image-20210601.mender` };
  }
  const yoctoManifest = (url: string, releaseDate: string) =>
    `<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>sota</type><repo>remote</repo></header>` +
    `<type><sota><cmd logtofile="N">update</cmd><mode>full</mode><fetch>${url}</fetch><release_date>${releaseDate}</release_date></sota></type></ota></manifest>`;
  /** The bootloader: a new artifact is tried once; an uncommitted one falls back at the next boot. */
  async function bootY(y: Yocto): Promise<void> {
    if (y.agent) await stopAgent(y.agent);
    const pending = await readFile(join(y.mender, 'pending'), 'utf8').catch(() => undefined);
    if (pending) {
      await rename(join(y.mender, 'running'), join(y.mender, 'previous'));
      await writeFile(join(y.mender, 'running'), pending);
      await rename(join(y.mender, 'pending'), join(y.mender, 'trying'));
    } else if (await readFile(join(y.mender, 'trying'), 'utf8').catch(() => undefined)) {
      await rename(join(y.mender, 'previous'), join(y.mender, 'running'));
      await rm(join(y.mender, 'trying'));
    }
    await writeFile(join(y.root.dir, 'proc', 'sys', 'kernel', 'random', 'boot_id'), `boot-${Date.now()}\n`);
    y.agent = await startAgent(y.root);
  }
  const yStatus = async (y: Yocto) =>
    JSON.parse(await readFile(join(y.root.state, 'status', 'OSUpdate', 'os-update.json'), 'utf8')) as {
      phase: string;
      lastResult?: { status: number; message: string };
    };
  const yPhase = (y: Yocto, want: string) =>
    until(`${want}`, async () => ((await yStatus(y)).phase === want ? yStatus(y) : undefined), 60_000);
  const running = (y: Yocto) => readFile(join(y.mender, 'running'), 'utf8').then((s) => s.trim());

  it('installs the fetched artifact, reboots, healthy: mender commit, success', async () => {
    const y = await yocto();
    try {
      y.agent = await startAgent(y.root);
      await trustRepository(y.root, y.url.replace(/\/[^/]*$/, '/'));
      await drop(y.root, 'sota.xml', yoctoManifest(y.url, '2021-06-01'));
      await until('reboot', async () => ((await readFile(y.root.rebootLog, 'utf8').catch(() => '')).trim() ? true : undefined), 60_000);
      assert.equal(await readFile(join(y.mender, 'pending'), 'utf8'), 'Release-20210601\n');
      await bootY(y);
      const s = await yPhase(y, 'Ready');
      assert.equal(s.lastResult?.message, SUCCESS);
      assert.equal(await readFile(join(y.mender, 'log'), 'utf8'), 'commit\n');
      await bootY(y);
      assert.equal(await running(y), 'Release-20210601', 'committed: stays on the new image');
    } finally {
      if (y.agent) await stopAgent(y.agent);
      y.server.close();
    }
  });

  it('unhealthy after the boot: no commit, reboot, the bootloader falls back', async () => {
    const y = await yocto();
    try {
      y.agent = await startAgent(y.root);
      await trustRepository(y.root, y.url.replace(/\/[^/]*$/, '/'));
      await drop(y.root, 'sota.xml', yoctoManifest(y.url, '2021-06-01'));
      await until('reboot', async () => ((await readFile(y.root.rebootLog, 'utf8').catch(() => '')).trim() ? true : undefined), 60_000);
      await writeFile(join(y.mender, 'failing'), 'docker\n');
      await bootY(y);
      const s = await yPhase(y, 'Failed');
      assert.match(s.lastResult!.message, /^FAILED INSTALL: System has not been properly updated; reverting\. services: inactive: docker/);
      assert.equal((await readFile(y.root.rebootLog, 'utf8')).trim().split('\n').length, 2);
      await bootY(y);
      assert.equal(await running(y), 'Release-20200101', 'fell back to the old image');
    } finally {
      if (y.agent) await stopAgent(y.agent);
      y.server.close();
    }
  });

  it('killed right after mender commit ran: the restart finds it committed and succeeds', async () => {
    const y = await yocto();
    try {
      y.agent = await startAgent(y.root);
      await trustRepository(y.root, y.url.replace(/\/[^/]*$/, '/'));
      await drop(y.root, 'sota.xml', yoctoManifest(y.url, '2021-06-01'));
      await until('reboot', async () => ((await readFile(y.root.rebootLog, 'utf8').catch(() => '')).trim() ? true : undefined), 60_000);
      await stopAgent(y.agent);
      y.agent = undefined;
      const env = { INBM_CRASH_AT: 'OSUpdate/os-update:commit:ran' };
      // The boot into the new image, with an agent that dies once the commit has run.
      const pending = await readFile(join(y.mender, 'pending'), 'utf8');
      await rename(join(y.mender, 'running'), join(y.mender, 'previous'));
      await writeFile(join(y.mender, 'running'), pending);
      await rename(join(y.mender, 'pending'), join(y.mender, 'trying'));
      await writeFile(join(y.root.dir, 'proc', 'sys', 'kernel', 'random', 'boot_id'), 'new-image\n');
      const p = spawn(process.execPath, [BIN, '--root', y.root.dir, 'agent'], { stdio: 'ignore', env: { ...process.env, ...env } });
      const [, signal] = (await once(p, 'exit')) as [number | null, string | null];
      assert.equal(signal, 'SIGKILL');
      y.agent = await startAgent(y.root);
      const s = await yPhase(y, 'Ready');
      assert.equal(s.lastResult?.message, SUCCESS);
      assert.equal(await readFile(join(y.mender, 'log'), 'utf8'), 'commit\n', 'committed once');
    } finally {
      if (y.agent) await stopAgent(y.agent);
      y.server.close();
    }
  });

  it('a release date not newer than the running artifact is refused before anything is fetched', async () => {
    const y = await yocto();
    try {
      y.agent = await startAgent(y.root);
      await trustRepository(y.root, y.url.replace(/\/[^/]*$/, '/'));
      await drop(y.root, 'sota.xml', yoctoManifest(y.url, '2019-12-31'));
      const s = await yPhase(y, 'Stalled');
      assert.equal(s.lastResult?.status, 400);
      assert.match(s.lastResult!.message, /release date 2019-12-31 is not newer than the running artifact Release-20200101/);
      assert.equal(await readFile(join(y.mender, 'pending'), 'utf8').catch(() => 'none'), 'none');
    } finally {
      if (y.agent) await stopAgent(y.agent);
      y.server.close();
    }
  });
});
