/**
 * The INBM local API through a real Mosquitto with TLS client certificates and the ACL that
 * `inbm provision` writes: fixture manifests in on manageability/request/*, the reference's
 * result out on manageability/response, read by mosquitto_sub as the CLI's certificate.
 */
import assert from 'node:assert/strict';
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { issueCertificate } from '../../src/cli/provision.js';
import { until } from '../until.js';
import { makeRoot, type Root, type Running, startAgent, stopAgent } from './harness.js';
import { type Broker, CLIENTS, provisionBroker, publish, resultOf, subscribe } from './mosquitto.js';

const FIXTURES = '/work/shared/fixtures/inbm-manifests';
const REQUEST = 'manageability/request/install';
const RESPONSE = 'manageability/response';

/** The fixtures whose outcome needs no Docker, apt or firmware, with the README's expected status. */
const CASES: Array<[string, number, RegExp?]> = [
  ['valid/config-get.xml', 200, /^maxCacheSize:100$/],
  ['valid/config-get-multi-docs.xml', 200, /^minStorageMB:\d+;minMemoryMB:\d+$/],
  ['valid/config-set.xml', 200, /set_element command: SUCCESSFUL/],
  ['valid/config-set-multi-docs.xml', 200],
  ['valid/config-append-trusted-repo.xml', 200],
  ['valid/config-remove-trusted-repo.xml', 200],
  ['valid/cmd-query-all.xml', 200, /queryResult/],
  ['valid/cmd-query-hw.xml', 200, /hardware/],
  ['invalid/header-missing-repo.xml', 300],
  ['invalid/cmd-unknown.xml', 300],
  ['invalid/query-option-unknown.xml', 300],
  ['invalid/config-extra-element.xml', 300],
  ['invalid/xxe-doctype.xml', 300],
  ['invalid/malformed-mismatched-tag.xml', 300],
  ['invalid/aota-version-not-decimal.xml', 300],
  ['invalid/seed-config-remove-with-append-cmd.xml', 300],
  ['invalid/config-set-bad-value.xml', 400],
  ['invalid/config-get-unknown-key.xml', 400],
  ['invalid/config-set-quoted.xml', 400],
];

async function agentWithBroker(protocolVersion: 4 | 5 = 4, rebootSeconds = 0): Promise<{ root: Root; broker: Broker; agent: Running }> {
  const root = await makeRoot('', rebootSeconds);
  const broker = await provisionBroker(root, protocolVersion);
  await broker.start();
  const agent = await startAgent(root);
  await until('agent subscribed', async () => (agent.output().includes('mqtt subscribed') ? true : undefined));
  return { root, broker, agent };
}

const conf = (root: Root) => readFile(join(root.dir, 'etc', 'intel_manageability.conf'), 'utf8');

describe('INBM topics over Mosquitto (TLS, client certificates, ACL)', () => {
  it('answers each fixture manifest with the reference result on manageability/response', async () => {
    const { root, broker, agent } = await agentWithBroker();
    const sub = await subscribe(broker.as(CLIENTS.cli), [RESPONSE]);
    for (const [file, status, message] of CASES) {
      assert.equal(await publish(broker.as(CLIENTS.cli), REQUEST, { file: join(FIXTURES, file) }), 0, `published ${file}`);
      const result = resultOf(await sub.next());
      assert.equal(result.status, status, `${file}: ${result.message}`);
      if (message) assert.match(result.message, message, file);
    }
    // The set fixture took effect; the refused bad value did not replace it.
    assert.match(await conf(root), /<maxCacheSize>149<\/maxCacheSize>/);
    // The wire format is the reference's json.dumps, key order and spacing included.
    assert.equal(await publish(broker.as(CLIENTS.cli), REQUEST, { file: join(FIXTURES, 'valid/config-get.xml') }), 0);
    assert.equal(await sub.next(), `${RESPONSE} {"status": 200, "message": "maxCacheSize:149", "job_id": ""}`);
    await sub.stop();
    assert.equal(await stopAgent(agent), 0);
    await broker.stop();
  });

  it('restarts on manageability/request/restart (payload ignored) and publishes events and retained configuration', async () => {
    const { root, broker, agent } = await agentWithBroker(5);
    const sub = await subscribe(broker.as(CLIENTS.cli), [RESPONSE, 'manageability/event']);
    assert.equal(await publish(broker.as(CLIENTS.cli), 'manageability/request/restart', { message: '' }), 0);
    // The event comes first, the result last (INBC stops listening at the result).
    assert.equal(await sub.next(), 'manageability/event Restart Command Success');
    assert.equal(await sub.next(), `${RESPONSE} {"status": 200, "message": "Restart Command Success", "job_id": ""}`);
    assert.equal((await readFile(root.rebootLog, 'utf8')).trim(), 'reboot');
    await sub.stop();
    // A subscriber that comes later still reads the current values (retained).
    const cloud = await subscribe(broker.as(CLIENTS.cloud), ['configuration/update/telemetry/maxCacheSize']);
    assert.equal(await cloud.next(), 'configuration/update/telemetry/maxCacheSize "100"');
    await cloud.stop();
    assert.equal(await stopAgent(agent), 0);
    await broker.stop();
  });

  it('a client without a certificate, or with one the ACL does not list, can neither request nor read results', async () => {
    const { root, broker, agent } = await agentWithBroker();
    await issueCertificate(broker.dir, 'intruder', 'client');
    const set = join(root.dir, 'set.xml');
    await writeFile(set, (await readFile(join(FIXTURES, 'valid/config-set.xml'), 'utf8')).replace('149', '222'));

    // No certificate: the TLS handshake fails, nothing is published, nothing can be read.
    assert.notEqual(await publish(broker.as(undefined), REQUEST, { file: set }), 0);
    await assert.rejects(subscribe(broker.as(undefined), [RESPONSE]));

    // A certificate of the right CA but an unlisted CN: connected, yet every publish and delivery is dropped.
    const spy = await subscribe(broker.as('intruder'), [RESPONSE, 'manageability/event', 'manageability/request/#']);
    assert.equal(await publish(broker.as('intruder'), REQUEST, { file: set }), 0);
    // The cloud adapter may request but not read what others request.
    const cloudSpy = await subscribe(broker.as(CLIENTS.cloud), ['manageability/request/#']);

    // An allowed request afterwards: its answer proves the agent was listening all along.
    const sub = await subscribe(broker.as(CLIENTS.cli), [RESPONSE]);
    assert.equal(await publish(broker.as(CLIENTS.cloud), REQUEST, { file: join(FIXTURES, 'valid/config-get.xml') }), 0);
    assert.equal(resultOf(await sub.next()).message, 'maxCacheSize:100');
    await spy.stop();
    await cloudSpy.stop();
    assert.deepEqual(spy.lines(), [], 'the unlisted client read nothing');
    assert.deepEqual(cloudSpy.lines(), [], 'the cloud adapter cannot read requests');
    assert.doesNotMatch(await conf(root), /222/);
    assert.equal((await readdir(join(root.state, 'applied'))).length, 1, 'only the allowed request reached the agent');
    await sub.stop();
    assert.equal(await stopAgent(agent), 0);
    await broker.stop();
  });

  it('a result produced while the broker is down arrives after it is back, once; a request meanwhile is refused busy (303)', async () => {
    const root = await makeRoot();
    // A reboot command that waits for the test: the long operation in flight.
    const started = join(root.dir, 'reboot-started');
    const go = join(root.dir, 'reboot-go');
    await writeFile(
      join(root.dir, 'reboot.sh'),
      `#!/bin/sh\ntouch ${started}\nwhile [ ! -f ${go} ]; do sleep 0.05; done\necho reboot >> ${root.rebootLog}\n`,
    );
    await chmod(join(root.dir, 'reboot.sh'), 0o755);
    const broker = await provisionBroker(root);
    await broker.start();
    const agent = await startAgent(root);
    await until('agent subscribed', async () => (agent.output().includes('mqtt subscribed') ? true : undefined));
    // A persistent session (-c, QoS 1): what is published while this client is away is kept for it.
    const sub = await subscribe(broker.as(CLIENTS.cli), [RESPONSE], ['-c', '-i', 'it-outage']);

    assert.equal(await publish(broker.as(CLIENTS.cli), REQUEST, { file: join(FIXTURES, 'valid/cmd-restart.xml') }), 0);
    await until('reboot running', () => readFile(started, 'utf8').then(() => true));
    assert.equal(await publish(broker.as(CLIENTS.cli), REQUEST, { file: join(FIXTURES, 'valid/config-set.xml') }), 0);
    const busy = resultOf(await sub.next());
    assert.equal(busy.status, 303, busy.message);

    await broker.stop();
    await writeFile(go, '');
    // The agent has the result and nowhere to send it: it waits in the outbox.
    const outbox = join(root.state, 'outbox');
    await until('result in the outbox', async () => ((await readdir(outbox)).length >= 2 ? true : undefined), 20_000);
    assert.ok(agent.output().includes('"status":200'), 'the agent answered while offline');

    await broker.start();
    assert.equal(await sub.next(), `${RESPONSE} {"status": 200, "message": "Restart Command Success", "job_id": ""}`);
    await until('outbox empty', async () => ((await readdir(outbox)).length === 0 ? true : undefined));
    // One more request: its answer comes next, with no second copy of the earlier one before it.
    assert.equal(await publish(broker.as(CLIENTS.cli), REQUEST, { file: join(FIXTURES, 'valid/config-get.xml') }), 0);
    assert.equal(resultOf(await sub.next()).message, 'maxCacheSize:100');
    assert.equal(sub.lines().length, 3, sub.lines().join('\n'));
    await sub.stop();
    assert.equal(await stopAgent(agent), 0);
    await broker.stop();
  });
});

describe('requests and results across an agent crash', () => {
  it('a restart whose agent goes down with the machine is answered after the boot, once', async () => {
    const root = await makeRoot();
    const started = join(root.dir, 'reboot-started');
    const go = join(root.dir, 'reboot-go');
    const bootId = join(root.dir, 'proc', 'sys', 'kernel', 'random', 'boot_id');
    // The agent dies before the command returns, as on a real reboot; then the boot id changes.
    await writeFile(
      join(root.dir, 'reboot.sh'),
      `#!/bin/sh\ntouch ${started}\nwhile [ ! -f ${go} ]; do sleep 0.05; done\necho reboot >> ${root.rebootLog}\necho booted > ${bootId}\n`,
    );
    await chmod(join(root.dir, 'reboot.sh'), 0o755);
    const broker = await provisionBroker(root);
    await broker.start();
    const first = await startAgent(root);
    await until('agent subscribed', async () => (first.output().includes('mqtt subscribed') ? true : undefined));
    const sub = await subscribe(broker.as(CLIENTS.cli), [RESPONSE]);
    assert.equal(await publish(broker.as(CLIENTS.cli), 'manageability/request/restart', { message: '' }), 0);
    await until('reboot running', () => readFile(started, 'utf8').then(() => true));
    first.proc.kill('SIGKILL');
    await first.exited;
    assert.equal((await readdir(join(root.state, 'requests'))).length, 1, 'the request is remembered');
    await writeFile(go, '');
    await until('rebooted', async () => ((await readFile(bootId, 'utf8')) === 'booted\n' ? true : undefined));

    const second = await startAgent(root);
    const result = resultOf(await sub.next());
    assert.deepEqual(result, { status: 200, message: 'Reboot SUCCESSFUL.', job_id: '' });
    await until('request forgotten once answered', async () =>
      (await readdir(join(root.state, 'requests'))).length === 0 ? true : undefined,
    );
    // A later request is answered next: no second answer of the old one came before it.
    assert.equal(await publish(broker.as(CLIENTS.cli), REQUEST, { file: join(FIXTURES, 'valid/config-get.xml') }), 0);
    assert.match(resultOf(await sub.next()).message, /^maxCacheSize:/);
    assert.equal(sub.lines().length, 2, sub.lines().join('\n'));
    await sub.stop();
    assert.equal(await stopAgent(second), 0);
    await broker.stop();
  });

  it('a result waiting in the outbox when the agent is killed goes out from the next run, once', async () => {
    const root = await makeRoot();
    const started = join(root.dir, 'reboot-started');
    const go = join(root.dir, 'reboot-go');
    await writeFile(join(root.dir, 'reboot.sh'), `#!/bin/sh\ntouch ${started}\nwhile [ ! -f ${go} ]; do sleep 0.05; done\n`);
    await chmod(join(root.dir, 'reboot.sh'), 0o755);
    const broker = await provisionBroker(root);
    await broker.start();
    const first = await startAgent(root);
    await until('agent subscribed', async () => (first.output().includes('mqtt subscribed') ? true : undefined));
    const sub = await subscribe(broker.as(CLIENTS.cli), [RESPONSE], ['-c', '-i', 'it-outbox-crash']);
    assert.equal(await publish(broker.as(CLIENTS.cli), 'manageability/request/restart', { message: '' }), 0);
    await until('restart running', () => readFile(started, 'utf8').then(() => true));
    await broker.stop();
    await writeFile(go, '');
    const outbox = join(root.state, 'outbox');
    await until('result in the outbox', async () => ((await readdir(outbox)).length >= 2 ? true : undefined), 20_000);
    await until('request handed over', async () => ((await readdir(join(root.state, 'requests'))).length === 0 ? true : undefined));
    first.proc.kill('SIGKILL');
    await first.exited;

    await broker.start();
    const second = await startAgent(root);
    assert.equal(await sub.next(), `${RESPONSE} {"status": 200, "message": "Restart Command Success", "job_id": ""}`);
    await until('outbox empty', async () => ((await readdir(outbox)).length === 0 ? true : undefined));
    assert.equal(await publish(broker.as(CLIENTS.cli), REQUEST, { file: join(FIXTURES, 'valid/config-get.xml') }), 0);
    assert.match(resultOf(await sub.next()).message, /^maxCacheSize:/);
    assert.equal(sub.lines().length, 2, sub.lines().join('\n'));
    await sub.stop();
    assert.equal(await stopAgent(second), 0);
    await broker.stop();
  });
});
