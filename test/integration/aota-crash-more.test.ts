/**
 * The AOTA paths container-image-crash and compose-stack-crash leave out, with the agent SIGKILLed
 * at each journal point (before/started/ran/done of every step the planner gives, and right after
 * the request is marked complete where the plan has one), then started again. Each case must
 * answer what the same run uncut answers (the baseline is such a run, with the same names masked),
 * with one new record in the history, and leave the engine as the uncut run does:
 * - ContainerImage `docker remove` (manifest): remove-containers, remove-images;
 * - ContainerImage rollback: v1 running, v2 exits at once → v1 running again, the v2 image gone;
 * - ComposeStack pull (pullPolicy always, from the local registry), down and remove (manifests);
 * - ComposeStack rollback: v1 up, v2's service exits → v1 up again from its directory, v2's gone.
 * A failed soak throws, so its ran/done marks and the commit are never reached on a rollback: a
 * crash armed there must not fire, and the run must end rolled back all the same.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Plan, Step } from '../../src/controller/types.js';
import { parseDocuments } from '../../src/desired/document.js';
import type { DocumentOf } from '../../src/desired/kinds/index.js';
import { toName } from '../../src/desired/names.js';
import type { StackContainer } from '../../src/drivers/compose-state.js';
import type { ContainerState } from '../../src/drivers/docker.js';
import { planComposeStack } from '../../src/reconcilers/compose-stack/index.js';
import { planImage } from '../../src/reconcilers/container-image/index.js';
import { until } from '../until.js';
import { cleanUp, containersOf, docker, engineUp, imageIdsOf, tagsOf, unique } from './engine.js';
import { drop, makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';

const REGISTRY = '127.0.0.1:5555';
const WHEN = ['before', 'started', 'ran', 'done'];
/** Every journal point of these steps, in order; the run's complete mark last when the plan has one. */
const pointsOf = (plan: Plan<Step>) => [
  ...plan.steps.flatMap((s) => WHEN.map((w) => `${s.id}:${w}`)),
  ...(plan.complete ? ['complete'] : []),
];

let dockerHost = '';
let server: Server;
let base = '';
let work = '';
const files = new Map<string, string>();
const roots: Root[] = [];
const images: Array<{ resource: string; repo: string }> = [];
const projects: string[] = [];
const tags: string[] = [];
const agents = new Set<Running>();

before(async () => {
  dockerHost = engineUp(true);
  work = await mkdtemp(join(tmpdir(), 'inbm-it-more-'));
  // A root filesystem for docker import: busybox, and the links `sh -c "sleep …"` needs.
  const rootfs = join(work, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const applet of ['sh', 'sleep', 'echo']) await symlink('busybox', join(rootfs, 'bin', applet));
  execFileSync('tar', ['-C', rootfs, '-czf', join(work, 'rootfs.tgz'), '.']);
  files.set('/images/rootfs.tgz', join(work, 'rootfs.tgz'));
  ({ server, base } = await serveFiles(files));
});

after(async () => {
  for (const a of agents) a.proc.kill('SIGKILL');
  server?.close();
  if (dockerHost) {
    cleanUp(
      images.map((m) => m.resource),
      images.map((m) => m.repo),
    );
    for (const p of projects) {
      for (const id of lines(docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${p}`]))) docker(['rm', '-f', id]);
      for (const n of lines(docker(['network', 'ls', '-q', '--filter', `label=com.docker.compose.project=${p}`])))
        docker(['network', 'rm', n]);
    }
    for (const t of tags) if (docker(['images', '-q', t])) docker(['rmi', t]);
    await Promise.all(tags.filter((t) => t.startsWith(`${REGISTRY}/`)).map(unpush));
  }
  for (const r of roots) await rm(r.dir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

const lines = (s: string) => s.split('\n').filter(Boolean);

async function agentOn(root: Root, env: Record<string, string> = {}): Promise<Running> {
  const a = await startAgent(root, { DOCKER_HOST: dockerHost, ...env });
  agents.add(a);
  void a.exited.then(() => agents.delete(a));
  return a;
}

const withTimeout = <T>(what: string, p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`timed out waiting for ${what}`)), ms).unref())]);

interface Settled {
  phase: string;
  lastResult?: { status: number; message: string; job_id: string };
}

const statusOf = async (root: Root, kind: string, name: string) =>
  JSON.parse(await readFile(join(root.state, 'status', kind, `${name}.json`), 'utf8'));

/** The status once it describes `generation` and says how the run ended. */
const settled = (root: Root, kind: string, name: string, generation: number): Promise<Settled> =>
  until(
    `${kind}/${name} generation ${generation} settled`,
    async () => {
      const st = await statusOf(root, kind, name);
      return st.observedGeneration >= generation && ['Ready', 'Stalled', 'Failed'].includes(st.phase) ? st : undefined;
    },
    60_000,
  );

const history = async (root: Root, name: string) =>
  (
    JSON.parse(await readFile(join(root.state, 'results.json'), 'utf8').catch(() => '[]')) as Array<{
      name: string;
      result: Settled['lastResult'];
    }>
  )
    .filter((r) => r.name === name)
    .map((r) => `${r.result!.status} ${r.result!.message}`);

/** This case's own names masked, so a cut run compares with the uncut one. */
const masked = (text: string, names: Record<string, string>) => {
  for (const [mask, value] of Object.entries(names)) text = text.replaceAll(value, mask);
  // How long the soak took to see the exit is timing, not the answer.
  return text.replace(/after \d+ ms/g, 'after N ms');
};

/** The uncut run of a case, once: what every cut run of it must answer. */
function baseline<T>(run: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= run());
}

interface Case {
  root: Root;
  name: string;
  names: Record<string, string>;
}

/**
 * Starts the agent armed at `point` (none: the uncut run), makes the change, and, when armed,
 * checks it died there (or, `reached` false, that it did not) and starts it again. Returns the
 * settled answer, masked, and the history records the change added.
 */
async function cutAt(
  c: Case,
  kind: string,
  generation: number,
  change: () => Promise<void>,
  point: string | undefined,
  reached = true,
): Promise<{ answer: string; added: string[] }> {
  const before = await history(c.root, c.name);
  const first = await agentOn(c.root, point ? { INBM_CRASH_AT: `${kind}/${c.name}:${point}` } : {});
  await change();
  let agent = first;
  if (point && reached) {
    assert.equal((await withTimeout(`the crash at ${point}`, first.exited, 60_000)).signal, 'SIGKILL', 'the crash hook fired');
    agent = await agentOn(c.root);
  }
  const st = await settled(c.root, kind, c.name, generation);
  if (point && !reached) assert.equal(first.proc.signalCode, null, `${point} is not on this path: nothing killed the agent`);
  assert.equal(await stopAgent(agent), 0);
  const after = await history(c.root, c.name);
  assert.deepEqual(after.slice(0, before.length), before);
  return {
    // A failed rollout is Stalled after its pass and Failed after the next: both are "not Ready".
    answer: masked(`${st.phase === 'Ready' ? 'Ready' : 'NotReady'} ${st.lastResult?.status} ${st.lastResult?.message}`, c.names),
    added: after.slice(before.length).map((r) => masked(r, c.names)),
  };
}

const aotaXml = (body: string) =>
  `<manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type><aota name="crash">${body}</aota></type></ota></manifest>`;

// ─── ContainerImage ───────────────────────────────────────────────────────────────────────────

const imageDoc = (name: string, repo: string, tag: string, command: string, soak: number) =>
  `apiVersion: inbm.dev/v1alpha1\nkind: ContainerImage\nmetadata: {name: ${name}}\nspec:\n  image: ${repo}\n  tag: "${tag}"\n  source: {method: import, artifact: {url: "${base}/images/rootfs.tgz"}}\n  container: {run: true, command: "${command}", restartPolicy: "no"}\n  soakSeconds: ${soak}\n`;
const typedImage = (yaml: string) => parseDocuments(yaml)[0] as DocumentOf<'ContainerImage'>;
/** What the planner sees once v1 of the resource runs: the shape, not the engine's ids. */
const v1Running = (name: string): { tags: string[]; containers: ContainerState[] } => ({
  tags: ['1'],
  containers: [{ id: 'v1', name: `inbm-${name}-1`, version: '1', running: true, exitCode: 0 }],
});

/** A fresh root with v1 of a fresh image running under `name` (no crash), the agent stopped. */
async function imageV1(name: string, repo: string): Promise<Root> {
  images.push({ resource: name, repo });
  const root = await makeRoot('resyncSeconds: 1\n');
  roots.push(root);
  const a = await agentOn(root);
  await trustRepository(root, `${base}/images`);
  await drop(root, 'app.yaml', imageDoc(name, repo, '1', 'sleep 3600', 0));
  const st = await settled(root, 'ContainerImage', name, 1);
  assert.equal(st.phase, 'Ready', JSON.stringify(st));
  assert.deepEqual(containersOf(name), [`1 running ${repo}:1`]);
  assert.equal(await stopAgent(a), 0);
  return root;
}

describe('ContainerImage docker remove (manifest) cut at every journal point', { concurrency: 4 }, () => {
  const fresh = async () => {
    const id = unique('rm');
    const repo = `inbm-it/${id}`;
    // The resource the manifest names: the YAML that made v1 is withdrawn (not pruned) first.
    const name = toName('image', repo);
    const root = await imageV1(name, repo);
    await unlink(join(root.desired, 'app.yaml'));
    return { root, name, repo, names: { REPO: repo, NAME: name } };
  };
  const run = async (point?: string) => {
    const { root, name, repo, names } = await fresh();
    const out = await cutAt(
      { root, name, names },
      'ContainerImage',
      2,
      () => drop(root, 'remove.xml', aotaXml(`<cmd>remove</cmd><app>docker</app><containerTag>${repo}:1</containerTag>`)),
      point,
    );
    assert.deepEqual(containersOf(name), [], 'no container of the resource left');
    assert.deepEqual(tagsOf(repo), [], 'the image removed');
    return out;
  };
  const uncut = baseline(() => run());
  const remove = typedImage(
    `apiVersion: inbm.dev/v1alpha1\nkind: ContainerImage\nmetadata: {name: x}\nspec: {image: r, tag: "1", ensure: absent}\n`,
  );
  const plan = planImage(remove, v1Running('x'));
  assert.deepEqual(
    plan.steps.map((s) => s.id),
    ['remove-containers', 'remove-images'],
  );

  it('uncut: 200 remove, one record', async () => {
    const { answer, added } = await uncut();
    assert.equal(answer, 'Ready 200 AOTA docker remove COMMAND SUCCESSFUL');
    assert.deepEqual(added, ['200 AOTA docker remove COMMAND SUCCESSFUL']);
  });
  for (const point of pointsOf(plan))
    it(`killed at ${point}`, async () => {
      const want = await uncut();
      const got = await run(point);
      assert.equal(got.answer, want.answer);
      assert.deepEqual(got.added, want.added, 'one record of the answer');
    });
});

describe('ContainerImage rollback (v2 exits at once → v1) cut at every journal point', { concurrency: 4 }, () => {
  const SOAK = 2;
  const run = async (point?: string, reached = true) => {
    const name = unique('rb');
    const repo = `inbm-it/${name}`;
    const root = await imageV1(name, repo);
    const v1Image = imageIdsOf(repo);
    const out = await cutAt(
      { root, name, names: { REPO: repo, NAME: name } },
      'ContainerImage',
      2,
      () => drop(root, 'app.yaml', imageDoc(name, repo, '2', 'sleep 0', SOAK)),
      point,
      reached,
    );
    assert.deepEqual(containersOf(name), [`1 running ${repo}:1`], 'exactly one container: v1, running again');
    assert.deepEqual(tagsOf(repo), ['1'], 'the v2 image this rollout imported is gone');
    assert.deepEqual(imageIdsOf(repo), v1Image, 'v1 kept as it was');
    assert.equal(docker(['exec', `inbm-${name}-1`, 'echo', 'alive']), 'alive');
    return out;
  };
  const uncut = baseline(() => run());
  const plan = planImage(typedImage(imageDoc('x', 'r', '2', 'sleep 0', SOAK)), v1Running('x'));
  const ids = plan.steps.map((s) => s.id);
  assert.deepEqual(ids, ['fetch', 'stop-old', 'start', 'soak', 'commit']);
  // The soak fails and throws: it is the last step that runs, and it never gets its ran/done marks.
  const all = pointsOf(plan);
  const unreached = new Set(['soak:ran', 'soak:done', ...all.filter((p) => p.startsWith('commit:'))]);

  it('uncut: rolled back, 400, one record', async () => {
    const { answer, added } = await uncut();
    assert.match(answer, /^NotReady 400 .*AOTA docker: REPO:2 did not stay up \(.*exited with code 0\); rolled back to 1$/);
    assert.deepEqual(added, [answer.replace('NotReady ', '')]);
  });
  for (const point of all)
    it(`${unreached.has(point) ? 'armed' : 'killed'} at ${point}`, async () => {
      const want = await uncut();
      const got = await run(point, !unreached.has(point));
      assert.equal(got.answer, want.answer);
      assert.deepEqual(got.added, want.added, 'one record of the answer');
    });
});

// ─── ComposeStack ─────────────────────────────────────────────────────────────────────────────

const stackDir = (root: Root, project: string, version?: number) =>
  join(root.dir, 'var', 'cache', 'manageability', 'compose', project, ...(version === undefined ? [] : [String(version)]));
const versionsOn = async (root: Root, project: string) => (await readdir(stackDir(root, project)).catch(() => [] as string[])).sort();
/** The project's containers: "service state command working-dir" lines, sorted. */
const stackOf = (project: string) =>
  lines(docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]))
    .map((id) =>
      docker([
        'inspect',
        '--format',
        '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{join .Config.Cmd " "}} {{index .Config.Labels "com.docker.compose.project.working_dir"}}',
        id,
      ]),
    )
    .sort();

const composeFile = (image: string, command: string) =>
  `version: "2.4"\nservices:\n  app:\n    image: ${image}\n    network_mode: none\n    init: true\n    command: ${command}\n`;

/** A stack tarball served at /stacks/<name>.tar.gz. */
async function tarball(name: string, compose: string): Promise<string> {
  const src = join(work, name);
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'docker-compose.yml'), compose);
  execFileSync('tar', ['-C', src, '-czf', join(work, `${name}.tar.gz`), '.']);
  files.set(`/stacks/${name}.tar.gz`, join(work, `${name}.tar.gz`));
  return `${base}/stacks/${name}.tar.gz`;
}

const stackDoc = (name: string, project: string, url: string, extra = '') =>
  `apiVersion: inbm.dev/v1alpha1\nkind: ComposeStack\nmetadata: {name: ${name}}\nspec:\n  project: ${project}\n  ensure: running\n  source: {url: "${url}"}\n  soakSeconds: 1\n${extra}`;
const typedStack = (yaml: string) => parseDocuments(yaml)[0] as DocumentOf<'ComposeStack'>;
const upContainer = (): StackContainer => ({
  id: 'c',
  name: 'app',
  service: 'app',
  image: 'i',
  running: true,
  exitCode: 0,
  configHash: 'h',
  workingDir: '/d',
});

/** A fresh root, project and image tag (its own: `down --rmi all` removes what a stack names). */
async function freshStack(prefix: string, { name: given, registry = false }: { name?: string; registry?: boolean } = {}) {
  const id = unique(prefix);
  const project = `inbm-it-${id}`;
  projects.push(project);
  const image = registry ? `${REGISTRY}/inbm-it/${id}:p` : `inbm-it/${id}:a`;
  tags.push(image);
  docker(['tag', 'inbm-test/busybox:1', image]);
  const root = await makeRoot('resyncSeconds: 1\n');
  roots.push(root);
  const name = given ?? toName('stack', project);
  return { id, project, image, root, name, names: { NAME: name, PROJECT: project } };
}

/** v1 of the stack up (no crash), the agent stopped. */
async function stackV1(root: Root, name: string, project: string, url: string) {
  const a = await agentOn(root);
  await trustRepository(root, `${base}/stacks`);
  await drop(root, 'stack.yaml', stackDoc(name, project, url));
  const st = await settled(root, 'ComposeStack', name, 1);
  assert.equal(st.phase, 'Ready', JSON.stringify(st));
  assert.equal(await stopAgent(a), 0);
}

async function unpush(ref: string): Promise<void> {
  const [repo, tag] = ref.slice(REGISTRY.length + 1).split(':') as [string, string];
  const url = `http://${REGISTRY}/v2/${repo}/manifests`;
  const head = await fetch(`${url}/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  }).catch(() => undefined);
  const digest = head?.ok ? head.headers.get('docker-content-digest') : null;
  if (digest) await fetch(`${url}/${digest}`, { method: 'DELETE' }).catch(() => undefined);
}

describe('ComposeStack pull (pullPolicy always, local registry), first deploy, cut at every pull point', { concurrency: 4 }, () => {
  const run = async (point?: string) => {
    const s = await freshStack('pull', { name: undefined, registry: true });
    docker(['push', s.image]);
    docker(['rmi', s.image]);
    const url = await tarball(s.id, composeFile(s.image, 'sleep 3600'));
    const out = await cutAt(
      s,
      'ComposeStack',
      1,
      async () => {
        await trustRepository(s.root, `${base}/stacks`);
        await drop(s.root, 'stack.yaml', stackDoc(s.name, s.project, url, '  pullPolicy: always\n'));
      },
      point,
    );
    assert.deepEqual(stackOf(s.project), [`app running sleep 3600 ${stackDir(s.root, s.project, 1)}`]);
    assert.notEqual(docker(['images', '-q', s.image]), '', 'the image pulled');
    assert.deepEqual(await versionsOn(s.root, s.project), ['1']);
    return out;
  };
  const uncut = baseline(() => run());
  const plan = planComposeStack(typedStack(stackDoc('x', 'p', 'http://h/s.tgz', '  pullPolicy: always\n')), {
    containers: [],
    versions: [],
  });
  assert.deepEqual(
    plan.steps.map((s) => s.id),
    ['fetch', 'pull', 'up', 'soak'],
  );

  it('uncut: 200 pull, one record', async () => {
    const { answer, added } = await uncut();
    assert.equal(answer, 'Ready 200 AOTA compose pull COMMAND SUCCESSFUL');
    assert.deepEqual(added, ['200 AOTA compose pull COMMAND SUCCESSFUL']);
  });
  // The other steps of this run are cut in compose-stack-crash.test.ts.
  for (const point of pointsOf(plan).filter((p) => p.startsWith('pull:') || p === 'complete'))
    it(`killed at ${point}`, async () => {
      const want = await uncut();
      const got = await run(point);
      assert.equal(got.answer, want.answer);
      assert.deepEqual(got.added, want.added, 'one record of the answer');
    });
});

for (const cmd of ['down', 'remove'] as const) {
  describe(`ComposeStack ${cmd} (manifest) cut at every journal point`, { concurrency: 4 }, () => {
    const run = async (point?: string) => {
      const s = await freshStack(cmd);
      const url = await tarball(s.id, composeFile(s.image, 'sleep 3600'));
      await stackV1(s.root, s.name, s.project, url);
      // The manifest names the resource the YAML made: the YAML is withdrawn (not pruned) first.
      await unlink(join(s.root.desired, 'stack.yaml'));
      const out = await cutAt(
        s,
        'ComposeStack',
        2,
        () => drop(s.root, `${cmd}.xml`, aotaXml(`<cmd>${cmd}</cmd><app>compose</app><containerTag>${s.project}</containerTag>`)),
        point,
      );
      assert.deepEqual(stackOf(s.project), [], 'no container of the project left');
      if (cmd === 'remove') {
        assert.equal(docker(['images', '-q', s.image]), '', 'the image the stack names removed');
        assert.deepEqual(await versionsOn(s.root, s.project), [], 'the files gone');
      } else {
        assert.notEqual(docker(['images', '-q', s.image]), '', 'the image kept');
        assert.deepEqual(await versionsOn(s.root, s.project), ['1'], 'the files kept');
      }
      return out;
    };
    const uncut = baseline(() => run());
    const doc = typedStack(
      stackDoc('x', 'p', 'http://h/s.tgz').replace('ensure: running', `ensure: ${cmd === 'down' ? 'stopped' : 'absent'}`),
    );
    const plan = planComposeStack(doc, { containers: [upContainer()], versions: [1] });
    assert.deepEqual(
      plan.steps.map((s) => s.id),
      cmd === 'down' ? ['down'] : ['remove', 'purge'],
    );

    it(`uncut: 200 ${cmd}, one record`, async () => {
      const { answer, added } = await uncut();
      assert.equal(answer, `Ready 200 AOTA compose ${cmd} COMMAND SUCCESSFUL`);
      assert.deepEqual(added, [`200 AOTA compose ${cmd} COMMAND SUCCESSFUL`]);
    });
    for (const point of pointsOf(plan))
      it(`killed at ${point}`, async () => {
        const want = await uncut();
        const got = await run(point);
        assert.equal(got.answer, want.answer);
        assert.deepEqual(got.added, want.added, 'one record of the answer');
      });
  });
}

describe('ComposeStack rollback (v2 exits → v1 up again) cut at every journal point', { concurrency: 4 }, () => {
  const run = async (point?: string, reached = true) => {
    const s = await freshStack('rb');
    const v1 = await tarball(`${s.id}-v1`, composeFile(s.image, 'sleep 3600'));
    const v2 = await tarball(`${s.id}-v2`, composeFile(s.image, 'sh -c "exit 3"'));
    await stackV1(s.root, s.name, s.project, v1);
    const out = await cutAt(s, 'ComposeStack', 2, () => drop(s.root, 'stack.yaml', stackDoc(s.name, s.project, v2)), point, reached);
    assert.deepEqual(stackOf(s.project), [`app running sleep 3600 ${stackDir(s.root, s.project, 1)}`], 'v1 up again, one container');
    assert.deepEqual(await versionsOn(s.root, s.project), ['1'], "v1's files kept, v2's discarded");
    return out;
  };
  const uncut = baseline(() => run());
  const plan = planComposeStack(typedStack(stackDoc('x', 'p', 'http://h/s.tgz')), { containers: [upContainer()], versions: [1] });
  assert.deepEqual(
    plan.steps.map((s) => s.id),
    ['fetch', 'up', 'soak', 'commit'],
  );
  const all = pointsOf(plan);
  const unreached = new Set(['soak:ran', 'soak:done', ...all.filter((p) => p.startsWith('commit:'))]);

  it('uncut: rolled back to version 1, 400, one record', async () => {
    const { answer, added } = await uncut();
    assert.match(
      answer,
      /^NotReady 400 .*AOTA compose up: PROJECT did not stay up \(.*app exited with code 3\); rolled back to version 1$/,
    );
    assert.deepEqual(added, [answer.replace('NotReady ', '')]);
  });
  for (const point of all)
    it(`${unreached.has(point) ? 'armed' : 'killed'} at ${point}`, async () => {
      const want = await uncut();
      const got = await run(point, !unreached.has(point));
      assert.equal(got.answer, want.answer);
      assert.deepEqual(got.added, want.added, 'one record of the answer');
    });
});
