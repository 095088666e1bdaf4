/**
 * Level-triggered loop: a key enters the queue (document changed, timer, restart); duplicates
 * collapse; one worker reconciles keys one at a time, so one mutation runs at a time.
 */
import type { Logger } from '../core/log.js';
import { InbmError, resultOf } from '../core/result.js';
import type { Document } from '../desired/kinds/index.js';
import type { StatusWriter } from '../status/files.js';
import type { Journal } from './journal.js';
import type { Outcome, Reconciler } from './types.js';

export interface DesiredView {
  get(key: string): { doc: Document; generation: number; source: string } | undefined;
  keys(): string[];
}

const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 5 * 60_000;

export class Controller {
  private readonly queue = new Set<string>();
  private readonly attempts = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  /** The key whose mutating reconcile is in flight, if any (manifests arriving now get 303). */
  current: string | undefined;

  constructor(
    private readonly reconcilers: ReadonlyMap<string, Reconciler>,
    private readonly desired: DesiredView,
    private readonly status: StatusWriter,
    private readonly journal: Journal,
    private readonly log: Logger,
    private readonly resyncMs: number,
  ) {}

  enqueue(key: string): void {
    this.queue.add(key);
    this.wake?.();
  }

  start(): void {
    const resync = setInterval(() => {
      for (const key of this.desired.keys()) this.enqueue(key);
    }, this.resyncMs);
    resync.unref();
    this.timers.add(resync);
    for (const key of this.desired.keys()) this.enqueue(key);
    this.loop = this.run();
  }

  /** Finishes the pass in flight (its steps are journalled), then returns. */
  async stop(): Promise<void> {
    this.abort.abort();
    for (const t of this.timers) clearTimeout(t);
    this.wake?.();
    await this.loop;
  }

  /** Resolves when the queue is empty and nothing runs (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.queue.size > 0 || this.current !== undefined) await new Promise((r) => setTimeout(r, 5));
  }

  private async run(): Promise<void> {
    while (!this.abort.signal.aborted) {
      const key = this.queue.values().next().value as string | undefined;
      if (key === undefined) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      this.queue.delete(key);
      await this.reconcileKey(key);
    }
  }

  private async reconcileKey(key: string): Promise<void> {
    const [kind, name] = key.split('/') as [string, string];
    const reconciler = this.reconcilers.get(kind);
    if (!reconciler) return;
    const entry = this.desired.get(key);
    const log = this.log.child({ resource: key });
    this.current = entry && reconciler.mutates?.(entry.doc) !== false ? key : undefined;
    let outcome: Outcome;
    try {
      outcome = await reconciler.reconcile(entry?.doc, { log, journal: this.journal, signal: this.abort.signal });
    } catch (err) {
      outcome = this.fromError(key, err, log);
    } finally {
      this.current = undefined;
    }
    if (outcome.phase !== 'Waiting') this.attempts.delete(key);
    if (outcome.requeueAfterMs !== undefined) this.later(key, outcome.requeueAfterMs);
    if (!entry) return; // removed: stop managing; the status file stays as the last word
    // History first: whoever sees the result in the status file finds it in results.json too.
    if (outcome.result) {
      const requestId = (entry.doc.spec as { requestId?: string }).requestId;
      await this.status.recordResult({ kind, name, ...(requestId ? { requestId } : {}), result: outcome.result });
    }
    await this.status.set(kind, name, {
      generation: entry.generation,
      phase: outcome.phase,
      reason: outcome.reason,
      message: outcome.message,
      source: entry.source,
      ...(outcome.result ? { result: outcome.result } : {}),
    });
  }

  private fromError(key: string, err: unknown, log: Logger): Outcome {
    const result = resultOf(err);
    if (err instanceof InbmError && err.retryable) {
      const n = (this.attempts.get(key) ?? 0) + 1;
      this.attempts.set(key, n);
      const delay = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (n - 1)) * (0.5 + Math.random() / 2);
      log.warn({ attempt: n, delayMs: Math.round(delay), reason: err.reason }, 'waiting to retry');
      return { phase: 'Waiting', reason: 'Retrying', message: result.message, result, requeueAfterMs: delay };
    }
    if (!(err instanceof InbmError)) log.error({ err }, 'reconcile failed');
    else log.warn({ status: err.status, reason: err.reason }, 'reconcile stalled');
    return {
      phase: 'Stalled',
      reason: err instanceof InbmError ? `Result${err.status}` : 'InternalError',
      message: result.message,
      result,
    };
  }

  private later(key: string, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.enqueue(key);
    }, ms);
    t.unref();
    this.timers.add(t);
  }
}
