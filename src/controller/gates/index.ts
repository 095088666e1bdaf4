import { InbmError, installFailed, Status } from '../../core/result.js';
import { batteryGate } from './battery.js';
import { memoryGate } from './memory.js';
import { networkGate } from './network.js';
import { servicesGate } from './services.js';
import { storageGate } from './storage.js';
import { errorResult, type Gate, type GateContext, type GateResult } from './types.js';

export { batteryGate } from './battery.js';
export { memoryGate } from './memory.js';
export { networkGate } from './network.js';
export { servicesGate } from './services.js';
export { healthSettleMs, type SoakProbe, soak } from './soak.js';
export { storageGate } from './storage.js';
export type { Gate, GateContext, GateResult } from './types.js';

export interface GateRun {
  ok: boolean;
  results: GateResult[];
}

/**
 * Runs every gate, one after another in the given order, and reports all of them: an operator
 * fixing a blocked update wants the whole list, not one failure per attempt.
 * Rejects only when `ctx.signal` is aborted.
 */
export async function runGates(gates: readonly Gate[], ctx: GateContext = {}): Promise<GateRun> {
  const results: GateResult[] = [];
  for (const g of gates) {
    ctx.signal?.throwIfAborted();
    results.push(await g.check(ctx).catch((err: unknown) => errorResult(g.name, err)));
  }
  ctx.signal?.throwIfAborted();
  return { ok: results.every((r) => r.ok), results };
}

export interface PreInstallOptions {
  cacheDir: string;
  meminfoPath?: string;
  powerSupplyDir?: string;
  routePath?: string;
  minStorageMB: number;
  minMemoryMB: number;
  minPowerPercent: number;
  networkCheck: boolean;
  services: string[];
  serviceCheckCommand: string[] | undefined;
  serviceTimeoutMs?: number;
}

/** The reference's install_check, in its order: network → storage → memory → battery → services (swCheck). */
export function preInstallGates(o: PreInstallOptions): Gate[] {
  return [
    networkGate({ routePath: o.routePath, enabled: o.networkCheck }),
    storageGate({ dir: o.cacheDir, minMB: o.minStorageMB }),
    memoryGate({ meminfoPath: o.meminfoPath, minMB: o.minMemoryMB }),
    batteryGate({ powerSupplyDir: o.powerSupplyDir, minPercent: o.minPowerPercent }),
    servicesGate({ services: o.services, command: o.serviceCheckCommand, timeoutMs: o.serviceTimeoutMs }),
  ];
}

/**
 * The error for a run that did not pass: 301 when some gate could not be measured, otherwise
 * 400 "Pre OTA check failed" as the reference sends, retryable since conditions change.
 */
export function gateError(run: GateRun): InbmError | undefined {
  if (run.ok) return undefined;
  const failed = run.results.filter((r) => !r.ok);
  const reason = failed.map((r) => `${r.gate}: ${r.message}`).join('; ');
  if (failed.some((r) => r.error)) return new InbmError(Status.COMMAND_FAILURE, reason);
  return installFailed(`Pre OTA check failed: ${reason}`, true);
}
