/**
 * The device inventory that `query` answers: firmware (DMI from sysfs, root settable), OS,
 * hardware basics, the agent's version and its configuration. Read from files, no subprocesses.
 */

import { readFile } from 'node:fs/promises';
import { arch, cpus, hostname, release } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic.js';
import { readJson } from './files.js';

export interface Inventory {
  firmware: { biosVendor: string; biosVersion: string; biosReleaseDate: string; systemManufacturer: string; systemProductName: string };
  os: { name: string; version: string; kernel: string; arch: string; hostname: string };
  hardware: { cpuId: string; cores: number; totalPhysicalMemory: number };
  agent: { version: string };
}

/** The reference's placeholders for "not filled in" read as empty. */
const PLACEHOLDERS = new Set(['To be filled by O.E.M.', 'Default string', 'Not Specified', 'System Product Name', 'System manufacturer']);

async function text(path: string): Promise<string> {
  const v = (await readFile(path, 'utf8').catch(() => '')).trim();
  return PLACEHOLDERS.has(v) ? '' : v;
}

export async function collectInventory(paths: { dmiDir: string; meminfo: string; osRelease: string }, version: string): Promise<Inventory> {
  const dmi = (f: string) => text(join(paths.dmiDir, f));
  const osRelease = Object.fromEntries(
    (await readFile(paths.osRelease, 'utf8').catch(() => ''))
      .split('\n')
      .map((l) => /^([A-Z_]+)="?(.*?)"?$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(await readFile(paths.meminfo, 'utf8').catch(() => ''))?.[1] ?? 0);
  return {
    firmware: {
      biosVendor: await dmi('bios_vendor'),
      biosVersion: await dmi('bios_version'),
      biosReleaseDate: await dmi('bios_date'),
      systemManufacturer: await dmi('sys_vendor'),
      systemProductName: await dmi('product_name'),
    },
    os: { name: osRelease.NAME ?? '', version: osRelease.VERSION_ID ?? '', kernel: release(), arch: arch(), hostname: hostname() },
    hardware: { cpuId: cpus()[0]?.model ?? '', cores: cpus().length, totalPhysicalMemory: memKb * 1024 },
    agent: { version },
  };
}

/** Writes inventory.json only when it changed, so resyncs cost one read. */
export async function writeInventory(stateDir: string, inventory: Inventory): Promise<void> {
  const path = join(stateDir, 'inventory.json');
  const previous = await readJson<Inventory>(path).catch(() => undefined);
  if (JSON.stringify(previous) === JSON.stringify(inventory)) return;
  await writeFileAtomic(path, `${JSON.stringify(inventory, null, 2)}\n`);
}
