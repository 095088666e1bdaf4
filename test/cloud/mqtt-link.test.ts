/** MqttLink against a real aedes broker on loopback that goes away and comes back. */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { connect } from 'mqtt';
import { startEmbeddedBroker } from '../../src/cloud/broker.js';
import { MqttLink } from '../../src/cloud/mqtt-link.js';
import { Outbox } from '../../src/cloud/outbox.js';
import { createLogger } from '../../src/core/log.js';
import { until } from '../until.js';

const log = createLogger('silent');

/** An aedes broker on PORT that records what reaches it from the client named "link". */
async function recordingBroker(port: number, seen: string[]): Promise<{ close(): Promise<void> }> {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  broker.on('publish', (packet, client) => {
    if (client?.id === 'link' && packet.topic === 'out') seen.push(packet.payload.toString());
  });
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    broker.handle(s);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => broker.close(() => r()));
      await closed;
    },
  };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

it('publishes made while the broker is away reach it once, in order, after it comes (back)', async () => {
  const port = await freePort();
  const outbox = await Outbox.open(await mkdtemp(join(tmpdir(), 'inbm-link-')), () => 100);
  const link = await MqttLink.start({ url: `mqtt://127.0.0.1:${port}`, clientId: 'link', outbox, log, backoff: { minMs: 20, maxMs: 100 } });
  for (const t of ['1', '2', '3']) await link.publish('out', t);
  assert.equal(outbox.size, 3, 'no broker yet: all three wait on disk');

  const seen: string[] = [];
  let broker = await recordingBroker(port, seen);
  await until('outbox drained', async () => (outbox.size === 0 && seen.length === 3 ? true : undefined));
  await link.publish('out', '4');
  await until('direct publish', async () => (seen.length === 4 ? true : undefined));

  await broker.close();
  await until('link notices', async () => (link.connected ? undefined : true));
  await link.publish('out', '5');
  broker = await recordingBroker(port, seen);
  await link.publish('out', '6');
  await until('after the restart', async () => (seen.length >= 6 && outbox.size === 0 ? true : undefined));
  assert.deepEqual(seen, ['1', '2', '3', '4', '5', '6']);
  await link.stop();
  await broker.close();
});

it('subscriptions come back after a reconnect; the embedded broker is reachable on loopback', async () => {
  const broker = await startEmbeddedBroker(0, log);
  const outbox = await Outbox.open(await mkdtemp(join(tmpdir(), 'inbm-link-')), () => 100);
  const link = await MqttLink.start({ url: broker.url, clientId: 'link', outbox, log, backoff: { minMs: 20, maxMs: 100 } });
  const got: string[] = [];
  await link.subscribe('in/#', (topic, payload) => got.push(`${topic} ${payload}`));
  await link.whenConnected();
  const peer = connect(broker.url, { clientId: 'peer', reconnectPeriod: 50 });
  await until('subscribed', async () => {
    await peer.publishAsync('in/a', 'x', { qos: 1 });
    return got.length > 0 ? true : undefined;
  });
  // Drop the link's connection from the broker side: it must reconnect and subscribe again.
  const { port } = broker;
  await broker.close();
  await until('link notices', async () => (link.connected ? undefined : true));
  const again = await startEmbeddedBroker(port, log);
  got.length = 0;
  await until('resubscribed', async () => {
    if (peer.connected) await peer.publishAsync('in/b', 'y', { qos: 1 });
    return got.includes('in/b y') ? true : undefined;
  });
  await peer.endAsync(true);
  await link.stop();
  await again.close();
});
