/**
 * Restart, shutdown, decommission: exactly once per requestId, across an agent crash and across
 * the reboot it causes. The boot id tells whether the machine really went down.
 */
import { rm } from 'node:fs/promises';
import type { Reconciler } from '../../controller/types.js';
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

const ISSUED = { restart: 'Restart Command Success', shutdown: 'Shutdown Success', decommission: 'Decommission Success' };
const AFTER_BOOT = { restart: 'Reboot SUCCESSFUL.', shutdown: 'Shutdown Success', decommission: 'Decommission Success' };

export function powerReconciler(opts: PowerOptions): Reconciler<PowerAction> {
  return {
    kind: 'PowerAction',
    async reconcile(doc, { journal, log }) {
      if (!doc) return { phase: 'Ready', reason: 'NotManaged', message: 'document removed' };
      const key = `PowerAction/${doc.metadata.name}`;
      const { requestId, action } = doc.spec;
      const done = await journal.completedResult(key, requestId);
      if (done) return { phase: done.status === 200 ? 'Ready' : 'Failed', reason: 'Completed', message: done.message };

      const record = await journal.read(key);
      const step = record?.requestId === requestId ? record.steps.power : undefined;
      if (step && step.bootId !== journal.bootId) {
        // The boot id changed since the command ran: the machine went down and came back.
        const result = ok(AFTER_BOOT[action]);
        await journal.complete(key, requestId, result);
        log.info({ action }, result.message);
        return { phase: 'Ready', reason: 'Rebooted', message: result.message, result };
      }
      if (step && Date.now() - Date.parse(step.at) < opts.graceMs) {
        return {
          phase: 'Waiting',
          reason: 'WaitingForReboot',
          message: `${action} issued, waiting for the device to go down`,
          requeueAfterMs: opts.graceMs,
        };
      }
      if (step?.state === 'done') {
        const result = new InbmError(Status.INSTALL_FAILED, `${action} command ran but the device did not go down`).toResult();
        await journal.complete(key, requestId, result);
        return { phase: 'Failed', reason: 'NoReboot', message: result.message, result };
      }
      // Never started, or started in a run that died before the command could take effect
      // (same boot, grace passed): running it now is the first effective run.
      const command = action === 'restart' ? opts.reboot : opts.shutdown;
      if (!command) {
        const result = new InbmError(
          Status.INSTALL_FAILED,
          `no ${action === 'restart' ? 'reboot' : 'shutdown'} command is set; refusing to act on the host`,
        ).toResult();
        await journal.complete(key, requestId, result);
        return { phase: 'Stalled', reason: 'NoCommand', message: result.message, result };
      }
      if (action === 'decommission') {
        await journal.step(key, requestId, 'wipe-secrets', () => rm(opts.secretsVolume, { force: true }));
      }
      await journal.step(key, requestId, 'power', () => runCommand(command));
      const result = ok(ISSUED[action]);
      log.info({ action, requestId }, result.message);
      return { phase: 'Waiting', reason: 'WaitingForReboot', message: result.message, result, requeueAfterMs: opts.graceMs };
    },
  };
}
