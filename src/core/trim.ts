/**
 * Full garbage collections at quiet moments. Start-up (module loading, the first observation of
 * every resource, the cloud link) leaves 15–20 MiB of garbage that V8's idle memory reducer only
 * collects after later allocation activity; an agent that then sits idle for days would keep it
 * resident. Each resync (inventory, store rescan, telemetry on its own timers) leaves a little
 * more: one collection per resync keeps the idle agent ~1.5 MiB smaller over ten minutes (bench
 * agent-footprint) for a few milliseconds of CPU every resyncSeconds. V8 offers no API for this
 * without --expose-gc, so the flag is set at run time and the gc function taken from a fresh context.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

/** One full collection now. */
export function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as (() => void) | undefined;
  }
  gc?.();
}

export function trimAfterStart(delayMs: number): NodeJS.Timeout {
  const t = setTimeout(collectGarbage, delayMs);
  t.unref();
  return t;
}
