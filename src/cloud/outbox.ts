/**
 * Messages produced while the broker is unreachable: one file per message under
 * <stateDir>/outbox, named by a sequence number so the directory order is the publish order.
 * A file is removed only after the broker acknowledged it; a crash before that redelivers it
 * (at least once, as MQTT QoS 1 itself promises), never loses it.
 */
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { sweepTempFiles, writeFileAtomic } from '../core/atomic.js';

export interface OutboxMessage {
  seq: number;
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  retain: boolean;
  /** MQTT 5 correlation data of the request this answers. */
  correlationData?: Buffer;
}

interface Stored {
  topic: string;
  payload: string;
  qos: 0 | 1;
  retain: boolean;
  correlation?: string;
}

const NAME = /^(\d{16})\.json$/;
const nameOf = (seq: number) => `${String(seq).padStart(16, '0')}.json`;

export class Outbox {
  /** Sequence numbers on disk, ascending. */
  private seqs: number[] = [];
  private last = 0;

  private constructor(
    readonly dir: string,
    /** How many messages may wait; beyond it the oldest go (the conf's telemetry/maxCacheSize). */
    private readonly limit: () => Promise<number> | number,
    private readonly onDrop: (count: number) => void,
  ) {}

  static async open(dir: string, limit: () => Promise<number> | number, onDrop: (count: number) => void = () => {}): Promise<Outbox> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await sweepTempFiles([dir]);
    const box = new Outbox(dir, limit, onDrop);
    box.seqs = (await readdir(dir))
      .map((f) => NAME.exec(f)?.[1])
      .filter((s): s is string => s !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    box.last = box.seqs.at(-1) ?? 0;
    return box;
  }

  get size(): number {
    return this.seqs.length;
  }

  /** The next sequence number; callers take one when a message is produced, so order survives a detour through here. */
  nextSeq(): number {
    return ++this.last;
  }

  /** Persists a message (atomically), then trims the oldest beyond the limit. */
  async put(msg: OutboxMessage): Promise<void> {
    const stored: Stored = {
      topic: msg.topic,
      payload: msg.payload.toString('base64'),
      qos: msg.qos,
      retain: msg.retain,
      ...(msg.correlationData ? { correlation: msg.correlationData.toString('base64') } : {}),
    };
    await writeFileAtomic(join(this.dir, nameOf(msg.seq)), JSON.stringify(stored), 0o600);
    if (msg.seq > this.last) this.last = msg.seq;
    // A message that failed in flight comes back with its original (older) number.
    const at = this.seqs.findIndex((s) => s >= msg.seq);
    if (this.seqs[at] === msg.seq) return;
    if (at < 0) this.seqs.push(msg.seq);
    else this.seqs.splice(at, 0, msg.seq);
    const max = Math.max(1, await this.limit());
    const excess = this.seqs.length - max;
    if (excess > 0) {
      for (const seq of this.seqs.splice(0, excess)) await unlink(join(this.dir, nameOf(seq))).catch(() => {});
      this.onDrop(excess);
    }
  }

  /** The oldest waiting message, or undefined when none waits. */
  async peek(): Promise<OutboxMessage | undefined> {
    for (;;) {
      const seq = this.seqs[0];
      if (seq === undefined) return undefined;
      try {
        const s = JSON.parse(await readFile(join(this.dir, nameOf(seq)), 'utf8')) as Stored;
        return {
          seq,
          topic: s.topic,
          payload: Buffer.from(s.payload, 'base64'),
          qos: s.qos,
          retain: s.retain,
          ...(s.correlation ? { correlationData: Buffer.from(s.correlation, 'base64') } : {}),
        };
      } catch {
        // Trimmed meanwhile, or unreadable: skipping it beats blocking every later message.
        await this.remove(seq);
      }
    }
  }

  /** Forgets a delivered message. */
  async remove(seq: number): Promise<void> {
    const at = this.seqs.indexOf(seq);
    if (at >= 0) this.seqs.splice(at, 1);
    await unlink(join(this.dir, nameOf(seq))).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}
