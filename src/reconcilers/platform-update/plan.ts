/**
 * PlatformUpdate (POTA), pure: the firmware planner and the OS planner are asked in turn about
 * two derived requests, and their answers are merged into one run with a single reboot:
 *
 *   before anything: FOTA eligibility and the SOTA preconditions (apt or Mender, a reboot
 *   command, a snapshot or proceedWithoutRollback) — either refused → 400, nothing done;
 *   pass 1: record the BIOS, flash (firmware asked not to reboot), snapshot, apt;
 *   pass 2: update record PENDING (Type pota), the one reboot (the OS planner's);
 *   after the boot: the firmware verdict and the OS verdict, each judged on its own as the
 *   reference does (FOTA check, then SOTA check), then the pota record.
 *
 * A failed firmware verdict does not roll the OS back: the OS part keeps its own verdict
 * (committed when healthy, rolled back when not), and the request answers 400 with the
 * reference's FOTA failure text.
 */
import type { Plan, Step } from '../../controller/types.js';
import { ok, type Result, Status } from '../../core/result.js';
import type { DocumentOf } from '../../desired/kinds/index.js';
import type { UpdateState } from '../../status/update-record.js';
import { FAILURE_MESSAGE, SUCCESS_MESSAGE } from '../firmware/eligibility.js';
import { ACCEPTED, type FirmwareObserved, type FirmwareStep, planFirmware } from '../firmware/index.js';
import { NO_SNAPSHOT, type OsObserved, type OsPlanOptions, type OsStep, planOsUpdate, SUCCESS } from '../os-update/plan.js';

export type PlatformUpdate = DocumentOf<'PlatformUpdate'>;
type Firmware = DocumentOf<'Firmware'>;
type OSUpdate = DocumentOf<'OSUpdate'>;

export const POTA_SUCCESS = `${SUCCESS_MESSAGE} ${SUCCESS}`;

export type PlatformStep =
  | (Step & { part: 'firmware'; step: FirmwareStep })
  | (Step & { part: 'os'; step: OsStep })
  /** The pota update record; written before any reboot the run ends with. */
  | (Step & { part: 'record'; status: UpdateState; error?: string });

export interface PlatformObserved {
  bootId: string;
  completed?: { status: number; message: string };
  firmware: FirmwareObserved;
  os: OsObserved;
  /** Only before the OS part began (Debian): why no snapshot is possible, and whether that is allowed. */
  rollback?: { unsupported?: string; proceedWithoutRollback: boolean };
}

export interface PlatformPlanOptions extends Omit<OsPlanOptions, 'reboot'> {
  reboot?: readonly string[];
}

/** The firmware half as a Firmware request: it never reboots itself, the OS half's reboot serves both. */
export const firmwareDocOf = (doc: PlatformUpdate): Firmware => ({
  apiVersion: doc.apiVersion,
  kind: 'Firmware',
  // Its own state file, apart from a Firmware resource's.
  metadata: { name: `pota-${doc.metadata.name}` },
  spec: { ...doc.spec.firmware, reboot: false, requestId: doc.spec.requestId },
});

/** The OS half as an OSUpdate request; it always reboots, since the firmware needs that boot. */
export const osDocOf = (doc: PlatformUpdate): OSUpdate => ({
  apiVersion: doc.apiVersion,
  kind: 'OSUpdate',
  metadata: { name: doc.metadata.name },
  spec: { ...doc.spec.os, reboot: true, requestId: doc.spec.requestId },
});

const FIRMWARE_IDS: Record<FirmwareStep['type'], string> = {
  snapshot: 'bios',
  flash: 'flash',
  reboot: 'firmware-reboot',
  verdict: 'firmware-verdict',
};
const fw = (s: FirmwareStep): PlatformStep => ({ id: FIRMWARE_IDS[s.type], description: s.description, part: 'firmware', step: s });
// OS steps keep their ids: the OS planner reads `reboot` and `revert-reboot` back from the journal.
const os = (s: OsStep): PlatformStep => ({
  id: s.type === 'verdict' ? 'os-verdict' : s.id,
  description: s.type === 'record-pending' ? 'record the update as pending (pota)' : s.description,
  part: 'os',
  step: s,
});
const record = (status: UpdateState, error?: string): PlatformStep => ({
  id: 'record',
  description: `record the platform update: ${status}`,
  part: 'record',
  status,
  ...(error ? { error } : {}),
});
/** The record goes before a reboot that ends the run, so it is written whatever that reboot does. */
const withRecord = (steps: PlatformStep[], r: PlatformStep): PlatformStep[] => {
  const i = steps.findIndex((s) => s.id === 'revert-reboot');
  return i < 0 ? [...steps, r] : [...steps.slice(0, i), r, ...steps.slice(i)];
};

export function planPlatform(
  doc: PlatformUpdate | undefined,
  o: PlatformObserved,
  now: number,
  opts: PlatformPlanOptions,
): Plan<PlatformStep> {
  if (!doc) return { steps: [], outcome: { phase: 'Ready', reason: 'NotManaged', message: 'document removed; system left as it is' } };
  const { requestId } = doc.spec;
  if (o.completed) {
    const phase = o.completed.status === 200 ? 'Ready' : 'Failed';
    return { steps: [], outcome: { phase, reason: 'Completed', message: o.completed.message } };
  }
  const finish = (
    result: Result,
    phase: 'Ready' | 'Failed' | 'Stalled',
    reason: string,
    steps: PlatformStep[] = [],
  ): Plan<PlatformStep> => ({
    steps,
    ...(steps.length > 0 ? { runId: requestId } : {}),
    complete: { requestId, result },
    outcome: { phase, reason, message: result.message, result },
  });
  const failed = (message: string): Result => ({ status: Status.INSTALL_FAILED, message, job_id: '' });

  const firmware = planFirmware(firmwareDocOf(doc), o.firmware, now, {
    graceMs: opts.graceMs,
    ...(opts.reboot ? { reboot: opts.reboot } : {}),
  });
  const osOpts: OsPlanOptions = { apt: opts.apt, mender: opts.mender, reboot: opts.reboot !== undefined, graceMs: opts.graceMs };
  const osDoc = osDocOf(doc);
  const flashed = o.firmware.state?.invokedAt !== undefined;

  // The flash failed (before or after the tool ran): the OS part never starts.
  if (o.firmware.state?.failed) {
    const r = firmware.complete!.result;
    return finish(r, 'Failed', 'FlashFailed', [record('FAIL', r.message)]);
  }

  if (!flashed) {
    if (!o.os.state) {
      // Both halves are checked before either starts.
      if (firmware.complete) return { ...firmware, steps: [] } as Plan<PlatformStep>;
      if (doc.spec.os.mode !== 'full' && doc.spec.os.mode !== 'no-download')
        return finish(failed(`POTA: SOTA mode ${doc.spec.os.mode} is not supported; the OS part must install`), 'Stalled', 'Refused');
      const osCheck = planOsUpdate(osDoc, o.os, now, osOpts);
      if (osCheck.complete) return finish(osCheck.complete.result, 'Stalled', osCheck.outcome.reason);
      const r = o.rollback;
      if (o.os.family !== 'yocto' && r?.unsupported && !r.proceedWithoutRollback)
        return finish(failed(`${NO_SNAPSHOT} (${r.unsupported})`), 'Stalled', 'NoSnapshot');
      return {
        steps: [...firmware.steps.map(fw), ...osCheck.steps.map(os)],
        runId: requestId,
        gated: true,
        outcome: {
          phase: 'Waiting',
          reason: 'Installed',
          message: 'firmware flashed and OS updated; rebooting next',
          result: ok(ACCEPTED),
          requeueAfterMs: 0,
        },
      };
    }
    // Only reachable if the OS state outlived a firmware state: the flash is not repeated blindly.
    return finish(failed('POTA: the OS part began but the firmware flash is not recorded'), 'Failed', 'Inconsistent');
  }

  const rb = o.os.steps.reboot;
  const booted = rb !== undefined && rb.bootId !== o.bootId;
  if (!booted) {
    // Nothing for apt to upgrade still needs the boot that brings the new firmware up.
    const st = o.os.state;
    const observed =
      st?.installed?.noUpdate && !st.failure ? { ...o.os, state: { ...st, installed: { ...st.installed, noUpdate: false } } } : o.os;
    const p = planOsUpdate(osDoc, observed, now, osOpts);
    const steps = p.steps.map(os);
    if (!p.complete) {
      // The answer is POTA's, not the OS part's; given again while steps remain, so a crash before
      // the first pass ended still answers (the result history keeps one copy).
      const { result: _interim, ...outcome } = p.outcome;
      if (steps.length === 0) return { ...p, steps, outcome };
      return { ...p, steps, runId: requestId, outcome: { ...outcome, result: ok(ACCEPTED) } };
    }
    const r = p.complete.result;
    const result = r.status === Status.OK ? r : failed(`${r.message} (the firmware was flashed and takes effect at the next boot)`);
    return finish(result, 'Failed', p.outcome.reason, withRecord(steps, record('FAIL', result.message)));
  }

  // After the boot: FOTA check, then SOTA check.
  const p = planOsUpdate(osDoc, o.os, now, osOpts);
  if (!p.complete || !firmware.complete) return { ...p, steps: p.steps.map(os) };
  const fwOk = firmware.complete.result.status === Status.OK;
  const osOk = p.complete.result.status === Status.OK;
  const steps = [...firmware.steps.map(fw), ...p.steps.map(os)];
  if (fwOk && osOk) return finish(ok(POTA_SUCCESS), 'Ready', 'Updated', withRecord(steps, record('SUCCESS')));
  const message = !fwOk
    ? `${FAILURE_MESSAGE} ${osOk ? 'The OS update is kept: it passed its own check.' : p.complete.result.message}`
    : p.complete.result.message;
  return finish(failed(message), 'Failed', fwOk ? 'RolledBack' : 'FirmwareNotUpdated', withRecord(steps, record('FAIL', message)));
}
