/**
 * Each step of an operation is recorded (fsync) before it runs and after it completes, so a
 * restart or reboot resumes or rolls back and never repeats a completed side effect.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic.js';
import { readJson } from '../status/files.js';

export interface JournalRecord {
  key: string;
  requestId?: string;
  bootId: string;
  steps: Record<string, { state: 'started' | 'done'; at: string; bootId: string; data?: Record<string, unknown> }>;
  /** One-shot requests already finished, newest last, with their result. */
  completed?: Array<{ requestId: string; status: number; message: string; at: string }>;
}

export type CrashHook = (step: string) => void;

export class Journal {
  constructor(
    private readonly dir: string,
    readonly bootId: string,
    private readonly crashHook: CrashHook = () => {},
  ) {}

  private path(key: string) {
    return join(this.dir, `${key.replace('/', '-')}.json`);
  }

  async read(key: string): Promise<JournalRecord | undefined> {
    return readJson<JournalRecord>(this.path(key));
  }

  async write(record: JournalRecord): Promise<void> {
    await writeFileAtomic(this.path(record.key), `${JSON.stringify(record, null, 2)}\n`);
  }

  /**
   * Runs `fn` as step `step` of `key` unless the journal says it is done. The started mark is
   * durable before `fn` begins; `done` is durable before this returns.
   */
  async step<T>(
    key: string,
    requestId: string | undefined,
    step: string,
    fn: () => Promise<T>,
    data?: Record<string, unknown>,
  ): Promise<T | undefined> {
    const record = (await this.read(key)) ?? { key, bootId: this.bootId, steps: {} };
    if (record.requestId !== requestId) {
      record.requestId = requestId;
      record.steps = {};
    }
    if (record.steps[step]?.state === 'done') return undefined;
    record.steps[step] = { state: 'started', at: new Date().toISOString(), bootId: this.bootId, ...(data ? { data } : {}) };
    await this.write(record);
    this.crashHook(`${key}:${step}:started`);
    const value = await fn();
    record.steps[step] = { ...record.steps[step]!, state: 'done', at: new Date().toISOString() };
    await this.write(record);
    this.crashHook(`${key}:${step}:done`);
    return value;
  }

  async complete(key: string, requestId: string, result: { status: number; message: string }): Promise<void> {
    const record = (await this.read(key)) ?? { key, bootId: this.bootId, steps: {} };
    record.completed = [...(record.completed ?? []), { requestId, ...result, at: new Date().toISOString() }].slice(-20);
    record.steps = {};
    delete record.requestId;
    await this.write(record);
  }

  async completedResult(key: string, requestId: string) {
    return (await this.read(key))?.completed?.find((c) => c.requestId === requestId);
  }

  async forget(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}
