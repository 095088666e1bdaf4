/**
 * The ThingsBoard adapter of a real agent process, against a real Mosquitto playing the
 * ThingsBoard broker: TLS (the device checks the server against the CA the adapter file names),
 * the device's access token as MQTT username with a password, and an ACL that gives the device
 * only ThingsBoard's device topics. The "server" side is mosquitto_pub/sub; the agent's own INBM
 * topics run on the broker `inbm provision` sets up, as on a device.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { provision } from '../../src/cli/provision.js';
import { ADAPTER_FILE } from '../../src/cloud/adapters/index.js';
import { until } from '../until.js';
import { makeRoot, type Root, startAgent, stopAgent } from './harness.js';
import { freePort, provisionBroker, publish, subscribe } from './mosquitto.js';

const DEVICE = { user: 'tb-device-token', password: 'tb-device-secret-7f3a' };
const SERVER = { user: 'tb-server', password: 'tb-server-secret' };

interface TbBroker {
  port: number;
  ca: string;
  as(who: { user: string; password: string }): string[];
  stop(): Promise<void>;
}

const brokers = new Set<ChildProcess>();
after(() => {
  for (const p of brokers) p.kill('SIGKILL');
});

/** A second Mosquitto as ThingsBoard's MQTT transport: server TLS only, users by password, per-user ACL. */
async function startTbBroker(root: Root): Promise<TbBroker> {
  const dir = join(root.dir, 'thingsboard');
  const port = await freePort();
  // Its own CA and server certificate (the client certificates provision also issues go unused).
  const p = await provision({ dir, port, brokerUser: 'root' });
  const passwd = join(dir, 'passwd');
  for (const [i, u] of [DEVICE, SERVER].entries()) {
    const r = spawnSync('mosquitto_passwd', [...(i === 0 ? ['-c'] : []), '-b', passwd, u.user, u.password], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
  await writeFile(
    join(dir, 'tb.acl'),
    [
      `user ${DEVICE.user}`,
      'topic read v1/devices/me/rpc/request/+',
      'topic write v1/devices/me/rpc/response/+',
      'topic write v1/devices/me/telemetry',
      'topic write v1/devices/me/attributes',
      '',
      `user ${SERVER.user}`,
      'topic write v1/devices/me/rpc/request/+',
      'topic read v1/devices/me/#',
      '',
    ].join('\n'),
  );
  const conf = join(dir, 'tb.conf');
  await writeFile(
    conf,
    [
      'per_listener_settings false',
      'allow_anonymous false',
      'user root',
      'persistence false',
      'set_tcp_nodelay true',
      `listener ${port} 127.0.0.1`,
      `cafile ${p.ca}`,
      `certfile ${join(dir, 'broker.crt')}`,
      `keyfile ${join(dir, 'broker.key')}`,
      'tls_version tlsv1.2',
      `password_file ${passwd}`,
      `acl_file ${join(dir, 'tb.acl')}`,
      '',
    ].join('\n'),
  );
  const proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  brokers.add(proc);
  proc.once('exit', () => brokers.delete(proc));
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  await until('thingsboard broker running', async () => (out.includes(' running') ? true : undefined));
  return {
    port,
    ca: p.ca,
    as: (who) => ['-h', '127.0.0.1', '-p', String(port), '--cafile', p.ca, '-u', who.user, '-P', who.password],
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

/** The reference's adapter.cfg for ThingsBoard: the connection in config.mqtt, the server's CA in config.tls. */
async function writeAdapterFile(root: Root, tb: TbBroker): Promise<void> {
  const path = join(root.dir, ADAPTER_FILE);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(
    path,
    JSON.stringify({
      cloud: 'thingsboard',
      config: {
        mqtt: { username: DEVICE.user, password: DEVICE.password, client_id: 'inbm-tb-it', hostname: '127.0.0.1', port: tb.port },
        tls: { version: 'TLSv1.2', certificates: tb.ca },
      },
    }),
  );
}

/** `"<YYYY-MM-DD HH:MM:SS> UTC: <message>"` → message. */
function responseMessage(payload: string): string {
  const s = JSON.parse(payload) as string;
  const m = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC: ([\s\S]*)$/.exec(s);
  assert.ok(m, `response ${s} has the reference's "<timestamp> UTC: <message>" shape`);
  return m[1]!;
}

const payloadOf = (line: string) => line.slice(line.indexOf(' ') + 1);

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('ThingsBoard through a real agent and a real Mosquitto (TLS, password, ACL)', () => {
  it('answers RPCs on their response topic, and sends static telemetry as attributes and dynamic as telemetry', async () => {
    const root = await makeRoot();
    const local = await provisionBroker(root);
    await local.start();
    const tb = await startTbBroker(root);
    await writeAdapterFile(root, tb);
    // The server side listens before the device connects: the start-up telemetry is its first news.
    const server = await subscribe(tb.as(SERVER), ['v1/devices/me/#']);
    // No engine: container stats would otherwise ask the shared Docker engine.
    const agent = await startAgent(root, { DOCKER_HOST: `unix://${join(root.dir, 'no-docker.sock')}` });

    // Static telemetry → client attributes, once the device link is up.
    const attributes = JSON.parse(payloadOf(await server.next((l) => l.startsWith('v1/devices/me/attributes ')))) as Record<
      string,
      unknown
    >;
    assert.equal(attributes.totalPhysicalMemory, String(8_000_000 * 1024), 'from the root /proc/meminfo');
    for (const key of ['cpuId', 'biosVendor', 'systemProductName', 'osInformation', 'diskInformation']) assert.ok(key in attributes, key);
    // Dynamic telemetry → telemetry with the collection time in ms.
    const bundle = JSON.parse(
      payloadOf(await server.next((l) => l.startsWith('v1/devices/me/telemetry ') && l.includes('availableMemory'))),
    ) as { ts: number; values: Record<string, unknown> };
    assert.equal(bundle.values.availableMemory, 4_000_000 * 1024);
    assert.ok(Math.abs(bundle.ts - Date.now()) < 600_000, `ts ${bundle.ts} is milliseconds since the epoch`);

    // A configuration get: the agent's result, as JSON, on the response topic of the request id.
    const get = JSON.stringify({ method: 'triggerconfig', params: { cmd: 'get', path: 'maxCacheSize' } });
    assert.equal(await publish(tb.as(SERVER), 'v1/devices/me/rpc/request/41', { message: get }), 0);
    const got = await server.next((l) => l.startsWith('v1/devices/me/rpc/response/'));
    assert.ok(got.startsWith('v1/devices/me/rpc/response/41 '), got);
    assert.deepEqual(JSON.parse(responseMessage(payloadOf(got))), { status: 200, message: 'maxCacheSize:100', job_id: '' });

    // reboot_device runs the machine's reboot command (the harness's script) and answers with its result.
    const reboot = JSON.stringify({ method: 'reboot_device', params: {} });
    assert.equal(await publish(tb.as(SERVER), 'v1/devices/me/rpc/request/42', { message: reboot }), 0);
    const rebooted = await server.next((l) => l.startsWith('v1/devices/me/rpc/response/'));
    assert.ok(rebooted.startsWith('v1/devices/me/rpc/response/42 '), rebooted);
    assert.deepEqual(JSON.parse(responseMessage(payloadOf(rebooted))), { status: 200, message: 'Restart Command Success', job_id: '' });
    assert.equal((await readFile(root.rebootLog, 'utf8')).trim(), 'reboot');

    // Events went out as the telemetry key `event`: each method's trigger text.
    const events = server
      .lines()
      .filter((l) => l.startsWith('v1/devices/me/telemetry '))
      .map((l) => (JSON.parse(payloadOf(l)) as { values: { event?: string } }).values.event)
      .filter((e) => e !== undefined);
    assert.ok(events.includes('Configuration Method Triggered'), events.join(' | '));
    assert.ok(events.includes('Initiated device reboot'), events.join(' | '));

    // The device's password reached the broker only: not the agent's log, not its state files.
    assert.ok(!agent.output().includes(DEVICE.password), 'password in the agent log');
    for (const f of await filesUnder(root.state)) assert.ok(!(await readFile(f, 'utf8')).includes(DEVICE.password), f);

    await server.stop();
    assert.equal(await stopAgent(agent), 0);
    await tb.stop();
    await local.stop();
  });

  it('the broker refuses the device token with a wrong password, so the agent above did authenticate', async () => {
    const root = await makeRoot();
    const tb = await startTbBroker(root);
    const server = await subscribe(tb.as(SERVER), ['v1/devices/me/#']);
    assert.notEqual(await publish(tb.as({ user: DEVICE.user, password: 'wrong' }), 'v1/devices/me/telemetry', { message: '{"bad":1}' }), 0);
    assert.notEqual(
      await publish(['-h', '127.0.0.1', '-p', String(tb.port), '--cafile', tb.ca], 'v1/devices/me/telemetry', { message: '{"anon":1}' }),
      0,
    );
    assert.equal(await publish(tb.as(DEVICE), 'v1/devices/me/telemetry', { message: '{"ok":1}' }), 0);
    assert.equal(await server.next(), 'v1/devices/me/telemetry {"ok":1}');
    assert.deepEqual(server.lines(), ['v1/devices/me/telemetry {"ok":1}']);
    await server.stop();
    await tb.stop();
  });
});
