/**
 * ThingsBoard's device MQTT API, natively: RPC requests on `v1/devices/me/rpc/request/<id>`
 * (`{"method","params"}`), answered on `v1/devices/me/rpc/response/<id>` with the reference's
 * `"<timestamp>: <message>"`; dynamic telemetry on `v1/devices/me/telemetry`, static telemetry
 * as client attributes on `v1/devices/me/attributes`, events as the telemetry key `event`.
 * Unlike the reference's template, values keep their JSON types and one bundle is one message.
 */
import type { Logger } from '../../core/log.js';
import type { AgentPort, Link } from '../link.js';
import type { Envelope, TelemetryOut } from '../telemetry.js';
import { type RpcOptions, runMethod } from './rpc.js';
import { strftime } from './template.js';

export const TB = {
  request: 'v1/devices/me/rpc/request/+',
  response: (id: string) => `v1/devices/me/rpc/response/${id}`,
  telemetry: 'v1/devices/me/telemetry',
  attributes: 'v1/devices/me/attributes',
} as const;

/** Telemetry keys the reference also sends as events (cloudadapter constants.LOGGED_TELEMETRY). */
export const LOGGED_TELEMETRY = new Set([
  'containerStats',
  'networkInformation',
  'resourceMonitoring',
  'resourceAlert',
  'softwareBOM',
  'queryResult',
  'queryEndResult',
]);

export interface CloudAdapter extends TelemetryOut {
  stop(): Promise<void>;
}

export interface ThingsBoardOptions {
  link: Link;
  port: AgentPort;
  log?: Logger;
  /** See RpcOptions.responseWaitMs; defaults to 8 s, inside ThingsBoard's 10 s RPC timeout. */
  responseWaitMs?: number;
  onDecommission?: () => Promise<void>;
  diagnose?: RpcOptions['diagnose'];
}

export const DEFAULT_RESPONSE_WAIT_MS = 8000;

/** The value a logged event carries: strings as they are, anything else as JSON. */
export const asText = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

export async function startThingsBoard(o: ThingsBoardOptions): Promise<CloudAdapter> {
  let stopped = false;
  const publish = (topic: string, body: unknown) => o.link.publish(topic, JSON.stringify(body), { qos: 1 });
  const adapter: CloudAdapter = {
    async event(message) {
      await publish(TB.telemetry, { ts: Date.now(), values: { event: message } });
    },
    async telemetry(e: Envelope) {
      for (const [k, v] of Object.entries(e.values)) if (LOGGED_TELEMETRY.has(k)) await adapter.event(`${k}: ${asText(v)}`);
      if (e.type === 'static_telemetry') await publish(TB.attributes, e.values);
      else await publish(TB.telemetry, { ts: Math.round(e.timestamp * 1000), values: e.values });
    },
    async stop() {
      stopped = true;
    },
  };
  const rpc = {
    port: o.port,
    out: adapter,
    origin: 'thingsboard',
    responseWaitMs: o.responseWaitMs ?? DEFAULT_RESPONSE_WAIT_MS,
    ...(o.onDecommission ? { onDecommission: o.onDecommission } : {}),
    ...(o.diagnose ? { diagnose: o.diagnose } : {}),
    ...(o.log ? { log: o.log } : {}),
  };
  await o.link.subscribe(TB.request, (topic, payload) => {
    if (stopped) return;
    const id = topic.slice(topic.lastIndexOf('/') + 1);
    let body: { method?: unknown; params?: unknown };
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      o.log?.warn({ topic }, 'thingsboard: RPC request is not JSON; ignored');
      return;
    }
    if (typeof body?.method !== 'string' || !body.method) {
      o.log?.info({ topic }, 'thingsboard: message without a method; ignored');
      return;
    }
    void runMethod(body.method, body.params, rpc)
      .then((message) => publish(TB.response(id), `${strftime('%Y-%m-%d %H:%M:%S UTC', new Date())}: ${message}`))
      .catch((err: unknown) => o.log?.warn({ err: String(err) }, 'thingsboard: RPC response not sent'));
  });
  return adapter;
}
