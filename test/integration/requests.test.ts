/** Manifests are requests: each drop runs once, settles, and is archived; repeats run again. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { until } from '../until.js';
import { BIN, drop, makeRoot, startAgent, stopAgent } from './harness.js';

it('the same set three times answers each time; a later load is not undone by earlier sets', async () => {
  const root = await makeRoot();
  const agent = await startAgent(root);
  const inbm = (...args: string[]) =>
    spawnSync(process.execPath, [BIN, '--root', root.dir, ...args], { encoding: 'utf8', timeout: 20_000 });
  for (let i = 0; i < 3; i++) {
    const r = inbm('set', 'maxCacheSize:130');
    assert.equal(r.status, 0, `run ${i + 1}: ${r.stdout}${r.stderr}`);
    assert.equal(JSON.parse(r.stdout).status, 200);
  }
  const conf = () => readFile(join(root.dir, 'etc', 'intel_manageability.conf'), 'utf8');
  const cache = join(root.dir, 'var', 'cache', 'manageability', 'new.conf');
  await writeFile(cache, (await conf()).replace('<maxCacheSize>130', '<maxCacheSize>77'));
  const load = inbm('load', cache);
  assert.equal(JSON.parse(load.stdout).message, 'Configuration load: SUCCESSFUL');
  await new Promise((r) => setTimeout(r, 300));
  assert.match(await conf(), /<maxCacheSize>77<\/maxCacheSize>/);
  await until('manifests archived', async () => ((await readdir(root.desired)).length === 0 ? true : undefined));
  assert.equal((await readdir(join(root.state, 'applied'))).length, 4);
  assert.equal(await stopAgent(agent), 0);
});

it('a second restart request restarts again', async () => {
  const root = await makeRoot();
  const inbm = (...args: string[]) =>
    spawnSync(process.execPath, [BIN, '--root', root.dir, ...args], { encoding: 'utf8', timeout: 20_000 });
  const reboots = async () => (await readFile(root.rebootLog, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).length;
  for (const expected of [1, 2]) {
    // Each reboot is a new boot for a new agent, as on a device.
    const agent = await startAgent(root);
    const r = inbm('restart');
    assert.deepEqual(JSON.parse(r.stdout), { status: 200, message: 'Restart Command Success', job_id: '' });
    assert.equal(await reboots(), expected);
    agent.proc.kill('SIGKILL');
    await agent.exited;
    const after = await startAgent(root);
    await until('verdict', async () => {
      const s = JSON.parse(await readFile(join(root.state, 'status', 'PowerAction', 'power.json'), 'utf8'));
      return s.phase === 'Ready' ? true : undefined;
    });
    assert.equal(await stopAgent(after), 0);
  }
});

for (const gapMs of [5, 20, 35]) {
  it(`a file replaced ${gapMs} ms after its previous version ends at its last version`, async () => {
    const root = await makeRoot();
    const agent = await startAgent(root);
    const doc = (v: number) =>
      `apiVersion: inbm.dev/v1alpha1\nkind: Configuration\nmetadata: {name: config-cache}\nspec:\n  set: {maxCacheSize: "${v}"}\n`;
    const conf = () => readFile(join(root.dir, 'etc', 'intel_manageability.conf'), 'utf8');
    await drop(root, 'cache.yaml', doc(60));
    await until('first version applied', async () => ((await conf()).includes('<maxCacheSize>60</maxCacheSize>') ? true : undefined), 5000);
    // The watcher drops a second change to a path within ~50 ms; the store must not.
    await drop(root, 'cache.yaml', doc(61));
    await new Promise((r) => setTimeout(r, gapMs));
    await drop(root, 'cache.yaml', doc(62));
    await until('last version applied', async () => ((await conf()).includes('<maxCacheSize>62</maxCacheSize>') ? true : undefined), 5000);
    assert.equal(await stopAgent(agent), 0);
  });
}

it('removing a document changes nothing on the device, unless it asked to be pruned', async () => {
  const root = await makeRoot();
  const agent = await startAgent(root);
  const conf = () => readFile(join(root.dir, 'etc', 'intel_manageability.conf'), 'utf8');
  const doc = (name: string, annotations: string, spec: string) =>
    `apiVersion: inbm.dev/v1alpha1\nkind: Configuration\nmetadata: {name: ${name}${annotations}}\nspec: ${spec}\n`;
  await drop(root, 'keep.yaml', doc('config-keep', '', '{set: {publishIntervalSeconds: "240"}}'));
  await drop(
    root,
    'pruned.yaml',
    doc(
      'config-pruned',
      ', annotations: {inbm.dev/prune: "true"}',
      '{set: {maxCacheSize: "111"}, append: {trustedRepositories: ["https://prune.test"]}}',
    ),
  );
  await until('both applied', async () => {
    const c = await conf();
    return c.includes('<publishIntervalSeconds>240<') && c.includes('<maxCacheSize>111<') && c.includes('https://prune.test')
      ? true
      : undefined;
  });
  const { rm } = await import('node:fs/promises');
  await rm(join(root.desired, 'keep.yaml'));
  await rm(join(root.desired, 'pruned.yaml'));
  await until('pruned', async () => {
    const c = await conf();
    return c.includes('<maxCacheSize>100<') && !c.includes('https://prune.test') ? true : undefined;
  });
  assert.match(await conf(), /<publishIntervalSeconds>240</, 'the document without prune left its value');
  // The status is written right after the file: wait for it rather than race it.
  const readyReason = async () =>
    JSON.parse(await readFile(join(root.state, 'status', 'Configuration', 'config-pruned.json'), 'utf8')).conditions.find(
      (c: { type: string }) => c.type === 'Ready',
    ).reason;
  await until('pruned status', async () => ((await readyReason()) === 'Pruned' ? true : undefined));
  assert.equal(await stopAgent(agent), 0);
});
