/** With a broker and a CLI certificate configured, the INBC-style verbs go over MQTT and exit as INBC does. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { requestOverBroker, requestTopic, timeoutFor } from '../../src/cloud/request-client.js';
import { until } from '../until.js';
import { BIN, makeRoot, type Root, startAgent, stopAgent } from './harness.js';
import { CLIENTS, provisionBroker } from './mosquitto.js';

function inbm(root: Root, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, '--root', root.dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

it('set, restart and a busy agent over the broker: results, events and INBC exit codes 0, 1, 6, 2, 3', async () => {
  const root = await makeRoot();
  const started = join(root.dir, 'reboot-started');
  const go = join(root.dir, 'reboot-go');
  await writeFile(join(root.dir, 'reboot.sh'), `#!/bin/sh\ntouch ${started}\nwhile [ ! -f ${go} ]; do sleep 0.05; done\n`);
  await chmod(join(root.dir, 'reboot.sh'), 0o755);
  // MQTT 5: each CLI gets its result on a topic of its own, so the waiting restart never takes
  // the busy answer meant for the second CLI.
  const broker = await provisionBroker(root, 5);
  await broker.start();
  const agent = await startAgent(root);
  await until('agent subscribed', async () => (agent.output().includes('mqtt subscribed') ? true : undefined));

  const set = await inbm(root, 'set', 'maxCacheSize:131');
  assert.equal(set.code, 0, set.stdout + set.stderr);
  assert.deepEqual(JSON.parse(set.stdout), { status: 200, message: 'Configuration set_element command: SUCCESSFUL', job_id: '' });
  assert.match(set.stderr, /event: Configuration set_element command: SUCCESSFUL/);
  assert.match(await readFile(join(root.dir, 'etc', 'intel_manageability.conf'), 'utf8'), /<maxCacheSize>131</);

  const bad = await inbm(root, 'set', 'maxCacheSize:abc');
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.equal(JSON.parse(bad.stdout).status, 400);

  // The restart's command blocks: the agent is busy, and a second request is refused with 303 → exit 6.
  const restart = inbm(root, 'restart');
  await until('reboot running', () => readFile(started, 'utf8').then(() => true));
  const busy = await inbm(root, 'set', 'maxCacheSize:132');
  assert.equal(busy.code, 6, busy.stdout + busy.stderr);
  assert.equal(JSON.parse(busy.stdout).status, 303);
  await writeFile(go, '');
  const restarted = await restart;
  assert.equal(restarted.code, 0, restarted.stdout + restarted.stderr);
  assert.equal(JSON.parse(restarted.stdout).message, 'Restart Command Success');

  // No agent behind the broker: nobody answers, and the wait ends as INBC's does (2). The verbs
  // wait INBC's 120 s; the same client is called here with a short limit.
  assert.equal(await stopAgent(agent), 0);
  const mqtt = {
    url: `mqtts://127.0.0.1:${broker.port}`,
    caFile: join(broker.dir, 'ca.crt'),
    certFile: join(broker.dir, `${CLIENTS.cli}.crt`),
    keyFile: join(broker.dir, `${CLIENTS.cli}.key`),
    protocolVersion: 5 as const,
  };
  const silent = await requestOverBroker(mqtt, '<manifest><type>cmd</type><cmd>restart</cmd></manifest>', () => {}, 300);
  assert.equal(silent.code, 2, silent.reason);

  await broker.stop();
  const away = await inbm(root, 'set', 'maxCacheSize:133');
  assert.equal(away.code, 3, away.stdout + away.stderr);
  assert.match(away.stderr, /cannot reach the broker/);
});

it('INBC time-outs and request topics by manifest', () => {
  assert.equal(timeoutFor('<manifest><type>ota</type><ota><header><type>fota</type></header></ota></manifest>'), 260_000);
  assert.equal(timeoutFor('<manifest><type>ota</type><ota><header><type>sota</type></header></ota></manifest>'), 900_000);
  assert.equal(timeoutFor('<manifest><type>source</type></manifest>'), 30_000);
  assert.equal(timeoutFor('<manifest><type>config</type></manifest>'), 120_000);
  assert.equal(requestTopic('<manifest><type>cmd</type><cmd>restart</cmd></manifest>'), 'manageability/request/restart');
  assert.equal(
    requestTopic('<manifest><type>cmd</type><cmd>query</cmd><query><option>hw</option></query></manifest>'),
    'manageability/request/query',
  );
  assert.equal(requestTopic('<manifest><type>config</type></manifest>'), 'manageability/request/install');
});
