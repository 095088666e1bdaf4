/**
 * State files anyone can read without the agent: one JSON file per resource, one per dropped
 * file that was refused, and a bounded result history. All written atomically.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic.js';
import type { Result } from '../core/result.js';

export type Phase = 'Pending' | 'Reconciling' | 'Ready' | 'Waiting' | 'Stalled' | 'Failed';
export type ConditionType = 'Ready' | 'Reconciling' | 'Stalled';

export interface Condition {
  type: ConditionType;
  status: 'True' | 'False';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export interface ResourceStatus {
  kind: string;
  name: string;
  source?: string;
  generation: number;
  observedGeneration: number;
  phase: Phase;
  conditions: Condition[];
  lastResult?: Result;
  history: Array<{ time: string; phase: Phase; message: string }>;
  updatedAt: string;
}

/** What became of a dropped file: refused with a result, or accepted as these resources. */
export interface FileStatus {
  file: string;
  result?: Result;
  resources?: Array<{ key: string; generation: number }>;
  updatedAt: string;
}

export const fileStatusPath = (stateDir: string, file: string) =>
  join(stateDir, 'status', 'files', `${file.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);

export interface ResultRecord {
  time: string;
  kind: string;
  name: string;
  requestId?: string;
  result: Result;
}

const HISTORY = 10;
const RESULTS = 100;

export const statusPath = (stateDir: string, kind: string, name: string) => join(stateDir, 'status', kind, `${name}.json`);

export class StatusWriter {
  private readonly cache = new Map<string, ResourceStatus>();
  private results: ResultRecord[] | undefined;

  constructor(private readonly stateDir: string) {}

  async get(kind: string, name: string): Promise<ResourceStatus | undefined> {
    const key = `${kind}/${name}`;
    if (!this.cache.has(key)) {
      const s = await readJson<ResourceStatus>(statusPath(this.stateDir, kind, name));
      if (s) this.cache.set(key, s);
    }
    return this.cache.get(key);
  }

  /** Sets phase and conditions for a pass; history gains a line only when the phase or message changes. */
  async set(
    kind: string,
    name: string,
    update: { generation: number; phase: Phase; reason: string; message: string; source?: string; result?: Result; observed?: boolean },
  ): Promise<ResourceStatus> {
    const prev = await this.get(kind, name);
    // The common resync case: nothing changed, so nothing is built or written.
    if (prev && unchanged(prev, update)) return prev;
    const now = new Date().toISOString();
    const conditions = conditionsFor(update.phase, update.reason, update.message, now, prev?.conditions ?? []);
    const history = prev?.history ?? [];
    const last = history.at(-1);
    const next: ResourceStatus = {
      kind,
      name,
      ...((update.source ?? prev?.source) ? { source: update.source ?? prev?.source } : {}),
      generation: update.generation,
      observedGeneration: update.observed === false ? (prev?.observedGeneration ?? 0) : update.generation,
      phase: update.phase,
      conditions,
      ...((update.result ?? prev?.lastResult) ? { lastResult: update.result ?? prev?.lastResult } : {}),
      history:
        last && last.phase === update.phase && last.message === update.message
          ? history
          : [...history, { time: now, phase: update.phase, message: update.message }].slice(-HISTORY),
      updatedAt: now,
    };
    this.cache.set(`${kind}/${name}`, next);
    await writeFileAtomic(statusPath(this.stateDir, kind, name), `${JSON.stringify(next, null, 2)}\n`);
    return next;
  }

  /** A drop that ended with a result of its own: refused (300, 303) or a query answered. */
  async fileResult(file: string, result: Result): Promise<void> {
    await this.fileStatus({ file, result, updatedAt: new Date().toISOString() });
  }

  /** Written on every accepted drop, even an unchanged one, so `apply --wait` always gets an answer. */
  async fileAccepted(file: string, resources: Array<{ key: string; generation: number }>): Promise<void> {
    await this.fileStatus({ file, resources, updatedAt: new Date().toISOString() });
  }

  async fileGone(file: string): Promise<void> {
    await rm(fileStatusPath(this.stateDir, file), { force: true });
  }

  private async fileStatus(status: FileStatus): Promise<void> {
    await writeFileAtomic(fileStatusPath(this.stateDir, status.file), `${JSON.stringify(status, null, 2)}\n`);
  }

  async recordResult(record: Omit<ResultRecord, 'time'>): Promise<void> {
    this.results ??= (await readJson<ResultRecord[]>(join(this.stateDir, 'results.json'))) ?? [];
    // The same result of the same request again (recorded before a crash, or by the pass and its caller) is one record.
    const same = (r: ResultRecord) =>
      record.requestId !== undefined &&
      r.requestId === record.requestId &&
      r.kind === record.kind &&
      r.name === record.name &&
      r.result.status === record.result.status &&
      r.result.message === record.result.message;
    if (this.results.some(same)) return;
    this.results = [...this.results, { time: new Date().toISOString(), ...record }].slice(-RESULTS);
    await writeFileAtomic(join(this.stateDir, 'results.json'), `${JSON.stringify(this.results, null, 2)}\n`);
  }
}

function conditionsFor(phase: Phase, reason: string, message: string, now: string, prev: Condition[]): Condition[] {
  const want: Array<[ConditionType, boolean]> = [
    ['Ready', phase === 'Ready'],
    ['Reconciling', phase === 'Reconciling' || phase === 'Pending' || phase === 'Waiting'],
    ['Stalled', phase === 'Stalled' || phase === 'Failed'],
  ];
  return want.map(([type, on]) => {
    const old = prev.find((c) => c.type === type);
    const status = on ? 'True' : 'False';
    return {
      type,
      status,
      reason,
      message,
      lastTransitionTime: old && old.status === status ? old.lastTransitionTime : now,
    };
  });
}

function unchanged(
  prev: ResourceStatus,
  u: { generation: number; phase: Phase; reason: string; message: string; source?: string; result?: Result; observed?: boolean },
): boolean {
  const ready = prev.conditions.find((c) => c.type === 'Ready');
  return (
    prev.generation === u.generation &&
    (u.observed === false || prev.observedGeneration === u.generation) &&
    prev.phase === u.phase &&
    ready?.reason === u.reason &&
    ready.message === u.message &&
    (u.source === undefined || prev.source === u.source) &&
    (u.result === undefined ||
      (prev.lastResult?.status === u.result.status &&
        prev.lastResult.message === u.result.message &&
        prev.lastResult.job_id === u.result.job_id))
  );
}

export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Every resource status under the state directory (for `inbm status`). */
export async function readAllStatus(stateDir: string): Promise<{ resources: ResourceStatus[]; files: FileStatus[] }> {
  const base = join(stateDir, 'status');
  const resources: ResourceStatus[] = [];
  const files: FileStatus[] = [];
  for (const dir of await readdir(base).catch(() => [] as string[])) {
    for (const f of await readdir(join(base, dir)).catch(() => [] as string[])) {
      if (!f.endsWith('.json')) continue;
      const value = await readJson<ResourceStatus & FileStatus>(join(base, dir, f));
      if (!value) continue;
      if (dir === 'files') {
        if (value.result) files.push(value); // accepted drops are told by their resources
      } else resources.push(value);
    }
  }
  return { resources, files };
}
