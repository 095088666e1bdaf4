/**
 * The embedded broker used when no broker is configured: aedes (MQTT 3.1.1), plain TCP, on the
 * loopback interface only, so `mosquitto_pub -h 127.0.0.1 -p PORT` works out of the box on a
 * demo device. A production device configures Mosquitto with TLS and an ACL (`inbm provision`).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../core/log.js';

export const EMBEDDED_HOST = '127.0.0.1';

export interface EmbeddedBroker {
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:port (0 = any free port); rejects when the port is taken. */
export async function startEmbeddedBroker(port: number, log: Logger): Promise<EmbeddedBroker> {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  // Request/response traffic is small packets: without TCP_NODELAY a round trip waits ~40 ms per side.
  const server: Server = createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  broker.on('clientError', (client, err) => log.debug({ client: client.id, err: { message: err.message } }, 'broker client error'));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, EMBEDDED_HOST, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((r) => broker.close(() => r()));
    throw err;
  }
  const actual = (server.address() as { port: number }).port;
  return {
    port: actual,
    url: `mqtt://${EMBEDDED_HOST}:${actual}`,
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => broker.close(() => r()));
      await closed;
    },
  };
}
