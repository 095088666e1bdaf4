/**
 * Level-triggered loop: a key enters the queue (document changed, timer, restart); duplicates
 * collapse; one worker reconciles keys one at a time, so one mutation runs at a time.
 * Each pass: observe → plan (pure) → gates → steps (journalled) → record the outcome.
 */
import type { Logger } from '../core/log.js';
import { InbmError, type Result, resultOf, Status } from '../core/result.js';
import type { Document } from '../desired/kinds/index.js';
import type { StatusWriter } from '../status/files.js';
import { type GateRun, gateError } from './gates/index.js';
import type { Journal } from './journal.js';
import type { Outcome, Plan, Reconciler, StepProgress } from './types.js';

export interface DesiredView {
  get(key: string): { doc: Document; generation: number; source: string; file?: string; deleted?: true } | undefined;
  keys(): string[];
  /** Drop a removed document once it has been pruned. */
  forget?(key: string): void;
}

export interface ControllerDeps {
  reconcilers: ReadonlyMap<string, Reconciler>;
  desired: DesiredView;
  status: StatusWriter;
  journal: Journal;
  log: Logger;
  /** The pre-change health gates, measured fresh for each gated plan. */
  gates: () => Promise<GateRun>;
  resyncMs: number;
  /** Told after each recorded pass, so the source of a request can retire it once settled. */
  /** `source`: which drop the settled pass acted for, so a newer drop of the same key is not retired with it. */
  onSettled?: (key: string, phase: Outcome['phase'], source?: { file?: string; generation: number }) => Promise<void>;
  /** Where a running step's transfer progress goes (src/status/progress.ts); cleared after the step. */
  progress?: { report(key: string, step: string, p: StepProgress): void; clear(key: string): Promise<void> };
}

/** More boots than this during one operation is a reboot loop: stop and report it. */
export const MAX_BOOTS_PER_RUN = 3;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 5 * 60_000;

export class Controller {
  private readonly queue = new Set<string>();
  private readonly attempts = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  /** The key whose steps are running, if any (manifests arriving now get 303). */
  current: string | undefined;

  constructor(private readonly deps: ControllerDeps) {}

  enqueue(key: string): void {
    this.queue.add(key);
    this.wake?.();
  }

  start(): void {
    const resync = setInterval(() => {
      for (const key of this.deps.desired.keys()) this.enqueue(key);
    }, this.deps.resyncMs);
    resync.unref();
    this.timers.add(resync);
    for (const key of this.deps.desired.keys()) this.enqueue(key);
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
    while (this.queue.size > 0 || this.busy) await new Promise((r) => setTimeout(r, 2));
  }

  private busy = false;

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
      this.busy = true;
      try {
        await this.reconcileKey(key);
      } catch (err) {
        this.deps.log.error({ err, resource: key }, 'could not record the outcome');
      } finally {
        this.busy = false;
      }
    }
  }

  /** Observe and plan without acting: what `inbm plan` shows. */
  async preview(key: string): Promise<{ plan: Plan; gates?: GateRun }> {
    const [kind] = key.split('/') as [string];
    const reconciler = this.deps.reconcilers.get(kind)!;
    const doc = this.deps.desired.get(key)?.doc;
    const observed = await reconciler.observe(doc, { log: this.deps.log, journal: await this.deps.journal.view(key) });
    const plan = reconciler.plan(doc, observed, Date.now());
    return plan.gated && plan.steps.length > 0 ? { plan, gates: await this.deps.gates() } : { plan };
  }

  private async reconcileKey(key: string): Promise<void> {
    const [kind, name] = key.split('/') as [string, string];
    const reconciler = this.deps.reconcilers.get(kind);
    if (!reconciler) return;
    const entry = this.deps.desired.get(key);
    const log = this.deps.log.child({ resource: key });
    let outcome: Outcome;
    try {
      this.finished = undefined;
      outcome = await this.pass(key, reconciler, entry?.doc, entry?.generation ?? 0, log, entry?.deleted === true);
    } catch (err) {
      outcome = this.fromError(key, err, log);
    } finally {
      this.current = undefined;
    }
    if (outcome.phase !== 'Waiting') this.attempts.delete(key);
    if (outcome.requeueAfterMs !== undefined) this.later(key, outcome.requeueAfterMs);
    if (!entry) return; // removed: stop managing; the status file stays as the last word
    // History first: whoever sees the result in the status file finds it in results.json too.
    // The pass already recorded a finished request's result; another result (an interim answer,
    // a retry) is recorded here, under the request it belongs to.
    const requestOf = (doc: Document) =>
      (doc.spec as { requestId?: string }).requestId ?? doc.metadata.annotations?.['inbm.dev/request-id'];
    // A request finished by an earlier run that died before its status file said so (a crash
    // right after the journal's complete mark): its result comes from the journal.
    const ownRequest = requestOf(entry.doc);
    let recovered: string | undefined;
    if (!outcome.result) {
      const view = await this.deps.journal.view(key);
      // A rollout's one-shot id is the reconciler's (rollout-…), not the document's request id,
      // and a YAML document has none: the journal's last run is looked up too.
      recovered = [ownRequest, view.record?.runId].find((id) => id !== undefined && view.completed(id));
      const done = recovered === undefined ? undefined : view.completed(recovered);
      if (done) outcome = { ...outcome, result: { status: done.status, message: done.message, job_id: '' } };
    }
    const finished = this.finished;
    const already =
      finished && outcome.result && finished.result.status === outcome.result.status && finished.result.message === outcome.result.message;
    if (outcome.result && !already) {
      const requestId = finished?.requestId ?? recovered ?? ownRequest;
      await this.deps.status.recordResult({ kind, name, ...(requestId ? { requestId } : {}), result: outcome.result });
    }
    await this.deps.status.set(kind, name, {
      generation: entry.generation,
      phase: outcome.phase,
      reason: outcome.reason,
      message: outcome.message,
      source: entry.source,
      ...(outcome.result ? { result: outcome.result } : {}),
    });
    await this.deps.onSettled?.(key, outcome.phase, { ...(entry.file ? { file: entry.file } : {}), generation: entry.generation });
  }

  /** The request the running pass finished, if any (one worker: one pass at a time). */
  private finished: { requestId: string; result: Result } | undefined;

  private async pass(
    key: string,
    reconciler: Reconciler,
    doc: Document | undefined,
    generation: number,
    log: Logger,
    prune = false,
  ): Promise<Outcome> {
    const { journal } = this.deps;
    const [kind, name] = key.split('/') as [string, string];
    // The result goes to the history before the journal calls the request complete: a crash in
    // between repeats the record (recordResult keeps one per request and result), never loses it.
    const finish = async (requestId: string, result: Result) => {
      await this.deps.status.recordResult({ kind, name, requestId, result });
      this.finished = { requestId, result };
      await journal.complete(key, requestId, result);
    };
    const view = await journal.view(key);
    const runId = view.record?.runId;
    if (runId && view.boots > MAX_BOOTS_PER_RUN) {
      const failure = new InbmError(Status.INSTALL_FAILED, `reboot loop: ${view.boots} boots during one operation, giving up`).toResult();
      await finish(runId, failure);
      log.error({ boots: view.boots, runId }, 'reboot loop stopped');
      return { phase: 'Failed', reason: 'RebootLoop', message: failure.message, result: failure };
    }
    const observed = await reconciler.observe(doc, { log, journal: view });
    const plan = prune ? this.prunePlan(reconciler, doc!, observed) : reconciler.plan(doc, observed, Date.now());
    if (plan.steps.length > 0 && doc) {
      if (plan.gated) {
        const failed = gateError(await this.deps.gates());
        if (failed) throw failed;
      }
      this.current = key;
      const run = plan.runId ?? `generation-${generation}`;
      try {
        for (const step of plan.steps) {
          log.info({ step: step.id }, step.description);
          const sink = this.deps.progress;
          const progress = sink ? (p: StepProgress) => sink.report(key, step.id, p) : undefined;
          try {
            await journal.step(
              key,
              run,
              step.id,
              () => reconciler.execute(step, doc, { log, signal: this.abort.signal, ...(progress ? { progress } : {}) }),
              plan.runId ? undefined : plan.outcome.result,
            );
          } finally {
            await sink?.clear(key);
          }
        }
      } catch (err) {
        // A one-shot request that failed for good is finished: it is reported, never retried.
        if (!plan.complete || (err instanceof InbmError && err.retryable)) throw err;
        const result = resultOf(err);
        await finish(plan.complete.requestId, result);
        // What the reconciler makes of the finished request (Failed: RolledBack, NotFound…) is its
        // phase now, not a stall that only the next pass would turn into that.
        const after = reconciler.plan(doc, await reconciler.observe(doc, { log, journal: await journal.view(key) }), Date.now());
        if (after.steps.length > 0 || after.outcome.phase !== 'Failed') throw err;
        log.warn({ status: result.status, reason: after.outcome.reason }, 'request failed');
        return { ...after.outcome, result };
      }
      if (!plan.runId && plan.outcome.phase !== 'Waiting') await journal.finish(key, run);
    }
    if (plan.complete) await finish(plan.complete.requestId, plan.complete.result);
    if (prune && plan.outcome.phase === 'Ready') this.deps.desired.forget?.(key);
    // A declarative run (a docker/compose remove, a compose down) killed after its steps ran and
    // before its result was recorded: nothing is left to do, so this pass reports what it promised.
    const promised = view.record?.runId === `generation-${generation}` ? view.record.promised : undefined;
    if (plan.steps.length === 0 && !plan.runId && !plan.outcome.result && promised && doc) {
      await journal.finish(key, `generation-${generation}`);
      return { ...plan.outcome, result: { ...promised, job_id: '' } };
    }
    return plan.outcome;
  }

  private prunePlan(reconciler: Reconciler, doc: Document, observed: unknown): Plan {
    const plan = reconciler.prune?.(doc, observed, Date.now()) ?? {
      steps: [],
      outcome: { phase: 'Ready', reason: 'Pruned', message: 'removed; nothing to undo' },
    };
    return { ...plan, runId: plan.runId ?? `prune-${doc.metadata.generation ?? 0}` };
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
