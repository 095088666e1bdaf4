/** With no broker configured the agent brings its own on loopback: plain mosquitto_pub works out of the box. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { until } from '../until.js';
import { makeRoot, startAgent, stopAgent } from './harness.js';
import { publish, resultOf, subscribe } from './mosquitto.js';

const FIXTURES = '/work/shared/fixtures/inbm-manifests';

it('the embedded broker answers mosquitto_pub/mosquitto_sub on 127.0.0.1 without any setup', async () => {
  // Port 0: any free port, so parallel test files never collide on the demo default (1883).
  const root = await makeRoot('cloud:\n  embedded:\n    port: 0\n');
  const agent = await startAgent(root);
  const line = await until('broker listening', async () =>
    agent
      .output()
      .split('\n')
      .find((l) => l.includes('embedded broker listening')),
  );
  const { url, port } = JSON.parse(line) as { url: string; port: number };
  assert.equal(url, `mqtt://127.0.0.1:${port}`);
  await until('agent subscribed', async () => (agent.output().includes('mqtt subscribed') ? true : undefined));

  const args = ['-h', '127.0.0.1', '-p', String(port)];
  const sub = await subscribe(args, ['manageability/response']);
  assert.equal(await publish(args, 'manageability/request/install', { file: join(FIXTURES, 'valid/config-get.xml') }), 0);
  assert.deepEqual(resultOf(await sub.next()), { status: 200, message: 'maxCacheSize:100', job_id: '' });
  assert.equal(await publish(args, 'manageability/request/install', { file: join(FIXTURES, 'invalid/xxe-doctype.xml') }), 0);
  assert.equal(resultOf(await sub.next()).status, 300);
  await sub.stop();
  assert.equal(await stopAgent(agent), 0);
});
