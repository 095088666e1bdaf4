/**
 * Firmware (FOTA): eligibility before any download, the BIOS recorded, one flash per requestId,
 * the reboot, and the verdict once the boot id has changed: success only if both the BIOS
 * version and its release date moved.
 */
import { stat } from 'node:fs/promises';
import type { StepRecord } from '../../controller/journal.js';
import type { Plan, Reconciler, Step } from '../../controller/types.js';
import { InbmError, ok, type Result, Status } from '../../core/result.js';
import type { DocumentOf } from '../../desired/kinds/index.js';
import { runCommand } from '../../drivers/command.js';
import { type PlatformInfo, readPlatform } from '../../platform/dmi.js';
import { type FirmwareDb, type FirmwareProduct, findProduct, readFirmwareDb } from '../../platform/firmware-db.js';
import { writeUpdateRecord } from '../../status/update-record.js';
import { type BiosSnapshot, checkEligibility, type EligibilityInput, firmwareVerdict, parseGuids } from './eligibility.js';
import { type FlashDeps, flashFirmware } from './flash.js';
import { type FlashState, flashStatePath, readFlashState, writeFlashState } from './state.js';

type Firmware = DocumentOf<'Firmware'>;

export interface FirmwareOptions extends FlashDeps {
  stateDir: string;
  dmiDir: string;
  /** Device-tree roots tried in order when there is no DMI directory. */
  deviceTreeDirs: readonly string[];
  firmwareToolInfo: string;
  reboot?: readonly string[];
  /** How long the reboot may take to happen before the command is run again. */
  graceMs: number;
}

export type FirmwareStep =
  | (Step & { type: 'snapshot'; before: BiosSnapshot })
  | (Step & { type: 'flash'; product: FirmwareProduct; guid?: string; bootId: string })
  | (Step & { type: 'reboot'; argv: readonly string[] })
  | (Step & { type: 'verdict'; success: boolean; message: string });

export interface FirmwareObserved {
  bootId: string;
  completed?: { status: number; message: string };
  state?: FlashState;
  reboot?: StepRecord;
  platform?: PlatformInfo;
  /** What eligibility needs; gathered only while the flash has not begun. */
  eligibility?: Omit<EligibilityInput, 'target'>;
}

export const ACCEPTED = 'COMMAND SUCCESSFUL';

/** Pure: what to do for this request given the journal, the state file and the platform. */
export function planFirmware(
  doc: Firmware | undefined,
  o: FirmwareObserved,
  now: number,
  opts: Pick<FirmwareOptions, 'reboot' | 'graceMs'>,
): Plan<FirmwareStep> {
  if (!doc) return { steps: [], outcome: { phase: 'Ready', reason: 'NotManaged', message: 'document removed' } };
  const { requestId } = doc.spec;
  if (o.completed) {
    const phase = o.completed.status === 200 ? 'Ready' : 'Failed';
    return { steps: [], outcome: { phase, reason: 'Completed', message: o.completed.message } };
  }
  const finish = (
    result: Result,
    phase: 'Ready' | 'Failed' | 'Stalled',
    reason: string,
    steps: FirmwareStep[] = [],
  ): Plan<FirmwareStep> => ({
    steps,
    ...(steps.length > 0 ? { runId: requestId } : {}),
    complete: { requestId, result },
    outcome: { phase, reason, message: result.message, result },
  });
  const st = o.state;
  if (st?.failed) return finish({ ...st.failed, job_id: '' }, 'Failed', 'FlashFailed');

  if (st?.invokedAt) {
    if (st.invokedBootId !== o.bootId) {
      const v = firmwareVerdict(st.before, o.platform);
      const result = v.success ? ok(v.message) : { status: Status.INSTALL_FAILED, message: v.message, job_id: '' };
      const step: FirmwareStep = { id: 'verdict', type: 'verdict', ...v, description: `record the verdict: ${v.message}` };
      return finish(result, v.success ? 'Ready' : 'Failed', v.success ? 'Updated' : 'NotUpdated', [step]);
    }
    const waiting = (message: string, requeueAfterMs?: number, steps: FirmwareStep[] = []): Plan<FirmwareStep> => ({
      steps,
      runId: requestId,
      outcome: { phase: 'Waiting', reason: 'WaitingForReboot', message, ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}) },
    });
    if (!doc.spec.reboot || !opts.reboot) return waiting('firmware applied; it takes effect at the next reboot');
    const r = o.reboot;
    const elapsed = r ? now - Date.parse(r.at) : 0;
    // A reboot that began but never completed and did not take the machine down in the grace period is run again.
    if (!r || (r.state === 'started' && elapsed >= opts.graceMs)) {
      return waiting('firmware applied, rebooting', opts.graceMs, [rebootStep(opts.reboot)]);
    }
    return waiting(
      r.state === 'done' && elapsed >= opts.graceMs
        ? 'the reboot command ran but the device did not go down'
        : 'firmware applied, rebooting',
      elapsed < opts.graceMs ? opts.graceMs - elapsed : opts.graceMs,
    );
  }

  // Nothing flashed yet (or a flash that died before touching the firmware): decide afresh.
  const refuse = (reason: string) => finish(new InbmError(Status.INSTALL_FAILED, reason).toResult(), 'Stalled', 'NotEligible');
  if (!o.eligibility) return refuse('Firmware Update Aborted: the platform was not observed');
  const e = checkEligibility({ target: doc.spec, ...o.eligibility });
  if (!e.ok) return refuse(e.reason);
  if (doc.spec.reboot && !opts.reboot) return refuse('Firmware Update Aborted: reboot requested but no reboot command is set');
  const before = { ...pick(o.platform) };
  const steps: FirmwareStep[] = [
    { id: 'snapshot', type: 'snapshot', before, description: `record the running BIOS ${before.biosVersion} (${before.biosReleaseDate})` },
    {
      id: 'flash',
      type: 'flash',
      product: e.product,
      ...(e.guid ? { guid: e.guid } : {}),
      bootId: o.bootId,
      description: e.product.destPath
        ? `place ${doc.spec.source.url ?? doc.spec.source.path} in ${e.product.destPath}`
        : `flash ${doc.spec.source.url ?? doc.spec.source.path} with ${e.product.tool}`,
    },
  ];
  if (doc.spec.reboot) steps.push(rebootStep(opts.reboot!));
  const result = ok(ACCEPTED);
  return {
    steps,
    runId: requestId,
    gated: true,
    outcome: {
      phase: 'Waiting',
      reason: 'WaitingForReboot',
      message: 'Firmware update in process...',
      result,
      ...(doc.spec.reboot ? { requeueAfterMs: opts.graceMs } : {}),
    },
  };
}

const rebootStep = (argv: readonly string[]): FirmwareStep => ({
  id: 'reboot',
  type: 'reboot',
  argv,
  description: 'reboot into the new firmware',
});
const pick = (p: PlatformInfo | undefined): BiosSnapshot => ({
  ...(p?.biosVersion ? { biosVersion: p.biosVersion } : {}),
  ...(p?.biosReleaseDate ? { biosReleaseDate: p.biosReleaseDate } : {}),
});

/** The inputs of the eligibility check that touch the machine: database, tool, GUID list, certificate. */
export async function observeEligibility(
  platform: PlatformInfo | undefined,
  opts: Pick<FirmwareOptions, 'firmwareToolInfo' | 'otaCertFile'>,
): Promise<Omit<EligibilityInput, 'target'>> {
  let db: FirmwareDb | { error: string };
  try {
    db = await readFirmwareDb(opts.firmwareToolInfo);
  } catch (err) {
    db = { error: err instanceof InbmError ? err.reason : String(err) };
  }
  const signatureRequired = opts.otaCertFile ? (await stat(opts.otaCertFile).catch(() => undefined)) !== undefined : false;
  const input: Omit<EligibilityInput, 'target'> = { platform, db, signatureRequired };
  const product = platform && !('error' in db) ? findProduct(db, platform.match.product) : undefined;
  if (!product?.tool || product.destPath) return input;
  if (product.tool.includes('/')) {
    input.toolFound = (await stat(product.tool).catch(() => undefined))?.isFile() ?? false;
    if (!input.toolFound) return input;
  }
  if (product.guid) {
    try {
      input.guids = parseGuids((await runCommand([product.tool, '-l'])).stdout);
    } catch (err) {
      input.guids = { error: err instanceof InbmError ? err.reason : String(err) };
    }
  }
  return input;
}

export function firmwareReconciler(opts: FirmwareOptions): Reconciler<Firmware, FirmwareObserved, FirmwareStep> {
  const statePath = (doc: Firmware) => flashStatePath(opts.stateDir, doc.metadata.name);
  return {
    kind: 'Firmware',
    async observe(doc, { journal }) {
      if (!doc) return { bootId: journal.bootId };
      const { requestId } = doc.spec;
      const completed = journal.completed(requestId);
      if (completed) return { bootId: journal.bootId, completed };
      const state = await readFlashState(statePath(doc), requestId);
      const reboot = journal.step(requestId, 'reboot');
      const platform = await readPlatform(opts);
      const o: FirmwareObserved = {
        bootId: journal.bootId,
        ...(state ? { state } : {}),
        ...(reboot ? { reboot } : {}),
        ...(platform ? { platform } : {}),
      };
      if (!state?.invokedAt && !state?.failed) o.eligibility = await observeEligibility(platform, opts);
      return o;
    },
    plan: (doc, observed, now) => planFirmware(doc, observed, now, opts),
    async execute(step, doc, { log }) {
      const path = statePath(doc);
      const metadata = JSON.stringify(doc.spec);
      switch (step.type) {
        case 'snapshot':
          await writeFlashState(path, { requestId: doc.spec.requestId, before: step.before });
          return;
        case 'flash': {
          const state = await readFlashState(path, doc.spec.requestId);
          if (!state) throw new InbmError(Status.INSTALL_FAILED, 'Firmware Update Aborted: the BIOS snapshot is missing');
          try {
            await flashFirmware(opts, {
              target: doc.spec,
              product: step.product,
              ...(step.guid ? { guid: step.guid } : {}),
              statePath: path,
              state,
              bootId: step.bootId,
              log,
            });
          } catch (err) {
            if (!(err instanceof InbmError && err.retryable))
              await writeUpdateRecord(opts.stateDir, {
                status: 'FAIL',
                type: 'fota',
                metadata,
                error: err instanceof InbmError ? err.reason : String(err),
              });
            throw err;
          }
          await writeUpdateRecord(opts.stateDir, { status: 'PENDING', type: 'fota', metadata });
          return;
        }
        case 'reboot':
          await runCommand(step.argv);
          return;
        case 'verdict':
          await writeUpdateRecord(opts.stateDir, {
            status: step.success ? 'SUCCESS' : 'FAIL',
            type: 'fota',
            metadata,
            ...(step.success ? {} : { error: step.message }),
          });
      }
    },
  };
}
