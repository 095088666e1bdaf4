/**
 * Each step of an operation is recorded (fsync) before it runs and after it completes, so a
 * restart or reboot resumes or rolls back and never repeats a completed side effect.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic.js';
import type { Result } from '../core/result.js';
import { readJson } from '../status/files.js';

export interface StepRecord {
  state: 'started' | 'done';
  at: string;
  bootId: string;
}

export interface JournalRecord {
  key: string;
  runId?: string;
  steps: Record<string, StepRecord>;
  /** Distinct boot ids seen while `runId` was in flight: a reboot loop shows as a growing list. */
  boots?: string[];
  /**
   * A declarative run's result, as planned, kept while it is in flight: a kill after its last
   * step and before the status file lets the next pass (with nothing left to do) report it.
   */
  promised?: { status: number; message: string };
  /** One-shot requests already finished, newest last, with their result. */
  completed?: Array<{ requestId: string; status: number; message: string; at: string }>;
}

/** What a reconciler may read of its journal while observing. */
export interface JournalView {
  bootId: string;
  record: JournalRecord | undefined;
  completed(requestId: string): { status: number; message: string } | undefined;
  /** The step of the current run, if that run is `runId`. */
  step(runId: string, step: string): StepRecord | undefined;
  /** Boots seen by the run in flight (1 = no reboot yet). */
  boots: number;
}

export type CrashHook = (point: string) => void;

export class Journal {
  /** This process is the journal's only writer, so what it wrote is what is on disk. */
  private readonly cache = new Map<string, JournalRecord | undefined>();

  constructor(
    private readonly dir: string,
    readonly bootId: string,
    private readonly crashHook: CrashHook = () => {},
  ) {}

  private path(key: string) {
    return join(this.dir, `${key.replace('/', '-')}.json`);
  }

  async read(key: string): Promise<JournalRecord | undefined> {
    if (!this.cache.has(key)) this.cache.set(key, await readJson<JournalRecord>(this.path(key)));
    const record = this.cache.get(key);
    // Callers edit what they read before writing it back: hand out a copy.
    return record && structuredClone(record);
  }

  async view(key: string): Promise<JournalView> {
    const record = await this.read(key);
    return {
      bootId: this.bootId,
      record,
      completed: (id) => record?.completed?.find((c) => c.requestId === id),
      step: (runId, step) => (record?.runId === runId ? record.steps[step] : undefined),
      boots: record?.boots?.length ?? 0,
    };
  }

  private async write(record: JournalRecord): Promise<void> {
    await writeFileAtomic(this.path(record.key), `${JSON.stringify(record, null, 2)}\n`);
    this.cache.set(record.key, structuredClone(record));
  }

  /**
   * Runs `fn` as `step` of run `runId` unless the journal says it is done. The started mark is
   * durable before `fn` begins, the done mark before this returns.
   */
  async step(key: string, runId: string, step: string, fn: () => Promise<void>, promised?: Result): Promise<void> {
    const record = (await this.read(key)) ?? { key, steps: {} };
    if (record.runId !== runId) {
      record.runId = runId;
      record.steps = {};
      record.boots = [this.bootId];
      delete record.promised;
    }
    if (promised) record.promised = { status: promised.status, message: promised.message };
    if (record.steps[step]?.state === 'done') return;
    this.crashHook(`${key}:${step}:before`);
    record.steps[step] = { state: 'started', at: new Date().toISOString(), bootId: this.bootId };
    await this.write(record);
    this.crashHook(`${key}:${step}:started`);
    await fn();
    this.crashHook(`${key}:${step}:ran`);
    record.steps[step] = { ...record.steps[step]!, state: 'done', at: new Date().toISOString() };
    await this.write(record);
    this.crashHook(`${key}:${step}:done`);
  }

  async complete(key: string, requestId: string, result: Result): Promise<void> {
    const record = (await this.read(key)) ?? { key, steps: {} };
    const done = { requestId, status: result.status, message: result.message, at: new Date().toISOString() };
    record.completed = [...(record.completed ?? []).filter((c) => c.requestId !== requestId), done].slice(-20);
    if (record.runId === requestId) delete record.boots;
    await this.write(record);
    this.crashHook(`${key}:complete`);
  }

  /** A run that finished without a one-shot identity (a declarative change) is no longer in flight. */
  async finish(key: string, runId: string): Promise<void> {
    const record = await this.read(key);
    if (!record || record.runId !== runId) return;
    // Forgetting the done steps lets a later pass correct drift with the same generation.
    delete record.runId;
    delete record.boots;
    delete record.promised;
    record.steps = {};
    await this.write(record);
  }

  /** At start: every run still in flight has now seen this boot. */
  async noteBoot(): Promise<void> {
    for (const file of await readdir(this.dir).catch(() => [] as string[])) {
      if (!file.endsWith('.json')) continue;
      const record = await readJson<JournalRecord>(join(this.dir, file)).catch(() => undefined);
      if (!record?.boots || record.boots.includes(this.bootId)) continue;
      if (record.runId && record.completed?.some((c) => c.requestId === record.runId)) continue;
      record.boots = [...record.boots, this.bootId];
      await this.write(record);
    }
  }
}
