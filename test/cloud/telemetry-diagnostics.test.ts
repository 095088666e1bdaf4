import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { measureGates } from '../../src/agent.js';
import { startThingsBoard } from '../../src/cloud/adapters/thingsboard.js';
import { type DiagnosticResult, type Diagnostics, startDiagnostics } from '../../src/cloud/diagnostics.js';
import { writeFileAtomic } from '../../src/core/atomic.js';
import { DockerDriver } from '../../src/drivers/docker.js';
import { DEFAULT_CONF } from '../../src/reconcilers/configuration/conffile.js';
import { loadSettings } from '../../src/settings.js';
import { engineUp } from '../integration/engine.js';
import { until } from '../until.js';
import { type Mqtt, quiet, startMqtt } from './link-fixture.js';

/** A root whose gates pass: memory, a default route, and a service check script that looks for `running/<service>`. */
async function makeDevice(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'inbm-diag-'));
  await mkdir(join(root, 'proc', 'net'), { recursive: true });
  await writeFile(join(root, 'proc', 'meminfo'), 'MemTotal:       8000000 kB\nMemAvailable:   4000000 kB\n');
  await writeFile(join(root, 'proc', 'net', 'route'), 'Iface\tDestination\tGateway\tFlags\neth0\t00000000\t0100000A\t0003\n');
  await mkdir(join(root, 'running'));
  for (const s of ['docker', 'trtl', 'inbm-telemetry']) await writeFile(join(root, 'running', s), '');
  const check = join(root, 'service-check.sh');
  await writeFile(check, `#!/bin/sh\ntest -e "${root}/running/$1"\n`);
  await chmod(check, 0o755);
  await mkdir(join(root, 'etc', 'inbm'), { recursive: true });
  await writeFile(join(root, 'etc', 'inbm', 'agent.yaml'), `commands:\n  serviceCheck: [${check}, "{service}"]\n`);
  await writeFile(
    join(root, 'etc', 'intel_manageability.conf'),
    DEFAULT_CONF.replace(/<containerHealthIntervalSeconds>\d+/, '<containerHealthIntervalSeconds>300'),
  );
  await mkdir(join(root, 'var', 'cache', 'manageability'), { recursive: true });
  return root;
}

describe('diagnostics over a real broker', () => {
  let mqtt: Mqtt;
  let root: string;
  let diagnostics: Diagnostics;
  let n = 0;

  /** The reference's diagnostic RPC: `{"cmd","id"}` on diagnostic/command/<cmd>, answer on diagnostic/response/<id>. */
  async function command(cmd: string): Promise<DiagnosticResult> {
    const id = `req-${++n}`;
    await mqtt.cloud.client.subscribeAsync(`diagnostic/response/${id}`);
    await mqtt.cloud.publish(`diagnostic/command/${cmd}`, JSON.stringify({ cmd, id, size: 0 }));
    const [res] = await mqtt.cloud.wait(`diagnostic/response/${id}`);
    return JSON.parse(res!.text) as DiagnosticResult;
  }

  before(async () => {
    root = await makeDevice();
    mqtt = await startMqtt(['manageability/event']);
    const settings = await loadSettings(root);
    diagnostics = await startDiagnostics({
      link: mqtt.link,
      measure: () => measureGates(settings),
      confFile: settings.paths.confFile,
      log: quiet,
      timeScale: 0.001, // test override: containerHealthIntervalSeconds 300 → 300 ms
    });
  });
  after(async () => {
    await diagnostics?.stop();
    await mqtt?.close();
    await rm(root, { recursive: true, force: true });
  });

  test('install_check on demand runs the controller gates and answers as the reference', async () => {
    const r = await command('install_check');
    assert.equal(r.cmd, 'install_check');
    assert.equal(r.rc, 0, r.message);
    assert.match(r.message, /network: .*; storage: .*; memory: 3906 MiB available >= 10 MiB required.*services: all active/);
  });

  test('a failing check names itself; thresholds are re-read from the configuration file', async () => {
    await unlink(join(root, 'running', 'trtl'));
    const sw = await command('swCheck');
    assert.deepEqual(sw, { cmd: 'swCheck', rc: 1, message: 'services: inactive: trtl' });
    assert.equal((await command('check_memory')).rc, 0);

    const confFile = join(root, 'etc', 'intel_manageability.conf');
    await writeFileAtomic(
      confFile,
      DEFAULT_CONF.replace(/<minMemoryMB>\d+/, '<minMemoryMB>5000').replace(
        /<containerHealthIntervalSeconds>\d+/,
        '<containerHealthIntervalSeconds>300',
      ),
    );
    const mem = await command('check_memory');
    assert.equal(mem.rc, 1);
    assert.match(mem.message, /^memory: 3906 MiB available < 5000 MiB required$/);
    const all = await command('install_check');
    assert.equal(all.rc, 1);
    assert.match(all.message, /memory: .*services: inactive: trtl/);
    assert.deepEqual(await command('format_disk'), { cmd: 'format_disk', rc: 1, message: 'Unknown command: format_disk' });
  });

  test('a ThingsBoard triggerdiagnostic method runs a check and answers with its result', async () => {
    await startThingsBoard({
      link: mqtt.link,
      port: { submitManifest: () => Promise.reject(new Error('no manifests here')) },
      diagnose: diagnostics.run,
    });
    await mqtt.cloud.client.subscribeAsync('v1/devices/me/rpc/response/+');
    await mqtt.cloud.publish(
      'v1/devices/me/rpc/request/5',
      JSON.stringify({ method: 'triggerdiagnostic', params: { cmd: 'check_storage' } }),
    );
    const [res] = await mqtt.cloud.wait('v1/devices/me/rpc/response/5');
    const message = (JSON.parse(res!.text) as string).replace(/^.* UTC: /, '');
    const r = JSON.parse(message) as DiagnosticResult;
    assert.equal(r.cmd, 'check_storage');
    assert.equal(r.rc, 0);
    assert.match(r.message, /^storage: \d+ MiB free >= 100 MiB required$/);
  });

  test('results are events, on demand and periodically', async () => {
    const before = mqtt.cloud.on('manageability/event').length;
    await diagnostics.run('check_network');
    // Periodic runs (every containerHealthIntervalSeconds) publish install_check without being asked.
    const events = await until('periodic install_check events', async () => {
      const e = mqtt.cloud.on('manageability/event').slice(before);
      return e.filter((m) => m.text.startsWith('Command: install_check')).length >= 2 ? e : undefined;
    });
    assert.ok(events.some((e) => /^Command: check_network passed\. Message: network: /.test(e.text)));
  });
});

describe('container_health_check only where an engine answers', () => {
  const saved = process.env.DOCKER_HOST;
  let mqtt: Mqtt;
  let root: string;
  before(async () => {
    // The settings' socket alone decides: a DOCKER_HOST from the test environment would win.
    delete process.env.DOCKER_HOST;
    root = await makeDevice();
    mqtt = await startMqtt(['manageability/event']);
  });
  after(async () => {
    if (saved !== undefined) process.env.DOCKER_HOST = saved;
    await mqtt?.close();
    await rm(root, { recursive: true, force: true });
  });

  test('no socket: periodic runs leave it out, on demand it fails naming why; a socket: it lists the engine', async () => {
    const settings = await loadSettings(root);
    const options = {
      link: mqtt.link,
      measure: () => measureGates(settings),
      confFile: settings.paths.confFile,
      log: quiet,
      timeScale: 0.001,
    };
    const none = await startDiagnostics({ ...options, docker: new DockerDriver(join(root, 'no-docker.sock')), serveCommands: false });
    const before = mqtt.cloud.on('manageability/event').length;
    await until('three periodic install_check runs', async () =>
      mqtt.cloud
        .on('manageability/event')
        .slice(before)
        .filter((m) => m.text.startsWith('Command: install_check')).length >= 3
        ? true
        : undefined,
    );
    assert.deepEqual(
      mqtt.cloud
        .on('manageability/event')
        .slice(before)
        .filter((m) => m.text.includes('container_health_check')),
      [],
    );
    assert.deepEqual(await none.run('container_health_check'), {
      cmd: 'container_health_check',
      rc: 1,
      message: 'no container engine answering',
    });
    await none.stop();
    const socket = engineUp().replace(/^unix:\/\//, '');
    const real = await startDiagnostics({ ...options, timeScale: 1, docker: new DockerDriver(socket), serveCommands: false });
    const r = await real.run('container_health_check');
    await real.stop();
    assert.equal(r.rc, 0, r.message);
    assert.match(r.message, /^\d+ containers, \d+ running/);
  });
});
