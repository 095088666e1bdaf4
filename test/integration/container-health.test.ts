/**
 * The soak gate and health checks against a real Docker engine (scripts/test-env.sh): a new
 * version whose containers define a health check is committed only once they are healthy, and
 * rolled back when they turn unhealthy or are still starting after the settle time; for
 * ContainerImage (HEALTHCHECK in the image, made by `docker import --change`) and ComposeStack
 * (compose `healthcheck:`). The containers the agent creates are read back through dockerode:
 * Init, our labels, the restart policy asked for. Each test has its own agent, names and images,
 * so they run at the same time.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { until } from '../until.js';
import { BASE_IMAGE, docker, engineUp, unique } from './engine.js';
import { drop, makeRoot, type Root, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';

let dockerHost = '';
let engine: Docker;
let work: string;
let server: Server;
let base: string;
const files = new Map<string, string>();
/** Containers (by label filter) and images this file made, removed at the end. */
const labels: string[] = [];
const images: string[] = [];

/** HEALTHCHECK options that settle in about a second; `retries` bounds how long a failing check stays `starting`. */
const check = (cmd: string, retries = 1, interval = '1s') =>
  `HEALTHCHECK --interval=${interval} --timeout=2s --retries=${retries} CMD ${cmd}`;

/** An image of the base filesystem with Dockerfile changes, made by docker import. */
function importImage(ref: string, ...changes: string[]): void {
  const tar = join(work, `${ref.replace(/[^a-z0-9]/gi, '_')}.tar`);
  const id = docker(['create', BASE_IMAGE, 'true']);
  try {
    docker(['export', '-o', tar, id]);
  } finally {
    docker(['rm', id]);
  }
  docker(['import', ...changes.flatMap((c) => ['--change', c]), tar, ref]);
  images.push(ref);
}

type Inspect = Awaited<ReturnType<Docker.Container['inspect']>>;
/** Every container carrying `label`, inspected through dockerode. */
async function inspectAll(label: string): Promise<Inspect[]> {
  const list = await engine.listContainers({ all: true, filters: JSON.stringify({ label: [label] }) });
  return Promise.all(list.map((c) => engine.getContainer(c.Id).inspect()));
}

interface Agent {
  root: Root;
  status: (
    kind: string,
    name: string,
  ) => Promise<{
    observedGeneration: number;
    phase: string;
    conditions: Array<{ reason: string }>;
    lastResult?: { status: number; message: string };
  }>;
  stop: () => Promise<void>;
}

async function agent(): Promise<Agent> {
  const root = await makeRoot('resyncSeconds: 1\n');
  const running = await startAgent(root, { DOCKER_HOST: dockerHost });
  await trustRepository(root, `${base}/stacks`);
  return {
    root,
    status: async (kind, name) => JSON.parse(await readFile(join(root.state, 'status', kind, `${name}.json`), 'utf8')),
    stop: async () => assert.equal(await stopAgent(running), 0),
  };
}

/** Waits for generation `gen` of a resource to settle with a result; returns the status. */
const settled = (a: Agent, kind: string, name: string, gen: number, phase: string) =>
  until(
    `${name} generation ${gen} ${phase}`,
    async () => {
      const s = await a.status(kind, name);
      return s.observedGeneration === gen && s.phase === phase && s.lastResult ? s : undefined;
    },
    90_000,
  );

before(async () => {
  dockerHost = engineUp();
  engine = new Docker({ socketPath: dockerHost.replace(/^unix:\/\//, '') });
  work = await mkdtemp(join(tmpdir(), 'inbm-health-'));
  ({ server, base } = await serveFiles(files));
});

after(async () => {
  server?.close();
  if (dockerHost) {
    for (const l of labels)
      for (const id of docker(['ps', '-aq', '--filter', `label=${l}`])
        .split('\n')
        .filter(Boolean))
        docker(['rm', '-f', id]);
    for (const ref of images) if (docker(['images', '-q', ref])) docker(['rmi', '-f', ref]);
  }
  if (work) await rm(work, { recursive: true, force: true });
});

describe('ContainerImage', { concurrency: true }, () => {
  const imageDoc = (name: string, repo: string, tag: string, restartPolicy: string, soak = 1) =>
    `apiVersion: inbm.dev/v1alpha1\nkind: ContainerImage\nmetadata: {name: ${name}}\nspec:\n  image: ${repo}\n  tag: "${tag}"\n  container: {run: true, restartPolicy: "${restartPolicy}"}\n  soakSeconds: ${soak}\n`;

  /** A resource running version 1 (no health check); returns what the test needs for version 2. */
  async function runningV1(prefix: string) {
    const name = unique(prefix);
    const repo = `inbm-it/${name}`;
    labels.push(`inbm.dev/resource=${name}`);
    importImage(`${repo}:1`, 'CMD ["sleep", "3600"]');
    const a = await agent();
    await drop(a.root, 'app.yaml', imageDoc(name, repo, '1', 'always'));
    const s = await settled(a, 'ContainerImage', name, 1, 'Ready');
    assert.equal(s.lastResult!.status, 200);
    return { name, repo, a, versions: async () => (await inspectAll(`inbm.dev/resource=${name}`)).map(state).sort() };
  }
  const state = (c: Inspect) =>
    `${c.Config.Labels['inbm.dev/version']} ${c.State.Status}${c.State.Health ? ` ${c.State.Health.Status}` : ''}`;

  it('a health check that turns healthy is waited for, then committed (200), created as the document asks', async () => {
    const { name, repo, a, versions } = await runningV1('image-hc-ok');
    // Healthy only after ~3 s, well past the 1 s soak: the commit must wait for it.
    importImage(`${repo}:2`, 'CMD ["sh", "-c", "sleep 3; touch /tmp/ready; exec sleep 3600"]', check('test -f /tmp/ready', 30));
    await drop(a.root, 'app.yaml', imageDoc(name, repo, '2', 'on-failure'));
    const s = await settled(a, 'ContainerImage', name, 2, 'Ready');
    const [c, ...others] = await inspectAll(`inbm.dev/resource=${name}`);
    assert.equal(others.length, 0, 'the previous version is removed');
    assert.equal(c!.State.Health?.Status, 'healthy', 'committed only once healthy');
    assert.deepEqual(s.lastResult, { status: 200, message: 'AOTA docker pull COMMAND SUCCESSFUL', job_id: '' });
    assert.equal(c!.HostConfig.Init, true);
    assert.deepEqual([c!.Config.Labels['inbm.dev/resource'], c!.Config.Labels['inbm.dev/version']], [name, '2']);
    assert.equal(c!.HostConfig.RestartPolicy?.Name, 'on-failure');
    assert.deepEqual(await versions(), ['2 running healthy']);
    await a.stop();
  });

  it('a health check that fails rolls back to the previous version at once, naming the container', async () => {
    const { name, repo, a, versions } = await runningV1('image-hc-bad');
    importImage(`${repo}:2`, 'CMD ["sleep", "3600"]', check('false'));
    // A long soak: the unhealthy verdict must not wait for its end.
    await drop(a.root, 'app.yaml', imageDoc(name, repo, '2', 'always', 60));
    const s = await settled(a, 'ContainerImage', name, 2, 'Failed');
    assert.ok(
      s.conditions.some((c) => c.reason === 'RolledBack'),
      JSON.stringify(s.conditions),
    );
    assert.equal(s.lastResult!.status, 400);
    assert.match(
      s.lastResult!.message,
      new RegExp(`did not stay up \\(unhealthy after (\\d+) ms: inbm-${name}-2 is unhealthy\\); rolled back to 1$`),
    );
    const ms = Number(/after (\d+) ms/.exec(s.lastResult!.message)![1]);
    assert.ok(ms < 30_000, `failed after ${ms} ms, not at the end of the 60 s soak`);
    assert.deepEqual(await versions(), ['1 running']);
    await a.stop();
  });

  it('a health check still starting after the settle time rolls back', async () => {
    const { name, repo, a, versions } = await runningV1('image-hc-slow');
    // The first check runs after an hour: the container stays `starting`.
    importImage(`${repo}:2`, 'CMD ["sleep", "3600"]', check('true', 1, '1h'));
    await drop(a.root, 'app.yaml', imageDoc(name, repo, '2', 'always'));
    const s = await settled(a, 'ContainerImage', name, 2, 'Failed');
    assert.ok(
      s.conditions.some((c) => c.reason === 'RolledBack'),
      JSON.stringify(s.conditions),
    );
    assert.equal(s.lastResult!.status, 400);
    assert.match(
      s.lastResult!.message,
      new RegExp(`did not become healthy \\(not healthy after \\d+ ms: inbm-${name}-2 is starting\\); rolled back to 1$`),
    );
    const ms = Number(/after (\d+) ms/.exec(s.lastResult!.message)![1]);
    assert.ok(ms >= 31_000 && ms < 40_000, `gave up after ${ms} ms: the soak (1 s) and the 30 s settle time`);
    assert.deepEqual(await versions(), ['1 running']);
    await a.stop();
  });

  it('an agent stopped during the soak exits without a verdict; restarted, it soaks again and commits', async () => {
    const { name, repo, a, versions } = await runningV1('image-soak-stop');
    importImage(`${repo}:2`, 'CMD ["sleep", "3600"]');
    await drop(a.root, 'app.yaml', imageDoc(name, repo, '2', 'always', 8));
    const journal = join(a.root.state, 'journal', `ContainerImage-${name}.json`);
    const soakState = async () =>
      (JSON.parse(await readFile(journal, 'utf8')) as { steps: Record<string, { state: string }> }).steps.soak?.state;
    await until('the soak running', async () => ((await soakState().catch(() => undefined)) === 'started' ? true : undefined));
    await a.stop(); // SIGTERM; exits 0
    // Stopped, not judged: the soak is still unfinished in the journal, no rollback, no answer yet.
    assert.equal(await soakState(), 'started');
    const s = await a.status('ContainerImage', name);
    assert.notEqual(s.phase, 'Failed');
    assert.deepEqual(await versions(), ['1 exited', '2 running'], 'the previous version kept, stopped, until the commit');
    const again = await startAgent(a.root, { DOCKER_HOST: dockerHost });
    const done = await settled(a, 'ContainerImage', name, 2, 'Ready');
    assert.equal(done.lastResult!.status, 200);
    assert.deepEqual(await versions(), ['2 running']);
    assert.equal(await stopAgent(again), 0);
  });
});

describe('ComposeStack', { concurrency: true }, () => {
  const service = (image: string, command: string, healthcheck?: string) =>
    `version: "2.4"\nservices:\n  app:\n    image: ${image}\n    network_mode: none\n    init: true\n    restart: on-failure\n    command: ${command}\n${healthcheck ?? ''}`;
  const healthcheck = (test: string, retries = 1) =>
    `    healthcheck:\n      test: ["CMD-SHELL", "${test}"]\n      interval: 1s\n      timeout: 2s\n      retries: ${retries}\n`;
  const stackDoc = (project: string, version: string, soak = 1) =>
    `apiVersion: inbm.dev/v1alpha1\nkind: ComposeStack\nmetadata: {name: stack-hc}\nspec:\n  project: ${project}\n  source: {url: "${base}/stacks/${project}-${version}.tar.gz"}\n  soakSeconds: ${soak}\n`;

  async function tarball(project: string, version: string, compose: string): Promise<void> {
    const dir = join(work, `${project}-${version}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'docker-compose.yml'), compose);
    const tgz = `${dir}.tar.gz`;
    execFileSync('tar', ['-C', dir, '-czf', tgz, '.']);
    files.set(`/stacks/${project}-${version}.tar.gz`, tgz);
  }

  async function runningV1(prefix: string, v2: string) {
    const project = unique(prefix);
    const image = `inbm-it/${project}:a`;
    labels.push(`com.docker.compose.project=${project}`);
    docker(['tag', BASE_IMAGE, image]);
    images.push(image);
    await tarball(project, 'v1', service(image, 'sleep 3600'));
    await tarball(project, 'v2', v2.replaceAll('IMAGE', image));
    const a = await agent();
    await drop(a.root, 'stack.yaml', stackDoc(project, 'v1'));
    const s = await settled(a, 'ComposeStack', 'stack-hc', 1, 'Ready');
    assert.equal(s.lastResult!.status, 200);
    const containers = () => inspectAll(`com.docker.compose.project=${project}`);
    return { project, a, containers };
  }

  it('a service whose health check turns healthy is waited for, then committed (200)', async () => {
    const v2 = service('IMAGE', 'sh -c "sleep 3; touch /tmp/ready; exec sleep 3601"', healthcheck('test -f /tmp/ready', 30));
    const { project, a, containers } = await runningV1('inbm-it-hc-ok', v2);
    await drop(a.root, 'stack.yaml', stackDoc(project, 'v2'));
    const s = await settled(a, 'ComposeStack', 'stack-hc', 2, 'Ready');
    assert.deepEqual(s.lastResult, { status: 200, message: 'AOTA compose up COMMAND SUCCESSFUL', job_id: '' });
    const [c, ...others] = await containers();
    assert.equal(others.length, 0);
    assert.equal(c!.State.Health?.Status, 'healthy', 'committed only once healthy');
    assert.match(c!.Config.Cmd!.join(' '), /sleep 3601/, 'the new version runs');
    // What the compose file asks, and the project label the agent finds its containers by.
    assert.equal(c!.HostConfig.Init, true);
    assert.equal(c!.HostConfig.RestartPolicy?.Name, 'on-failure');
    assert.equal(c!.Config.Labels['com.docker.compose.project'], project);
    await a.stop();
  });

  it('a service whose health check fails rolls back to the previous version at once', async () => {
    const { project, a, containers } = await runningV1('inbm-it-hc-bad', service('IMAGE', 'sleep 3601', healthcheck('false')));
    await drop(a.root, 'stack.yaml', stackDoc(project, 'v2', 60));
    const s = await settled(a, 'ComposeStack', 'stack-hc', 2, 'Failed');
    assert.ok(
      s.conditions.some((c) => c.reason === 'RolledBack'),
      JSON.stringify(s.conditions),
    );
    assert.equal(s.lastResult!.status, 400);
    assert.match(
      s.lastResult!.message,
      new RegExp(`AOTA compose up: ${project} did not stay up \\(unhealthy after \\d+ ms: app is unhealthy\\); rolled back to version 1$`),
    );
    const ms = Number(/after (\d+) ms/.exec(s.lastResult!.message)![1]);
    assert.ok(ms < 30_000, `failed after ${ms} ms, not at the end of the 60 s soak`);
    const [c, ...others] = await containers();
    assert.equal(others.length, 0);
    assert.deepEqual([c!.State.Status, c!.Config.Cmd!.join(' '), c!.State.Health], ['running', 'sleep 3600', undefined]);
    await a.stop();
  });
});
