/**
 * ComposeStack against a real Docker engine (scripts/test-env.sh brings one up) and Debian's
 * docker-compose 1.29: up, a bad version rolled back, a good one committed, drift repaired,
 * down, removal; then AOTA compose up/down manifests through `inbm apply --wait`. The engine's
 * state is checked with the docker CLI by the compose project label, not through our drivers.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, it } from 'node:test';
import { until } from '../until.js';
import { BIN, drop, makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';

const ID = randomBytes(3).toString('hex');
const PROJECT = `inbm-it-cs-${ID}`;
const AOTA_PROJECT = `inbm-it-csa-${ID}`;
/** Per-test tags of the test image: `down --rmi all` removes the tag a stack names, never inbm-test/busybox:1 itself. */
const IMAGE = `inbm-it/compose-${ID}`;
/** The same image, only in the local registry (test-env.sh --registry). */
const REGISTRY = '127.0.0.1:5555';
const PRIVATE = `${REGISTRY}/inbm-it/compose-${ID}:c`;
let dockerHost = '';
let server: Server;
let base: string;
let root: Root;
let agent: Running;
let work: string;
const files = new Map<string, string>();

const docker = (...args: string[]) =>
  execFileSync('docker', args, { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: dockerHost } }).trim();
const containers = (project = PROJECT) =>
  docker(
    'ps',
    '-a',
    '--filter',
    `label=com.docker.compose.project=${project}`,
    '--format',
    '{{.Label "com.docker.compose.service"}} {{.State}}',
  )
    .split('\n')
    .filter(Boolean)
    .sort();
const workingDirs = (project = PROJECT) =>
  docker(
    'ps',
    '-a',
    '--filter',
    `label=com.docker.compose.project=${project}`,
    '--format',
    '{{.Label "com.docker.compose.project.working_dir"}}',
  )
    .split('\n')
    .filter(Boolean);
const tags = () => docker('images', IMAGE, '--format', '{{.Tag}}').split('\n').filter(Boolean).sort();
const status = async (name: string) => JSON.parse(await readFile(join(root.state, 'status', 'ComposeStack', `${name}.json`), 'utf8'));
const stackDir = (project: string, version?: number) =>
  join(root.dir, 'var', 'cache', 'manageability', 'compose', project, ...(version === undefined ? [] : [String(version)]));
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

const composeFile = (tag: string, command: string) =>
  `version: "2.4"\nservices:\n  app:\n    image: ${IMAGE}:${tag}\n    network_mode: none\n    init: true\n    command: ${command}\n`;

/** A stack tarball made with the system tar; `nested` puts the file in a folder, as the reference's tarballs do. */
async function tarball(name: string, compose: string, nested = false): Promise<void> {
  const src = join(work, name);
  const dir = nested ? join(src, 'stack') : src;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'docker-compose.yml'), compose);
  execFileSync('tar', ['-C', src, '-czf', join(work, `${name}.tar.gz`), '.']);
  files.set(`/stacks/${name}.tar.gz`, join(work, `${name}.tar.gz`));
}

const doc = (version: string, ensure = 'running', soak = 1) =>
  `apiVersion: inbm.dev/v1alpha1\nkind: ComposeStack\nmetadata: {name: stack-it}\nspec:\n  project: ${PROJECT}\n  ensure: ${ensure}\n  source: {url: "${base}/stacks/${version}.tar.gz"}\n  soakSeconds: ${soak}\n`;

function cleanEngine(): void {
  for (const p of [PROJECT, AOTA_PROJECT, `${PROJECT}-reg`])
    for (const id of docker('ps', '-aq', '--filter', `label=com.docker.compose.project=${p}`).split('\n').filter(Boolean))
      docker('rm', '-f', id);
  for (const t of tags()) docker('rmi', '-f', `${IMAGE}:${t}`);
  if (docker('images', '-q', PRIVATE)) docker('rmi', '-f', PRIVATE);
}

/** Deletes the test's manifest from the local registry (the layers are the shared busybox ones). */
async function cleanRegistry(): Promise<void> {
  const url = `http://${REGISTRY}/v2/inbm-it/compose-${ID}/manifests`;
  const head = await fetch(`${url}/c`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  }).catch(() => undefined);
  const digest = head?.ok ? head.headers.get('docker-content-digest') : null;
  if (digest) await fetch(`${url}/${digest}`, { method: 'DELETE' }).catch(() => undefined);
}

before(async () => {
  const env = execFileSync('bash', [resolve(import.meta.dirname, '..', '..', 'scripts', 'test-env.sh'), '--registry'], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  dockerHost = /DOCKER_HOST=(\S+)/.exec(env)![1]!;
  docker('tag', 'inbm-test/busybox:1', `${IMAGE}:a`);
  docker('tag', 'inbm-test/busybox:1', `${IMAGE}:b`);
  work = await mkdtemp(join(tmpdir(), 'inbm-compose-'));
  await tarball('v1', composeFile('a', 'sleep 3600'));
  await tarball('v2', composeFile('a', 'sh -c "exit 3"'));
  await tarball('v3', composeFile('a', 'sleep 3601'));
  await tarball('aota', composeFile('b', 'sleep 3600'), true);
  await tarball('private', composeFile('c', 'sleep 3600').replace(`${IMAGE}:c`, PRIVATE));
  ({ server, base } = await serveFiles(files));
  root = await makeRoot('resyncSeconds: 1\n');
  agent = await startAgent(root, { DOCKER_HOST: dockerHost });
  await trustRepository(root, `${base}/stacks`);
});

after(async () => {
  if (agent) assert.equal(await stopAgent(agent), 0);
  server?.close();
  if (dockerHost) cleanEngine();
  await cleanRegistry();
  if (root) await rm(root.dir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

it('up, roll a bad version back, commit a good one, repair drift, down, remove', async () => {
  await drop(root, 'stack.yaml', doc('v1'));
  await until(
    'v1 running',
    async () => ((await status('stack-it')).phase === 'Ready' && containers().join() === 'app running' ? true : undefined),
    60_000,
  );
  assert.equal((await status('stack-it')).lastResult.message, 'AOTA compose up COMMAND SUCCESSFUL');
  assert.deepEqual(workingDirs(), [stackDir(PROJECT, 1)]);

  // A version whose service exits at once: taken down, version 1 brought up again.
  await drop(root, 'stack.yaml', doc('v2'));
  const failed = await until(
    'rolled back',
    async () => {
      const s = await status('stack-it');
      return s.observedGeneration === 2 && ['Stalled', 'Failed'].includes(s.phase) ? s : undefined;
    },
    60_000,
  );
  assert.match(failed.lastResult.message, /did not stay up \(.*app exited with code 3\); rolled back to version 1/);
  assert.equal(failed.lastResult.status, 400);
  assert.deepEqual(containers(), ['app running']);
  assert.deepEqual(workingDirs(), [stackDir(PROJECT, 1)]);
  assert.equal(await exists(stackDir(PROJECT, 2)), false);

  // A good version: committed, the previous directory removed.
  await drop(root, 'stack.yaml', doc('v3'));
  await until(
    'v3 committed',
    async () => {
      const s = await status('stack-it');
      return s.observedGeneration === 3 && s.phase === 'Ready' && workingDirs().join() === stackDir(PROJECT, 3) ? true : undefined;
    },
    60_000,
  );
  assert.deepEqual(containers(), ['app running']);
  assert.equal(await exists(stackDir(PROJECT, 1)), false);

  // Drift: stopped by hand, brought up again by the next resync.
  docker('stop', '-t', '1', docker('ps', '-q', '--filter', `label=com.docker.compose.project=${PROJECT}`));
  assert.deepEqual(containers(), ['app exited']);
  await until('running again', async () => (containers().join() === 'app running' ? true : undefined), 30_000);

  // Down: containers gone, image and files kept.
  await drop(root, 'stack.yaml', doc('v3', 'stopped'));
  await until(
    'down',
    async () => ((await status('stack-it')).observedGeneration === 4 && containers().length === 0 ? true : undefined),
    30_000,
  );
  assert.equal((await status('stack-it')).lastResult.message, 'AOTA compose down COMMAND SUCCESSFUL');
  assert.deepEqual(tags(), ['a', 'b']);
  assert.equal(await exists(stackDir(PROJECT, 3)), true);

  // Absent: the image the stack names and its files are gone too.
  await drop(root, 'stack.yaml', doc('v3', 'absent'));
  await until(
    'removed',
    async () => ((await status('stack-it')).observedGeneration === 5 && !tags().includes('a') ? true : undefined),
    30_000,
  );
  assert.deepEqual(containers(), []);
  assert.deepEqual(tags(), ['b']);
  assert.equal(await exists(stackDir(PROJECT)), false);
  assert.equal((await status('stack-it')).lastResult.message, 'AOTA compose remove COMMAND SUCCESSFUL');
});

function apply(xml: string): Promise<{ status: number; message: string }> {
  return new Promise((resolve) => {
    const file = join(root.dir, `compose-${Date.now()}-${Math.random().toString(16).slice(2)}.xml`);
    void writeFile(file, xml).then(() => {
      const child = spawn(process.execPath, [BIN, '--root', root.dir, 'apply', file, '--wait'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.once('close', () => resolve(JSON.parse(out)));
    });
  });
}

/** The shapes of fixtures valid/aota-compose-up.xml and aota-compose-down.xml, pointed at the test server. */
const upXml = (fetch: string) =>
  `<?xml version='1.0' encoding='utf-8'?><manifest><type>ota</type><ota><header><id>sampleId</id><name>Sample AOTA</name><description>Sample AOTA manifest file</description><type>aota</type><repo>remote</repo></header><type><aota name='sample-docker-compose-up'><cmd>up</cmd><app>compose</app><fetch>${fetch}</fetch><version>1.0</version><containerTag>${AOTA_PROJECT}</containerTag></aota></type></ota></manifest>`;
const downXml = () =>
  `<?xml version='1.0' encoding='utf-8'?><manifest><type>ota</type><ota><header><id>sampleId</id><name>Sample AOTA</name><description>Sample AOTA manifest file</description><type>aota</type><repo>remote</repo></header><type><aota name='sample-docker-compose-down'><cmd>down</cmd><app>compose</app><version>1.0</version><containerTag>${AOTA_PROJECT}</containerTag></aota></type></ota></manifest>`;

it('AOTA compose up and down manifests answer 200 through apply --wait', async () => {
  const up = await apply(upXml(`${base}/stacks/aota.tar.gz`));
  assert.deepEqual(up, { status: 200, message: 'AOTA compose up COMMAND SUCCESSFUL', job_id: '' });
  assert.deepEqual(containers(AOTA_PROJECT), ['app running']);
  // The tarball holds stack/docker-compose.yml: compose ran in that folder.
  assert.deepEqual(workingDirs(AOTA_PROJECT), [join(stackDir(AOTA_PROJECT, 1), 'stack')]);

  const down = await apply(downXml());
  assert.deepEqual(down, { status: 200, message: 'AOTA compose down COMMAND SUCCESSFUL', job_id: '' });
  assert.deepEqual(containers(AOTA_PROJECT), []);

  const missing = await apply(upXml(`${base}/stacks/missing.tar.gz`));
  assert.equal(missing.status, 404);
  assert.deepEqual(containers(AOTA_PROJECT), []);
});

it('a private registry: logged in through the engine, the image pulled with the credentials, then up', async () => {
  docker('tag', 'inbm-test/busybox:1', PRIVATE);
  docker('push', PRIVATE);
  docker('rmi', PRIVATE);
  const secrets = join(root.state, 'secrets');
  await mkdir(secrets, { recursive: true, mode: 0o700 });
  await writeFile(join(secrets, 'stack-reg-registry.json'), JSON.stringify({ username: 'inbm', password: 'not-checked' }), { mode: 0o600 });
  const reg = (ensure: string) =>
    `apiVersion: inbm.dev/v1alpha1\nkind: ComposeStack\nmetadata: {name: stack-reg}\nspec:\n  project: ${PROJECT}-reg\n  ensure: ${ensure}\n  source: {url: "${base}/stacks/private.tar.gz"}\n  registry: {server: "${REGISTRY}", credentials: {secretRef: stack-reg-registry}}\n  soakSeconds: 1\n`;
  await drop(root, 'reg.yaml', reg('running'));
  await until(
    'private stack running',
    async () => ((await status('stack-reg')).phase === 'Ready' && containers(`${PROJECT}-reg`).join() === 'app running' ? true : undefined),
    60_000,
  );
  assert.notEqual(docker('images', '-q', PRIVATE), '');
  // The pull step ran (and the engine accepted the login) before compose brought the stack up.
  assert.match(agent.output(), /pull the images of [^"]*-reg \(logged in to 127\.0\.0\.1:5555\)/);
  await drop(root, 'reg.yaml', reg('absent'));
  await until('private stack removed', async () => (docker('images', '-q', PRIVATE) === '' ? true : undefined), 30_000);
  assert.deepEqual(containers(`${PROJECT}-reg`), []);
});
