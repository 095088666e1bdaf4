/**
 * POTA end to end: the FOTA machinery (a fake DMI tree, a bash "flash tool" that rewrites the
 * BIOS version and date there, firmware_tool_info.conf, the capsule on 127.0.0.1) and the SOTA
 * machinery (a real Debian root on btrfs, apt in it through chroot, inbm-demo 1 → 2, snapshots)
 * in one root (sota-device.ts). Both halves checked before either starts; one reboot; verdicts
 * after the boot. Then a SIGKILL, and a power loss, at every journalled step (before/started/ran/
 * done, and the complete mark) of the success path and of the OS-rollback path: each run ends as
 * the uncut run of its path ended — the same answer and record, the same reboots, the firmware
 * tool flashed once, the capsule fetched once, apt's change run once.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sotaMount } from '../drivers/apt-root.js';
import { drop, type Running, serveFiles, startAgent, trustRepository } from './harness.js';
import {
  addFirmware,
  aptChangesOf,
  biosOf,
  type Device,
  device,
  done,
  type Firmware,
  flashesOf,
  installsOf,
  journalSteps,
  reboot,
  reboots,
  rollbacksOf,
  snapshotsOf,
  waitFor,
} from './sota-device.js';

const mnt = sotaMount();
const FOTA_OK = 'SUCCESSFUL INSTALL: Overall FOTA update successful. System has been updated with new Firmware version...';
const SOTA_OK = 'SUCCESSFUL INSTALL: Overall SOTA update successful.  System has been properly updated.';
const POTA_OK = `${FOTA_OK} ${SOTA_OK}`;

const requests: string[] = [];
/** URL path → file; each device gets its own path, so concurrent tests count only their own downloads. */
const files = new Map<string, string>();
// Served from the start: the uncut runs below go before the tests are declared.
const filesDir = await mkdtemp(join(tmpdir(), 'inbm-pota-files-'));
// Line 1 the version, line 2 the date the flash leaves in the DMI tree.
await writeFile(join(filesDir, 'bios-b02.bin'), 'B.02\n06/15/2026\n');
const { server, base }: { server: Server; base: string } = await serveFiles(files);
server.on('request', (req) => requests.push(req.url ?? ''));

interface PotaDevice extends Device, Firmware {
  /** This device's capsule path on the server. */
  capsule: string;
  /** The most dpkg's log ever showed inbm-demo 2 installed (read before each boot, which may start a snapshot). */
  installs: number;
}

async function potaDevice(name: string, o: { snapshots?: boolean; graceSeconds?: number } = {}): Promise<PotaDevice> {
  const d = await device(name, o);
  const fw = await addFirmware(d);
  const capsule = `/fw/${name}/bios-b02.bin`;
  files.set(capsule, join(filesDir, 'bios-b02.bin'));
  return Object.assign(d, fw, { capsule, installs: 0 });
}

/** The shape of pota-integration-remote.xml, the capsule on the loopback server, apt for the OS part. */
const pota = (d: PotaDevice, o: { vendor?: string } = {}) =>
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
const record = async (d: Device) =>
  JSON.parse(await readFile(join(d.root.state, 'update-status.json'), 'utf8')) as { Status: string; Type: string; Error: string };
const cached = async (d: Device) =>
  (await readdir(join(d.root.dir, 'var', 'cache', 'manageability')).catch(() => [] as string[])).filter((n) => n !== 'repository-tool');
const phase = (d: Device, want: string) =>
  waitFor(want, async () => {
    const s = await statusOf(d);
    return s.phase === want ? s : undefined;
  });
const alive = (a: Running | undefined) => !!a && a.proc.exitCode === null && a.proc.signalCode === null;

/** The machine goes down (the agent with it), the bootloader starts the staged snapshot if any, new boot id, agent up. */
async function powerCycle(d: PotaDevice, env: Record<string, string> = {}): Promise<void> {
  d.installs = Math.max(d.installs, await installsOf(d, '2'));
  await reboot(d, true, env);
}

async function finish(d: PotaDevice) {
  if (process.env.POTA_DEBUG) console.error(d.agent?.output().slice(-6000));
  await done(d);
}

// SIGKILL (or power loss) at every journalled step. The step ids come from the planner as an
// uncut run executes them: its journal lists every step it ran, in order, with the boot each
// ran in. Each killed run must end as its uncut run ended.
const KEY = 'PlatformUpdate/platform-update';
const STAGES = ['before', 'started', 'ran', 'done'];
type Path = 'success' | 'rollback';

/**
 * The reboot command's step done, and after a rollback reboot (which the run answers at once) the
 * answer too. Other steps may stay started: a kill after a flash or an install ran leaves its mark,
 * and the restart, seeing the change on record, does not plan it again.
 */
async function settled(d: PotaDevice): Promise<boolean> {
  const file = JSON.parse(await readFile(join(d.root.state, 'journal', `${KEY.replace('/', '-')}.json`), 'utf8')) as {
    runId?: string;
    steps: Record<string, { state: string }>;
    completed?: Array<{ requestId: string }>;
  };
  if (['reboot', 'revert-reboot'].some((id) => file.steps[id] && file.steps[id].state !== 'done')) return false;
  return !file.steps['revert-reboot'] || !!file.completed?.some((c) => c.requestId === file.runId);
}

/**
 * Runs the request to its answer, powering through every reboot the agent asks for (the boot
 * after the update fails docker on the rollback path). With `crash`, the agent of boot
 * `crash.boot` is set to die at `crash.point`; once it has, the agent is started again in the
 * same boot, or in the next when its reboot command had already run, or when the power was lost
 * (`crash.power`: the machine boots, the staged snapshot if there is one).
 */
async function drive(d: PotaDevice, path: Path, crash?: Crash): Promise<void> {
  const env = (boot: number): Record<string, string> =>
    crash && !killed && boot === crash.boot ? { INBM_CRASH_AT: `${KEY}:${crash.point}` } : {};
  let killed = false;
  let cycled = 0;
  const boot = async () => {
    if (path === 'rollback' && cycled === 0) await writeFile(d.failing, 'docker\n');
    cycled = await reboots(d);
    await powerCycle(d, env(cycled));
  };
  d.agent = await startAgent(d.root, env(0));
  await trustRepository(d.root, `${base}/fw`);
  await drop(d.root, 'pota.xml', pota(d));
  for (let i = 0; i < 8; i++) {
    const next = await waitFor('the answer, a reboot or the kill', async () => {
      if (!alive(d.agent)) return 'killed';
      // The agent set to die in this boot dies in it: the kill may follow the reboot command.
      if (crash && !killed && crash.boot === cycled) return undefined;
      if ((await reboots(d)) > cycled) return (await settled(d)) ? 'reboot' : undefined;
      const s = await statusOf(d).catch(() => undefined);
      // The last history line: a pass that only finds the request completed records no new result.
      if (!(s && s.phase !== 'Waiting' && /INSTALL/.test(s.history.at(-1)?.message ?? ''))) return undefined;
      // A rollback staged and its reboot command still on its way (a loaded machine): that boot first.
      return (await readFile(d.nextBoot, 'utf8').catch(() => undefined)) === undefined ? 'answer' : undefined;
    });
    if (next === 'answer') {
      assert.ok(!crash || killed, 'the crash hook fired');
      return;
    }
    if (next === 'killed') {
      assert.ok(crash && !killed, `only the crash point kills the agent: ${d.agent?.output().slice(-3000)}`);
      assert.equal((await d.agent!.exited).signal, 'SIGKILL', `the agent died at ${crash.point}`);
      killed = true;
      if (crash.power || (await reboots(d)) > cycled) await boot();
      else d.agent = await startAgent(d.root);
    } else await boot();
  }
  assert.fail('no answer after 8 turns');
}

/** The record with what differs between runs (the time, the request id, this device's capsule URL) replaced. */
async function recordOf(d: PotaDevice) {
  const r = JSON.parse(await readFile(join(d.root.state, 'update-status.json'), 'utf8')) as Record<string, string>;
  assert.deepEqual(Object.keys(r), ['Status', 'Type', 'Time', 'Metadata', 'Error', 'Version']);
  assert.match(r.Time!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  const m = JSON.parse(r.Metadata!) as { requestId: string; firmware: { source: { url: string } } };
  assert.equal(m.firmware.source.url, `${base}${d.capsule}`);
  const metadata = { ...m, requestId: '<id>', firmware: { ...m.firmware, source: { ...m.firmware.source, url: '<capsule>' } } };
  return { ...r, Time: '<time>', Metadata: JSON.stringify(metadata) };
}

/** What a run leaves that an uncut run and a killed one must agree on. */
async function outcomeOf(d: PotaDevice) {
  const s = await statusOf(d);
  const answers = await results(d);
  return {
    phase: s.phase,
    answer: `${s.lastResult?.status} ${s.lastResult?.message}`,
    // The interim answer is lost when the agent dies in the pass that reboots (as for FOTA and SOTA).
    answers: answers.filter((r) => r !== '200 COMMAND SUCCESSFUL'),
    interim: answers.length - answers.filter((r) => r !== '200 COMMAND SUCCESSFUL').length <= 1,
    reboots: await reboots(d),
    flashes: await flashesOf(d),
    downloads: requests.filter((r) => r === d.capsule).length,
    installs: Math.max(d.installs, await installsOf(d, '2')),
    aptChanges: await aptChangesOf(d),
    version: d.apt.version(),
    bios: await biosOf(d),
    snapshots: snapshotsOf(d).length,
    rollbacks: await rollbacksOf(d),
    record: await recordOf(d),
  };
}

interface Baseline {
  outcome: Awaited<ReturnType<typeof outcomeOf>>;
  /** The steps the uncut run journalled, grouped by the boot they ran in. */
  boots: string[][];
}

async function uncut(path: Path): Promise<Baseline> {
  const d = await potaDevice(`pota-uncut-${path}`);
  try {
    await d.apt.publish('2');
    await drive(d, path);
    const boots = new Map<string, string[]>();
    for (const [id, step] of Object.entries(await journalSteps(d, KEY))) boots.set(step.bootId, [...(boots.get(step.bootId) ?? []), id]);
    return { outcome: await outcomeOf(d), boots: [...boots.values()] };
  } finally {
    await finish(d);
  }
}

// Made before the tests are declared: the crash points are named by the uncut runs.
const baselines = mnt
  ? await Promise.all([uncut('success'), uncut('rollback')]).then(([success, rollback]) => ({ success, rollback }))
  : undefined;
// Registered only now: node:test runs what is declared while the module still awaits.
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(filesDir, { recursive: true, force: true });
});

describe('POTA: firmware then OS, one reboot', { concurrency: 2 }, () => {
  it('both eligible: flashed, upgraded, one reboot, both verdicts good → 200, snapshot deleted', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await potaDevice('pota-ok');
    try {
      await d.apt.publish('2');
      d.agent = await startAgent(d.root);
      await trustRepository(d.root, `${base}/fw`);
      await drop(d.root, 'pota.xml', pota(d));
      await waitFor('reboot', async () => ((await reboots(d)) === 1 ? true : undefined));
      assert.equal(d.apt.version(), '2', 'the OS part ran before the reboot');
      assert.equal(await biosOf(d), 'B.02', 'the flash ran before the reboot');
      assert.equal(await flashesOf(d), 1);
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
      assert.equal(await flashesOf(d), 1);
    } finally {
      await finish(d);
    }
  });

  it('firmware ineligible: 400 with the reason, nothing downloaded, no snapshot, the package untouched', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await potaDevice('pota-inelig');
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
      assert.equal(await flashesOf(d), 0);
      assert.equal(await reboots(d), 0);
      assert.equal(await biosOf(d), 'A.01');
    } finally {
      await finish(d);
    }
  });

  it('OS precondition failing (no snapshot, proceedWithoutRollback=false): 400, the firmware not touched', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await potaDevice('pota-nosnap', { snapshots: false });
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
      assert.equal(await flashesOf(d), 0);
      assert.equal(d.apt.version(), '1');
      assert.equal(await reboots(d), 0);
    } finally {
      await finish(d);
    }
  });

  it('firmware not updated after the boot: 400 with the FOTA text; the OS, healthy, is kept and committed', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await potaDevice('pota-fwfail');
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
      assert.equal(await biosOf(d), 'A.01');
      assert.equal(d.apt.version(), '2');
      assert.deepEqual(snapshotsOf(d), [], 'the OS part passed its own check: committed');
      assert.equal(await reboots(d), 1);
      assert.equal((await record(d)).Status, 'FAIL');
    } finally {
      await finish(d);
    }
  });

  it('the OS unhealthy after the boot: rolled back and rebooted into the snapshot, 400; the firmware stays', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await potaDevice('pota-revert');
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
      assert.equal(await biosOf(d), 'B.02');
    } finally {
      await finish(d);
    }
  });
});

describe('POTA: the uncut runs the crash cases compare with', () => {
  it('success: firmware then OS, one reboot, committed; every state as the first test above checks it', (t) => {
    if (!baselines) return t.skip('needs root and the cached Debian root');
    const { outcome, boots } = baselines.success;
    assert.deepEqual(boots, [
      ['bios', 'flash', 'snapshot', 'apt-update', 'apt-install', 'record-pending', 'reboot'],
      ['firmware-verdict', 'os-verdict', 'commit', 'record'],
    ]);
    assert.equal(outcome.phase, 'Ready');
    assert.equal(outcome.answer, `200 ${POTA_OK}`);
    assert.deepEqual(outcome.answers, [`200 ${POTA_OK}`]);
    assert.deepEqual(
      { ...outcome, record: { ...outcome.record, Metadata: '' } },
      {
        ...outcome,
        reboots: 1,
        flashes: 1,
        downloads: 1,
        installs: 1,
        aptChanges: 1,
        version: '2',
        bios: 'B.02',
        snapshots: 0,
        rollbacks: 0,
        interim: true,
        record: { Status: 'SUCCESS', Type: 'pota', Time: '<time>', Metadata: '', Error: '', Version: 'v1' },
      },
    );
  });

  it('rollback: the OS unhealthy after the boot, rolled back into the snapshot, 400, the firmware kept', (t) => {
    if (!baselines) return t.skip('needs root and the cached Debian root');
    const { outcome, boots } = baselines.rollback;
    assert.deepEqual(boots, [
      ['bios', 'flash', 'snapshot', 'apt-update', 'apt-install', 'record-pending', 'reboot'],
      ['firmware-verdict', 'os-verdict', 'revert', 'record', 'revert-reboot'],
    ]);
    assert.equal(outcome.phase, 'Failed');
    assert.match(outcome.answer, /^400 FAILED INSTALL: System has not been properly updated; reverting\. services: inactive: docker/);
    assert.deepEqual(outcome.answers, [outcome.answer]);
    assert.deepEqual(
      { ...outcome, record: { ...outcome.record, Metadata: '' } },
      {
        ...outcome,
        reboots: 2,
        flashes: 1,
        downloads: 1,
        installs: 1,
        aptChanges: 1,
        version: '1',
        bios: 'B.02',
        rollbacks: 1,
        interim: true,
        record: { Status: 'FAIL', Type: 'pota', Time: '<time>', Metadata: '', Error: outcome.answer.slice(4), Version: 'v1' },
      },
    );
  });
});

interface Crash {
  point: string;
  /** The boot the point is reached in: 0 before the update's reboot. */
  boot: number;
  power?: boolean;
}

const cases = (path: Path): Crash[] => {
  if (!baselines) return [];
  const { boots } = baselines[path];
  // The rollback path's first boot is the success path's: only what differs is killed again.
  const from = path === 'rollback' ? 1 : 0;
  return [
    ...boots.flatMap((steps, boot) => (boot < from ? [] : steps.flatMap((s) => STAGES.map((p) => ({ point: `${s}:${p}`, boot }))))),
    { point: 'complete', boot: boots.length - 1 },
  ];
};

for (const path of ['success', 'rollback'] as const)
  for (const power of [false, true]) {
    const how = power ? 'power lost' : 'killed';
    describe(`POTA ${path} path: ${how} at every journalled step, it converges to the uncut run`, { concurrency: 3 }, () => {
      for (const { point, boot } of cases(path)) {
        it(`${how} at ${point}`, async () => {
          const uncutRun = baselines![path].outcome;
          // A reboot marked started and not run: after a kill the restart, in the same boot, cannot
          // tell whether the command is under way, so it waits out the grace before issuing it again;
          // after a power loss the boot it asked for has happened, and the command is not run at all.
          const unissued = point.endsWith('reboot:started');
          const expected = power && unissued ? { ...uncutRun, reboots: uncutRun.reboots - 1 } : uncutRun;
          const d = await potaDevice(`pota-${path}-${power ? 'power' : 'kill'}-${point.replace(':', '-')}`, {
            graceSeconds: unissued && !power ? 6 : 120,
          });
          try {
            await d.apt.publish('2');
            await drive(d, path, { point, boot, power });
            const got = await outcomeOf(d);
            // Cut after the rollback command ran and before its done mark, it runs again: it only
            // stages the same snapshot for the next boot, so twice is harmless.
            if (point === 'revert:ran') assert.equal(got.rollbacks, 2, 'the rollback command ran again');
            assert.deepEqual(
              point === 'revert:ran' ? { ...got, rollbacks: expected.rollbacks } : got,
              expected,
              'the same end as the uncut run: answer, reboots, one flash, one download, one install, record',
            );
          } finally {
            await finish(d);
          }
        });
      }
    });
  }
