import { readFile } from 'node:fs/promises';
import { atLeast, type Gate } from './types.js';

export interface MemoryGateOptions {
  meminfoPath?: string;
  minMB: number;
}

export function memoryGate({ meminfoPath = '/proc/meminfo', minMB }: MemoryGateOptions): Gate {
  return {
    name: 'memory',
    async check() {
      const text = await readFile(meminfoPath, 'utf8');
      // MemAvailable, not MemFree: reclaimable page cache counts as available.
      const m = /^MemAvailable:\s+(\d+)\s*kB\s*$/m.exec(text);
      if (!m) throw new Error(`no MemAvailable line in ${meminfoPath}`);
      return atLeast('memory', Math.floor(Number(m[1]) / 1024), minMB, 'MiB', 'available');
    },
  };
}
