/**
 * ContainerImage against a real Docker engine (scripts/test-env.sh brings one up): load, run,
 * a bad version rolled back, a good one committed, drift repaired, removal; import by manifest.
 * The engine's state is checked with the docker CLI, not through our driver.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, it } from 'node:test';
import { until } from '../until.js';
import { drop, makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';

const REPO = 'inbm-it/app';
let dockerHost = '';
let server: Server;
let base: string;
let root: Root;
let agent: Running;
const files = new Map<string, string>();

const docker = (...args: string[]) =>
  execFileSync('docker', args, { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: dockerHost } }).trim();
const containers = () =>
  docker('ps', '-a', '--filter', 'label=inbm.dev/resource=image-app', '--format', '{{.Label "inbm.dev/version"}} {{.State}}')
    .split('\n')
    .filter(Boolean)
    .sort();
const tags = (repo = REPO) => docker('images', repo, '--format', '{{.Tag}}').split('\n').filter(Boolean).sort();
const status = async (name: string) => JSON.parse(await readFile(join(root.state, 'status', 'ContainerImage', `${name}.json`), 'utf8'));
const doc = (tag: string, command: string, soak = 1, ensure = 'present') =>
  `apiVersion: inbm.dev/v1alpha1\nkind: ContainerImage\nmetadata: {name: image-app}\nspec:\n  image: ${REPO}\n  tag: "${tag}"\n  ensure: ${ensure}\n  source: {method: load, artifact: {url: "${base}/images/app-${tag}.tar"}}\n  container: {run: true, command: "${command}", restartPolicy: "no"}\n  soakSeconds: ${soak}\n`;

function cleanEngine(): void {
  // Only this file's resources: other test files share the engine and run at the same time.
  for (const resource of ['image-app', 'image-bad'])
    for (const id of docker('ps', '-aq', '--filter', `label=inbm.dev/resource=${resource}`).split('\n').filter(Boolean))
      docker('rm', '-f', id);
  for (const repo of [REPO, 'inbm-it/rootfs']) for (const t of tags(repo)) docker('rmi', '-f', `${repo}:${t}`);
}

before(async () => {
  const env = execFileSync('bash', [resolve(import.meta.dirname, '..', '..', 'scripts', 'test-env.sh')], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  dockerHost = /DOCKER_HOST=(\S+)/.exec(env)![1]!;
  cleanEngine();
  const d = await mkdtemp(join(tmpdir(), 'inbm-img-'));
  for (const t of ['1', '2']) {
    docker('tag', 'inbm-test/busybox:1', `${REPO}:${t}`);
    docker('save', '-o', join(d, `app-${t}.tar`), `${REPO}:${t}`);
    docker('rmi', `${REPO}:${t}`);
    files.set(`/images/app-${t}.tar`, join(d, `app-${t}.tar`));
  }
  // A root filesystem for docker import: busybox and a shell link.
  await mkdir(join(d, 'rootfs', 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(d, 'rootfs', 'bin', 'busybox'));
  await symlink('busybox', join(d, 'rootfs', 'bin', 'sh'));
  execFileSync('tar', ['-C', join(d, 'rootfs'), '-czf', join(d, 'rootfs.tgz'), '.']);
  files.set('/images/rootfs.tgz', join(d, 'rootfs.tgz'));
  await writeFile(join(d, 'corrupt.tar'), 'this is no image');
  files.set('/images/corrupt.tar', join(d, 'corrupt.tar'));
  ({ server, base } = await serveFiles(files));
  root = await makeRoot('resyncSeconds: 1\n');
  agent = await startAgent(root, { DOCKER_HOST: dockerHost });
  await trustRepository(root, `${base}/images`);
});

after(async () => {
  if (agent) assert.equal(await stopAgent(agent), 0);
  server?.close();
  if (dockerHost) cleanEngine();
  if (root) await rm(root.dir, { recursive: true, force: true });
});

it('load and run, roll a bad version back, commit a good one, repair drift, remove', async () => {
  await drop(root, 'app.yaml', doc('1', 'sleep 3600'));
  await until(
    'v1 running',
    async () => ((await status('image-app')).phase === 'Ready' && containers().join() === '1 running' ? true : undefined),
    30_000,
  );
  assert.deepEqual(tags(), ['1']);

  // A version whose container exits at once: rolled back, the engine as it was.
  await drop(root, 'app.yaml', doc('2', 'exit 3'));
  const failed = await until(
    'rolled back',
    async () => {
      const s = await status('image-app');
      return s.observedGeneration === 2 && ['Stalled', 'Failed'].includes(s.phase) ? s : undefined;
    },
    30_000,
  );
  assert.match(failed.lastResult.message, /did not stay up \(.*exited with code 3\); rolled back to 1/);
  assert.deepEqual(containers(), ['1 running']);
  assert.deepEqual(tags(), ['1']);

  // A good version: committed, the previous container and image pruned.
  await drop(root, 'app.yaml', doc('2', 'sleep 3601'));
  await until(
    'v2 committed',
    async () => ((await status('image-app')).observedGeneration === 3 && containers().join() === '2 running' ? true : undefined),
    30_000,
  );
  assert.deepEqual(tags(), ['2']);

  // Drift: stopped by hand, started again by the next resync.
  docker('stop', '-t', '1', docker('ps', '-q', '--filter', 'label=inbm.dev/resource=image-app'));
  assert.deepEqual(containers(), ['2 exited']);
  await until('running again', async () => (containers().join() === '2 running' ? true : undefined), 20_000);

  await drop(root, 'app.yaml', doc('2', 'sleep 3601', 1, 'absent'));
  await until('removed', async () => (containers().length === 0 && tags().length === 0 ? true : undefined), 20_000);
});

it('a corrupt image tarball fails with the engine reason and changes nothing', async () => {
  files.set('/images/app-9.tar', files.get('/images/corrupt.tar')!);
  await drop(root, 'bad.yaml', doc('9', 'sleep 1').replace('image-app', 'image-bad'));
  const s = await until(
    'failed',
    async () => {
      const st = await status('image-bad');
      return st.lastResult && st.phase !== 'Ready' ? st : undefined;
    },
    20_000,
  );
  assert.match(s.lastResult.message, /docker load failed/);
  assert.deepEqual(tags(), []);
});

it('an AOTA docker import manifest leaves the imported image', async () => {
  const xml = `<manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type><aota name="imp"><cmd>import</cmd><app>docker</app><fetch>${base}/images/rootfs.tgz</fetch><version>1.0</version><containerTag>inbm-it/rootfs:1</containerTag></aota></type></ota></manifest>`;
  await drop(root, 'import.xml', xml);
  await until('imported', async () => (tags('inbm-it/rootfs').join() === '1' ? true : undefined), 20_000);
  assert.equal(docker('run', '--rm', '--network', 'none', 'inbm-it/rootfs:1', '/bin/busybox', 'echo', 'ok'), 'ok');
});

it('docker stats and docker list manifests are answered from the engine', async () => {
  await drop(root, 'svc.yaml', doc('1', 'sleep 3600').replace('image-app', 'image-svc'));
  await until('running', async () => ((await status('image-svc')).phase === 'Ready' ? true : undefined), 30_000);
  const answer = async (file: string, cmd: string) => {
    await drop(
      root,
      file,
      `<manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type><aota><cmd>${cmd}</cmd><app>docker</app></aota></type></ota></manifest>`,
    );
    return until(file, async () => JSON.parse(await readFile(join(root.state, 'status', 'files', `${file}.json`), 'utf8')).result, 10_000);
  };
  const stats = await answer('stats.xml', 'stats');
  assert.equal(stats.status, 200);
  assert.ok(JSON.parse(stats.message).containerStats.some((c: { image: string }) => c.image === `${REPO}:1`));
  const list = await answer('list.xml', 'list');
  assert.ok(
    JSON.parse(list.message).containerList.some((c: { image: string; state: string }) => c.image === `${REPO}:1` && c.state === 'running'),
  );
  await drop(root, 'svc.yaml', doc('1', 'sleep 3600', 1, 'absent').replace('image-app', 'image-svc'));
  await until('removed', async () => (tags().length === 0 ? true : undefined), 20_000);
});
