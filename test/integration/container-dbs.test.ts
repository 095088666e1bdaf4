/** Docker Bench Security after a container starts, by the conf's dbs mode, with a check script of the test's. */
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { until } from '../until.js';
import { BASE_IMAGE, cleanUp, containersOf, docker, engineUp, tagsOf, unique } from './engine.js';
import { drop, makeRoot, type Root, type Running, startAgent, stopAgent } from './harness.js';

let root: Root;
let agent: Running;
let checked: string;
const repo = unique('inbm-it/dbs');
const resources: string[] = [];

before(async () => {
  const host = engineUp();
  root = await makeRoot();
  checked = join(root.dir, 'dbs-checked.log');
  const script = join(root.dir, 'dbs-check.sh');
  // Fails for any container whose name says "bad"; logs every container it checked.
  await writeFile(script, `#!/bin/sh\necho "$1" >> ${checked}\ncase "$1" in *bad*) echo "4.1 container runs as root" >&2; exit 1;; esac\n`);
  await chmod(script, 0o755);
  const settings = join(root.dir, 'etc', 'inbm', 'agent.yaml');
  await writeFile(
    settings,
    (await readFile(settings, 'utf8')).replace('commands:\n', `commands:\n  dockerBenchSecurity: [${script}, "{container}"]\n`),
  );
  docker(['tag', BASE_IMAGE, `${repo}:1`]);
  agent = await startAgent(root, { DOCKER_HOST: host });
});
after(async () => {
  await stopAgent(agent);
  cleanUp(resources, [repo]);
});

const setDbs = async (mode: string) => {
  const conf = join(root.dir, 'etc', 'intel_manageability.conf');
  await writeFile(conf, (await readFile(conf, 'utf8')).replace(/<dbs>\w+<\/dbs>/, `<dbs>${mode}</dbs>`));
};
const run = async (name: string) => {
  resources.push(name);
  await drop(
    root,
    `${name}.yaml`,
    `apiVersion: inbm.dev/v1alpha1\nkind: ContainerImage\nmetadata: {name: ${name}}\nspec:\n  image: ${repo}\n  tag: "1"\n  container: {run: true, command: "sleep 3600"}\n  soakSeconds: 0\n`,
  );
  return until(
    name,
    async () => {
      const s = JSON.parse(await readFile(join(root.state, 'status', 'ContainerImage', `${name}.json`), 'utf8'));
      return s.lastResult ? s : undefined;
    },
    30_000,
  );
};

it('dbs ON: a container failing the check is removed and the update fails', async () => {
  await setDbs('ON');
  const s = await run('image-dbs-bad');
  assert.equal(s.lastResult.status, 400);
  assert.match(s.lastResult.message, /failed Docker Bench Security \(.*exit 1\)/);
  assert.deepEqual(containersOf('image-dbs-bad'), []);
  assert.deepEqual(tagsOf(repo), ['1'], 'an image the rollout did not fetch stays');
  assert.match(await readFile(checked, 'utf8'), /inbm-image-dbs-bad-1/);
});

it('dbs WARN: reported only, the container stays; dbs OFF: not checked', async () => {
  await setDbs('WARN');
  const warned = await run('image-dbs-bad-warn');
  assert.equal(warned.lastResult.status, 200);
  assert.equal(containersOf('image-dbs-bad-warn').length, 1);
  await until('warning logged', async () => (agent.output().includes('Docker Bench Security check failed') ? true : undefined));
  await setDbs('OFF');
  const before = await readFile(checked, 'utf8');
  const off = await run('image-dbs-bad-off');
  assert.equal(off.lastResult.status, 200);
  assert.equal(await readFile(checked, 'utf8'), before, 'the check did not run');
  assert.deepEqual(tagsOf(repo), ['1']);
});
