/**
 * SOTA (apt + btrfs snapshot + reboot) with the agent SIGKILLed at every journalled step of a
 * full update — each step of the pass before the reboot and of the verdict pass after it, at
 * before/started/ran/done, and right after the request is marked complete — then started again.
 * Each case must converge: one success in the history, inbm-demo at 2, the snapshot gone, one
 * reboot (a kill before the reboot command ran leaves it to the restart; after it ran it never
 * runs again), and apt's install of version 2 done once (dpkg's own log in the root says so).
 */
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type AptRoot, makeAptRoot, run, sotaMount } from '../drivers/apt-root.js';
import { until } from '../until.js';
import { drop, makeRoot, type Root, type Running, startAgent, stopAgent } from './harness.js';

const mnt = sotaMount();
const SUCCESS = 'SUCCESSFUL INSTALL: Overall SOTA update successful.  System has been properly updated.';
const KEY = 'OSUpdate/os-update';
const MANIFEST =
  '<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>sota</type><repo>remote</repo></header>' +
  '<type><sota><cmd logtofile="N">update</cmd><mode>full</mode></sota></type></ota></manifest>';

/** The steps of a full update with a reboot, in order (plan.ts): the change pass, then the pass that reboots. */
const BEFORE_REBOOT = ['snapshot', 'apt-update', 'apt-install', 'record-pending', 'reboot'];
/** The verdict pass in the boot after. */
const AFTER_REBOOT = ['verdict', 'commit'];
const POINTS = ['before', 'started', 'ran', 'done'];

interface Device {
  apt: AptRoot;
  root: Root;
  agent?: Running;
}

async function device(name: string, graceSeconds: number): Promise<Device> {
  const apt = await makeAptRoot(mnt!, name);
  const check = join(apt.snapshots, 'service-check.sh');
  await writeFile(check, '#!/bin/sh\nexit 0\n');
  await chmod(check, 0o755);
  const root = await makeRoot(
    `  serviceCheck: [${check}, '{service}']\nos:\n  aptPrefix: [chroot, ${apt.root}]\n` +
      `  rootSubvolume: ${apt.root}\n  snapshotDir: ${apt.snapshots}\n  rollback: ['true']\nrebootGraceSeconds: ${graceSeconds}\n`,
  );
  return { apt, root };
}

const bootIdFile = (d: Device) => join(d.root.dir, 'proc', 'sys', 'kernel', 'random', 'boot_id');
const newBoot = (d: Device) => writeFile(bootIdFile(d), `boot-${Date.now()}-${Math.random().toString(36).slice(2)}\n`);
const statusOf = async (d: Device) =>
  JSON.parse(await readFile(join(d.root.state, 'status', 'OSUpdate', 'os-update.json'), 'utf8')) as {
    phase: string;
    lastResult?: { status: number; message: string };
  };
const results = async (d: Device) =>
  (
    JSON.parse(await readFile(join(d.root.state, 'results.json'), 'utf8')) as Array<{
      kind: string;
      result: { status: number; message: string };
    }>
  )
    .filter((r) => r.kind === 'OSUpdate')
    .map((r) => `${r.result.status} ${r.result.message}`);
const reboots = async (d: Device) => (await readFile(d.root.rebootLog, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
const journalSteps = async (d: Device) =>
  (
    JSON.parse(await readFile(join(d.root.state, 'journal', 'OSUpdate-os-update.json'), 'utf8')) as {
      steps: Record<string, { state: string }>;
    }
  ).steps;
const record = async (d: Device) => JSON.parse(await readFile(join(d.root.state, 'update-status.json'), 'utf8')) as { Status: string };
const snapshotsOf = (d: Device) =>
  run(['btrfs', 'subvolume', 'list', '-o', mnt!])
    .split('\n')
    .map((l) => l.split(' path ')[1])
    .filter((p): p is string => !!p && join(mnt!, p).startsWith(`${d.apt.snapshots}/`));
/** dpkg's log in the root: each time inbm-demo 2 was unpacked, whoever ran it. */
const installsOf2 = async (d: Device) =>
  (await readFile(join(d.apt.root, 'var', 'log', 'dpkg.log'), 'utf8'))
    .split('\n')
    .filter((l) => / (install|upgrade) inbm-demo:all \S+ 2$/.test(l)).length;

const waitFor = <T>(what: string, probe: () => Promise<T | undefined>) => until(what, probe, 180_000);

async function killedAt(agent: Running, point: string): Promise<void> {
  const { signal } = await agent.exited;
  assert.equal(signal, 'SIGKILL', `the agent died at ${point}`);
}

/** The reboot the agent asked for: agent stopped, a new boot id, agent started. */
async function simulatedBoot(d: Device): Promise<void> {
  if (d.agent) await stopAgent(d.agent);
  await newBoot(d);
  d.agent = await startAgent(d.root);
}

/** After the crash and restart: boot once the reboot command has run (unless that boot already happened), then the verdict. */
async function converge(d: Device, booted: boolean): Promise<void> {
  if (!booted) {
    await waitFor('the reboot command ran', async () =>
      (await reboots(d)) >= 1 && (await journalSteps(d)).reboot?.state === 'done' ? true : undefined,
    );
    await simulatedBoot(d);
  }
  const s = await waitFor('success', async () => {
    const st = await statusOf(d);
    return st.phase === 'Ready' || st.phase === 'Failed' || st.phase === 'Stalled' ? st : undefined;
  });
  assert.equal(s.lastResult?.message, SUCCESS, JSON.stringify(s));
}

async function assertConverged(d: Device): Promise<void> {
  const history = await results(d);
  assert.equal(history.filter((r) => r === `200 ${SUCCESS}`).length, 1, `one success in ${JSON.stringify(history)}`);
  assert.deepEqual(
    history.filter((r) => !r.startsWith('200 ')),
    [],
    'no failure was ever reported',
  );
  assert.equal(await reboots(d), 1, 'one reboot, however often the agent died');
  assert.equal(d.apt.version(), '2');
  assert.equal(await installsOf2(d), 1, 'inbm-demo 2 installed once');
  assert.deepEqual(snapshotsOf(d), [], 'committed: snapshot deleted');
  assert.equal((await record(d)).Status, 'SUCCESS');
}

async function done(d: Device) {
  if (d.agent && d.agent.proc.exitCode === null && d.agent.proc.signalCode === null) await stopAgent(d.agent);
  d.apt.remove();
}

const cases = [
  ...BEFORE_REBOOT.flatMap((s) => POINTS.map((p) => `${s}:${p}`)),
  ...AFTER_REBOOT.flatMap((s) => POINTS.map((p) => `${s}:${p}`)),
  'complete',
];

describe('OS update: SIGKILL at every journalled step converges', { concurrency: 3 }, () => {
  for (const point of cases) {
    it(`killed at ${point}`, async (t) => {
      if (!mnt) return t.skip('needs root and the cached Debian root');
      // Killed with the reboot step marked started but not run: the restart, in the same boot,
      // cannot tell whether the command is under way, so it waits out the grace before issuing it again.
      const grace = point === 'reboot:started' ? 8 : 120;
      const d = await device(`sota-crash-${point.replace(':', '-')}`, grace);
      try {
        await d.apt.publish('2');
        const env = { INBM_CRASH_AT: `${KEY}:${point}` };
        const afterBoot = AFTER_REBOOT.some((s) => point.startsWith(`${s}:`)) || point === 'complete';
        if (afterBoot) {
          d.agent = await startAgent(d.root);
          await drop(d.root, 'sota.xml', MANIFEST);
          await waitFor('the reboot command ran', async () =>
            (await reboots(d)) === 1 && (await journalSteps(d)).reboot?.state === 'done' ? true : undefined,
          );
          await stopAgent(d.agent);
          await newBoot(d);
          d.agent = await startAgent(d.root, env, { ready: false });
        } else {
          d.agent = await startAgent(d.root, env);
          await drop(d.root, 'sota.xml', MANIFEST);
        }
        await killedAt(d.agent, point);
        // The reboot command changes the boot id as a real reboot would: the restart is then the boot after it.
        const booted = afterBoot || (await reboots(d)) === 1;
        if (point === 'reboot:ran' || point === 'reboot:done') assert.ok(booted, 'the reboot command ran before the kill');
        const step = BEFORE_REBOOT.indexOf(point.split(':')[0]!);
        if (!afterBoot && (step < BEFORE_REBOOT.indexOf('reboot') || point === 'reboot:before'))
          assert.equal(await reboots(d), 0, 'killed before the reboot step: no reboot yet');
        d.agent = await startAgent(d.root);
        await converge(d, booted);
        await assertConverged(d);
      } finally {
        await done(d);
      }
    });
  }

  it('power loss right after apt-install ran (killed, and the machine boots again): no reinstall, one reboot, success', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = await device('sota-crash-powerloss', 120);
    try {
      await d.apt.publish('2');
      d.agent = await startAgent(d.root, { INBM_CRASH_AT: `${KEY}:apt-install:ran` });
      await drop(d.root, 'sota.xml', MANIFEST);
      await killedAt(d.agent, 'apt-install:ran');
      assert.equal(await installsOf2(d), 1);
      await newBoot(d);
      d.agent = await startAgent(d.root);
      await converge(d, false);
      await assertConverged(d);
    } finally {
      await done(d);
    }
  });
});
