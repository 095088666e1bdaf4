import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startEmbeddedBroker } from '../../src/cloud/broker.js';
import { MqttLink } from '../../src/cloud/mqtt-link.js';
import { Outbox } from '../../src/cloud/outbox.js';
import { Cadence, type Envelope, startTelemetry, type Telemetry } from '../../src/cloud/telemetry.js';
import {
  biosDate,
  CpuMeter,
  chunkBom,
  cpuModel,
  cpuTimes,
  meminfoBytes,
  softwareBom,
  staticValues,
  swBomCommand,
} from '../../src/cloud/telemetry-sources.js';
import { writeFileAtomic } from '../../src/core/atomic.js';
import { DockerDriver } from '../../src/drivers/docker.js';
import { DEFAULT_CONF } from '../../src/reconcilers/configuration/conffile.js';
import { loadSettings } from '../../src/settings.js';
import { engineUp } from '../integration/engine.js';
import { until } from '../until.js';
import { type CloudClient, cloudClient, type Mqtt, quiet, startMqtt } from './link-fixture.js';

/** A device root with the files telemetry reads: DMI, os-release, /proc, /sys/block, a dpkg database. */
async function makeDevice(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'inbm-tel-'));
  const put = async (path: string, text: string) => {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  };
  const dmi = '/sys/devices/virtual/dmi/id';
  await put(`${dmi}/bios_vendor`, 'American Megatrends Inc.\n');
  await put(`${dmi}/bios_version`, '5.12\n');
  await put(`${dmi}/bios_date`, '03/30/2019\n');
  await put(`${dmi}/sys_vendor`, 'Intel Corporation\n');
  await put(`${dmi}/product_name`, 'To be filled by O.E.M.\n');
  await put('/etc/os-release', 'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\n');
  await put('/proc/meminfo', 'MemTotal:        8000000 kB\nMemFree:  100 kB\nMemAvailable:    4000000 kB\n');
  await put('/proc/cpuinfo', 'processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz\n');
  await put('/proc/stat', 'cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 100 0 100 800 0 0 0 0 0 0\n');
  await put('/proc/sys/kernel/ostype', 'Linux\n');
  await put('/proc/sys/kernel/hostname', 'edge-1\n');
  await put('/proc/sys/kernel/osrelease', '6.1.0-18-amd64\n');
  await put('/proc/sys/kernel/version', '#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1\n');
  await put(
    '/proc/net/route',
    'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nenp1s0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\n',
  );
  await put('/sys/block/nvme0n1/size', '1000215216\n');
  await put('/sys/block/nvme0n1/queue/rotational', '0\n');
  await put('/sys/block/sda/size', '2048\n');
  await put('/sys/block/sda/queue/rotational', '1\n');
  await put('/sys/block/loop0/size', '0\n');
  const pkg = (name: string, version: string) =>
    `Package: ${name}\nStatus: install ok installed\nMaintainer: m <m@example.com>\nVersion: ${version}\nArchitecture: all\nDescription: d\n`;
  await put('/var/lib/dpkg/status', `${pkg('foo', '1.2-3')}\n${pkg('bar', '0.1')}`);
  await put('/etc/intel_manageability.conf', conf({ collection: 30, publish: 120 }));
  return root;
}

function conf(o: { collection: number; publish: number; swBomHours?: number }): string {
  return DEFAULT_CONF.replace(/<collectionIntervalSeconds>\d+/, `<collectionIntervalSeconds>${o.collection}`)
    .replace(/<publishIntervalSeconds>\d+/, `<publishIntervalSeconds>${o.publish}`)
    .replace(/<swBomIntervalHours>\d+/, `<swBomIntervalHours>${o.swBomHours ?? 1}`);
}

describe('telemetry sources (file reads)', () => {
  test('parsers of /proc and DMI text', () => {
    assert.equal(biosDate('2019-03-30'), '2019-03-30 00:00:00');
    assert.equal(biosDate(undefined), 'Unknown');
    assert.equal(meminfoBytes('MemTotal:  8 kB\nMemAvailable: 4 kB\n', 'MemAvailable'), 4096);
    assert.equal(cpuModel('model name\t: Cortex\n'), 'Cortex');
    assert.equal(cpuModel('processor: 0\n'), 'Unknown');
    assert.deepEqual(cpuTimes('cpu  1 2 3 4 5 6 7 8 9 10\n'), { busy: 1 + 2 + 3 + 6 + 7 + 8, total: 36 });
    assert.equal(cpuTimes('intr 1 2'), undefined);
  });

  test('CPU percent is the use between two readings', async () => {
    const root = await makeDevice();
    try {
      const meter = new CpuMeter(join(root, 'proc', 'stat'));
      assert.equal(await meter.percent(), 20);
      await writeFile(join(root, 'proc', 'stat'), 'cpu  200 0 200 900 0 0 0 0 0 0\n');
      assert.equal(await meter.percent(), 66.7);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('static values come from the root, in the reference shapes', async () => {
    const root = await makeDevice();
    try {
      const s = await loadSettings(root);
      const { sourcePaths } = await import('../../src/cloud/telemetry.js');
      const v = await staticValues(sourcePaths(s));
      assert.deepEqual(
        { ...v, osInformation: undefined },
        {
          totalPhysicalMemory: String(8000000 * 1024),
          cpuId: 'Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz',
          biosVendor: 'American Megatrends Inc.',
          biosVersion: '5.12',
          biosReleaseDate: '2019-03-30 00:00:00',
          systemManufacturer: 'Intel Corporation',
          systemProductName: 'Unknown',
          osInformation: undefined,
          diskInformation: JSON.stringify([
            { NAME: 'nvme0n1', SIZE: String(1000215216 * 512), SSD: 'True' },
            { NAME: 'sda', SIZE: String(2048 * 512), SSD: 'False' },
          ]),
        },
      );
      assert.match(String(v.osInformation), /^Debian GNU\/Linux 12 \(bookworm\) Linux edge-1 6\.1\.0-18-amd64 #1 SMP/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('the software BOM is dpkg-query against the root database, in ~2500-byte chunks', async () => {
    const root = await makeDevice();
    try {
      assert.deepEqual(await softwareBom(swBomCommand(join(root, 'var', 'lib', 'dpkg'))), ['bar 0.1', 'foo 1.2-3']);
      const lines = Array.from({ length: 400 }, (_, i) => `package-${i} 1.0.${i}`);
      const chunks = chunkBom(lines);
      assert.deepEqual(chunks.flat(), lines);
      for (const c of chunks) assert.ok(JSON.stringify(c).length <= 2500 + 40, `${JSON.stringify(c).length}`);
      assert.ok(chunks.length > 1);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

test('cadence: a publish every publish/collect collections, as the reference counts', () => {
  const flushes = (collect: number, publish: number, ticks: number) => {
    const c = new Cadence();
    return Array.from({ length: ticks }, () => c.collected(collect, publish));
  };
  assert.deepEqual(flushes(30, 120, 8), [false, false, false, true, false, false, false, true]);
  assert.deepEqual(flushes(60, 120, 4), [false, true, false, true]);
  assert.deepEqual(flushes(120, 120, 2), [true, true]);
  // 90 s collection, 120 s publish: the remainder carries over rather than drifting.
  assert.deepEqual(flushes(90, 120, 4), [false, true, true, true]);
});

/** Dynamic bundles (not BOM messages) grouped into publishes: a gap longer than `gapMs` starts a new group. */
function publishes(messages: Array<{ text: string; at: number }>, gapMs: number): Envelope[][] {
  const groups: Envelope[][] = [];
  let last = 0;
  for (const m of messages) {
    const e = JSON.parse(m.text) as Envelope;
    if (e.type !== 'dynamic_telemetry' || 'softwareBOM' in e.values) continue;
    if (groups.length === 0 || m.at - last > gapMs) groups.push([]);
    groups.at(-1)!.push(e);
    last = m.at;
  }
  return groups;
}

describe('telemetry over a real broker', () => {
  let mqtt: Mqtt;
  let root: string;
  let telemetry: Telemetry;
  const SCALE = 0.01; // test override: conf seconds × 10 ms, so 30 s → 300 ms and 120 s → 1.2 s

  before(async () => {
    root = await makeDevice();
    mqtt = await startMqtt(['manageability/#']);
    telemetry = await startTelemetry({ link: mqtt.link, settings: await loadSettings(root), timeScale: SCALE, log: quiet });
  });
  after(async () => {
    await telemetry?.stop();
    await mqtt?.close();
    await rm(root, { recursive: true, force: true });
  });

  test('static attributes first, then a dynamic bundle and the software BOM', async () => {
    const messages = await mqtt.cloud.wait('manageability/telemetry', 3);
    const [first, second] = messages.map((m) => JSON.parse(m.text) as Envelope);
    assert.equal(first!.type, 'static_telemetry');
    assert.equal(first!.values.biosVendor, 'American Megatrends Inc.');
    assert.equal(second!.type, 'dynamic_telemetry');
    const d = second!.values;
    assert.deepEqual(Object.keys(d).sort(), [
      'availableMemory',
      'containerStats',
      'coreTempCelsius',
      'friendlyINBMVersionCommit',
      'networkInformation',
      'percentDiskUsed',
      'systemCpuPercent',
    ]);
    assert.equal(d.availableMemory, 4000000 * 1024);
    assert.equal(d.systemCpuPercent, 20);
    assert.equal(d.containerStats, 'Docker is not available');
    assert.deepEqual((JSON.parse(String(d.networkInformation)) as { default_gateways_ipv4: string[] }).default_gateways_ipv4, [
      '192.168.2.1',
      'enp1s0',
    ]);
    const bom = messages.map((m) => JSON.parse(m.text) as Envelope).find((e) => 'softwareBOM' in e.values);
    assert.deepEqual(bom?.values, { softwareBOM: { swbom_package_list_1: ['bar 0.1', 'foo 1.2-3'] } });
  });

  test('bundles are published publish/collect at a time, and a changed interval applies without restart', async () => {
    assert.deepEqual(
      { c: telemetry.conf().collectionIntervalSeconds, p: telemetry.conf().publishIntervalSeconds },
      { c: 30, p: 120 },
      'the configuration file was read',
    );
    const gap = 120 * 1000 * SCALE * 0.5;
    const all = () => mqtt.cloud.on('manageability/telemetry');
    // The first group is the bundle sent at start; the second is a full publish of 120 / 30 bundles.
    await until('three publishes', async () => (publishes(all(), gap).length >= 3 ? true : undefined), 15_000);
    assert.equal(publishes(all(), gap)[1]!.length, 4);

    // As `inbm set` writes it: a whole new file renamed into place.
    const confFile = join(root, 'etc', 'intel_manageability.conf');
    await writeFileAtomic(confFile, conf({ collection: 60, publish: 120 }));
    await until('the new interval read', async () => (telemetry.conf().collectionIntervalSeconds === 60 ? true : undefined));
    const mark = all().length;
    await until('three publishes after the change', async () => (publishes(all().slice(mark), gap).length >= 3 ? true : undefined), 15_000);
    // The first publish after the change may straddle it; the next one is all at the new pace.
    assert.equal(publishes(all().slice(mark), gap)[1]!.length, 2);
    assert.match(await readFile(confFile, 'utf8'), /<collectionIntervalSeconds>60</);
  });
});

test('container stats come from the Docker engine when one answers', async () => {
  const host = engineUp();
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = host;
  const root = await makeDevice();
  const mqtt = await startMqtt(['manageability/telemetry']);
  try {
    const t = await startTelemetry({
      link: mqtt.link,
      settings: await loadSettings(root),
      docker: new DockerDriver(),
      timeScale: 0.01,
      log: quiet,
    });
    // The engine is shared: a container removed between its listing and its stats fails one
    // collection, so wait for one that went through.
    const stats = await until(
      'container stats from the engine',
      async () =>
        mqtt.cloud
          .on('manageability/telemetry')
          .map((m) => (JSON.parse(m.text) as Envelope).values.containerStats)
          .find((v) => typeof v === 'string' && v.startsWith('[')),
      30_000,
    );
    await t.stop();
    assert.ok(Array.isArray(JSON.parse(String(stats))), String(stats));
  } finally {
    process.env.DOCKER_HOST = saved;
    if (saved === undefined) delete process.env.DOCKER_HOST;
    await mqtt.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('while the link is down bundles wait, at most maxCacheSize of them, and go out when it is back', async () => {
  const root = await makeDevice();
  // maxCacheSize is 50 at least; with collection 30 s × 0.001 a bundle comes every 30 ms.
  await writeFile(
    join(root, 'etc', 'intel_manageability.conf'),
    conf({ collection: 30, publish: 120 }).replace(/<maxCacheSize>\d+/, '<maxCacheSize>50'),
  );
  const dir = await mkdtemp(join(tmpdir(), 'inbm-tel-link-'));
  let broker = await startEmbeddedBroker(0, quiet);
  const port = broker.port;
  const link = await MqttLink.start({
    url: broker.url,
    clientId: 'agent-offline',
    outbox: await Outbox.open(join(dir, 'outbox'), () => 50),
    log: quiet,
    backoff: { minMs: 50, maxMs: 200 },
  });
  await link.whenConnected();
  const t = await startTelemetry({ link, settings: await loadSettings(root), timeScale: 0.001, log: quiet });
  let cloud: CloudClient | undefined;
  try {
    await broker.close();
    await until('the link to notice', async () => (link.connected ? undefined : true));
    // Watch the cache over many more collections than it can hold.
    let most = 0;
    const seen: number[] = [];
    await until(
      'the cache to fill and stay full',
      async () => {
        most = Math.max(most, t.pending());
        if (t.pending() === 50) seen.push(Date.now());
        return seen.length >= 40 ? true : undefined;
      },
      20_000,
    );
    assert.equal(most, 50);

    broker = await startEmbeddedBroker(port, quiet);
    cloud = await cloudClient(broker.url, ['manageability/telemetry']);
    await until('the link to reconnect', async () => (link.connected ? true : undefined));
    const dynamic = await until('the cached bundles to arrive', async () => {
      const d = cloud!.on('manageability/telemetry').filter((m) => {
        const e = JSON.parse(m.text) as Envelope;
        // The software BOM has its own timer and is stamped when it is sent.
        return e.type === 'dynamic_telemetry' && !('softwareBOM' in e.values);
      });
      return d.length >= 50 ? d : undefined;
    });
    // Published oldest first, each collected after the one before it.
    const stamps = dynamic.map((m) => (JSON.parse(m.text) as Envelope).timestamp);
    assert.deepEqual(
      stamps,
      [...stamps].sort((a, b) => a - b),
    );
    await until('the cache to drain', async () => (t.pending() < 50 ? true : undefined));
  } finally {
    await t.stop();
    await cloud?.client.endAsync(true);
    await link.stop();
    await broker.close();
    await rm(dir, { recursive: true, force: true });
    await rm(root, { recursive: true, force: true });
  }
});
