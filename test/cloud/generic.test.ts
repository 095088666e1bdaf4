import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connectionOf, startAdapter } from '../../src/cloud/adapters/index.js';
import { Formatter, MethodParser } from '../../src/cloud/adapters/template.js';
import { TB } from '../../src/cloud/adapters/thingsboard.js';
import type { AgentPort } from '../../src/cloud/link.js';
import { InbmError, ok, resultOf } from '../../src/core/result.js';
import { parseManifest } from '../../src/manifest/parse.js';
import { until } from '../until.js';
import { type Mqtt, startMqtt } from './link-fixture.js';

/** The reference's ThingsBoard template (cloudadapter-agent/thingsboard/config.json.template), filled in. */
const THINGSBOARD_TEMPLATE = {
  mqtt: { username: 'device-token', password: '', hostname: '127.0.0.1', port: 1883 },
  event: { pub: 'v1/devices/me/telemetry', format: '{ "ts": "{ts}", "values": {"event": "{value}"}}' },
  telemetry: { pub: 'v1/devices/me/telemetry', format: '{ "ts": "{ts}", "values": {"{key}": "{value}"}}' },
  attribute: { pub: 'v1/devices/me/attributes', format: '{ "{key}": "{value}" }' },
  method: {
    pub: 'v1/devices/me/rpc/response/{request_id}',
    format: '"{timestamp}: {message}"',
    sub: 'v1/devices/me/rpc/request/+',
    parse: {
      single: {
        request_id: { regex: 'v1\\/devices\\/me\\/rpc\\/request\\/([0-9]+)', group: 1 },
        method: { path: 'method' },
        args: { path: 'params' },
      },
    },
  },
};

const parsingPort: AgentPort = {
  async submitManifest(xml) {
    try {
      parseManifest(xml);
      return ok('parsed');
    } catch (err) {
      return resultOf(err);
    }
  },
};

describe('generic adapter configuration', () => {
  test('is validated with errors that name the field', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ ...THINGSBOARD_TEMPLATE, method: { ...THINGSBOARD_TEMPLATE.method, sub: undefined } }, /method\.sub/],
      [{ ...THINGSBOARD_TEMPLATE, mqtt: { ...THINGSBOARD_TEMPLATE.mqtt, port: '1883' } }, /mqtt\.port/],
      [{ ...THINGSBOARD_TEMPLATE, attribute: undefined }, /attribute/],
      [
        {
          ...THINGSBOARD_TEMPLATE,
          method: { ...THINGSBOARD_TEMPLATE.method, parse: { single: { request_id: { regex: '([0-9]+', group: 1 } } } },
        },
        /method\.parse\.single\.request_id/,
      ],
    ];
    for (const [config, field] of cases) {
      await assert.rejects(
        startAdapter({ link: undefined as never, port: parsingPort, adapter: { cloud: 'custom', config } }),
        (err: unknown) => err instanceof InbmError && field.test(err.message),
      );
    }
  });

  test('azure is a documented placeholder, not a silent generic config', async () => {
    await assert.rejects(
      startAdapter({ link: undefined as never, port: parsingPort, adapter: { cloud: 'azure', config: {} } }),
      /not implemented/,
    );
    assert.equal(await startAdapter({ link: undefined as never, port: parsingPort, adapter: { cloud: 'inbm' } }), undefined);
  });

  test('the connection section becomes the link settings', () => {
    assert.deepEqual(connectionOf({ cloud: 'thingsboard', config: THINGSBOARD_TEMPLATE }), {
      url: 'mqtt://127.0.0.1:1883',
      username: 'device-token',
    });
    assert.deepEqual(
      connectionOf({
        cloud: 'x',
        config: { ...THINGSBOARD_TEMPLATE, tls: { version: 'TLSv1.2', certificates: '/ca.pem' }, x509: { device_cert: '/d.pem' } },
      }),
      { url: 'mqtts://127.0.0.1:1883', username: 'device-token', caFile: '/ca.pem', certFile: '/d.pem' },
    );
  });
});

describe('templates', () => {
  const t = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
  test('fields, defaults, raw fields and timestamps', () => {
    const f = new Formatter('{ts}|{timestamp}|{timestamp=%Y-%m-%d.%H:%M:%S.%f}|{key}|{raw_key}|{username}|{missing}', { username: 'u' });
    assert.equal(
      f.format({ key: 'a"b\\c\nd\u0001' }, t),
      '1704164645678|2024-01-02 03:04:05 UTC|2024-01-02.03:04:05.678000|a\\"b\\\\c\\nd\\u0001|a"b\\c\nd\u0001|u|{missing}',
    );
  });

  test('a value that looks like a placeholder is not expanded again', () => {
    assert.equal(new Formatter('{a}{b}').format({ a: '{b}', b: 'x' }, t), '{b}x');
  });

  test('method parsing by topic regex and payload path, single and aggregate', () => {
    const single = new MethodParser(THINGSBOARD_TEMPLATE.method.parse.single);
    assert.deepEqual(single.parse('v1/devices/me/rpc/request/42', '{"method":"triggerquery","params":{"option":"hw"}}'), [
      { method: 'triggerquery', args: { option: 'hw' }, symbols: { request_id: '42' } },
    ]);
    assert.deepEqual(single.parse('v1/devices/me/rpc/request/x', '{"method":7,"params":"no"}'), [{ method: '', args: {}, symbols: {} }]);
    assert.throws(() => single.parse('t', 'not json'), SyntaxError);
    const aggregate = new MethodParser({ method: { path: 'name' }, args: { path: 'body/args' } }, { path: 'calls' });
    assert.deepEqual(aggregate.parse('t', '{"calls":[{"name":"a","body":{"args":{"x":1}}},{"name":"b"}]}'), [
      { method: 'a', args: { x: 1 }, symbols: {} },
      { method: 'b', args: {}, symbols: {} },
    ]);
  });
});

/** One request's response and the telemetry it produced, normalised so both adapters can be compared. */
async function exercise(cloud: string, config: unknown) {
  const mqtt: Mqtt = await startMqtt(['v1/devices/me/#']);
  try {
    const adapter = (await startAdapter({ link: mqtt.link, port: parsingPort, adapter: { cloud, config } }))!;
    const responses: string[] = [];
    for (const [id, body] of [
      ['7', { method: 'triggerquery', params: { option: 'os' } }],
      ['8', { method: 'triggerfota', params: { fetch: 'https://x' } }],
      ['9', { method: 'no_such_method', params: {} }],
    ] as const) {
      await mqtt.cloud.publish(`v1/devices/me/rpc/request/${id}`, JSON.stringify(body));
      const [res] = await mqtt.cloud.wait(TB.response(id));
      responses.push((JSON.parse(res!.text) as string).replace(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC: /, ''));
    }
    await adapter.telemetry({
      timestamp: 1_700_000_123.9,
      type: 'dynamic_telemetry',
      values: { systemCpuPercent: 12.5, availableMemory: 1024 },
    });
    await adapter.telemetry({ timestamp: 1_700_000_124, type: 'static_telemetry', values: { biosVendor: 'Intel', cpuId: 'Xeon "Q"' } });
    await adapter.event('Connected');
    const merged = () => {
      const telemetry: Record<string, string> = {};
      const events: string[] = [];
      const attributes: Record<string, string> = {};
      let ts = 0;
      for (const m of mqtt.cloud.on(TB.telemetry)) {
        const body = JSON.parse(m.text) as { ts: string | number; values: Record<string, unknown> };
        for (const [k, v] of Object.entries(body.values)) {
          if (k === 'event') events.push(String(v));
          else {
            telemetry[k] = String(v);
            ts = Number(body.ts);
          }
        }
      }
      for (const m of mqtt.cloud.on(TB.attributes)) Object.assign(attributes, JSON.parse(m.text));
      return { telemetry, events, attributes, ts };
    };
    const { telemetry, events, attributes, ts } = await until('telemetry, attributes and the event', async () => {
      const m = merged();
      return Object.keys(m.telemetry).length === 2 && Object.keys(m.attributes).length === 2 && m.events.includes('Connected')
        ? m
        : undefined;
    });
    assert.ok(events.includes('Query Method Triggered'), events.join(' | '));
    return { responses, telemetry, ts, attributes };
  } finally {
    await mqtt.close();
  }
}

test('the ThingsBoard template in the generic adapter behaves like the native adapter', async () => {
  const generic = await exercise('custom-thingsboard', THINGSBOARD_TEMPLATE);
  const native = await exercise('thingsboard', THINGSBOARD_TEMPLATE);
  assert.deepEqual(generic.responses, native.responses);
  assert.equal(native.responses[0], JSON.stringify({ status: 200, message: 'parsed', job_id: '' }));
  assert.match(native.responses[1]!, /^Command triggerfota failed: Missing required fields: \['biosversion'/);
  assert.equal(native.responses[2], "Unknown method: 'no_such_method'");
  assert.deepEqual(generic.telemetry, native.telemetry);
  assert.deepEqual(native.telemetry, { systemCpuPercent: '12.5', availableMemory: '1024' });
  assert.deepEqual(generic.attributes, { biosVendor: 'Intel', cpuId: 'Xeon "Q"' });
  assert.deepEqual(generic.attributes, native.attributes);
  // The reference stamps dynamic values with the bundle's whole second; ThingsBoard keeps milliseconds.
  assert.equal(generic.ts, 1_700_000_123_000);
  assert.equal(native.ts, 1_700_000_123_900);
});
