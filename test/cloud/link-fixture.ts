/**
 * Real MQTT for the cloud tests: an aedes broker on a free loopback port, the agent's own
 * MqttLink (with its outbox in a temp dir) as the agent side, and a plain mqtt.js client as
 * the cloud side that records what it receives.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { type EmbeddedBroker, startEmbeddedBroker } from '../../src/cloud/broker.js';
import { MqttLink } from '../../src/cloud/mqtt-link.js';
import { Outbox } from '../../src/cloud/outbox.js';
import { createLogger } from '../../src/core/log.js';
import { until } from '../until.js';

export const quiet = createLogger('silent');

export interface Received {
  topic: string;
  text: string;
  at: number;
}

export interface CloudClient {
  client: MqttClient;
  received: Received[];
  /** Messages received on topics matching the filter (exact topic or a prefix ending in '/'). */
  on(topicOrPrefix: string): Received[];
  /** Waits until `count` messages matched. */
  wait(topicOrPrefix: string, count?: number, ms?: number): Promise<Received[]>;
  publish(topic: string, payload: string): Promise<void>;
}

export interface Mqtt {
  broker: EmbeddedBroker;
  link: MqttLink;
  cloud: CloudClient;
  close(): Promise<void>;
}

export async function cloudClient(url: string, filters: string[]): Promise<CloudClient> {
  const client = await connectAsync(url, { clientId: `cloud-${process.pid}-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 0 });
  const received: Received[] = [];
  client.on('message', (topic, payload) => received.push({ topic, text: payload.toString('utf8'), at: Date.now() }));
  if (filters.length > 0) await client.subscribeAsync(filters, { qos: 1 });
  const on = (t: string) => received.filter((r) => (t.endsWith('/') ? r.topic.startsWith(t) : r.topic === t));
  return {
    client,
    received,
    on,
    wait: (t, count = 1, ms = 10_000) => until(`${count} message(s) on ${t}`, async () => (on(t).length >= count ? on(t) : undefined), ms),
    async publish(topic, payload) {
      await client.publishAsync(topic, payload, { qos: 1 });
    },
  };
}

/** A broker, the agent's link to it, and a cloud client subscribed to `filters`. */
export async function startMqtt(filters: string[]): Promise<Mqtt> {
  const broker = await startEmbeddedBroker(0, quiet);
  const dir = await mkdtemp(join(tmpdir(), 'inbm-link-'));
  const outbox = await Outbox.open(join(dir, 'outbox'), () => 100);
  const link = await MqttLink.start({ url: broker.url, clientId: `agent-${process.pid}`, outbox, log: quiet });
  await link.whenConnected();
  const cloud = await cloudClient(broker.url, filters);
  return {
    broker,
    link,
    cloud,
    async close() {
      await cloud.client.endAsync(true);
      await link.stop();
      await broker.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
