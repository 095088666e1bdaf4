import { setTimeout as sleep } from 'node:timers/promises';
import { errorResult, type GateResult } from './types.js';

/** One soak probe: failing (`ok` false), passing, or not failing yet not passing either (`pending`). */
export interface SoakProbe extends GateResult {
  /** E.g. a health check still `starting`: the soak goes on past its duration until it settles. */
  pending?: boolean;
}

export interface SoakOptions {
  durationMs: number;
  intervalMs: number;
  probe: () => Promise<SoakProbe>;
  /** How long past `durationMs` a pending probe may take to pass; then the soak fails (default 0). */
  settleMs?: number;
  /** Cancels the soak: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * The extra time a health check still starting at the end of a soak gets: the soak time again,
 * at least 30 s (Docker's default check interval, so a check left at its defaults runs once).
 */
export const healthSettleMs = (durationMs: number) => Math.max(durationMs, 30_000);

/**
 * After a change, the changed thing must stay healthy for a while, not just once: probe until
 * `durationMs` has passed, stopping at the first unhealthy probe. A pending last probe keeps it
 * going for up to `settleMs` more; still pending then, the soak fails with `pending` set.
 * `measured` is how long it was probed (ms), `threshold` the duration asked for.
 */
export async function soak({ durationMs, intervalMs, probe, settleMs = 0, signal }: SoakOptions): Promise<SoakProbe> {
  const start = performance.now();
  const elapsed = () => Math.round(performance.now() - start);
  for (;;) {
    signal?.throwIfAborted();
    const r: SoakProbe = await probe().catch((err: unknown) => errorResult('soak', err));
    signal?.throwIfAborted();
    const ms = elapsed();
    const timing = { measured: ms, threshold: durationMs, unit: 'ms' };
    if (!r.ok) return { ...r, ...timing, message: `unhealthy after ${ms} ms: ${r.message}` };
    if (ms >= durationMs && !r.pending) return { ...r, ...timing, message: `healthy for ${ms} ms: ${r.message}` };
    const end = r.pending ? durationMs + settleMs : durationMs;
    if (ms >= end) return { ...r, ...timing, ok: false, message: `not healthy after ${ms} ms: ${r.message}` };
    await sleep(Math.max(0, Math.min(intervalMs, end - ms)), undefined, { signal });
  }
}
