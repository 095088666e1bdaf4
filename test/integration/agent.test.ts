/** The agent as a real process on a temp root: file drops, apply --wait, config and power, status files. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { until } from '../until.js';
import { BIN, drop as dropInto, makeRoot, type Root, type Running, startAgent, stopAgent } from './harness.js';

const SECRET = 'pl4nted-s3cret-Zq9';

let harness: Root;
let root: string;
let agent: Running;
const inbm = (...args: string[]) => spawnSync(process.execPath, [BIN, '--root', root, ...args], { encoding: 'utf8' });
const conf = () => readFile(join(root, 'etc', 'intel_manageability.conf'), 'utf8');

const drop = (name: string, text: string) => dropInto(harness, name, text);

before(async () => {
  harness = await makeRoot('logLevel: debug\n');
  root = harness.dir;
  agent = await startAgent(harness);
});

after(async () => {
  assert.equal(await stopAgent(agent), 0, 'agent exits 0 on SIGTERM');
  assert.ok(!agent.output().includes(SECRET), 'a planted secret never reaches the logs');
});

describe('inbm agent on a temp root', () => {
  it('creates the default configuration file', async () => {
    assert.match(await conf(), /<maxCacheSize>100<\/maxCacheSize>/);
  });

  it('config set by XML manifest through inbm apply --wait', async () => {
    const file = join(root, 'set.xml');
    await writeFile(
      file,
      '<manifest><type>config</type><config><cmd>set_element</cmd><configtype><set><path>maxCacheSize:149</path></set></configtype></config></manifest>',
    );
    const r = inbm('apply', file, '--wait');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { status: 200, message: 'Configuration set_element command: SUCCESSFUL', job_id: '' });
    assert.match(await conf(), /<maxCacheSize>149<\/maxCacheSize>/);
  });

  it('an invalid value is refused naming the key, and the file is unchanged', async () => {
    const before = await conf();
    const file = join(root, 'bad.yaml');
    await writeFile(
      file,
      'apiVersion: inbm.dev/v1alpha1\nkind: Configuration\nmetadata: {name: config-bad}\nspec:\n  set: {maxCacheSize: "a"}\n',
    );
    const r = inbm('apply', file, '--wait');
    assert.equal(r.status, 1);
    const result = JSON.parse(r.stdout);
    assert.equal(result.status, 400);
    assert.match(result.message, /maxCacheSize/);
    assert.equal(await conf(), before);
  });

  it('config append by a YAML file drop, visible in inbm status', async () => {
    await drop(
      'repo.yaml',
      'apiVersion: inbm.dev/v1alpha1\nkind: Configuration\nmetadata: {name: config-repo}\nspec:\n  append: {trustedRepositories: ["https://repo.test"]}\n',
    );
    await until('trusted repo in conf', async () => ((await conf()).includes('https://repo.test') ? true : undefined));
    const st = await until('status', async () => {
      const r = inbm('status', 'Configuration/config-repo', '--json');
      const s = r.status === 0 ? JSON.parse(r.stdout) : undefined;
      return s?.phase === 'Ready' ? s : undefined;
    });
    assert.equal(st.observedGeneration, st.generation);
    assert.equal(st.conditions.find((c: { type: string }) => c.type === 'Ready').status, 'True');
  });

  it('an invalid drop is reported with 300 and replaces nothing', async () => {
    await drop('broken.xml', '<manifest><type>cmd</type><cmd>reboot</cmd></manifest>');
    const refused = await until('refusal', async () =>
      JSON.parse(await readFile(join(root, 'var', 'lib', 'inbm', 'status', 'files', 'broken.xml.json'), 'utf8')),
    );
    assert.equal(refused.result.status, 300);
    assert.match(refused.result.message, /<manifest\/cmd>/);
  });

  it('credentials in a dropped manifest become a 0600 secret, never logged or in status', async () => {
    await drop(
      'stack.xml',
      `<manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type><aota><cmd>down</cmd><app>compose</app><containerTag>s1</containerTag><dockerRegistry>127.0.0.1:5000</dockerRegistry><dockerUsername>u</dockerUsername><dockerPassword>${SECRET}</dockerPassword></aota></type></ota></manifest>`,
    );
    const secret = join(root, 'var', 'lib', 'inbm', 'secrets', 'stack-s1-registry.json');
    await until('secret', async () => readFile(secret, 'utf8'));
    assert.match(await readFile(secret, 'utf8'), new RegExp(SECRET));
    const status = inbm('status', '--json');
    assert.ok(!status.stdout.includes(SECRET));
  });

  it('a settled manifest is archived without its passwords', async () => {
    await drop(
      'app.xml',
      `<manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type><aota><cmd>update</cmd><app>application</app><fetch>https://127.0.0.1:1/x.deb</fetch><username>u</username><password>${SECRET}</password></aota></type></ota></manifest>`,
    );
    const archived = join(root, 'var', 'lib', 'inbm', 'applied', 'app.xml');
    const text = await until('archived', async () => readFile(archived, 'utf8'));
    assert.ok(!text.includes(SECRET), text);
    assert.match(text, /<password>\[redacted\]<\/password>/);
    const { stat } = await import('node:fs/promises');
    assert.equal((await stat(archived)).mode & 0o777, 0o600);
  });

  it('restart runs the configured reboot command once and reports it', async () => {
    const file = join(root, 'restart.yaml');
    await writeFile(
      file,
      'apiVersion: inbm.dev/v1alpha1\nkind: PowerAction\nmetadata: {name: power}\nspec: {requestId: r-1, action: restart}\n',
    );
    const r = inbm('apply', file, '--wait');
    const status = await until('power status', async () => {
      const s = JSON.parse(inbm('status', 'PowerAction/power', '--json').stdout);
      return s.lastResult ? s : undefined;
    });
    assert.deepEqual(status.lastResult, { status: 200, message: 'Restart Command Success', job_id: '' });
    assert.equal((await readFile(harness.rebootLog, 'utf8')).trim(), 'reboot');
    assert.equal(r.status, 0, r.stdout);
    assert.deepEqual(JSON.parse(r.stdout), { status: 200, message: 'Restart Command Success', job_id: '' });
  });
});

describe('configuration by every route', () => {
  const xml = (cmd: string, child: string, path: string) =>
    `<manifest><type>config</type><config><cmd>${cmd}</cmd><configtype><${child}><path>${path}</path></${child}></configtype></config></manifest>`;

  it('append and remove by XML manifest through apply --wait', async () => {
    const file = join(root, 'append.xml');
    await writeFile(file, xml('append', 'append', 'sotaSW:node-exporter'));
    const added = inbm('apply', file, '--wait');
    assert.equal(JSON.parse(added.stdout).message, 'Configuration append command: SUCCESSFUL');
    assert.match(await conf(), /node-exporter/);
    const rm = join(root, 'remove.xml');
    await writeFile(rm, xml('remove', 'remove', 'sotaSW:node-exporter'));
    const removed = inbm('apply', rm, '--wait');
    assert.equal(removed.status, 0, removed.stdout);
    assert.doesNotMatch(await conf(), /node-exporter/);
  });

  it('remove by XML file drop', async () => {
    await drop('rm-repo.xml', xml('remove', 'remove', 'trustedRepositories:https://repo.test'));
    await until('repo removed', async () => ((await conf()).includes('https://repo.test') ? undefined : true));
  });

  it('load of a whole file from the cache directory, by manifest through apply --wait; an invalid one changes nothing', async () => {
    const cache = join(root, 'var', 'cache', 'manageability');
    const good = (await conf()).replace(/<maxCacheSize>\d+<\/maxCacheSize>/, '<maxCacheSize>188</maxCacheSize>');
    await writeFile(join(cache, 'new.conf'), good);
    const file = join(root, 'load.xml');
    await writeFile(
      file,
      `<manifest><type>config</type><config><cmd>load</cmd><configtype><load><path>${join(cache, 'new.conf')}</path></load></configtype></config></manifest>`,
    );
    const r = inbm('apply', file, '--wait');
    assert.deepEqual(JSON.parse(r.stdout), { status: 200, message: 'Configuration load: SUCCESSFUL', job_id: '' });
    assert.match(await conf(), /<maxCacheSize>188<\/maxCacheSize>/);
    assert.match(await readFile(join(root, 'etc', 'intel_manageability.conf_bak'), 'utf8'), /<maxCacheSize>/);

    const before = await conf();
    await writeFile(join(cache, 'bad.conf'), good.replace('<maxCacheSize>188', '<maxCacheSize>9999'));
    const badFile = join(root, 'load-bad.xml');
    await writeFile(
      badFile,
      `<manifest><type>config</type><config><cmd>load</cmd><configtype><load><path>${join(cache, 'bad.conf')}</path></load></configtype></config></manifest>`,
    );
    const bad = inbm('apply', badFile, '--wait');
    assert.equal(bad.status, 1);
    assert.match(JSON.parse(bad.stdout).message, /Configuration load: FAILED.*maxCacheSize/);
    assert.equal(await conf(), before);
  });

  it('a load from outside the cache directory is refused (400) as in the reference', async () => {
    const file = join(root, 'load-out.xml');
    await writeFile(
      file,
      '<manifest><type>config</type><config><cmd>load</cmd><configtype><load><path>/etc/passwd</path></load></configtype></config></manifest>',
    );
    const r = inbm('apply', file, '--wait');
    assert.equal(JSON.parse(r.stdout).status, 400);
    assert.match(JSON.parse(r.stdout).message, /expected to be under/);
  });
});

describe('settings', () => {
  it('an invalid settings file stops the agent with the field named', async () => {
    const { mkdtemp: mk } = await import('node:fs/promises');
    const bad = await mk(join(tmpdir(), 'inbm-settings-'));
    await mkdir(join(bad, 'etc', 'inbm'), { recursive: true });
    await writeFile(join(bad, 'etc', 'inbm', 'agent.yaml'), 'commands:\n  reboot: /sbin/reboot\nresyncSeconds: 0\n');
    const r = spawnSync(process.execPath, [BIN, '--root', bad, 'agent'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /settings .*agent\.yaml: commands\.reboot: /);
  });

  it('a configuration load by YAML document, once per requestId', async () => {
    const cache = join(root, 'var', 'cache', 'manageability');
    await writeFile(
      join(cache, 'yaml-load.conf'),
      (await conf()).replace(/<maxCacheSize>\d+<\/maxCacheSize>/, '<maxCacheSize>144</maxCacheSize>'),
    );
    const file = join(root, 'load.yaml');
    await writeFile(
      file,
      `apiVersion: inbm.dev/v1alpha1\nkind: Configuration\nmetadata: {name: config-load-yaml}\nspec:\n  load: {requestId: y1, source: {path: ${join(cache, 'yaml-load.conf')}}}\n`,
    );
    const r = inbm('apply', file, '--wait');
    assert.deepEqual(JSON.parse(r.stdout), { status: 200, message: 'Configuration load: SUCCESSFUL', job_id: '' });
    assert.match(await conf(), /<maxCacheSize>144<\/maxCacheSize>/);
  });
});

describe('queries are answered, never stored', () => {
  const ask = async (xml: string) => {
    const file = join(root, `q-${Date.now()}.xml`);
    await writeFile(file, xml);
    const r = inbm('apply', file, '--wait');
    return { code: r.status, result: JSON.parse(r.stdout) as { status: number; message: string } };
  };
  it('a device query answers from the inventory', async () => {
    const { code, result } = await ask('<manifest><type>cmd</type><cmd>query</cmd><query><option>hw</option></query></manifest>');
    assert.equal(code, 0);
    const data = JSON.parse(result.message);
    assert.ok(data.queryResult.hardware.cores >= 1);
    assert.equal(data.queryResult.firmware, undefined);
  });
  it('config get_element answers from the file; an unknown key is 400 naming it', async () => {
    const get = (path: string) =>
      ask(
        `<manifest><type>config</type><config><cmd>get_element</cmd><configtype><get><path>${path}</path></get></configtype></config></manifest>`,
      );
    const { result } = await get('minStorageMB;dbs');
    assert.equal(result.status, 200);
    assert.match(result.message, /^minStorageMB:\d+;dbs:\w+$/);
    const bad = await get('MaxCacheSize');
    assert.equal(bad.result.status, 400);
    assert.match(bad.result.message, /MaxCacheSize/);
  });
});
