import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startAdapter } from '../../src/cloud/adapters/index.js';
import { methodCall } from '../../src/cloud/adapters/methods.js';
import { startThingsBoard, TB } from '../../src/cloud/adapters/thingsboard.js';
import { DropPort } from '../../src/cloud/agent-port.js';
import type { AgentPort } from '../../src/cloud/link.js';
import { ok, type Result, resultOf } from '../../src/core/result.js';
import { parseManifest } from '../../src/manifest/parse.js';
import { FIXTURES } from '../fixtures.js';
import { type Mqtt, startMqtt } from './link-fixture.js';

/** An in-process AgentPort that runs the real manifest parser: 200 when the agent would accept the manifest. */
function parsingPort(seen: string[]): AgentPort {
  return {
    async submitManifest(xml) {
      seen.push(xml);
      try {
        parseManifest(xml);
        return ok('parsed');
      } catch (err) {
        return resultOf(err);
      }
    },
  };
}

/** `"<YYYY-MM-DD HH:MM:SS> UTC: <message>"` → message. */
function responseMessage(text: string): string {
  const s = JSON.parse(text) as string;
  const m = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC: ([\s\S]*)$/.exec(s);
  assert.ok(m, `response ${s} has the reference's "<timestamp>: <message>" shape`);
  return m[1]!;
}

let rpcId = 100;
async function call(mqtt: Mqtt, method: string, params: unknown): Promise<string> {
  const id = String(++rpcId);
  await mqtt.cloud.publish(`v1/devices/me/rpc/request/${id}`, JSON.stringify({ method, params }));
  const [res] = await mqtt.cloud.wait(TB.response(id), 1, 30_000);
  return responseMessage(res!.text);
}

describe('ThingsBoard adapter against a real agent', () => {
  let mqtt: Mqtt;
  let root: string;
  let agent: Awaited<ReturnType<typeof import('../../src/agent.js').startAgent>>;
  let port: DropPort;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'inbm-tb-'));
    await mkdir(join(root, 'etc', 'inbm'), { recursive: true });
    await writeFile(join(root, 'etc', 'inbm', 'agent.yaml'), 'cloud:\n  embedded:\n    enabled: false\n');
    const { startAgent } = await import('../../src/agent.js');
    agent = await startAgent({ root, logLevel: 'silent' });
    port = new DropPort({ desiredDir: agent.settings.paths.desiredDir, stateDir: agent.settings.paths.stateDir, timeoutMs: 30_000 });
    await port.start();
    mqtt = await startMqtt(['v1/devices/me/#']);
    await startThingsBoard({ link: mqtt.link, port });
  });
  after(async () => {
    await mqtt?.close();
    port?.stop();
    await agent?.stop();
    await rm(root, { recursive: true, force: true });
  });

  test('an RPC from a real MQTT client is answered on its response topic with the agent result', async () => {
    const message = await call(mqtt, 'triggerconfig', { cmd: 'get', path: 'minStorageMB' });
    const result = JSON.parse(message) as Result;
    assert.deepEqual(result, { status: 200, message: 'minStorageMB:100', job_id: result.job_id });
    // The manifest went through the desired-state folder like any drop, named after its origin.
    const answered = await readdir(join(agent.settings.paths.stateDir, 'status', 'files'));
    assert.ok(
      answered.some((f) => f.startsWith('thingsboard-')),
      answered.join(', '),
    );
  });

  test('the result of a request the agent refuses comes back with its code', async () => {
    const message = await call(mqtt, 'triggerota', { manifest: '<manifest><type>cmd</type><cmd>nonsense</cmd></manifest>' });
    assert.equal((JSON.parse(message) as Result).status, 300);
  });

  test('events carry the trigger text and the final result on v1/devices/me/telemetry', async () => {
    const before = mqtt.cloud.on(TB.telemetry).length;
    await call(mqtt, 'triggerconfig', { cmd: 'get', path: 'maxCacheSize' });
    const events = await mqtt.cloud.wait(TB.telemetry, before + 2);
    const texts = events.slice(before).map((e) => (JSON.parse(e.text) as { values: { event: string } }).values.event);
    assert.ok(texts.includes('Configuration Method Triggered'), texts.join(' | '));
    assert.ok(
      texts.some((t) => t.includes('maxCacheSize:100')),
      texts.join(' | '),
    );
  });
});

describe('ThingsBoard methods → manifests', () => {
  let mqtt: Mqtt;
  const seen: string[] = [];
  before(async () => {
    mqtt = await startMqtt(['v1/devices/me/#']);
    await startThingsBoard({ link: mqtt.link, port: parsingPort(seen) });
  });
  after(() => mqtt?.close());

  test('invalid params get an error response naming the fields, and nothing is submitted', async () => {
    const count = seen.length;
    assert.equal(
      await call(mqtt, 'triggerfota', { fetch: 'https://example.com/bios.bin', vendor: 'Intel' }),
      "Command triggerfota failed: Missing required fields: ['biosversion', 'manufacturer', 'product', 'releasedate']",
    );
    assert.equal(
      await call(mqtt, 'triggeraota', { app: 'snap', cmd: 'pull' }),
      "Command triggeraota failed: 'snap' is not valid for 'app'.",
    );
    assert.equal(await call(mqtt, 'triggersota', { cmd: 'update' }), "Command triggersota failed: No input given for 'log_to_file'.");
    assert.equal(await call(mqtt, 'triggerquery', {}), "Command triggerquery failed: No input given for 'option'.");
    assert.equal(await call(mqtt, 'triggerconfig', { cmd: 'set' }), "Command triggerconfig failed: Missing required fields: ['path']");
    assert.equal(await call(mqtt, 'triggerota', {}), 'Command triggerota failed: No manifest was given!');
    assert.equal(await call(mqtt, 'launch_rocket', {}), "Unknown method: 'launch_rocket'");
    assert.equal(seen.length, count);
  });

  test('each method builds a manifest the agent parser accepts', async () => {
    const cases: Array<[string, Record<string, string>]> = [
      ['triggeraota', { app: 'Docker', cmd: 'PULL', version: '1.0', container_tag: 'hello', fetch: 'https://r.example.com/x' }],
      ['triggeraota', { app: 'compose', cmd: 'up', container_tag: 'stack', fetch: 'https://r.example.com/stack.tar.gz' }],
      [
        'triggerfota',
        {
          fetch: 'https://r.example.com/bios.bin',
          biosversion: 'A.1',
          vendor: 'Intel',
          manufacturer: 'Intel',
          product: 'NUC',
          release_date: '2024-01-01',
        },
      ],
      ['triggersota', { cmd: 'update', log_to_file: 'y', fetch: 'https://r.example.com/u.mender' }],
      ['triggerconfig', { cmd: 'set', path: 'minStorageMB:120' }],
      ['triggerconfig', { cmd: 'get', path: 'minStorageMB;minMemoryMB' }],
      ['triggerconfig', { cmd: 'append', path: 'trustedRepositories:https://r.example.com' }],
      ['triggerconfig', { cmd: 'remove', path: 'trustedRepositories:https://r.example.com' }],
      ['triggerconfig', { cmd: 'load', fetch: 'https://r.example.com/intel_manageability.conf' }],
      ['triggerquery', { option: 'HW' }],
      ['triggerota', { manifest: await readFile(join(FIXTURES, 'valid', 'cmd-query-all.xml'), 'utf8') }],
      ['shutdown_device', {}],
      ['reboot_device', {}],
      ['decommission_device', {}],
    ];
    for (const [method, params] of cases) {
      const message = await call(mqtt, method, params);
      assert.deepEqual(
        JSON.parse(message),
        { status: 200, message: 'parsed', job_id: '' },
        `${method} ${JSON.stringify(params)}: ${message}`,
      );
    }
  });

  test('the XML is the reference template, values escaped as its clean_input does', () => {
    assert.equal(
      methodCall('triggeraota', { app: 'docker', cmd: 'pull', version: '1.0', container_tag: 'a<b', device_reboot: 'no', extra: 'x' })!.xml,
      '<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header>' +
        '<type><aota name="sample-rpm"><cmd>pull</cmd><app>docker</app><version>1.0</version><containerTag>a&lt;b</containerTag>' +
        '<deviceReboot>no</deviceReboot></aota></type></ota></manifest>',
    );
    assert.equal(
      methodCall('triggerconfig', { cmd: 'set', path: "a:'1'" })!.xml,
      '<?xml version="1.0" encoding="UTF-8"?><manifest><type>config</type><config><cmd>set_element</cmd><configtype>' +
        '<set><path>a:&#x27;1&#x27;</path></set></configtype></config></manifest>',
    );
    assert.equal(
      methodCall('triggersota', { cmd: 'update', log_to_file: 'n', version: '2' })!.xml,
      '<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>sota</type><repo>remote</repo></header>' +
        '<type><sota><cmd logtofile="N">update</cmd><version>2</version></sota></type></ota></manifest>',
    );
    assert.equal(
      methodCall('reboot_device', {})!.xml,
      '<?xml version="1.0" encoding="UTF-8"?><manifest><type>cmd</type><cmd>restart</cmd></manifest>',
    );
  });

  test('a manifest the reference would also refuse is answered with 300 (sota with version fails the schema)', async () => {
    const message = await call(mqtt, 'triggersota', { cmd: 'update', log_to_file: 'N', version: '2' });
    assert.equal((JSON.parse(message) as Result).status, 300);
  });
});

describe('ThingsBoard telemetry and slow requests', () => {
  test('static telemetry → attributes, dynamic → telemetry with ts, logged keys also as events', async () => {
    const mqtt = await startMqtt(['v1/devices/me/#']);
    try {
      const tb = await startThingsBoard({ link: mqtt.link, port: parsingPort([]) });
      await tb.telemetry({ timestamp: 1_700_000_000.25, type: 'static_telemetry', values: { biosVendor: 'Intel', cpuId: 'x' } });
      await tb.telemetry({
        timestamp: 1_700_000_001.5,
        type: 'dynamic_telemetry',
        values: { systemCpuPercent: 3.5, containerStats: '[]' },
      });
      const [attrs] = await mqtt.cloud.wait(TB.attributes);
      assert.deepEqual(JSON.parse(attrs!.text), { biosVendor: 'Intel', cpuId: 'x' });
      const tel = (await mqtt.cloud.wait(TB.telemetry, 2)).map((m) => JSON.parse(m.text));
      assert.deepEqual(tel[0].values, { event: 'containerStats: []' });
      assert.deepEqual(tel[1], { ts: 1_700_000_001_500, values: { systemCpuPercent: 3.5, containerStats: '[]' } });
    } finally {
      await mqtt.close();
    }
  });

  test('a request slower than the response wait is answered with the trigger text; its result follows as an event', async () => {
    const mqtt = await startMqtt(['v1/devices/me/#']);
    let release!: (r: Result) => void;
    const slow: AgentPort = { submitManifest: () => new Promise<Result>((r) => (release = r)) };
    try {
      await startThingsBoard({ link: mqtt.link, port: slow, responseWaitMs: 50 });
      assert.equal(await call(mqtt, 'reboot_device', {}), 'Initiated device reboot');
      release(ok('rebooting', 'job-1'));
      const events = await mqtt.cloud.wait(TB.telemetry, 2);
      const last = JSON.parse(events.at(-1)!.text) as { values: { event: string } };
      assert.deepEqual(JSON.parse(last.values.event), { status: 200, message: 'rebooting', job_id: 'job-1' });
    } finally {
      await mqtt.close();
    }
  });

  test('decommission_device removes the adapter configuration first, as the reference does', async () => {
    const mqtt = await startMqtt(['v1/devices/me/#']);
    const dir = await mkdtemp(join(tmpdir(), 'inbm-tb-cfg-'));
    const cfg = join(dir, 'adapter.cfg');
    await writeFile(cfg, JSON.stringify({ cloud: 'thingsboard', config: {} }));
    const seen: string[] = [];
    try {
      const adapter = await startAdapter({
        link: mqtt.link,
        port: parsingPort(seen),
        adapter: { cloud: 'thingsboard' },
        adapterFilePath: cfg,
      });
      assert.ok(adapter);
      assert.equal(JSON.parse(await call(mqtt, 'decommission_device', {})).status, 200);
      await assert.rejects(stat(cfg), { code: 'ENOENT' });
      assert.match(seen[0]!, /<cmd>decommission<\/cmd>/);
    } finally {
      await mqtt.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
