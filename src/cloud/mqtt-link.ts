/**
 * A Link over mqtt.js: TLS with client certificates, MQTT 3.1.1 or 5, QoS 1, reconnect with a
 * capped, jittered exponential backoff, and the persistent outbox for whatever cannot be handed
 * to the broker right now.
 *
 * Redelivery is ours alone: every reconnect starts mqtt.js with fresh in-memory stores, and a
 * message whose acknowledgement the lost connection swallowed goes back to the outbox under its
 * original sequence number. So nothing is sent twice by two mechanisms, and order is kept.
 */
import { readFile } from 'node:fs/promises';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { Logger } from '../core/log.js';
import type { Link, PublishOptions } from './link.js';
import { loadConnect } from './mqtt-connect.js';
import type { Outbox, OutboxMessage } from './outbox.js';

export interface MqttLinkOptions {
  url: string;
  clientId: string;
  protocolVersion?: 4 | 5;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  username?: string;
  password?: string;
  outbox: Outbox;
  log: Logger;
  /** Retained "running" on connect, "dead" as the will and on a clean stop (the reference's <agent>/state). */
  stateTopic?: string;
  backoff?: { minMs: number; maxMs: number };
}

/** MQTT 5 request/response properties of a received message (absent under 3.1.1). */
export interface MessageMeta {
  responseTopic?: string;
  correlationData?: Buffer;
}

export interface MqttPublishOptions extends PublishOptions {
  /** MQTT 5: echoes the request's correlation data in the answer. */
  correlationData?: Buffer;
}

type Handler = (topic: string, payload: Buffer, meta?: MessageMeta) => void;

interface InFlight {
  msg: OutboxMessage;
  /** Sent from the outbox, so its file is still there until acknowledged. */
  stored: boolean;
  settle: (delivered: boolean) => void;
}

export class MqttLink implements Link {
  private client!: MqttClient;
  private readonly handlers = new Map<string, Handler[]>();
  private readonly connectListeners: Array<() => void> = [];
  private readonly inFlight = new Set<InFlight>();
  /** Writes of messages that failed in flight; the drain waits for them so order holds. */
  private requeues: Promise<unknown> = Promise.resolve();
  private pendingRequeues = 0;
  private draining = false;
  private stopping = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly connectedOnce: Promise<void>;
  private resolveConnected!: () => void;

  private constructor(private readonly opts: MqttLinkOptions) {
    this.connectedOnce = new Promise((r) => (this.resolveConnected = r));
  }

  /** Starts connecting; resolves at once (the broker may come later), errors only for unreadable TLS files. */
  static async start(opts: MqttLinkOptions): Promise<MqttLink> {
    const link = new MqttLink(opts);
    const connect = await loadConnect();
    const tls = {
      ...(opts.caFile ? { ca: await readFile(opts.caFile) } : {}),
      ...(opts.certFile ? { cert: await readFile(opts.certFile) } : {}),
      ...(opts.keyFile ? { key: await readFile(opts.keyFile) } : {}),
    };
    const options: IClientOptions = {
      clientId: opts.clientId,
      protocolVersion: opts.protocolVersion ?? 4,
      clean: true,
      keepalive: 30,
      connectTimeout: 10_000,
      // Our own backoff decides when to try again (see onClose).
      reconnectPeriod: 0,
      resubscribe: false,
      queueQoSZero: false,
      // mqtt-packet otherwise keeps 65,536 prebuilt packet-id buffers: 6 MiB of heap for
      // nothing at the few messages a minute an agent sends.
      writeCache: false,
      ...(opts.username ? { username: opts.username } : {}),
      ...(opts.password ? { password: opts.password } : {}),
      ...tls,
      ...(opts.stateTopic ? { will: { topic: opts.stateTopic, payload: Buffer.from('dead'), qos: 1, retain: true } } : {}),
    };
    link.client = connect(opts.url, options);
    link.client.on('connect', () => link.onConnect());
    link.client.on('close', () => link.onClose());
    link.client.on('error', (err) => opts.log.warn({ err: { message: err.message } }, 'mqtt error'));
    link.client.on('message', (topic, payload, packet) =>
      link.dispatch(topic, payload, {
        ...(packet.properties?.responseTopic ? { responseTopic: packet.properties.responseTopic } : {}),
        ...(packet.properties?.correlationData ? { correlationData: packet.properties.correlationData } : {}),
      }),
    );
    return link;
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Called after every (re)connection, once subscriptions are in place. */
  onConnected(listener: () => void): void {
    this.connectListeners.push(listener);
  }

  /** Resolves at the first successful connection (tests and benchmarks wait for it). */
  whenConnected(): Promise<void> {
    return this.connectedOnce;
  }

  async publish(topic: string, payload: string | Buffer, opts: MqttPublishOptions = {}): Promise<void> {
    const msg: OutboxMessage = {
      seq: this.opts.outbox.nextSeq(),
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      qos: opts.qos ?? 1,
      retain: opts.retain ?? false,
      ...(opts.correlationData && this.opts.protocolVersion === 5 ? { correlationData: opts.correlationData } : {}),
    };
    if (this.client.connected && !this.draining && this.pendingRequeues === 0 && this.opts.outbox.size === 0 && !this.stopping) {
      // Not acknowledged: onClose or stop is putting it back in the outbox; resolve once it is there.
      if (!(await this.send(msg, false))) await this.requeues;
      return;
    }
    await this.opts.outbox.put(msg);
    this.drain();
  }

  async subscribe(filter: string, onMessage: Handler): Promise<void> {
    const list = this.handlers.get(filter) ?? [];
    list.push(onMessage);
    this.handlers.set(filter, list);
    if (list.length === 1 && this.client.connected) await this.subscribeAll([filter]);
  }

  /** Stops for good: in-flight messages go back to the outbox, the state topic says "dead". */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retryTimer);
    if (this.client.connected && this.opts.stateTopic) {
      await Promise.race([this.send(this.stateMessage('dead'), false), sleep(1000)]);
    }
    this.giveBack();
    await this.requeues;
    await new Promise<void>((r) => this.client.end(true, {}, () => r()));
  }

  /** Hands one message to mqtt.js; true once the broker acknowledged it (QoS 1) or it was written (QoS 0). */
  private send(msg: OutboxMessage, stored: boolean): Promise<boolean> {
    return new Promise((resolve) => {
      let done = false;
      const entry: InFlight = {
        msg,
        stored,
        settle: (delivered) => {
          if (done) return;
          done = true;
          this.inFlight.delete(entry);
          resolve(delivered);
        },
      };
      this.inFlight.add(entry);
      const properties = msg.correlationData ? { properties: { correlationData: msg.correlationData } } : {};
      this.client.publish(msg.topic, msg.payload, { qos: msg.qos, retain: msg.retain, ...properties }, (err) => entry.settle(!err));
    });
  }

  private requeue(msg: OutboxMessage): Promise<void> {
    this.pendingRequeues++;
    const write = this.opts.outbox.put(msg).finally(() => this.pendingRequeues--);
    this.requeues = Promise.all([this.requeues, write.catch(() => {})]);
    return write;
  }

  private onConnect(): void {
    this.attempt = 0;
    // Small request/response messages: Nagle's delay would dominate the round trip.
    (this.client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
    this.opts.log.info({ url: redactUrl(this.opts.url) }, 'mqtt connected');
    this.resolveConnected();
    void this.subscribeAll([...this.handlers.keys()])
      .then(() => {
        this.opts.log.info({ filters: [...this.handlers.keys()] }, 'mqtt subscribed');
        for (const l of this.connectListeners) l();
      })
      .catch((err: Error) => this.opts.log.warn({ err: { message: err.message } }, 'mqtt subscribe failed'));
    if (this.opts.stateTopic) void this.send(this.stateMessage('running'), false);
    this.drain();
  }

  private onClose(): void {
    this.giveBack();
    if (this.stopping) return;
    const { minMs, maxMs } = this.opts.backoff ?? { minMs: 250, maxMs: 30_000 };
    const base = Math.min(maxMs, minMs * 2 ** this.attempt++);
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (!this.stopping) this.client.reconnect();
    }, delay);
    this.retryTimer.unref();
  }

  /** What the lost connection still owed an acknowledgement for is ours to send again. */
  private giveBack(): void {
    for (const f of [...this.inFlight]) {
      if (!f.stored && f.msg.seq !== 0) void this.requeue(f.msg);
      f.settle(false);
    }
  }

  /** Sends the outbox, oldest first, one at a time, until it is empty or the connection drops. */
  private drain(): void {
    if (this.draining || !this.client.connected || this.stopping) return;
    this.draining = true;
    void (async () => {
      try {
        await this.requeues;
        for (;;) {
          if (!this.client.connected || this.stopping) return;
          const msg = await this.opts.outbox.peek();
          if (!msg) return;
          // In flight it is still on disk: a crash now sends it again rather than losing it.
          if (!(await this.send(msg, true))) return;
          await this.opts.outbox.remove(msg.seq);
        }
      } catch (err) {
        this.opts.log.error({ err }, 'outbox drain failed');
      } finally {
        this.draining = false;
        // A message queued between the last peek and now must not wait for the next reconnect.
        if (this.client.connected && this.opts.outbox.size > 0 && !this.stopping) this.drain();
      }
    })();
  }

  private async subscribeAll(filters: string[]): Promise<void> {
    if (filters.length === 0) return;
    await this.client.subscribeAsync(
      filters.map((f) => f),
      { qos: 1 },
    );
  }

  private dispatch(topic: string, payload: Buffer, meta: MessageMeta): void {
    for (const [filter, list] of this.handlers) {
      if (!matches(filter, topic)) continue;
      for (const h of list) {
        try {
          h(topic, payload, meta);
        } catch (err) {
          this.opts.log.error({ err, topic }, 'message handler failed');
        }
      }
    }
  }

  private stateMessage(state: 'running' | 'dead'): OutboxMessage {
    return { seq: 0, topic: this.opts.stateTopic!, payload: Buffer.from(state), qos: 1, retain: true };
  }
}

/** MQTT topic filter matching (+ one level, # the rest). */
export function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());
const redactUrl = (url: string) => url.replace(/\/\/[^@/]*@/, '//');
