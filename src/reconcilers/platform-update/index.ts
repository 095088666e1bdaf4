/**
 * PlatformUpdate (POTA): firmware then OS, one reboot. Composition only: the Firmware and
 * OSUpdate reconcilers observe and execute their own halves (as the derived requests of
 * plan.ts); this module adds the preconditions the OS half checks only when it starts (a
 * snapshot or proceedWithoutRollback), and the pota update record.
 */
import type { Reconciler } from '../../controller/types.js';
import { writeUpdateRecord } from '../../status/update-record.js';
import { type FirmwareOptions, firmwareReconciler } from '../firmware/index.js';
import { type OsUpdateOptions, osUpdateReconciler } from '../os-update/index.js';
import { firmwareDocOf, osDocOf, type PlatformObserved, type PlatformStep, type PlatformUpdate, planPlatform } from './plan.js';

export type { PlatformObserved, PlatformStep } from './plan.js';
export { planPlatform } from './plan.js';

export interface PlatformUpdateOptions {
  firmware: FirmwareOptions;
  os: OsUpdateOptions;
}

export function platformUpdateReconciler(opts: PlatformUpdateOptions): Reconciler<PlatformUpdate, PlatformObserved, PlatformStep> {
  const firmware = firmwareReconciler(opts.firmware);
  const os = osUpdateReconciler(opts.os);
  const planOpts = {
    apt: opts.os.apt !== undefined,
    mender: opts.os.mender !== undefined,
    graceMs: opts.os.graceMs,
    ...(opts.os.reboot ? { reboot: opts.os.reboot } : {}),
  };
  return {
    kind: 'PlatformUpdate',
    async observe(doc, ctx) {
      const [fwObserved, osObserved] = [await firmware.observe(doc && firmwareDocOf(doc), ctx), await os.observe(doc && osDocOf(doc), ctx)];
      const o: PlatformObserved = { bootId: ctx.journal.bootId, firmware: fwObserved, os: osObserved };
      if (!doc) return o;
      const completed = ctx.journal.completed(doc.spec.requestId);
      if (completed) return { ...o, completed };
      if (!osObserved.state && osObserved.family !== 'yocto') {
        const unsupported = await opts.os.snapshots.unsupported();
        o.rollback = {
          ...(unsupported ? { unsupported } : {}),
          proceedWithoutRollback: unsupported ? (await opts.os.conf()).proceedWithoutRollback : false,
        };
      }
      return o;
    },
    plan: (doc, observed, now) => planPlatform(doc, observed, now, planOpts),
    async execute(s, doc, ctx) {
      const metadata = JSON.stringify(doc.spec);
      switch (s.part) {
        case 'firmware':
          return firmware.execute(s.step, firmwareDocOf(doc), ctx);
        case 'os':
          // One record for the whole request: pending under Type pota, not sota.
          if (s.step.type === 'record-pending') return writeUpdateRecord(opts.os.stateDir, { status: 'PENDING', type: 'pota', metadata });
          return os.execute(s.step, osDocOf(doc), ctx);
        case 'record':
          return writeUpdateRecord(opts.os.stateDir, { status: s.status, type: 'pota', metadata, ...(s.error ? { error: s.error } : {}) });
      }
    },
  };
}
