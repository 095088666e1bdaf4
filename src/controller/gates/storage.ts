import { statfs } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { atLeast, type Gate, MIB } from './types.js';

export interface StorageGateOptions {
  /** The download cache; downloads land here, so its filesystem is the one that must have room. */
  dir: string;
  minMB: number;
}

export function storageGate({ dir, minMB }: StorageGateOptions): Gate {
  return {
    name: 'storage',
    async check() {
      const s = await statfsNearest(dir);
      return atLeast('storage', Math.floor((s.bavail * s.bsize) / MIB), minMB, 'MiB', 'free');
    },
  };
}

/** A cache dir not created yet will be created on its nearest existing ancestor's filesystem. */
async function statfsNearest(dir: string) {
  let d = resolve(dir);
  for (;;) {
    try {
      return await statfs(d);
    } catch (err) {
      const parent = dirname(d);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === d) throw err;
      d = parent;
    }
  }
}
