import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Gate } from './types.js';

export interface BatteryGateOptions {
  /** `<sysfs>/class/power_supply` */
  powerSupplyDir?: string;
  minPercent: number;
}

interface Battery {
  name: string;
  capacity: number | undefined;
  status: string;
}

export function batteryGate({ powerSupplyDir = '/sys/class/power_supply', minPercent }: BatteryGateOptions): Gate {
  return {
    name: 'battery',
    async check() {
      const batteries = await readBatteries(powerSupplyDir);
      const base = { gate: 'battery', threshold: minPercent, unit: '%' };
      if (batteries.length === 0) return { ...base, ok: true, measured: null, message: 'no battery (mains powered)' };
      const discharging = batteries.filter((b) => b.status === 'Discharging');
      for (const b of discharging) {
        // Without a capacity we cannot tell a full battery from an empty one.
        if (b.capacity === undefined) throw new Error(`${b.name} is discharging but reports no capacity`);
      }
      const low = discharging.filter((b) => b.capacity! < minPercent);
      const lowest = (list: Battery[]) => list.reduce((a, b) => ((b.capacity ?? 101) < (a.capacity ?? 101) ? b : a));
      if (low.length > 0) {
        const b = lowest(low);
        return { ...base, ok: false, measured: b.capacity!, message: `${b.name} discharging at ${b.capacity}% < ${minPercent}% required` };
      }
      if (discharging.length > 0) {
        const b = lowest(discharging);
        return { ...base, ok: true, measured: b.capacity!, message: `${b.name} discharging at ${b.capacity}% >= ${minPercent}% required` };
      }
      const b = lowest(batteries);
      return { ...base, ok: true, measured: b.capacity ?? null, message: `${b.name} ${b.status} (not on battery power)` };
    },
  };
}

async function readBatteries(dir: string): Promise<Battery[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    // Containers and some VMs have no power_supply class at all: that is "no battery".
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: Battery[] = [];
  for (const name of names.sort()) {
    const read = (f: string) =>
      readFile(join(dir, name, f), 'utf8').then(
        (s) => s.trim(),
        () => undefined,
      );
    if ((await read('type')) !== 'Battery') continue;
    const raw = await read('capacity');
    const capacity = raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : undefined;
    out.push({ name, capacity, status: (await read('status')) ?? 'Unknown' });
  }
  return out;
}
