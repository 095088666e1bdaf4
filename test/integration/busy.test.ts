/** One mutation at a time: a manifest arriving meanwhile gets 303; documents wait their turn. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { until } from '../until.js';
import { drop, makeRoot, startAgent, stopAgent } from './harness.js';

const setXml = (v: number) =>
  `<manifest><type>config</type><config><cmd>set_element</cmd><configtype><set><path>maxCacheSize:${v}</path></set></configtype></config></manifest>`;

it('two manifests at once: the second is answered 303 and changes nothing', async () => {
  const root = await makeRoot('', 1); // the reboot command takes a second
  const agent = await startAgent(root);
  await drop(root, 'restart.xml', '<manifest><type>cmd</type><cmd>restart</cmd></manifest>');
  const journal = join(root.state, 'journal', 'PowerAction-power.json');
  await until('restart running', async () =>
    JSON.parse(await readFile(journal, 'utf8')).steps?.power?.state === 'started' ? true : undefined,
  );
  await drop(root, 'set.xml', setXml(155));
  const refused = await until('303', async () => JSON.parse(await readFile(join(root.state, 'status', 'files', 'set.xml.json'), 'utf8')));
  assert.equal(refused.result.status, 303);
  assert.match(refused.result.message, /^OTA IN PROGRESS, TRY LATER/);
  await until('restart issued', async () =>
    (await readFile(root.rebootLog, 'utf8').catch(() => '')).includes('reboot') ? true : undefined,
  );
  assert.equal(await stopAgent(agent), 0);
  assert.match(await readFile(join(root.dir, 'etc', 'intel_manageability.conf'), 'utf8'), /<maxCacheSize>100<\/maxCacheSize>/);
});

it('two documents dropped at once: both applied in turn', async () => {
  const root = await makeRoot('', 1);
  const agent = await startAgent(root);
  const doc = (name: string, spec: string) =>
    `apiVersion: inbm.dev/v1alpha1\nkind: ${name === 'power' ? 'PowerAction' : 'Configuration'}\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
  await Promise.all([
    drop(root, 'power.yaml', doc('power', '{requestId: p1, action: restart}')),
    drop(root, 'cache.yaml', doc('config-cache', '{set: {maxCacheSize: "166"}}')),
  ]);
  const status = (kind: string, name: string) => readFile(join(root.state, 'status', kind, `${name}.json`), 'utf8').then(JSON.parse);
  const config = await until('config applied', async () =>
    (await status('Configuration', 'config-cache')).phase === 'Ready' ? true : undefined,
  );
  const power = await until('restart issued', async () =>
    (await status('PowerAction', 'power')).lastResult?.status === 200 ? true : undefined,
  );
  assert.ok(config && power);
  assert.match(await readFile(join(root.dir, 'etc', 'intel_manageability.conf'), 'utf8'), /<maxCacheSize>166<\/maxCacheSize>/);
  assert.equal((await readFile(root.rebootLog, 'utf8')).trim(), 'reboot');
  assert.equal(await stopAgent(agent), 0);
});

it('a second request for a resource whose request waits for its reboot is 303; the first gets its verdict', async () => {
  const root = await makeRoot();
  const agent = await startAgent(root);
  await drop(root, 'restart-a.xml', '<manifest><type>cmd</type><cmd>restart</cmd></manifest>');
  const status = () => readFile(join(root.state, 'status', 'PowerAction', 'power.json'), 'utf8').then(JSON.parse);
  await until('waiting for the reboot', async () => ((await status()).phase === 'Waiting' ? true : undefined));
  await drop(root, 'restart-b.xml', '<manifest><type>cmd</type><cmd>restart</cmd></manifest>');
  const refused = await until('303', async () =>
    JSON.parse(await readFile(join(root.state, 'status', 'files', 'restart-b.xml.json'), 'utf8')),
  );
  assert.equal(refused.result.status, 303);
  assert.match(refused.result.message, /restart-a\.xml/);
  // Answered, so finished: archived, never run by a restarted agent.
  await until(
    'archived',
    async () =>
      await readFile(join(root.state, 'applied', 'restart-b.xml'))
        .then(() => true)
        .catch(() => undefined),
  );
  assert.equal(await stopAgent(agent), 0);

  // The reboot script changed the boot id: the restarted agent gives the first request its verdict.
  const again = await startAgent(root);
  await until('verdict', async () => ((await status()).lastResult?.message === 'Reboot SUCCESSFUL.' ? true : undefined));
  const results = JSON.parse(await readFile(join(root.state, 'results.json'), 'utf8')) as Array<{ result: { message: string } }>;
  assert.deepEqual(
    results.map((r) => r.result.message),
    ['Restart Command Success', 'Reboot SUCCESSFUL.'],
  );
  assert.equal((await readFile(root.rebootLog, 'utf8')).trim(), 'reboot', 'the reboot command ran once');
  assert.equal(await stopAgent(again), 0);
});
