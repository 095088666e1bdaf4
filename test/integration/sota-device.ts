/**
 * A device for the SOTA tests: a writable Debian root with inbm-demo 1 (apt-root.ts), an agent
 * root whose service check fails the services listed in `failing`, and a rollback command that
 * stages a snapshot for the next (simulated) boot, as a bootloader would boot it. For POTA,
 * `addFirmware` adds a fake DMI tree and a flash tool that logs its runs.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
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
  /** One line per command the agent ran in the root (its apt prefix logs each, then runs it). */
  aptRuns: string;
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
  const aptRuns = join(apt.snapshots, 'apt-runs.log');
  const aptLogged = join(apt.snapshots, 'apt-logged.sh');
  await writeFile(aptLogged, `#!/bin/sh\necho "$*" >> ${aptRuns}\nexec "$@"\n`);
  await chmod(aptLogged, 0o755);
  const snap =
    o.snapshots === false ? '' : `  rootSubvolume: ${apt.root}\n  snapshotDir: ${apt.snapshots}\n  rollback: [${bootFrom}, '{snapshot}']\n`;
  const root = await makeRoot(
    `  serviceCheck: [${check}, '{service}']\nos:\n  aptPrefix: [${aptLogged}, chroot, ${apt.root}]\n${snap}rebootGraceSeconds: ${o.graceSeconds ?? 120}\n${o.extra ?? ''}`,
  );
  return { apt, root, failing, nextBoot, rollbacks, aptRuns };
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

const lines = async (path: string) => (await readFile(path, 'utf8').catch(() => '')).split('\n').filter(Boolean);
/** Runs of the rollback command (each stages a snapshot for the next boot). */
export const rollbacksOf = async (d: Device) => (await lines(d.rollbacks)).length;
/** dpkg's own log in the root: each time inbm-demo `version` was unpacked, whoever ran it. */
export const installsOf = async (d: Device, version: string) =>
  (await lines(join(d.apt.root, 'var', 'log', 'dpkg.log'))).filter(
    (l) => / (install|upgrade) inbm-demo:all \S+ (\S+)$/.exec(l)?.[2] === version,
  ).length;
/** Runs of apt-get's change (the upgrade or install itself, not the `-f install` repair before it). */
export const aptChangesOf = async (d: Device) =>
  (await lines(d.aptRuns)).filter((l) => / apt-get /.test(l) && !/ -f install$/.test(l) && / (upgrade|install)( |$)/.test(l)).length;
/** The journal's steps for `key` (`<Kind>/<name>`), in the order they first ran, with the boot each ran in. */
export const journalSteps = async (d: Device, key: string) =>
  (
    JSON.parse(await readFile(join(d.root.state, 'journal', `${key.replace('/', '-')}.json`), 'utf8')) as {
      steps: Record<string, { state: 'started' | 'done'; bootId: string }>;
    }
  ).steps;

/** The FOTA side of a device: a DMI tree the flash tool rewrites, and the tool's log. */
export interface Firmware {
  dmi: string;
  /** One line per run of the flash tool: its arguments. */
  toolLog: string;
}

/**
 * A fake DMI tree (Acme BIOS A.01), a bash "flash tool" that logs each run and copies line 1
 * (version) and line 2 (date) of the capsule it is given into that tree (unless
 * <root>/fwtool.nochange exists), and firmware_tool_info.conf naming it for the product.
 */
export async function addFirmware(d: Device): Promise<Firmware> {
  const { root } = d;
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
  return { dmi, toolLog };
}

/** Runs of the flash tool that flashed (not the --check ones). */
export const flashesOf = async (f: Firmware) => (await lines(f.toolLog)).filter((l) => l.startsWith('--apply')).length;
export const biosOf = async (f: Firmware) => (await readFile(join(f.dmi, 'bios_version'), 'utf8')).trim();
