/** A real Mosquitto on a free loopback port, provisioned by `inbm provision`, and its command-line clients. */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after } from 'node:test';
import { until } from '../until.js';
import { BIN, type Root } from './harness.js';

export const CLIENTS = { agent: 'inbm-agent', cli: 'inbc-program', cloud: 'cloudadapter-agent' } as const;

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export interface Broker {
  dir: string;
  port: number;
  /** mosquitto_pub/sub arguments that reach the broker as CN (no certificate when undefined). */
  as(cn: string | undefined): string[];
  start(): Promise<void>;
  stop(): Promise<void>;
  log(): string;
}

/** Runs `inbm provision` into ROOT/etc/inbm/mqtt and writes the agent settings for it. */
export async function provisionBroker(root: Root, protocolVersion: 4 | 5 = 4): Promise<Broker> {
  const dir = join(root.dir, 'etc', 'inbm', 'mqtt');
  const port = await freePort();
  const args = [BIN, '--root', root.dir, 'provision', '--port', String(port), '--broker-user', 'root'];
  if (protocolVersion === 5) args.push('--mqtt5');
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`inbm provision failed: ${r.stdout}${r.stderr}`);
  const { appendFile } = await import('node:fs/promises');
  await appendFile(join(root.dir, 'etc', 'inbm', 'agent.yaml'), r.stdout);
  let proc: ChildProcess | undefined;
  let out = '';
  return {
    dir,
    port,
    as: (cn) => [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '--cafile',
      join(dir, 'ca.crt'),
      ...(cn ? ['--cert', join(dir, `${cn}.crt`), '--key', join(dir, `${cn}.key`)] : []),
    ],
    async start() {
      const p = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
      proc = p;
      children.add(p);
      p.once('exit', () => children.delete(p));
      p.stdout!.on('data', (d) => (out += d));
      p.stderr!.on('data', (d) => (out += d));
      const mark = out.length;
      await until('mosquitto running', async () => (out.slice(mark).includes(' running') ? true : undefined), 10_000);
    },
    async stop() {
      const p = proc;
      if (!p || p.exitCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    },
    log: () => out,
  };
}

export interface Subscriber {
  lines(): string[];
  /** Resolves with the first line (after the ones already seen by earlier calls) that matches. */
  next(match?: (line: string) => boolean, ms?: number): Promise<string>;
  stop(): Promise<void>;
}

/** mosquitto_sub printing "topic payload" lines; waits until the subscription is acknowledged. */
export async function subscribe(args: string[], topics: string[], extra: string[] = []): Promise<Subscriber> {
  // stdbuf: mosquitto_sub's stdout into a pipe is block-buffered, and the SUBACK line is our start signal.
  const p = spawn('stdbuf', ['-oL', 'mosquitto_sub', ...args, '-v', '-q', '1', '-d', ...extra, ...topics.flatMap((t) => ['-t', t])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(p);
  p.once('exit', () => children.delete(p));
  let out = '';
  let debug = '';
  p.stdout!.on('data', (d) => (out += d));
  p.stderr!.on('data', (d) => (debug += d));
  let consumed = 0;
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('Client ') && !l.startsWith('Subscribed'))
      .filter((l) => !/^\s/.test(l));
  // -d prints the SUBACK on stdout; a refused or failed connection ends the process.
  await Promise.race([
    until('subscribed', async () => ((out + debug).includes('SUBACK') ? true : undefined), 10_000),
    new Promise((_, reject) => p.once('exit', (code) => reject(new Error(`mosquitto_sub exited ${code}: ${out}${debug}`)))),
  ]);
  return {
    lines,
    async next(match = () => true, ms = 20_000) {
      return until(
        'message',
        async () => {
          const all = lines();
          for (let i = consumed; i < all.length; i++) {
            if (match(all[i]!)) {
              consumed = i + 1;
              return all[i]!;
            }
          }
          return undefined;
        },
        ms,
      );
    },
    async stop() {
      if (p.exitCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    },
  };
}

/** mosquitto_pub at QoS 1; resolves with its exit code (non-zero when the broker refused the connection). */
export function publish(args: string[], topic: string, payload: { file: string } | { message: string }): Promise<number> {
  const body = 'file' in payload ? ['-f', payload.file] : ['-m', payload.message];
  return new Promise((resolve) => {
    execFile('mosquitto_pub', [...args, '-q', '1', '-t', topic, ...body], { timeout: 15_000 }, (err) =>
      resolve(err ? (typeof err.code === 'number' ? err.code : 1) : 0),
    );
  });
}

/** The result JSON of a "manageability/response {…}" line. */
export const resultOf = (line: string) => JSON.parse(line.slice(line.indexOf(' ') + 1)) as { status: number; message: string };
