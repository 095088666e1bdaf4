/** The contract between the controller and the reconcilers; it knows nothing of Docker, apt or files. */

import type { Logger } from '../core/log.js';
import type { Result } from '../core/result.js';
import type { Document, KindName } from '../desired/kinds/index.js';
import type { Journal } from './journal.js';

export interface Outcome {
  phase: 'Ready' | 'Waiting' | 'Stalled' | 'Failed';
  reason: string;
  message: string;
  /** The wire result for whoever asked (cloud, CLI --wait); absent for a no-op pass. */
  result?: Result;
  /** Ask to be looked at again after this many ms (waiting for a reboot, a retry…). */
  requeueAfterMs?: number;
}

export interface ReconcileContext {
  log: Logger;
  journal: Journal;
  signal: AbortSignal;
}

/**
 * One per kind. `reconcile` observes, plans (a pure function of its own) and acts; it is called
 * with `undefined` when the document was removed (stop managing; prune only if asked).
 */
export interface Reconciler<D extends Document = Document> {
  kind: KindName;
  reconcile(doc: D | undefined, ctx: ReconcileContext): Promise<Outcome>;
  /** Whether acting on this document changes the machine (and so takes the one mutation slot). */
  mutates?(doc: D): boolean;
}
