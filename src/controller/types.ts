/** The contract between the controller and the reconcilers; it knows nothing of Docker, apt or files. */
import type { Logger } from '../core/log.js';
import type { Result } from '../core/result.js';
import type { Document, KindName } from '../desired/kinds/index.js';

export interface Outcome {
  phase: 'Ready' | 'Waiting' | 'Stalled' | 'Failed';
  reason: string;
  message: string;
  /** The wire result for whoever asked (cloud, CLI --wait); absent for a no-op pass. */
  result?: Result;
  /** Ask to be looked at again after this many ms (waiting for a reboot, a retry…). */
  requeueAfterMs?: number;
}

/** One typed step; `id` is its name in the journal, `description` what `inbm plan` prints. */
export interface Step {
  id: string;
  description: string;
}

/** What a planner returns: a pure function of the document and what was observed. */
export interface Plan<S extends Step = Step> {
  steps: S[];
  /** The outcome when there are no steps, or once every step has run. */
  outcome: Outcome;
  /** Journal identity of this run: the one-shot requestId, else the document generation. */
  runId?: string;
  /** A one-shot request that this pass finishes, with its result (recorded after the steps). */
  complete?: { requestId: string; result: Result };
  /** Run the pre-change health gates before the first step. */
  gated?: boolean;
}

export interface ObserveContext {
  log: Logger;
  /** Finished one-shot requests and in-flight steps of this resource, from the journal. */
  journal: import('./journal.js').JournalView;
}

/** How far a step's transfer has got (a download's bytes), for a progress bar. */
export interface StepProgress {
  bytes: number;
  total?: number;
  /** bytes per second */
  rate: number;
}

export interface ExecuteContext {
  log: Logger;
  signal: AbortSignal;
  /** Report a transfer's progress; cheap to call per chunk (the sink throttles). */
  progress?: (p: StepProgress) => void;
}

/**
 * One per kind: observe the machine, plan (pure), execute one step at a time. `doc` is
 * undefined when the document was removed: stop managing, change nothing unless asked to prune.
 */
export interface Reconciler<D extends Document = Document, O = unknown, S extends Step = Step> {
  kind: KindName;
  observe(doc: D | undefined, ctx: ObserveContext): Promise<O>;
  plan(doc: D | undefined, observed: O, now: number): Plan<S>;
  execute(step: S, doc: D, ctx: ExecuteContext): Promise<void>;
  /** Undo what a removed document made, when it asked to be pruned; absent = nothing to undo. */
  prune?(doc: D, observed: O, now: number): Plan<S>;
}
