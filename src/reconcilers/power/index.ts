/**
 * Restart, shutdown, decommission: exactly once per requestId, across an agent crash and across
 * the reboot it causes. The boot id tells whether the machine really went down.
 */
import { rm } from 'node:fs/promises';
import type { JournalView, StepRecord } from '../../controller/journal.js';
import type { Plan, Reconciler, Step } from '../../controller/types.js';
import { InbmError, ok, Status } from '../../core/result.js';
import type { DocumentOf } from '../../desired/kinds/index.js';
import { runCommand } from '../../drivers/command.js';

type PowerAction = DocumentOf<'PowerAction'>;

export interface PowerOptions {
  reboot?: readonly string[];
  shutdown?: readonly string[];
  /** The encrypted secrets volume that decommission deletes. */
  secretsVolume: string;
  /** How long to wait for the machine to go down before calling the command ineffective. */
  graceMs: number;
}

export type PowerStep = (Step & { type: 'wipe-secrets'; path: string }) | (Step & { type: 'power'; argv: readonly string[] });

export interface PowerObserved {
  bootId: string;
  completed?: { status: number; message: string };
  /** The power step of this request's run, if one began. */
  issued?: StepRecord;
}

const ISSUED = { restart: 'Restart Command Success', shutdown: 'Shutdown Success', decommission: 'Decommission Success' };
const AFTER_BOOT = { restart: 'Reboot SUCCESSFUL.', shutdown: 'Shutdown Success', decommission: 'Decommission Success' };

export function observePower(doc: PowerAction | undefined, journal: JournalView): PowerObserved {
  if (!doc) return { bootId: journal.bootId };
  const completed = journal.completed(doc.spec.requestId);
  const issued = journal.step(doc.spec.requestId, 'power');
  return { bootId: journal.bootId, ...(completed ? { completed } : {}), ...(issued ? { issued } : {}) };
}

/** Pure: what to do for this request given the journal and the boot id. */
export function planPower(doc: PowerAction | undefined, o: PowerObserved, now: number, opts: PowerOptions): Plan<PowerStep> {
  if (!doc) return { steps: [], outcome: { phase: 'Ready', reason: 'NotManaged', message: 'document removed' } };
  const { requestId, action } = doc.spec;
  const finish = (result: ReturnType<typeof ok>, phase: 'Ready' | 'Failed' | 'Stalled', reason: string): Plan<PowerStep> => ({
    steps: [],
    complete: { requestId, result },
    outcome: { phase, reason, message: result.message, result },
  });
  if (o.completed) {
    const phase = o.completed.status === 200 ? 'Ready' : 'Failed';
    return { steps: [], outcome: { phase, reason: 'Completed', message: o.completed.message } };
  }
  // The boot id changed since the command ran: the machine went down and came back.
  if (o.issued && o.issued.bootId !== o.bootId) return finish(ok(AFTER_BOOT[action]), 'Ready', 'Rebooted');
  if (o.issued && now - Date.parse(o.issued.at) < opts.graceMs) {
    const left = opts.graceMs - (now - Date.parse(o.issued.at));
    return {
      steps: [],
      outcome: {
        phase: 'Waiting',
        reason: 'WaitingForReboot',
        message: `${action} issued, waiting for the device to go down`,
        requeueAfterMs: left,
      },
    };
  }
  if (o.issued?.state === 'done') {
    return finish(
      new InbmError(Status.INSTALL_FAILED, `${action} command ran but the device did not go down`).toResult(),
      'Failed',
      'NoReboot',
    );
  }
  // Never started, or started by a run that died before the command could take effect (same
  // boot, grace passed): running it now is the first effective run.
  const argv = action === 'restart' ? opts.reboot : opts.shutdown;
  if (!argv) {
    const what = action === 'restart' ? 'reboot' : 'shutdown';
    return finish(
      new InbmError(Status.INSTALL_FAILED, `no ${what} command is set; refusing to act on the host`).toResult(),
      'Stalled',
      'NoCommand',
    );
  }
  const steps: PowerStep[] = [];
  if (action === 'decommission')
    steps.push({ id: 'wipe-secrets', type: 'wipe-secrets', path: opts.secretsVolume, description: `delete ${opts.secretsVolume}` });
  steps.push({ id: 'power', type: 'power', argv, description: `run ${argv.join(' ')}` });
  const result = ok(ISSUED[action]);
  return {
    steps,
    runId: requestId,
    outcome: { phase: 'Waiting', reason: 'WaitingForReboot', message: result.message, result, requeueAfterMs: opts.graceMs },
  };
}

export function powerReconciler(opts: PowerOptions): Reconciler<PowerAction, PowerObserved, PowerStep> {
  return {
    kind: 'PowerAction',
    observe: async (doc, { journal }) => observePower(doc, journal),
    plan: (doc, observed, now) => planPower(doc, observed, now, opts),
    async execute(step) {
      if (step.type === 'wipe-secrets') await rm(step.path, { force: true });
      else await runCommand(step.argv);
    },
  };
}
