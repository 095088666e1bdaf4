import { setTimeout as sleep } from 'node:timers/promises';
import { errorResult, type GateResult } from './types.js';

export interface SoakOptions {
  durationMs: number;
  intervalMs: number;
  probe: () => Promise<GateResult>;
  /** Cancels the soak: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * After a change, the changed thing must stay healthy for a while, not just once: probe until
 * `durationMs` has passed, stopping at the first unhealthy probe. `measured` is how long it
 * stayed healthy (ms), `threshold` the duration asked for.
 */
export async function soak({ durationMs, intervalMs, probe, signal }: SoakOptions): Promise<GateResult> {
  const start = performance.now();
  const elapsed = () => Math.round(performance.now() - start);
  for (;;) {
    signal?.throwIfAborted();
    const r = await probe().catch((err: unknown) => errorResult('soak', err));
    signal?.throwIfAborted();
    const ms = elapsed();
    const timing = { measured: ms, threshold: durationMs, unit: 'ms' };
    if (!r.ok) return { ...r, ...timing, message: `unhealthy after ${ms} ms: ${r.message}` };
    if (ms >= durationMs) return { ...r, ...timing, message: `healthy for ${ms} ms: ${r.message}` };
    await sleep(Math.max(0, Math.min(intervalMs, durationMs - ms)), undefined, { signal });
  }
}
