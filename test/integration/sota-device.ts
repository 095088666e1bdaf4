/**
 * A device for the SOTA tests: a writable Debian root with inbm-demo 1 (apt-root.ts), an agent
 * root whose service check fails the services listed in `failing`, and a rollback command that
 * stages a snapshot for the next (simulated) boot, as a bootloader would boot it.
 */
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type AptRoot, makeAptRoot, run, sotaMount } from '../drivers/apt-root.js';
import { until } from '../until.js';
import { makeRoot, type Root, type Running, startAgent, stopAgent } from './harness.js';

export interface Device {
  apt: AptRoot;
  root: Root;
  /** Services named here fail the service check. */
  failing: string;
  /** Where the rollback command stages the snapshot the next boot starts from. */
  nextBoot: string;
  /** One line per run of the rollback command. */
  rollbacks: string;
  agent?: Running;
}

export async function device(name: string, o: { snapshots?: boolean; extra?: string; graceSeconds?: number } = {}): Promise<Device> {
  const apt = await makeAptRoot(sotaMount()!, name);
  const failing = join(apt.snapshots, 'failing-services');
  const nextBoot = join(apt.snapshots, 'next-boot');
  const check = join(apt.snapshots, 'service-check.sh');
  await writeFile(check, `#!/bin/sh\ntouch ${failing}\n! grep -qx "$1" ${failing}\n`);
  await chmod(check, 0o755);
  const bootFrom = join(apt.snapshots, 'boot-from.sh');
  const rollbacks = join(apt.snapshots, 'rollbacks.log');
  await writeFile(bootFrom, `#!/bin/sh\necho "$1" > ${nextBoot}\necho "$1" >> ${rollbacks}\n`);
  await chmod(bootFrom, 0o755);
  const snap =
    o.snapshots === false ? '' : `  rootSubvolume: ${apt.root}\n  snapshotDir: ${apt.snapshots}\n  rollback: [${bootFrom}, '{snapshot}']\n`;
  const root = await makeRoot(
    `  serviceCheck: [${check}, '{service}']\nos:\n  aptPrefix: [chroot, ${apt.root}]\n${snap}rebootGraceSeconds: ${o.graceSeconds ?? 120}\n${o.extra ?? ''}`,
  );
  return { apt, root, failing, nextBoot, rollbacks };
}

export const statusOf = async (d: Device) =>
  JSON.parse(await readFile(join(d.root.state, 'status', 'OSUpdate', 'os-update.json'), 'utf8')) as {
    phase: string;
    lastResult?: { status: number; message: string };
  };
export const results = async (d: Device) =>
  (
    JSON.parse(await readFile(join(d.root.state, 'results.json'), 'utf8')) as Array<{
      kind: string;
      result: { status: number; message: string };
    }>
  )
    .filter((r) => r.kind === 'OSUpdate')
    .map((r) => `${r.result.status} ${r.result.message}`);
export const reboots = async (d: Device) => (await readFile(d.root.rebootLog, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
export const record = async (d: Device) =>
  JSON.parse(await readFile(join(d.root.state, 'update-status.json'), 'utf8')) as { Status: string; Error: string };
export const snapshotsOf = (d: Device) =>
  run(['btrfs', 'subvolume', 'list', '-o', sotaMount()!])
    .split('\n')
    .map((l) => l.split(' path ')[1])
    .filter((p): p is string => !!p && join(sotaMount()!, p).startsWith(`${d.apt.snapshots}/`));

export const waitFor = <T>(what: string, probe: () => Promise<T | undefined>) => until(what, probe, 120_000);
export const phase = (d: Device, want: string, message?: RegExp) =>
  waitFor(`${want}${message ? ` ${message}` : ''}`, async () => {
    const s = await statusOf(d);
    return s.phase === want && (!message || message.test(s.lastResult?.message ?? '')) ? s : undefined;
  });

/** Agent down, the bootloader starts the staged snapshot if there is one, new boot id, agent up. */
export async function reboot(d: Device, kill = false, env: Record<string, string> = {}): Promise<void> {
  if (d.agent) {
    if (kill) {
      d.agent.proc.kill('SIGKILL');
      await d.agent.exited;
    } else await stopAgent(d.agent);
  }
  const staged = await readFile(d.nextBoot, 'utf8').catch(() => undefined);
  if (staged) {
    run(['btrfs', 'subvolume', 'delete', d.apt.root]);
    run(['btrfs', 'subvolume', 'snapshot', staged.trim(), d.apt.root]);
    await rm(d.nextBoot);
  }
  await writeFile(join(d.root.dir, 'proc', 'sys', 'kernel', 'random', 'boot_id'), `boot-${Date.now()}\n`);
  // An agent set to die at a crash point may never log ready.
  d.agent = await startAgent(d.root, env, { ready: !env.INBM_CRASH_AT });
}

export async function done(d: Device) {
  if (d.agent) await stopAgent(d.agent);
  d.apt.remove();
}
