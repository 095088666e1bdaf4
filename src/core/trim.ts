/**
 * One full garbage collection once start-up has settled. Start-up (module loading, the first
 * observation of every resource, the cloud link) leaves 15–20 MiB of garbage that V8's idle
 * memory reducer only collects after later allocation activity; an agent that then sits idle
 * for days would keep it resident. V8 offers no API for this without --expose-gc, so the flag is
 * set at run time and the gc function taken from a fresh context.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export function trimAfterStart(delayMs: number): NodeJS.Timeout {
  const t = setTimeout(() => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (() => void) | undefined;
    gc?.();
  }, delayMs);
  t.unref();
  return t;
}
