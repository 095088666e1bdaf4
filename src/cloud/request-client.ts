/**
 * What INBC does (inbm-reference.md §7): publish one manifest on the local broker, print the
 * events that come meanwhile, and finish with the result on manageability/response. The exit
 * code is INBC's: 0 success, 1 failure, 2 timed out, 3 broker unreachable, 6 agent busy.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Result, Status } from '../core/result.js';
import { TOPICS } from './inbm-topics.js';
import { loadConnect } from './mqtt-connect.js';

export const EXIT = { OK: 0, FAILED: 1, TIMED_OUT: 2, UNAVAILABLE: 3, BUSY: 6 } as const;

export interface BrokerClientSettings {
  url: string;
  caFile?: string;
  certFile: string;
  keyFile: string;
  protocolVersion?: 4 | 5;
}

/** INBC's time-outs by request, in seconds. */
export function timeoutFor(xml: string): number {
  const ota = /<type>\s*(aota|fota|sota|pota)\s*<\/type>/.exec(xml)?.[1];
  if (ota) return { fota: 260, sota: 900, pota: 1160, aota: 500 }[ota]! * 1000;
  if (/<type>\s*source\s*<\/type>/.test(xml)) return 30_000;
  return 120_000;
}

/** The request topic INBC uses: restart and query have their own, everything else is install. */
export function requestTopic(xml: string): string {
  if (/<cmd>\s*restart\s*<\/cmd>/.test(xml) && /<type>\s*cmd\s*<\/type>/.test(xml)) return `${TOPICS.request}/restart`;
  if (/<cmd>\s*query\s*<\/cmd>/.test(xml) && /<type>\s*cmd\s*<\/type>/.test(xml)) return `${TOPICS.request}/query`;
  return `${TOPICS.request}/install`;
}

export function exitCodeOf(result: Result): number {
  if (result.status === Status.OK) return EXIT.OK;
  if (result.status === Status.IN_PROGRESS || result.status === 302) return EXIT.BUSY;
  return EXIT.FAILED;
}

export interface BrokerOutcome {
  code: number;
  result?: Result;
  /** Why there is no result (timed out, unreachable). */
  reason?: string;
}

/**
 * Sends XML and waits for the result. The response topic carries no request id (as in the
 * reference), so the first result after the publish is taken as ours.
 */
export async function requestOverBroker(
  s: BrokerClientSettings,
  xml: string,
  onEvent: (text: string) => void,
  timeoutMs = timeoutFor(xml),
  connectTimeoutMs = 10_000,
): Promise<BrokerOutcome> {
  const connect = await loadConnect();
  const client = connect(s.url, {
    clientId: `inbc-${process.pid}-${Date.now()}`,
    protocolVersion: s.protocolVersion ?? 4,
    reconnectPeriod: 0,
    connectTimeout: connectTimeoutMs,
    ...(s.caFile ? { ca: await readFile(s.caFile) } : {}),
    cert: await readFile(s.certFile),
    key: await readFile(s.keyFile),
  });
  try {
    const up = await new Promise<boolean>((resolve) => {
      client.once('connect', () => resolve(true));
      client.once('error', () => resolve(false));
      client.once('close', () => resolve(false));
    });
    if (!up) return { code: EXIT.UNAVAILABLE, reason: `cannot reach the broker at ${s.url}` };
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    // MQTT 5: a response topic of our own and correlation data, so another requester's result
    // is never taken for ours. 3.1.1 has only the shared topic, as the reference does.
    const v5 = s.protocolVersion === 5;
    const id = randomBytes(8).toString('hex');
    const responseTopic = v5 ? `${TOPICS.response}/inbc-${id}` : TOPICS.response;
    let answer: ((r: Result) => void) | undefined;
    const answered = new Promise<Result>((r) => (answer = r));
    client.on('message', (topic, payload, packet) => {
      const text = payload.toString('utf8');
      if (topic === TOPICS.event) onEvent(text);
      else if (topic === responseTopic && (!v5 || packet.properties?.correlationData?.toString() === id)) answer?.(parseResult(text));
    });
    await client.subscribeAsync([responseTopic, TOPICS.event], { qos: 1 });
    await client.publishAsync(requestTopic(xml), xml, {
      qos: 1,
      ...(v5 ? { properties: { responseTopic, correlationData: Buffer.from(id) } } : {}),
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), timeoutMs)));
    const result = await Promise.race([answered, timedOut]);
    clearTimeout(timer);
    if (!result) return { code: EXIT.TIMED_OUT, reason: `no result within ${Math.round(timeoutMs / 1000)} s` };
    return { code: exitCodeOf(result), result };
  } finally {
    await client.endAsync(true).catch(() => {});
  }
}

/** A JSON result, or a reference free-text one (success when it says SUCCESSFUL, as INBC decides). */
function parseResult(text: string): Result {
  try {
    const r = JSON.parse(text) as Partial<Result>;
    if (typeof r.status === 'number') return { status: r.status, message: String(r.message ?? ''), job_id: String(r.job_id ?? '') };
  } catch {
    // free text
  }
  return { status: text.includes('SUCCESSFUL') ? Status.OK : Status.INSTALL_FAILED, message: text, job_id: '' };
}
