/**
 * mqtt-roundtrip: the real agent (built CLI) on a temp root behind a real Mosquitto provisioned by
 * `inbm provision` (TLS, client certificates, ACL). An mqtt.js client holding the CLI's
 * certificate publishes a config get_element manifest on manageability/request/install and times
 * it until the result arrives on manageability/response, one request at a time.
 * Prints {"bench":"mqtt-roundtrip","value":<p50 ms>,"unit":"ms","p99":<ms>,...}.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { BIN } from '../test/bin.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1000);
const WARMUP = 20;
const ROUND_TIMEOUT_MS = 10_000;
const MANIFEST =
  '<?xml version="1.0" encoding="UTF-8"?><manifest><type>config</type><config><cmd>get_element</cmd><configtype><get><path>maxCacheSize</path></get></configtype></config></manifest>';

const freePort = async () => {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
};

const waitFor = async (what: string, probe: () => boolean, ms = 15_000) => {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

const root = await mkdtemp(join(tmpdir(), 'inbm-bench-mqtt-'));
const children: ChildProcess[] = [];
let agentLog = '';
try {
  await mkdir(join(root, 'etc', 'inbm'), { recursive: true });
  const port = await freePort();
  const prov = spawnSync(process.execPath, [BIN, '--root', root, 'provision', '--port', String(port), '--broker-user', 'root'], {
    encoding: 'utf8',
  });
  if (prov.status !== 0) throw new Error(`provision failed: ${prov.stderr}`);
  await appendFile(join(root, 'etc', 'inbm', 'agent.yaml'), prov.stdout);
  const dir = join(root, 'etc', 'inbm', 'mqtt');

  let brokerLog = '';
  const broker = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(broker);
  broker.stderr!.on('data', (d) => (brokerLog += d));
  broker.stdout!.on('data', (d) => (brokerLog += d));
  await waitFor('mosquitto', () => brokerLog.includes(' running'));

  const agent = spawn(process.execPath, [BIN, '--root', root, 'agent'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(agent);
  agent.stderr!.on('data', (d) => (agentLog = (agentLog + d).slice(-16_000)));
  await waitFor('agent subscribed', () => agentLog.includes('mqtt subscribed'));

  const client = connect(`mqtts://127.0.0.1:${port}`, {
    clientId: 'bench-inbc',
    ca: await readFile(join(dir, 'ca.crt')),
    cert: await readFile(join(dir, 'inbc-program.crt')),
    key: await readFile(join(dir, 'inbc-program.key')),
    reconnectPeriod: 0,
  });
  await new Promise<void>((r, j) => {
    client.once('connect', () => r());
    client.once('error', j);
  });
  (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  let waiting: ((payload: string) => void) | undefined;
  client.on('message', (_topic, payload) => waiting?.(payload.toString()));
  await client.subscribeAsync('manageability/response', { qos: 1 });

  const once = () =>
    new Promise<{ ms: number; payload: string }>((resolveRound, rejectRound) => {
      const timer = setTimeout(
        () => rejectRound(new Error(`no result within ${ROUND_TIMEOUT_MS} ms\n${agentLog.slice(-4000)}`)),
        ROUND_TIMEOUT_MS,
      );
      const t0 = performance.now();
      waiting = (payload) => {
        clearTimeout(timer);
        waiting = undefined;
        resolveRound({ ms: performance.now() - t0, payload });
      };
      client.publish('manageability/request/install', MANIFEST, { qos: 1 });
    });

  for (let i = 0; i < WARMUP; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const { ms, payload } = await once();
    if (!payload.includes('"status": 200')) throw new Error(`unexpected result ${payload}`);
    times.push(ms);
  }
  await client.endAsync();
  times.sort((a, b) => a - b);
  const pct = (p: number) => Math.round(times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))]! * 100) / 100;
  process.stdout.write(
    `${JSON.stringify({
      bench: 'mqtt-roundtrip',
      value: pct(50),
      unit: 'ms',
      p99: pct(99),
      max: Math.round(times.at(-1)! * 100) / 100,
      rounds: ROUNDS,
      broker: 'mosquitto 2.0 TLS + ACL',
      manifest: 'config get_element',
    })}\n`,
  );
} finally {
  for (const c of children.reverse()) {
    if (c.exitCode !== null) continue;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  }
  await rm(root, { recursive: true, force: true });
}
