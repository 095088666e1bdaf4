/**
 * The reference's generic cloud adapter: every topic and payload comes from the JSON
 * configuration (see template.ts), so a cloud that speaks MQTT with JSON needs no code.
 * Telemetry is sent one key per message, as the reference's CloudPublisher does.
 */
import type { Logger } from '../../core/log.js';
import { InbmError, Status } from '../../core/result.js';
import type { AgentPort, Link } from '../link.js';
import type { Envelope } from '../telemetry.js';
import { type RpcOptions, runMethod } from './rpc.js';
import { Formatter, GenericConfig, MethodParser } from './template.js';
import { asText, type CloudAdapter, DEFAULT_RESPONSE_WAIT_MS, LOGGED_TELEMETRY } from './thingsboard.js';

export interface GenericOptions {
  link: Link;
  port: AgentPort;
  /** The `config` object of adapter.cfg; validated here. */
  config: unknown;
  log?: Logger;
  responseWaitMs?: number;
  onDecommission?: () => Promise<void>;
  diagnose?: RpcOptions['diagnose'];
}

/** Validates a generic configuration; the error names the offending field. */
export function parseGenericConfig(raw: unknown): GenericConfig {
  const r = GenericConfig.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new InbmError(Status.COMMAND_FAILURE, `cloud adapter config: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
}

export async function startGeneric(o: GenericOptions): Promise<CloudAdapter> {
  const c = parseGenericConfig(o.config);
  const defaults = { username: c.mqtt.username, client_id: c.mqtt.client_id };
  const messenger = (ch: { pub: string; format: string }) => ({
    topic: new Formatter(ch.pub, defaults),
    payload: new Formatter(ch.format, defaults),
  });
  const event = messenger(c.event);
  const telemetry = messenger(c.telemetry);
  const attribute = messenger(c.attribute);
  const method = messenger(c.method);
  const parser = new MethodParser(c.method.parse.single, c.method.parse.aggregate);
  const send = (m: ReturnType<typeof messenger>, fields: Record<string, string>, time?: Date) =>
    o.link.publish(m.topic.format(fields, time), m.payload.format(fields, time), { qos: 1 });
  let stopped = false;
  // The reference's connection counts requests; templates without a parsed id get the next number.
  let requestCount = 0;
  const nextId = () => String(++requestCount);

  const adapter: CloudAdapter = {
    event: (message) => send(event, { value: message }),
    async telemetry(e: Envelope) {
      // The reference stamps dynamic values with the bundle's whole second.
      const time = new Date(Math.floor(e.timestamp) * 1000);
      for (const [key, v] of Object.entries(e.values)) {
        const value = asText(v);
        if (LOGGED_TELEMETRY.has(key)) await adapter.event(`${key}: ${value}`);
        if (e.type === 'dynamic_telemetry') await send(telemetry, { key, value }, time);
        else await send(attribute, { key, value });
      }
    },
    async stop() {
      stopped = true;
    },
  };
  const rpc = {
    port: o.port,
    out: adapter,
    origin: 'cloud',
    responseWaitMs: o.responseWaitMs ?? DEFAULT_RESPONSE_WAIT_MS,
    ...(o.onDecommission ? { onDecommission: o.onDecommission } : {}),
    ...(o.diagnose ? { diagnose: o.diagnose } : {}),
    ...(o.log ? { log: o.log } : {}),
  };

  const onMethod = (topic: string, payload: Buffer) => {
    if (stopped) return;
    let calls: ReturnType<MethodParser['parse']>;
    try {
      calls = parser.parse(topic, payload.toString('utf8'));
    } catch {
      o.log?.warn({ topic }, 'cloud: method message is not JSON; ignored');
      return;
    }
    for (const call of calls) {
      if (!call.method) {
        o.log?.info({ topic }, 'cloud: message without a method; ignored');
        return;
      }
      const symbols = { request_id: nextId(), ...call.symbols };
      void runMethod(call.method, call.args, rpc)
        .then((message) => send(method, { ...symbols, message }))
        .catch((err: unknown) => o.log?.warn({ err: String(err) }, 'cloud: method response not sent'));
    }
  };
  await o.link.subscribe(c.method.sub, onMethod);
  // Echoers acknowledge every message on their topic with the next request id (reference EchoHandler).
  for (const e of c.echoers ?? []) {
    const echo = messenger(e);
    await o.link.subscribe(e.sub, () => {
      if (!stopped) void send(echo, { request_id: nextId() }).catch(() => undefined);
    });
  }
  return adapter;
}
