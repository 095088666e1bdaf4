/**
 * POTA end to end: the FOTA machinery (a fake DMI tree, a bash "flash tool" that rewrites the
 * BIOS version and date there, firmware_tool_info.conf, the capsule on 127.0.0.1) and the SOTA
 * machinery (a real Debian root on btrfs, apt in it through chroot, inbm-demo 1 → 2, snapshots)
 * in one root. Both halves checked before either starts; one reboot; verdicts after the boot;
 * SIGKILL at journalled steps converging with one flash and one reboot.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type AptRoot, makeAptRoot, run, sotaMount } from '../drivers/apt-root.js';
import { until } from '../until.js';
import { drop, makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';

const mnt = sotaMount();
const FOTA_OK = 'SUCCESSFUL INSTALL: Overall FOTA update successful. System has been updated with new Firmware version...';
const SOTA_OK = 'SUCCESSFUL INSTALL: Overall SOTA update successful.  System has been properly updated.';
const POTA_OK = `${FOTA_OK} ${SOTA_OK}`;

let server: Server;
let filesDir: string;
let base: string;
const requests: string[] = [];
/** URL path → file; each device gets its own path, so concurrent tests count only their own downloads. */
const files = new Map<string, string>();

before(async () => {
  filesDir = await mkdtemp(join(tmpdir(), 'inbm-pota-files-'));
  // Line 1 the version, line 2 the date the flash leaves in the DMI tree.
  await writeFile(join(filesDir, 'bios-b02.bin'), 'B.02\n06/15/2026\n');
  const served = await serveFiles(files);
  server = served.server;
  base = served.base;
  server.on('request', (req) => requests.push(req.url ?? ''));
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(filesDir, { recursive: true, force: true });
});

interface Device {
  /** This device's capsule path on the server. */
  capsule: string;
  apt: AptRoot;
  root: Root;
  dmi: string;
  toolLog: string;
  nextBoot: string;
  failing: string;
  agent?: Running;
}

async function device(name: string, o: { snapshots?: boolean; extra?: string } = {}): Promise<Device> {
  const apt = await makeAptRoot(mnt!, name);
  const failing = join(apt.snapshots, 'failing-services');
  const nextBoot = join(apt.snapshots, 'next-boot');
  const check = join(apt.snapshots, 'service-check.sh');
  await writeFile(check, `#!/bin/sh\ntouch ${failing}\n! grep -qx "$1" ${failing}\n`);
  await chmod(check, 0o755);
  const bootFrom = join(apt.snapshots, 'boot-from.sh');
  await writeFile(bootFrom, `#!/bin/sh\necho "$1" > ${nextBoot}\n`);
  await chmod(bootFrom, 0o755);
  const snap =
    o.snapshots === false ? '' : `  rootSubvolume: ${apt.root}\n  snapshotDir: ${apt.snapshots}\n  rollback: [${bootFrom}, '{snapshot}']\n`;
  const root = await makeRoot(
    `  serviceCheck: [${check}, '{service}']\nos:\n  aptPrefix: [chroot, ${apt.root}]\n${snap}${o.extra ?? 'rebootGraceSeconds: 120\n'}`,
  );
  const dmi = join(root.dir, 'sys', 'devices', 'virtual', 'dmi', 'id');
  await mkdir(dmi, { recursive: true });
  const values = {
    bios_vendor: 'Acme BIOS Inc.',
    bios_version: 'A.01',
    bios_date: '01/15/2025',
    sys_vendor: 'Acme Corp',
    product_name: 'Test Board',
  };
  for (const [k, v] of Object.entries(values)) await writeFile(join(dmi, k), `${v}\n`);
  const toolLog = join(root.dir, 'fwtool.log');
  const tool = join(root.dir, 'fwtool.sh');
  await writeFile(
    tool,
    `#!/bin/bash
printf '%s\\n' "$*" >> ${toolLog}
[ "$1" = --check ] && exit 0
[ -e ${root.dir}/fwtool.nochange ] && exit 0
for f in "$@"; do [ -f "$f" ] && fw="$f"; done
sed -n 1p "$fw" > ${dmi}/bios_version
sed -n 2p "$fw" > ${dmi}/bios_date
`,
  );
  await chmod(tool, 0o755);
  await writeFile(
    join(root.dir, 'etc', 'firmware_tool_info.conf'),
    `<?xml version="1.0" encoding="utf-8"?>
<firmware_component>
  <firmware_product name='Test Board'>
    <operating_system>linux</operating_system>
    <firmware_tool>${tool}</firmware_tool>
    <firmware_tool_args>--apply</firmware_tool_args>
    <firmware_tool_check_args>--check</firmware_tool_check_args>
    <firmware_file_type>bin</firmware_file_type>
  </firmware_product>
</firmware_component>
`,
  );
  const capsule = `/fw/${name}/bios-b02.bin`;
  files.set(capsule, join(filesDir, 'bios-b02.bin'));
  return { capsule, apt, root, dmi, toolLog, nextBoot, failing };
}

/** The shape of pota-integration-remote.xml, the capsule on the loopback server, apt for the OS part. */
const pota = (d: Device, o: { vendor?: string } = {}) =>
  `<?xml version="1.0" encoding="UTF-8"?><manifest><type>ota</type><ota><header><type>pota</type><repo>remote</repo></header>` +
  `<type><pota><fota name="sample"><fetch>${base}${d.capsule}</fetch><biosversion>B.02</biosversion>` +
  `<manufacturer>Acme Corp</manufacturer><product>Test Board</product><vendor>${o.vendor ?? 'Acme BIOS Inc.'}</vendor>` +
  '<releasedate>2026-06-15</releasedate></fota>' +
  '<sota><cmd logtofile="N">update</cmd><mode>full</mode></sota></pota></type></ota></manifest>';

const results = async (d: Device) =>
  (
    JSON.parse(await readFile(join(d.root.state, 'results.json'), 'utf8').catch(() => '[]')) as Array<{
      kind: string;
      result: { status: number; message: string };
    }>
  )
    .filter((r) => r.kind === 'PlatformUpdate')
    .map((r) => `${r.result.status} ${r.result.message}`);
const statusOf = async (d: Device) =>
  JSON.parse(await readFile(join(d.root.state, 'status', 'PlatformUpdate', 'platform-update.json'), 'utf8')) as {
    phase: string;
    lastResult?: { status: number; message: string };
    history: Array<{ message: string }>;
  };
const lines = async (path: string) => (await readFile(path, 'utf8').catch(() => '')).split('\n').filter(Boolean);
const flashes = async (d: Device) => (await lines(d.toolLog)).filter((l) => l.startsWith('--apply'));
const reboots = async (d: Device) => (await lines(d.root.rebootLog)).length;
const record = async (d: Device) =>
  JSON.parse(await readFile(join(d.root.state, 'update-status.json'), 'utf8')) as { Status: string; Type: string; Error: string };
const bios = async (d: Device) => (await readFile(join(d.dmi, 'bios_version'), 'utf8')).trim();
const cached = async (d: Device) =>
  (await readdir(join(d.root.dir, 'var', 'cache', 'manageability')).catch(() => [] as string[])).filter((n) => n !== 'repository-tool');
const snapshotsOf = (d: Device) =>
  run(['btrfs', 'subvolume', 'list', '-o', mnt!])
    .split('\n')
    .map((l) => l.split(' path ')[1])
    .filter((p): p is string => !!p && join(mnt!, p).startsWith(`${d.apt.snapshots}/`));
const waitFor = <T>(what: string, probe: () => Promise<T | undefined>) => until(what, probe, 120_000);
const phase = (d: Device, want: string) =>
  waitFor(want, async () => {
    const s = await statusOf(d);
    return s.phase === want ? s : undefined;
  });

/** Agent down, the bootloader starts the staged snapshot if there is one, new boot id, agent up. */
async function powerCycle(d: Device, env: Record<string, string> = {}, ready = true): Promise<void> {
  if (d.agent && d.agent.proc.exitCode === null && d.agent.proc.signalCode === null) {
    d.agent.proc.kill('SIGKILL');
    await d.agent.exited;
  }
  const staged = await readFile(d.nextBoot, 'utf8').catch(() => undefined);
  if (staged) {
    run(['btrfs', 'subvolume', 'delete', d.apt.root]);
    run(['btrfs', 'subvolume', 'snapshot', staged.trim(), d.apt.root]);
    await rm(d.nextBoot);
  }
  await writeFile(join(d.root.dir, 'proc', 'sys', 'kernel', 'random', 'boot_id'), `boot-${Date.now()}\n`);
  d.agent = await startAgent(d.root, env, { ready });
}

async function done(d: Device) {
  if (process.env.POTA_DEBUG) console.error(d.agent?.output().slice(-6000));
  if (d.agent && d.agent.proc.exitCode === null && d.agent.proc.signalCode === null) await stopAgent(d.agent);
  d.apt.remove();
}

describe('POTA: firmware then OS, one reboot', { concurrency: 2 }, () => {
  it('both eligible: flashed, upgraded, one reboot, both verdicts good → 200, snapshot deleted', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('pota-ok');
    try {
      await d.apt.publish('2');
      d.agent = await startAgent(d.root);
      await trustRepository(d.root, `${base}/fw`);
      await drop(d.root, 'pota.xml', pota(d));
      await waitFor('reboot', async () => ((await reboots(d)) === 1 ? true : undefined));
      assert.equal(d.apt.version(), '2', 'the OS part ran before the reboot');
      assert.equal(await bios(d), 'B.02', 'the flash ran before the reboot');
      assert.equal((await flashes(d)).length, 1);
      assert.deepEqual(await cached(d), [], 'the capsule download is gone');
      assert.deepEqual({ Status: (await record(d)).Status, Type: (await record(d)).Type }, { Status: 'PENDING', Type: 'pota' });
      assert.equal(snapshotsOf(d).length, 1, 'the snapshot waits for the verdict');
      await powerCycle(d);
      const s = await phase(d, 'Ready');
      assert.equal(s.lastResult?.message, POTA_OK);
      assert.deepEqual(await results(d), ['200 COMMAND SUCCESSFUL', `200 ${POTA_OK}`]);
      assert.deepEqual(snapshotsOf(d), [], 'committed: snapshot deleted');
      assert.equal(d.apt.version(), '2');
      assert.equal((await record(d)).Status, 'SUCCESS');
      assert.equal((await record(d)).Type, 'pota');
      assert.equal(await reboots(d), 1, 'exactly one reboot');
      assert.equal(requests.filter((r) => r === d.capsule).length, 1, 'downloaded once');
      assert.equal((await flashes(d)).length, 1);
    } finally {
      await done(d);
    }
  });

  it('firmware ineligible: 400 with the reason, nothing downloaded, no snapshot, the package untouched', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('pota-inelig');
    try {
      await d.apt.publish('2');
      d.agent = await startAgent(d.root);
      await trustRepository(d.root, `${base}/fw`);
      await drop(d.root, 'pota.xml', pota(d, { vendor: 'Other BIOS Ltd.' }));
      const s = await phase(d, 'Stalled');
      assert.equal(s.lastResult?.status, 400);
      assert.match(s.lastResult!.message, /vendor "Other BIOS Ltd\." does not match the platform BIOS vendor "Acme BIOS Inc\."/);
      assert.deepEqual(
        requests.filter((r) => r === d.capsule),
        [],
        'zero HTTP requests',
      );
      assert.deepEqual(snapshotsOf(d), []);
      assert.equal(d.apt.version(), '1');
      assert.deepEqual(await flashes(d), []);
      assert.equal(await reboots(d), 0);
      assert.equal(await bios(d), 'A.01');
    } finally {
      await done(d);
    }
  });

  it('OS precondition failing (no snapshot, proceedWithoutRollback=false): 400, the firmware not touched', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('pota-nosnap', { snapshots: false });
    try {
      await d.apt.publish('2');
      d.agent = await startAgent(d.root);
      await trustRepository(d.root, `${base}/fw`);
      const conf = join(d.root.dir, 'etc', 'intel_manageability.conf');
      await writeFile(
        conf,
        (await readFile(conf, 'utf8')).replace(
          /<proceedWithoutRollback>true<\/proceedWithoutRollback>/,
          '<proceedWithoutRollback>false</proceedWithoutRollback>',
        ),
      );
      await drop(d.root, 'pota.xml', pota(d));
      const s = await phase(d, 'Stalled');
      assert.equal(s.lastResult?.status, 400);
      assert.match(s.lastResult!.message, /SOTA will not proceed without snapshot\/rollback support/);
      assert.deepEqual(
        requests.filter((r) => r === d.capsule),
        [],
        'zero HTTP requests',
      );
      assert.deepEqual(await flashes(d), []);
      assert.equal(d.apt.version(), '1');
      assert.equal(await reboots(d), 0);
    } finally {
      await done(d);
    }
  });

  it('firmware not updated after the boot: 400 with the FOTA text; the OS, healthy, is kept and committed', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('pota-fwfail');
    try {
      await d.apt.publish('2');
      await writeFile(join(d.root.dir, 'fwtool.nochange'), '');
      d.agent = await startAgent(d.root);
      await trustRepository(d.root, `${base}/fw`);
      await drop(d.root, 'pota.xml', pota(d));
      await waitFor('reboot', async () => ((await reboots(d)) === 1 ? true : undefined));
      await powerCycle(d);
      const s = await phase(d, 'Failed');
      assert.equal(s.lastResult?.status, 400);
      assert.match(s.lastResult!.message, /^FAILED INSTALL: Overall FOTA update failed\. Firmware not updated\./);
      assert.equal(await bios(d), 'A.01');
      assert.equal(d.apt.version(), '2');
      assert.deepEqual(snapshotsOf(d), [], 'the OS part passed its own check: committed');
      assert.equal(await reboots(d), 1);
      assert.equal((await record(d)).Status, 'FAIL');
    } finally {
      await done(d);
    }
  });

  it('the OS unhealthy after the boot: rolled back and rebooted into the snapshot, 400; the firmware stays', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('pota-revert');
    try {
      await d.apt.publish('2');
      d.agent = await startAgent(d.root);
      await trustRepository(d.root, `${base}/fw`);
      await drop(d.root, 'pota.xml', pota(d));
      await waitFor('reboot', async () => ((await reboots(d)) === 1 ? true : undefined));
      await writeFile(d.failing, 'docker\n');
      await powerCycle(d);
      const s = await phase(d, 'Failed');
      assert.equal(s.lastResult?.status, 400);
      assert.match(s.lastResult!.message, /^FAILED INSTALL: System has not been properly updated; reverting\. services: inactive: docker/);
      assert.equal(await reboots(d), 2, 'rebooted into the snapshot');
      assert.equal((await record(d)).Status, 'FAIL');
      assert.equal((await record(d)).Type, 'pota');
      await writeFile(d.failing, '');
      await powerCycle(d);
      assert.equal(d.apt.version(), '1');
      assert.equal(await bios(d), 'B.02');
    } finally {
      await done(d);
    }
  });
});

describe('POTA: SIGKILL at journalled steps', { concurrency: 2 }, () => {
  const before = [
    'bios:done',
    'flash:ran',
    'snapshot:ran',
    'apt-update:started',
    'apt-update:ran',
    'apt-install:ran',
    'reboot:started',
    'reboot:done',
  ];
  const afterBoot = ['firmware-verdict:ran', 'os-verdict:started', 'commit:started', 'record:ran', 'complete'];
  for (const point of [...before, ...afterBoot]) {
    it(`killed at ${point}: converges to 200 with one flash and one reboot`, async (t) => {
      if (!mnt) return t.skip('needs root and the cached Debian root');
      const d = await device(`pota-${point.replace(':', '-')}`, { extra: 'rebootGraceSeconds: 2\n' });
      const crashAt = { INBM_CRASH_AT: `PlatformUpdate/platform-update:${point}` };
      try {
        await d.apt.publish('2');
        if (afterBoot.includes(point)) {
          d.agent = await startAgent(d.root);
          await trustRepository(d.root, `${base}/fw`);
          await drop(d.root, 'pota.xml', pota(d));
          await waitFor('reboot', async () => ((await reboots(d)) === 1 ? true : undefined));
          await powerCycle(d, crashAt, false);
        } else {
          d.agent = await startAgent(d.root, crashAt);
          await trustRepository(d.root, `${base}/fw`);
          await drop(d.root, 'pota.xml', pota(d));
        }
        assert.equal((await d.agent.exited).signal, 'SIGKILL', 'the crash hook fired');
        // Boot on until the verdict: an agent whose reboot command ran is "powered off".
        let verdict: { phase: string; message: string } | undefined;
        for (let boot = 0; boot < 4 && !verdict; boot++) {
          const rebootsBefore = await reboots(d);
          d.agent = await startAgent(d.root);
          verdict = await waitFor('verdict or reboot', async () => {
            // The last history line: a pass that only finds the request completed records no new result.
            const s = await statusOf(d).catch(() => undefined);
            const message = s?.history.at(-1)?.message ?? '';
            if (s && s.phase !== 'Waiting' && /INSTALL/.test(message)) return { phase: s.phase, message };
            return (await reboots(d)) > rebootsBefore ? null : undefined;
          }).then((v) => v ?? undefined);
          if (!verdict) {
            // The reboot script already moved the boot id: power off, and the next loop boots.
            d.agent.proc.kill('SIGKILL');
            await d.agent.exited;
          }
        }
        assert.equal(verdict?.phase, 'Ready', verdict?.message);
        assert.equal(verdict?.message, POTA_OK);
        // The interim answer is lost when the agent dies in the pass that reboots (as for FOTA and SOTA).
        const answers = await results(d);
        assert.deepEqual(
          answers.filter((r) => r !== '200 COMMAND SUCCESSFUL'),
          [`200 ${POTA_OK}`],
          'one final answer, nothing else',
        );
        assert.ok(answers.length <= 2);
        assert.equal((await flashes(d)).length, 1, 'flashed exactly once');
        assert.equal(requests.filter((r) => r === d.capsule).length, 1, 'downloaded exactly once');
        assert.equal(await reboots(d), 1, 'rebooted exactly once');
        assert.equal(d.apt.version(), '2');
        assert.equal(await bios(d), 'B.02');
        assert.deepEqual(snapshotsOf(d), []);
        assert.equal((await record(d)).Status, 'SUCCESS');
      } finally {
        await done(d);
      }
    });
  }
});
