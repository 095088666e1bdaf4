/**
 * agent-footprint: the built agent on an empty temp root with default settings — so with the
 * embedded broker up, the INBM topics connected and telemetry on (a free port, not 1883, so a
 * running demo does not turn the cloud off). A mosquitto_sub-like client stays subscribed to
 * the telemetry topic, as a cloud would. Times spawn until "agent ready", idles
 * BENCH_IDLE_SECONDS (default 60; the figure is over 600) and reads VmRSS (at the end,
 * and the highest and mean of a reading every 10 s) and the CPU used while idle. Prints {"bench":"agent-footprint","value":<idle RSS MiB>,"unit":"MiB",...}.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../test/bin.js';

const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);

/** kB fields of /proc/<pid>/status, in MiB. */
async function memory(pid: number): Promise<Record<'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile', number>> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(text.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'))?.[1] ?? Number.NaN) / 1024;
  return { VmRSS: field('VmRSS'), VmHWM: field('VmHWM'), RssAnon: field('RssAnon'), RssFile: field('RssFile') };
}

/** A free loopback port for the broker. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const root = await mkdtemp(join(tmpdir(), 'inbm-bench-footprint-'));
let agent: ChildProcess | undefined;
let broker: ChildProcess | undefined;
let log = '';
try {
  await mkdir(join(root, 'etc', 'inbm'), { recursive: true });
  // As on a device: Mosquitto beside the agent (its memory is not the agent's). Without
  // mosquitto installed, or with BENCH_BROKER=embedded, the demo's in-process aedes broker.
  const external = process.env.BENCH_BROKER !== 'embedded' && spawnSync('mosquitto', ['-h'], { stdio: 'ignore' }).error === undefined;
  if (external) {
    const port = await freePort();
    await writeFile(join(root, 'mosquitto.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\n`);
    broker = spawn('mosquitto', ['-c', join(root, 'mosquitto.conf')], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(join(root, 'etc', 'inbm', 'agent.yaml'), `cloud:\n  mqtt: {url: "mqtt://127.0.0.1:${port}"}\n`);
  } else await writeFile(join(root, 'etc', 'inbm', 'agent.yaml'), 'cloud:\n  embedded: {port: 0}\n');
  const started = performance.now();
  agent = spawn(process.execPath, [BIN, '--root', root, 'agent'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((r) => agent!.once('exit', (code) => r(code)));
  const readyAt = await new Promise<number>((resolveReady, rejectReady) => {
    agent!.stderr!.on('data', (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-16_000);
      if (log.includes('agent ready')) resolveReady(performance.now());
    });
    void exited.then((code) => rejectReady(new Error(`agent exited (${code}) before ready\n${log}`)));
  });
  const pid = agent.pid!;
  const atReady = await memory(pid);
  const brokerUrl =
    /"url":"(mqtt:\/\/127\.0\.0\.1:\d+)"/.exec(log)?.[1] ??
    (external ? /mqtt:\/\/127\.0\.0\.1:\d+/.exec(await readFile(join(root, 'etc', 'inbm', 'agent.yaml'), 'utf8'))?.[0] : undefined);
  const { connectAsync } = await import('mqtt');
  const cloud = brokerUrl ? await connectAsync(brokerUrl, { clientId: 'bench-cloud' }) : undefined;
  let telemetryMessages = 0;
  cloud?.on('message', () => telemetryMessages++);
  await cloud?.subscribeAsync(['manageability/telemetry', 'manageability/event']);
  const ticksAt = async () => {
    const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime, fields 14 and 15
  };
  // Idle starts once start-up work (static telemetry, first collection) has settled.
  await new Promise((r) => setTimeout(r, 5000));
  const idleTicks0 = await ticksAt();
  const idleStart = performance.now();
  // Sampled through the idle time too: the end reading alone could land just after a collection.
  const samples: number[] = [];
  const sampler = setInterval(
    () =>
      void memory(pid).then(
        (m) => samples.push(m.VmRSS),
        () => {},
      ),
    10_000,
  );
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  clearInterval(sampler);
  if (agent.exitCode !== null) throw new Error(`agent exited (${agent.exitCode}) while idle\n${log}`);
  const idle = await memory(pid);
  const ticks = await ticksAt();
  const idleCpuPercent = (((ticks - idleTicks0) / 100) * 1000 * 100) / (performance.now() - idleStart); // USER_HZ = 100
  await cloud?.endAsync();

  agent.kill('SIGTERM');
  const code = await exited;
  agent = undefined;

  const mib = (x: number) => Number(x.toFixed(1));
  console.log(
    JSON.stringify({
      bench: 'agent-footprint',
      value: mib(idle.VmRSS),
      unit: 'MiB',
      ready_ms: Math.round(readyAt - started),
      idle_seconds: IDLE_SECONDS,
      rss_at_ready_mib: mib(atReady.VmRSS),
      rss_anon_mib: mib(idle.RssAnon),
      rss_file_mib: mib(idle.RssFile),
      peak_rss_mib: mib(idle.VmHWM),
      idle_rss_max_mib: mib(Math.max(idle.VmRSS, ...samples)),
      idle_rss_mean_mib: mib([...samples, idle.VmRSS].reduce((a, b) => a + b, 0) / (samples.length + 1)),
      cpu_ticks: ticks,
      idle_cpu_percent: Number(idleCpuPercent.toFixed(3)),
      broker: external ? 'mosquitto' : 'embedded aedes',
      cloud_connected: brokerUrl !== undefined && /inbm topics served/.test(log),
      telemetry_messages: telemetryMessages,
      agent_exit_code: code,
      goal: 'RSS <= 64 MiB idle with the cloud connected and telemetry on; idle CPU <= 0.5 % of one core; ready <= 400 ms',
    }),
  );
} finally {
  broker?.kill('SIGTERM');
  if (agent) {
    agent.kill('SIGTERM');
    await new Promise((r) => {
      agent!.once('exit', r);
      setTimeout(r, 5000).unref();
    });
  }
  await rm(root, { recursive: true, force: true });
}
