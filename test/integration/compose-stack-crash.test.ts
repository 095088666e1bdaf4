/**
 * The agent is SIGKILLed at every journalled step of a ComposeStack rollout (v1 running → v2:
 * fetch, up, soak, commit; each when the step is marked started and when it has run but is not
 * yet marked done), and of a first deploy (fetch, up, soak), then started again: it converges to
 * the new version, Ready for the new generation with the rollout's success as its result, and the
 * engine (seen with the docker CLI, by the compose project label) runs exactly the new version's
 * containers: none of the old version left, one container per service.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { until } from '../until.js';
import { drop, makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';

const ID = randomBytes(3).toString('hex');
/** A per-file tag of the test image, removed at the end; inbm-test/busybox:1 itself is never touched. */
const IMAGE = `inbm-it/compose-crash-${ID}`;
const SOAK = 1;
let dockerHost = '';
let server: Server;
let base = '';
let work = '';
const files = new Map<string, string>();
const roots: Root[] = [];
const projects: string[] = [];
const agents = new Set<Running>();

const docker = (...args: string[]) =>
  execFileSync('docker', args, { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: dockerHost } }).trim();
const lines = (s: string) => s.split('\n').filter(Boolean);
/** The project's containers: "service state working-dir" lines, sorted. */
const containers = (project: string) =>
  lines(
    docker(
      'ps',
      '-a',
      '--filter',
      `label=com.docker.compose.project=${project}`,
      '--format',
      '{{.Label "com.docker.compose.service"}} {{.State}} {{.Label "com.docker.compose.project.working_dir"}}',
    ),
  ).sort();
/** The command each of the project's containers runs, by service. */
const commands = (project: string) =>
  lines(docker('ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`))
    .map((id) => docker('inspect', '--format', '{{index .Config.Labels "com.docker.compose.service"}} {{join .Config.Cmd " "}}', id))
    .sort();
const statusOf = async (root: Root, name: string) =>
  JSON.parse(await readFile(join(root.state, 'status', 'ComposeStack', `${name}.json`), 'utf8'));
const stackDir = (root: Root, project: string, version?: number) =>
  join(root.dir, 'var', 'cache', 'manageability', 'compose', project, ...(version === undefined ? [] : [String(version)]));
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** v1: services app and old; v2: app with another command (recreated) and new (old is an orphan). */
const V1 = `version: "2.4"\nservices:\n  app:\n    image: ${IMAGE}:a\n    network_mode: none\n    init: true\n    command: sleep 3600\n  old:\n    image: ${IMAGE}:a\n    network_mode: none\n    init: true\n    command: sleep 3610\n`;
const V2 = `version: "2.4"\nservices:\n  app:\n    image: ${IMAGE}:a\n    network_mode: none\n    init: true\n    command: sleep 3601\n  new:\n    image: ${IMAGE}:a\n    network_mode: none\n    init: true\n    command: sleep 3620\n`;

async function tarball(name: string, compose: string): Promise<void> {
  const src = join(work, name);
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'docker-compose.yml'), compose);
  execFileSync('tar', ['-C', src, '-czf', join(work, `${name}.tar.gz`), '.']);
  files.set(`/stacks/${name}.tar.gz`, join(work, `${name}.tar.gz`));
}

const doc = (name: string, project: string, version: string) =>
  `apiVersion: inbm.dev/v1alpha1\nkind: ComposeStack\nmetadata: {name: ${name}}\nspec:\n  project: ${project}\n  ensure: running\n  source: {url: "${base}/stacks/${version}.tar.gz"}\n  soakSeconds: ${SOAK}\n`;

async function agentOn(root: Root, env: Record<string, string> = {}): Promise<Running> {
  const a = await startAgent(root, { DOCKER_HOST: dockerHost, ...env });
  agents.add(a);
  void a.exited.then(() => agents.delete(a));
  return a;
}

const withTimeout = <T>(what: string, p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`timed out waiting for ${what}`)), ms).unref())]);

/** Settled for this generation; asserted Ready with the rollout's success as its result. */
async function ready(root: Root, name: string, generation: number) {
  const s = await until(
    `${name} generation ${generation} settled`,
    async () => {
      const st = await statusOf(root, name);
      return st.observedGeneration === generation && ['Ready', 'Stalled', 'Failed'].includes(st.phase) && st.lastResult ? st : undefined;
    },
    60_000,
  );
  assert.equal(s.phase, 'Ready', JSON.stringify(s));
  assert.equal(s.lastResult.status, 200, JSON.stringify(s));
  assert.equal(s.lastResult.message, 'AOTA compose up COMMAND SUCCESSFUL');
  return s;
}

/** A fresh root and project; the trusted repository configured. */
async function fresh(prefix: string) {
  const sfx = randomBytes(3).toString('hex');
  const name = `${prefix}-${sfx}`;
  const project = `inbm-it-csc-${ID}-${sfx}`;
  projects.push(project);
  const root = await makeRoot('resyncSeconds: 1\n');
  roots.push(root);
  return { root, name, project };
}

async function trust(root: Root) {
  await trustRepository(root, `${base}/stacks`);
}

/** Exactly version `v` of the stack on the engine: its services, one container each, running, from its directory. */
async function assertVersion(root: Root, project: string, v: 1 | 2) {
  const dir = stackDir(root, project, v);
  const [svc, cmd] = v === 1 ? ['old', 'sleep 3610'] : ['new', 'sleep 3620'];
  const expected = ['app', svc].sort().map((s) => `${s} running ${dir}`);
  assert.deepEqual(containers(project), expected, `exactly the v${v} containers, one per service, running`);
  assert.deepEqual(commands(project), [`app sleep ${v === 1 ? 3600 : 3601}`, `${svc} ${cmd}`].sort());
}

before(async () => {
  const env = execFileSync('bash', [resolve(import.meta.dirname, '..', '..', 'scripts', 'test-env.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600_000,
  });
  dockerHost = /DOCKER_HOST=(\S+)/.exec(env)![1]!;
  docker('tag', 'inbm-test/busybox:1', `${IMAGE}:a`);
  work = await mkdtemp(join(tmpdir(), 'inbm-compose-crash-'));
  await tarball('v1', V1);
  await tarball('v2', V2);
  ({ server, base } = await serveFiles(files));
});

after(async () => {
  for (const a of agents) a.proc.kill('SIGKILL');
  server?.close();
  if (dockerHost) {
    for (const p of projects)
      for (const id of lines(docker('ps', '-aq', '--filter', `label=com.docker.compose.project=${p}`))) docker('rm', '-f', id);
    for (const p of projects)
      for (const n of lines(docker('network', 'ls', '-q', '--filter', `label=com.docker.compose.project=${p}`))) docker('network', 'rm', n);
    if (docker('images', '-q', `${IMAGE}:a`)) docker('rmi', `${IMAGE}:a`);
  }
  for (const r of roots) await rm(r.dir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

/** Kills at `point` while the document goes to `version`, restarts, and waits for `generation` to be Ready. */
async function crashAndRecover(root: Root, name: string, project: string, point: string, version: string, generation: number) {
  const doomed = await agentOn(root, { INBM_CRASH_AT: `ComposeStack/${name}:${point}` });
  if (generation === 1) await trust(root);
  await drop(root, 'stack.yaml', doc(name, project, version));
  assert.equal((await withTimeout('the crash', doomed.exited, 60_000)).signal, 'SIGKILL', 'the crash hook fired');
  const agent = await agentOn(root);
  await ready(root, name, generation);
  return agent;
}

describe('SIGKILL at every journalled step of a ComposeStack upgrade (v1 → v2), restarted: converges', { concurrency: 4 }, () => {
  for (const point of ['fetch', 'up', 'soak', 'commit']
    .flatMap((s) => ['before', 'started', 'ran', 'done'].map((w) => `${s}:${w}`))
    .concat('complete')) {
    it(`killed at ${point}`, async () => {
      const { root, name, project } = await fresh('up');
      const first = await agentOn(root);
      await trust(root);
      await drop(root, 'stack.yaml', doc(name, project, 'v1'));
      await ready(root, name, 1);
      await assertVersion(root, project, 1);
      assert.equal(await stopAgent(first), 0);

      const agent = await crashAndRecover(root, name, project, point, 'v2', 2);
      await assertVersion(root, project, 2);
      assert.equal(await exists(stackDir(root, project, 1)), false, 'the v1 directory removed by the commit');
      assert.equal(await stopAgent(agent), 0);
      // Settled: another agent start changes nothing.
      const again = await agentOn(root);
      await new Promise((r) => setTimeout(r, 1500));
      await assertVersion(root, project, 2);
      assert.equal((await statusOf(root, name)).phase, 'Ready');
      assert.equal(await stopAgent(again), 0);
    });
  }
});

describe('SIGKILL at every journalled step of a first deploy, restarted: converges', { concurrency: 3 }, () => {
  for (const stepId of ['fetch', 'up', 'soak'])
    for (const when of ['started', 'ran']) {
      const point = `${stepId}:${when}`;
      it(`killed at ${point}`, async () => {
        const { root, name, project } = await fresh('first');
        const agent = await crashAndRecover(root, name, project, point, 'v1', 1);
        await assertVersion(root, project, 1);
        assert.equal(await stopAgent(agent), 0);
      });
    }
});

describe('ComposeStack rollback cut short', () => {
  it('killed mid-rollback (v2 taken down, v1 not up yet): the restart brings v1 up again, 400 rolled back', async () => {
    const { root, name, project } = await fresh('rb-resume');
    const first = await agentOn(root);
    await trust(root);
    await drop(root, 'stack.yaml', doc(name, project, 'v1'));
    await ready(root, name, 1);
    assert.equal(await stopAgent(first), 0);

    const dying = await startAgent(root, { DOCKER_HOST: dockerHost, INBM_CRASH_AT: `ComposeStack/${name}:soak:started` }, { ready: false });
    agents.add(dying);
    await drop(root, 'stack.yaml', doc(name, project, 'v2'));
    assert.equal((await withTimeout('the kill at soak:started', dying.exited, 60_000)).signal, 'SIGKILL');
    // What the rollback does first, before the kill that cut it short: the new version goes down.
    for (const id of lines(docker('ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`))) docker('rm', '-f', id);
    assert.deepEqual(containers(project), []);

    const again = await agentOn(root);
    const s = await until(
      'generation 2 settled',
      async () => {
        const st = await statusOf(root, name);
        return st.observedGeneration === 2 && ['Ready', 'Stalled', 'Failed'].includes(st.phase) && st.lastResult ? st : undefined;
      },
      60_000,
    );
    assert.equal(s.phase, 'Failed', JSON.stringify(s));
    assert.equal(s.lastResult.status, 400);
    assert.match(s.lastResult.message, /rolled back to version 1$/);
    await assertVersion(root, project, 1);
    assert.equal(await stopAgent(again), 0);
  });
});
