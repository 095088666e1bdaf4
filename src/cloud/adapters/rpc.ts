/**
 * One cloud method call, whichever adapter received it: build the manifest, hand it to the
 * agent, and decide the response text. Shared so the native and templated adapters cannot drift.
 */
import type { Logger } from '../../core/log.js';
import { type Result, resultOf } from '../../core/result.js';
import type { DiagnosticResult } from '../diagnostics.js';
import type { AgentPort } from '../link.js';
import type { TelemetryOut } from '../telemetry.js';
import { methodCall, ParamError, toArgs } from './methods.js';

export interface RpcOptions {
  port: AgentPort;
  /** Events go here (the method's trigger text, then the final result), as the reference forwards them. */
  out: Pick<TelemetryOut, 'event'>;
  /** Names the request's origin in the agent's records, e.g. `thingsboard`. */
  origin: string;
  /**
   * How long the response waits for the final result. A cloud's two-way RPC times out
   * (ThingsBoard: 10 s by default), so a longer request is answered with the reference's
   * trigger text and its result follows as an event.
   */
  responseWaitMs: number;
  /** decommission_device: what the reference does first (delete the adapter configuration). */
  onDecommission?: () => Promise<void>;
  /**
   * `triggerdiagnostic` (ours, not the reference's): runs a diagnostic command (`cmd`, default
   * install_check) and answers with its `{"cmd","rc","message"}`.
   */
  diagnose?: (cmd: string) => Promise<DiagnosticResult>;
  log?: Logger;
}

export const DIAGNOSTIC_METHOD = 'triggerdiagnostic';

const text = (r: Result) => JSON.stringify(r);

/** The response message for one method call; never throws. */
export async function runMethod(method: string, params: unknown, o: RpcOptions): Promise<string> {
  if (method === DIAGNOSTIC_METHOD && o.diagnose) return JSON.stringify(await o.diagnose(toArgs(params).cmd || 'install_check'));
  let call: ReturnType<typeof methodCall>;
  try {
    call = methodCall(method, params);
  } catch (err) {
    if (!(err instanceof ParamError)) throw err;
    const message = `Command ${method} failed: ${err.message}`;
    await o.out.event(message).catch(() => undefined);
    return message;
  }
  if (!call) return `Unknown method: '${method}'`;
  o.log?.info({ method, origin: o.origin }, 'cloud method');
  if (call.decommission) await o.onDecommission?.().catch((err: unknown) => o.log?.warn({ err }, 'adapter configuration not removed'));
  await o.out.event(call.trigger).catch(() => undefined);

  const result = o.port.submitManifest(call.xml, o.origin).catch((err: unknown) => resultOf(err));
  // The final result is always an event, whether or not it made it into the response.
  void result.then((r) => o.out.event(text(r))).catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), o.responseWaitMs);
    timer.unref();
  });
  const first = await Promise.race([result, late]);
  clearTimeout(timer);
  return first ? text(first) : call.trigger;
}
