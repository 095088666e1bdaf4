/**
 * Drift against a real Docker engine (scripts/test-env.sh): on resync (resyncSeconds: 1, the
 * controller's periodic pass) a managed container stopped by hand runs again and one removed by
 * hand is created again, for ContainerImage (each restart policy that leaves a stopped container
 * stopped) and ComposeStack; containers without our labels, some from the very same image, are
 * left exactly as they were. Each test has its own agent, names and images: they run at the same time.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { until } from '../until.js';
import { BASE_IMAGE, docker, engineUp, unique } from './engine.js';
import { drop, makeRoot, type Root, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';

let work: string;
let server: Server;
let base: string;
const files = new Map<string, string>();
/** What this file made, removed at the end: containers by id or label filter, images by reference. */
const made = { ids: [] as string[], labels: [] as string[], images: [] as string[] };

interface Agent {
  root: Root;
  status: (kind: string, name: string) => Promise<{ observedGeneration: number; phase: string; lastResult?: { status: number } }>;
  stop: () => Promise<void>;
}

async function agent(): Promise<Agent> {
  const root = await makeRoot('resyncSeconds: 1\n');
  const running = await startAgent(root, { DOCKER_HOST: process.env.DOCKER_HOST! });
  await trustRepository(root, `${base}/stacks`);
  return {
    root,
    status: async (kind, name) => JSON.parse(await readFile(join(root.state, 'status', kind, `${name}.json`), 'utf8')),
    stop: async () => assert.equal(await stopAgent(running), 0),
  };
}

const ready = (a: Agent, kind: string, name: string) =>
  until(
    `${name} ready`,
    async () => {
      const s = await a.status(kind, name);
      return s.phase === 'Ready' && s.lastResult?.status === 200 ? s : undefined;
    },
    60_000,
  );

/** "id state" of the containers carrying `label`. */
const managed = (label: string) =>
  docker(['ps', '-a', '--filter', `label=${label}`, '--format', '{{.ID}} {{.State}}'])
    .split('\n')
    .filter(Boolean);

/**
 * Containers of nobody's: created only, running, exited; two from `image`, the one the agent
 * manages. Returns a snapshot function: id, state, start and finish times, restart count.
 */
function unmanaged(image: string): () => string[] {
  const ids = [
    docker(['create', '--network', 'none', image, 'sleep', '3600']),
    docker(['run', '-d', '--network', 'none', '--init', image, 'sleep', '3600']),
    docker(['create', '--network', 'none', BASE_IMAGE, 'true']),
  ];
  made.ids.push(...ids);
  docker(['start', ids[2]!]);
  docker(['wait', ids[2]!]);
  const snapshot = () =>
    ids.map((id) =>
      docker(['inspect', '-f', '{{.Id}} {{.State.Status}} {{.State.StartedAt}} {{.State.FinishedAt}} {{.RestartCount}}', id]),
    );
  return snapshot;
}

before(async () => {
  process.env.DOCKER_HOST = engineUp();
  work = await mkdtemp(join(tmpdir(), 'inbm-drift-'));
  ({ server, base } = await serveFiles(files));
});

after(async () => {
  server?.close();
  if (process.env.DOCKER_HOST) {
    for (const l of made.labels)
      made.ids.push(
        ...docker(['ps', '-aq', '--filter', `label=${l}`])
          .split('\n')
          .filter(Boolean),
      );
    for (const id of new Set(made.ids)) docker(['rm', '-f', id]);
    for (const ref of made.images) if (docker(['images', '-q', ref])) docker(['rmi', ref]);
  }
  if (work) await rm(work, { recursive: true, force: true });
});

describe('drift', { concurrency: true }, () => {
  for (const restartPolicy of ['no', 'unless-stopped'] as const)
    it(`ContainerImage (restartPolicy ${restartPolicy}): stopped by hand runs again, removed by hand is recreated; others untouched`, async () => {
      const name = unique('image-drift');
      const image = `inbm-it/${name}:1`;
      const label = `inbm.dev/resource=${name}`;
      made.labels.push(label);
      docker(['tag', BASE_IMAGE, image]);
      made.images.push(image);
      const others = unmanaged(image);
      const before = others();
      const a = await agent();
      await drop(
        a.root,
        'app.yaml',
        `apiVersion: inbm.dev/v1alpha1\nkind: ContainerImage\nmetadata: {name: ${name}}\nspec:\n  image: inbm-it/${name}\n  tag: "1"\n  container: {run: true, command: "sleep 3600", restartPolicy: "${restartPolicy}"}\n  soakSeconds: 1\n`,
      );
      await ready(a, 'ContainerImage', name);
      const [first] = managed(label);
      const id = first!.split(' ')[0]!;
      assert.equal(first, `${id} running`);
      assert.equal(docker(['inspect', '-f', '{{.HostConfig.RestartPolicy.Name}}', id]), restartPolicy);

      docker(['stop', '-t', '1', id]);
      await until('running again', async () => (managed(label).join() === `${id} running` ? true : undefined), 20_000);

      docker(['rm', '-f', id]);
      const again = await until(
        'recreated',
        async () => {
          const now = managed(label);
          return now.length === 1 && now[0]!.endsWith(' running') && !now[0]!.startsWith(id) ? now[0] : undefined;
        },
        20_000,
      );
      // A few more resyncs: the repaired state is left alone, and so is everything else.
      await sleep(3000);
      assert.deepEqual(managed(label), [again]);
      assert.deepEqual(others(), before);
      await a.stop();
    });

  it('ComposeStack: stopped by hand is up again, removed by hand is recreated; others untouched', async () => {
    const project = unique('inbm-it-drift');
    const image = `inbm-it/${project}:a`;
    const label = `com.docker.compose.project=${project}`;
    made.labels.push(label);
    docker(['tag', BASE_IMAGE, image]);
    made.images.push(image);
    const dir = join(work, project);
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'docker-compose.yml'),
      `version: "2.4"\nservices:\n  app:\n    image: ${image}\n    network_mode: none\n    init: true\n    command: sleep 3600\n`,
    );
    execFileSync('tar', ['-C', dir, '-czf', `${dir}.tar.gz`, '.']);
    files.set(`/stacks/${project}.tar.gz`, `${dir}.tar.gz`);
    const others = unmanaged(image);
    const before = others();
    const a = await agent();
    await drop(
      a.root,
      'stack.yaml',
      `apiVersion: inbm.dev/v1alpha1\nkind: ComposeStack\nmetadata: {name: stack-drift}\nspec:\n  project: ${project}\n  source: {url: "${base}/stacks/${project}.tar.gz"}\n  soakSeconds: 1\n`,
    );
    await ready(a, 'ComposeStack', 'stack-drift');
    const [first] = managed(label);
    const id = first!.split(' ')[0]!;
    assert.equal(first, `${id} running`);

    docker(['stop', '-t', '1', id]);
    await until('up again', async () => (managed(label).join() === `${id} running` ? true : undefined), 30_000);

    docker(['rm', '-f', id]);
    const again = await until(
      'recreated',
      async () => {
        const now = managed(label);
        return now.length === 1 && now[0]!.endsWith(' running') && !now[0]!.startsWith(id) ? now[0] : undefined;
      },
      30_000,
    );
    await sleep(3000);
    assert.deepEqual(managed(label), [again]);
    assert.deepEqual(others(), before);
    await a.stop();
  });
});
