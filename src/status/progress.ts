/**
 * Download progress of the step running now, one small file per resource under
 * `<state>/status/progress/`, so `inbm apply --wait` (or anyone) can draw a bar without talking
 * to the agent. Throttled: a transfer of any size costs at most a few writes a second.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readJson } from './files.js';

export interface ProgressRecord {
  key: string;
  step: string;
  bytes: number;
  total?: number;
  /** bytes per second since the transfer started */
  rate: number;
  updatedAt: string;
}

export type ProgressUpdate = Pick<ProgressRecord, 'bytes' | 'total' | 'rate'>;

const EVERY_MS = 250;

export const progressPath = (stateDir: string, key: string) =>
  join(stateDir, 'status', 'progress', `${key.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);

export const readProgress = (stateDir: string, key: string) => readJson<ProgressRecord>(progressPath(stateDir, key));

export class ProgressWriter {
  private readonly last = new Map<string, number>();
  /** One write in flight per resource; a newer update replaces a queued one, so writes never pile up. */
  private readonly writing = new Map<string, Promise<void>>();
  private readonly queued = new Map<string, ProgressRecord>();

  constructor(private readonly stateDir: string) {}

  report(key: string, step: string, p: ProgressUpdate): void {
    const now = Date.now();
    const finished = p.total !== undefined && p.bytes >= p.total;
    if (!finished && now - (this.last.get(key) ?? 0) < EVERY_MS) return;
    this.last.set(key, now);
    this.queued.set(key, { key, step, ...p, updatedAt: new Date(now).toISOString() });
    if (!this.writing.has(key)) this.writing.set(key, this.drain(key));
  }

  /** At start: a transfer that was running when the agent stopped is not running now. */
  async reset(): Promise<void> {
    await rm(join(this.stateDir, 'status', 'progress'), { recursive: true, force: true });
  }

  /** Once the step is over its progress file goes, so a bar never shows a finished transfer as running. */
  async clear(key: string): Promise<void> {
    this.queued.delete(key);
    await this.writing.get(key);
    this.last.delete(key);
    await rm(progressPath(this.stateDir, key), { force: true });
  }

  /** Renamed into place so a reader never sees half a record; not fsynced: it is worthless after a crash. */
  private async write(path: string, text: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, path);
  }

  private async drain(key: string): Promise<void> {
    try {
      for (let r = this.queued.get(key); r; r = this.queued.get(key)) {
        this.queued.delete(key);
        // Progress is advisory: a failed write must never fail the download it describes.
        await this.write(progressPath(this.stateDir, key), `${JSON.stringify(r)}\n`).catch(() => {});
      }
    } finally {
      this.writing.delete(key);
    }
  }
}
