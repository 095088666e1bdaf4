/**
 * Issue 6 acceptance: every fixture manifest published with mosquitto_pub (the inbc certificate)
 * on the request topic the reference uses for it is answered on manageability/response exactly
 * as the same manifest dropped as a file. Two agents on identical roots take the same fixtures in
 * the same order, one over MQTT and one through the desired-state directory, so each fixture
 * meets the same state on both paths (config set/append/remove change what later fixtures see).
 * Installs need no Docker or apt here: the engine socket does not exist, apt is not configured
 * under --root and no repository is trusted, so installs are refused fast; the point is fidelity.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Result } from '../../src/core/result.js';
import { expectedValidateStatus, type Fixture, loadFixtures } from '../fixtures.js';
import { until } from '../until.js';
import { request } from './answer.js';
import { makeRoot, type Root, type Running, startAgent, stopAgent } from './harness.js';
import { type Broker, CLIENTS, provisionBroker, publish, resultOf, type Subscriber, subscribe } from './mosquitto.js';

const RESPONSE = 'manageability/response';
/** An engine that is not there: every Docker/compose install fails at once, nothing is pulled. */
const DOCKER_HOST = 'unix:///run/inbm-test/no-such-engine.sock';

/**
 * Loaded into each agent (--import): records where every socket the agent opens goes, so the
 * test sees that no fixture URL (most name outside hosts) made the agent connect off loopback.
 */
const connectSpy = (log: string) => `import { appendFileSync } from 'node:fs';
import net from 'node:net';
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const o = typeof args[0] === 'object' && args[0] !== null ? (Array.isArray(args[0]) ? args[0][0] : args[0]) : { port: args[0], host: args[1] };
  appendFileSync(${JSON.stringify(log)}, JSON.stringify({ host: o.host ?? null, path: o.path ?? null, port: o.port ?? null }) + '\\n');
  return connect.apply(this, args);
};
`;
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Power commands take the power resource until the (simulated) reboot is seen, and only the
 * reboot command is set in these roots: they run last, so no other fixture meets them.
 */
const POWER = new Set(['cmd-restart.xml', 'cmd-shutdown.xml', 'cmd-decommission.xml']);

/**
 * inbc sends a query manifest on request/query and every other manifest on request/install; the
 * cloud sends a schedule on request/schedule/<its request_id>, answered on response/<that id>.
 */
const route = (text: string): { request: string; response: string } => {
  if (text.includes('<schedule_request')) {
    const id = /<request_id>\s*([^<\s]*)\s*<\/request_id>/.exec(text)?.[1] || 'no-id';
    return { request: `manageability/request/schedule/${id}`, response: `${RESPONSE}/${id}` };
  }
  const query = /<type>\s*cmd\s*<\/type>/.test(text) && /<cmd>\s*query\s*<\/cmd>/.test(text);
  return { request: `manageability/request/${query ? 'query' : 'install'}`, response: RESPONSE };
};

const all = loadFixtures();
const fixtures = [...all.filter((f) => !POWER.has(f.file)), ...all.filter((f) => POWER.has(f.file))];

describe('every fixture manifest over Mosquitto answers as the same manifest dropped as a file', () => {
  let mqttRoot: Root;
  let fileRoot: Root;
  let broker: Broker;
  let overMqtt: Running;
  let overFile: Running;
  let sub: Subscriber;

  before(async () => {
    [mqttRoot, fileRoot] = await Promise.all([makeRoot(), makeRoot()]);
    broker = await provisionBroker(mqttRoot);
    await broker.start();
    const env = async (root: Root) => {
      await writeFile(join(root.dir, 'connect-spy.mjs'), connectSpy(join(root.dir, 'connects.log')));
      const spy = `--import=${join(root.dir, 'connect-spy.mjs')}`;
      return { DOCKER_HOST, NODE_OPTIONS: [process.env.NODE_OPTIONS, spy].filter(Boolean).join(' ') };
    };
    [overMqtt, overFile] = await Promise.all([startAgent(mqttRoot, await env(mqttRoot)), startAgent(fileRoot, await env(fileRoot))]);
    await until('agent subscribed', async () => (overMqtt.output().includes('mqtt subscribed') ? true : undefined));
    sub = await subscribe(broker.as(CLIENTS.cli), [RESPONSE, `${RESPONSE}/+`]);
  });

  after(async () => {
    await sub?.stop();
    if (overMqtt) assert.equal(await stopAgent(overMqtt), 0);
    if (overFile) assert.equal(await stopAgent(overFile), 0);
    await broker?.stop();
  });

  /**
   * As answer.ts does for a drop, a 303 is asked again: the request withdrawn after the previous
   * fixture may still hold its resource for a moment after its file is gone.
   */
  const viaMqtt = async (f: Fixture, attempt = 0): Promise<Result> => {
    const { request, response } = route(f.text);
    assert.equal(await publish(broker.as(CLIENTS.cli), request, { file: f.path }), 0, `published ${f.file}`);
    const line = await sub.next((l) => l.startsWith(`${response} `));
    if (response !== RESPONSE) return scheduleAnswer(line.slice(response.length + 1));
    const result = resultOf(line) as Result;
    if (result.status !== 303 || attempt >= 5) return result;
    await new Promise((r) => setTimeout(r, 500));
    return viaMqtt(f, attempt + 1);
  };

  /**
   * A schedule is acknowledged with an empty payload on response/<request_id> first; then a
   * schedule that does not parse is answered in plain text as the reference's scheduler does,
   * and any other answer is the result JSON. Read back as a result to compare with the file path.
   */
  const scheduleAnswer = async (ack: string): Promise<Result> => {
    // mosquitto_sub prints an empty payload as "(null)".
    assert.equal(ack, '(null)', 'the first message on response/<request_id> is the empty acknowledgement');
    const next = await sub.next((l) => l.startsWith(`${RESPONSE}/`));
    const payload = next.slice(next.indexOf(' ') + 1);
    const text = /^Error parsing schedule manifest: (.*)$/.exec(payload);
    return text ? { status: 300, message: `FAILED TO PARSE/VALIDATE MANIFEST: ${text[1]}`, job_id: '' } : (JSON.parse(payload) as Result);
  };

  // A request answered with a retryable failure (the engine is not there) stays and retries,
  // holding its resource: the next fixture for the same compose stack would be answered 303.
  // Withdrawing it (removing its file, as an operator would) leaves each fixture on its own.
  afterEach(async () => {
    for (const root of [mqttRoot, fileRoot]) {
      for (const name of await readdir(root.desired)) if (name.endsWith('.xml')) await rm(join(root.desired, name), { force: true });
    }
  });

  /** The two roots differ only in their temp directory, which a message may name. */
  const answer = (r: Result, root: Root) => ({ status: r.status, message: r.message.replaceAll(root.dir, '<root>') });

  // A suite's tests run one after the other: one request in flight per agent, so no 303.
  for (const f of fixtures) {
    const name = `${f.dir}/${f.file}`;
    it(name, async (t) => {
      const [mqtt, file] = await Promise.all([viaMqtt(f), request(fileRoot, f.file, f.text).then((a) => a.result)]);
      t.diagnostic(`mqtt ${mqtt.status} ${mqtt.message} | file ${file.status} ${file.message}`);
      assert.deepEqual(answer(mqtt, mqttRoot), answer(file, fileRoot), `${name}: MQTT answered as the file path`);
      if (expectedValidateStatus(f) === 300) assert.equal(mqtt.status, 300, `${name} fails to parse: ${mqtt.message}`);
      else assert.notEqual(mqtt.status, 300, `${name} parses: ${mqtt.message}`);
    });
  }

  it('no fixture made either agent open a connection off loopback', async (t) => {
    const connects = await readFile(join(mqttRoot.dir, 'connects.log'), 'utf8');
    const all = [connects, await readFile(join(fileRoot.dir, 'connects.log'), 'utf8').catch(() => '')]
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { host: string | null; path: string | null; port: number | null });
    // The spy works: the MQTT agent's own connection to the broker is in its log.
    assert.ok(
      all.some((c) => c.port === broker.port && c.host === '127.0.0.1'),
      connects,
    );
    t.diagnostic(`connections: ${[...new Set(all.map((c) => c.path ?? `${c.host}:${c.port}`))].join(', ')}`);
    const outside = all.filter((c) => c.path === null && !LOOPBACK.has(c.host ?? 'localhost'));
    assert.deepEqual(outside, []);
  });
});
