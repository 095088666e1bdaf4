/**
 * OSUpdate, pure: from the request, the journal, the recorded state and the post-boot health to
 * the next steps. An update runs in passes: change (snapshot, apt) → reboot → verdict after the
 * boot (commit, or revert and reboot). Each pass re-plans from what was recorded, so a crash
 * anywhere resumes where it stopped and a step the journal holds as done never runs again.
 */
import type { StepRecord } from '../../controller/journal.js';
import type { Outcome, Plan, Step } from '../../controller/types.js';
import { InbmError, ok, type Result, Status } from '../../core/result.js';
import type { DocumentOf } from '../../desired/kinds/index.js';
import type { OsFamily } from '../../drivers/mender.js';
import type { Snapshot } from '../../drivers/snapshot.js';

export type OSUpdate = DocumentOf<'OSUpdate'>;

/** What survives the reboot (written atomically in `<state>/os-update.json`), for one request. */
export interface OsState {
  requestId: string;
  /** Taken before any change; null = none possible, going on because proceedWithoutRollback is true. */
  snapshot?: Snapshot | null;
  /** Installed versions before the change (full and no-download). */
  before?: Record<string, string>;
  /** The change ran: packages whose version changed (name → new version, '' = removed). */
  installed?: { changed: Record<string, string>; noUpdate: boolean };
  /** Mender: the artifact running before the install. */
  artifact?: string;
  /** apt failed before the reboot; `changed` = packages may have been touched (roll back). */
  failure?: { reason: string; changed: boolean };
  /** The post-boot health verdict, once taken. */
  verdict?: { ok: boolean; reason: string };
}

export interface OsObserved {
  bootId: string;
  completed?: { status: number; message: string };
  /** Journal steps of this request's run. */
  steps: Record<string, StepRecord>;
  state?: OsState;
  /** Measured only when a verdict is due and none is recorded. */
  health?: { ok: boolean; reason: string };
  /** A cancel request that stopped a running download-only: that request's id. */
  cancelled?: string;
  family: OsFamily;
}

export interface OsPlanOptions {
  /** apt can run (a root is set, or this is the host); else every apt update is refused. */
  apt: boolean;
  mender: boolean;
  reboot: boolean;
  graceMs: number;
}

export type OsStepType =
  | 'snapshot'
  | 'apt-update'
  | 'apt-install'
  | 'mender-install'
  | 'record'
  | 'record-pending'
  | 'reboot'
  | 'verdict'
  | 'commit'
  | 'revert'
  | 'discard'
  | 'revert-reboot';

export type OsStep = Step & { type: OsStepType; verdict?: { ok: boolean; reason: string } };

export const SUBMITTED = 'SOTA command status: SUCCESSFUL';
export const SUCCESS = 'SUCCESSFUL INSTALL: Overall SOTA update successful.  System has been properly updated.';
export const REVERTING = 'FAILED INSTALL: System has not been properly updated; reverting.';
export const NO_SNAPSHOT = 'SOTA will not proceed without snapshot/rollback support';

/** The post-boot failure as the reference words it, with the reason after it. */
export const revertResult = (reason: string): Result => ({ status: Status.INSTALL_FAILED, message: `${REVERTING} ${reason}`, job_id: '' });

/** apt failed before the reboot. */
export const aptFailure = (f: NonNullable<OsState['failure']>, snapshot: OsState['snapshot']): InbmError =>
  new InbmError(
    Status.INSTALL_FAILED,
    `${f.reason}; ${!snapshot ? 'no snapshot to revert to' : f.changed ? 'reverting to the snapshot taken before the update' : 'nothing was changed'}`,
  );

const step = (type: OsStepType, description: string, extra: Partial<OsStep> = {}): OsStep => ({
  id: type,
  type,
  description,
  ...extra,
});

/**
 * Where a journalled reboot stands: not issued (or issued and killed before it took effect, after
 * the grace) → issue it; issued in this boot and within the grace → wait for the device to go
 * down; a new boot → it happened; issued, done, grace over, same boot → it did not take.
 */
type RebootStand = { issue: true } | { waitMs: number } | { booted: true } | { stuck: true };
function rebootStand(rb: StepRecord | undefined, bootId: string, now: number, graceMs: number): RebootStand {
  if (!rb) return { issue: true };
  if (rb.bootId !== bootId) return { booted: true };
  const left = graceMs - (now - Date.parse(rb.at));
  if (left > 0) return { waitMs: left };
  return rb.state === 'started' ? { issue: true } : { stuck: true };
}

/** Whether observe must measure the post-update health: the change ran and the boot it needed happened. */
export function verdictDue(doc: OSUpdate, o: Pick<OsObserved, 'bootId' | 'steps' | 'state' | 'completed'>): boolean {
  const st = o.state;
  if (o.completed || !st?.installed || st.verdict || st.failure || doc.spec.mode === 'download-only' || doc.spec.mode === 'cancel')
    return false;
  if (st.installed.noUpdate) return false;
  if (!doc.spec.reboot) return true;
  const rb = o.steps.reboot;
  return rb !== undefined && rb.bootId !== o.bootId;
}

export function planOsUpdate(doc: OSUpdate | undefined, o: OsObserved, now: number, opts: OsPlanOptions): Plan<OsStep> {
  if (!doc) return { steps: [], outcome: { phase: 'Ready', reason: 'NotManaged', message: 'document removed; system left as it is' } };
  const { requestId, mode } = doc.spec;
  const finish = (result: Result, phase: Outcome['phase'], reason: string, steps: OsStep[] = []): Plan<OsStep> => ({
    steps,
    runId: requestId,
    complete: { requestId, result },
    outcome: { phase, reason, message: result.message, result },
  });
  const refuse = (reason: string, why = 'Refused') => finish(new InbmError(Status.INSTALL_FAILED, reason).toResult(), 'Stalled', why);

  if (o.completed) {
    const phase = o.completed.status === 200 ? 'Ready' : 'Failed';
    // The answer again: a kill between the journal's complete and the status write left the status without it.
    const result = { status: o.completed.status, message: o.completed.message, job_id: '' };
    return { steps: [], outcome: { phase, reason: 'Completed', message: o.completed.message, result } };
  }
  if (mode === 'cancel') {
    // The reference answers a cancel only while a download-only runs (spec §5.2 step 8).
    if (o.cancelled) return finish(ok('Request complete.'), 'Ready', 'Cancelled');
    return refuse('Running thread manifest not found.', 'NothingToCancel');
  }
  const st = o.state;
  const snapshot = st?.snapshot ?? null;
  const yocto = o.family === 'yocto';
  if (!yocto && !opts.apt) return refuse('SOTA: no apt root is set; refusing to act on the host', 'NoApt');
  if (yocto && !opts.mender) return refuse('SOTA: Yocto needs mender, which is not installed', 'NoMender');
  if (o.family === 'other') return refuse('SOTA: unsupported operating system (neither Debian nor Yocto)', 'UnsupportedOS');
  const rebooting = doc.spec.reboot && mode !== 'download-only';
  if (rebooting && !opts.reboot)
    return refuse('SOTA: no reboot command is set; refusing to update without the reboot it needs', 'NoCommand');

  // apt failed before the reboot and the agent stopped before the rollback finished.
  if (st?.failure) {
    const steps = st.failure.changed && snapshot ? [step('revert', 'roll back to the snapshot')] : [step('discard', 'drop the snapshot')];
    if (st.failure.changed && snapshot && rebooting) {
      const stand = rebootStand(o.steps['revert-reboot'], o.bootId, now, opts.graceMs);
      if ('waitMs' in stand) return waitingForRollback(stand.waitMs);
      if ('issue' in stand) steps.push(step('revert-reboot', 'reboot into the snapshot'));
    }
    return finish(aptFailure(st.failure, snapshot).toResult(), 'Failed', 'AptFailed', steps);
  }

  if (!st?.installed) {
    const steps: OsStep[] = [];
    if (mode !== 'download-only' && !yocto) steps.push(step('snapshot', 'take a btrfs snapshot of the root'));
    if (yocto) steps.push(step('mender-install', `mender install ${doc.spec.source?.path ?? doc.spec.source?.url ?? ''}`));
    else {
      if (mode !== 'no-download') steps.push(step('apt-update', 'apt-get update'));
      const what = doc.spec.packages.length > 0 ? `install ${doc.spec.packages.join(' ')}` : 'upgrade';
      steps.push(step('apt-install', `apt-get ${mode === 'full' ? '' : `--${mode} `}${what}`));
    }
    return {
      steps,
      runId: requestId,
      gated: true,
      outcome: { phase: 'Waiting', reason: 'Installed', message: 'update applied; checking the result', requeueAfterMs: 0 },
    };
  }

  if (mode === 'download-only') return finish(ok(SUBMITTED), 'Ready', 'Downloaded', [step('record', 'record the download')]);
  if (st.installed.noUpdate) return finish(ok(SUBMITTED), 'Ready', 'NoUpdate', [step('commit', 'nothing to update: drop the snapshot')]);

  if (rebooting) {
    const rb = o.steps.reboot;
    const issue: OsStep[] = [step('record-pending', 'record the update as pending'), step('reboot', 'reboot into the update')];
    const waiting = (left: number, steps: OsStep[] = []): Plan<OsStep> => {
      const result = ok(SUBMITTED);
      return {
        steps,
        runId: requestId,
        outcome: {
          phase: 'Waiting',
          reason: 'WaitingForReboot',
          message: 'rebooting into the update',
          requeueAfterMs: left,
          ...(steps.length ? { result } : {}),
        },
      };
    };
    const stand = rebootStand(rb, o.bootId, now, opts.graceMs);
    // Not issued, or started and never finished in this boot: the agent died before it took effect.
    if ('issue' in stand) return waiting(opts.graceMs, issue);
    if ('waitMs' in stand) return waiting(stand.waitMs);
    if ('stuck' in stand) return verdictPlan({ ok: false, reason: 'the reboot command ran but the device did not go down' }, false);
  }
  const verdict = st.verdict ?? o.health;
  if (!verdict) return { steps: [], outcome: { phase: 'Stalled', reason: 'NoVerdict', message: 'post-update health was not measured' } };
  return verdictPlan(verdict, rebooting);

  function verdictPlan(v: { ok: boolean; reason: string }, reboot: boolean): Plan<OsStep> {
    const record = step('verdict', `health after the update: ${v.ok ? 'ok' : v.reason}`, { verdict: v });
    if (v.ok) return finish(ok(SUCCESS), 'Ready', 'Committed', [record, step('commit', 'keep the update: delete the snapshot')]);
    const steps = [record, step('revert', yocto ? 'do not commit the new image' : 'roll back to the snapshot')];
    // Mender falls back by a reboot without commit; a snapshot needs the reboot to take effect.
    if (reboot && (yocto || snapshot)) {
      const stand = rebootStand(o.steps['revert-reboot'], o.bootId, now, opts.graceMs);
      if ('waitMs' in stand) return waitingForRollback(stand.waitMs);
      if ('issue' in stand) steps.push(step('revert-reboot', 'reboot into the previous system'));
    }
    return finish(revertResult(v.reason), 'Failed', 'RolledBack', steps);
  }

  function waitingForRollback(left: number): Plan<OsStep> {
    return {
      steps: [],
      runId: requestId,
      outcome: { phase: 'Waiting', reason: 'WaitingForReboot', message: 'rebooting into the previous system', requeueAfterMs: left },
    };
  }
}
