/**
 * AgentPort as a file drop: a request from any cloud becomes a manifest file in the desired-state
 * folder, exactly like `inbm apply --wait`, and its answer is read from the same status files.
 * So MQTT adds no second path into the agent: the store and controller see one kind of request.
 */
import { randomBytes } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitForResult } from '../cli/apply.js';
import { InbmError, type Result, Status } from '../core/result.js';
import { fileStatusPath } from '../status/files.js';
import type { AgentPort } from './link.js';

/** A request in flight: its result, and done() to call once that result has been passed on. */
export interface Tracked {
  note: Record<string, string>;
  result: Promise<Result>;
  done(): Promise<void>;
}

interface PendingRecord {
  name: string;
  since: number;
  note: Record<string, string>;
}

export interface DropPortOptions {
  desiredDir: string;
  stateDir: string;
  /** How long one request may take before its waiter gives up (the longest the reference allows is POTA's 1160 s). */
  timeoutMs?: number;
}

/** Polling stays as the fallback in case a file event is missed. */
const FALLBACK_MS = 200;

export class DropPort implements AgentPort {
  private watcher: FSWatcher | undefined;
  private readonly wakers = new Set<() => void>();
  private counter = 0;
  /** Counts file events, so a change that lands between a look and the wait is not slept through. */
  private events = 0;

  constructor(private readonly opts: DropPortOptions) {}

  async start(): Promise<void> {
    const statusDir = join(this.opts.stateDir, 'status');
    await mkdir(join(statusDir, 'files'), { recursive: true });
    // One watcher for every waiter: any change under status/ may be the answer one of them waits for.
    this.watcher = watch(statusDir, { recursive: true }, () => this.wakeAll());
    this.watcher.on('error', () => this.wakeAll());
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.wakeAll();
  }

  async submitManifest(xml: string, origin: string): Promise<Result> {
    const t = await this.track(xml, origin, {});
    try {
      return await t.result;
    } finally {
      await t.done();
    }
  }

  /**
   * Submits and remembers the request under <stateDir>/requests until done() says its answer is
   * out, so an agent restarted meanwhile still answers it (resume). NOTE is the caller's (where
   * to answer). The record is renamed into place but not fsynced: it outlives an agent crash,
   * which is what it is for; the drop itself is the request of record.
   */
  async track(xml: string, origin: string, note: Record<string, string>): Promise<Tracked> {
    const name = `${safe(origin)}-${Date.now()}-${process.pid}-${++this.counter}-${randomBytes(4).toString('hex')}.xml`;
    const since = Date.now();
    const record = join(this.requestsDir, `${name}.json`);
    await mkdir(this.requestsDir, { recursive: true, mode: 0o700 });
    await writeFile(`${record}.tmp`, JSON.stringify({ name, since, note } satisfies PendingRecord), { mode: 0o600 });
    await rename(`${record}.tmp`, record);
    const tmp = join(this.opts.desiredDir, `.${name}.tmp`);
    await writeFile(tmp, xml, { mode: 0o600 });
    await rename(tmp, join(this.opts.desiredDir, name));
    return { note, result: this.wait(name, since), done: () => rm(record, { force: true }) };
  }

  /** The requests a previous run took and did not answer: each waits for its result again. */
  async resume(): Promise<Tracked[]> {
    const out: Tracked[] = [];
    for (const f of await readdir(this.requestsDir).catch(() => [] as string[])) {
      const path = join(this.requestsDir, f);
      if (!f.endsWith('.json')) {
        await rm(path, { force: true });
        continue;
      }
      const r = await readFile(path, 'utf8')
        .then((t) => JSON.parse(t) as PendingRecord)
        .catch(() => undefined);
      if (!r || !SAFE_NAME.test(r.name)) {
        await rm(path, { force: true });
        continue;
      }
      const taken = await Promise.all([
        stat(join(this.opts.desiredDir, r.name)).catch(() => undefined),
        stat(fileStatusPath(this.opts.stateDir, r.name)).catch(() => undefined),
      ]);
      const result = taken.some(Boolean)
        ? this.wait(r.name, r.since)
        : Promise.resolve(new InbmError(Status.INSTALL_FAILED, 'the agent restarted before it took the request; send it again').toResult());
      out.push({ note: r.note ?? {}, result, done: () => rm(path, { force: true }) });
    }
    return out;
  }

  private async wait(name: string, since: number): Promise<Result> {
    const timeoutMs = this.opts.timeoutMs ?? 3_600_000;
    let seen = this.events;
    const tick = async () => {
      if (this.events === seen) await this.nextChange();
      seen = this.events;
    };
    const result = await waitForResult(this.opts.stateDir, name, since, since + timeoutMs, tick);
    if (Date.now() >= since + timeoutMs && result.message.includes('internal error')) {
      return new InbmError(Status.INSTALL_FAILED, `no result within ${Math.round(timeoutMs / 1000)} s`).toResult();
    }
    return result;
  }

  private get requestsDir(): string {
    return join(this.opts.stateDir, 'requests');
  }

  private nextChange(): Promise<void> {
    if (!this.watcher) return new Promise((r) => setTimeout(r, FALLBACK_MS));
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, FALLBACK_MS);
      this.wakers.add(done);
    });
  }

  private wakeAll(): void {
    this.events++;
    const list = [...this.wakers];
    this.wakers.clear();
    for (const w of list) w();
  }
}

const SAFE_NAME = /^[A-Za-z0-9_-]+-\d+-\d+-\d+-[0-9a-f]{8}\.xml$/;
const safe = (origin: string) => origin.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40) || 'cloud';
