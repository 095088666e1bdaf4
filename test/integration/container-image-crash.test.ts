/**
 * The agent is SIGKILLed at every journalled step of a ContainerImage rollout (v1 running → v2
 * by docker import: fetch, stop-old, start, soak, commit; each when the step is marked started
 * and when it has run but is not yet marked done), then started again: it converges to v2
 * running, with exactly one container of the resource and one image of the repository, and the
 * request's result is the import's success (a resumed import of our own is not "already present").
 * A soak cut short is soaked again by the restarted agent.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { until } from '../until.js';
import { cleanUp, containersOf, docker, engineUp, imageIdsOf, tagsOf, unique } from './engine.js';
import { drop, makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';

let dockerHost = '';
let server: Server;
let base = '';
let work = '';
const roots: Root[] = [];
const made: Array<{ resource: string; repo: string }> = [];
const agents = new Set<Running>();

const SOAK = 2;
const doc = (name: string, repo: string, tag: string, soak: number) =>
  `apiVersion: inbm.dev/v1alpha1\nkind: ContainerImage\nmetadata: {name: ${name}}\nspec:\n  image: ${repo}\n  tag: "${tag}"\n  source: {method: import, artifact: {url: "${base}/rootfs.tgz"}}\n  container: {run: true, command: "sleep 3600", restartPolicy: "no"}\n  soakSeconds: ${soak}\n`;
const statusOf = async (root: Root, name: string) =>
  JSON.parse(await readFile(join(root.state, 'status', 'ContainerImage', `${name}.json`), 'utf8'));
const journalOf = async (root: Root, name: string) =>
  JSON.parse(await readFile(join(root.state, 'journal', `ContainerImage-${name}.json`), 'utf8'));

async function agentOn(root: Root, env: Record<string, string> = {}): Promise<Running> {
  const a = await startAgent(root, { DOCKER_HOST: dockerHost, ...env });
  agents.add(a);
  void a.exited.then(() => agents.delete(a));
  return a;
}

async function ready(root: Root, name: string, generation: number, ms = 30_000) {
  const s = await until(
    `${name} generation ${generation} settled`,
    async () => {
      const st = await statusOf(root, name);
      return st.observedGeneration === generation && ['Ready', 'Stalled', 'Failed'].includes(st.phase) && st.lastResult ? st : undefined;
    },
    ms,
  );
  assert.equal(s.phase, 'Ready', JSON.stringify(s));
  return s;
}

/** A fresh root with v1 of a fresh image running (no crash), the agent stopped again. */
async function withV1(): Promise<{ root: Root; name: string; repo: string }> {
  const name = unique('crash');
  const repo = `inbm-it/${name}`;
  made.push({ resource: name, repo });
  const root = await makeRoot('resyncSeconds: 1\n');
  roots.push(root);
  const a = await agentOn(root);
  await trustRepository(root, `${base}/`);
  await drop(root, 'app.yaml', doc(name, repo, '1', 0));
  await ready(root, name, 1);
  assert.deepEqual(containersOf(name), [`1 running ${repo}:1`]);
  assert.equal(await stopAgent(a), 0);
  return { root, name, repo };
}

before(async () => {
  dockerHost = engineUp();
  work = await mkdtemp(join(tmpdir(), 'inbm-it-crash-'));
  // A root filesystem for docker import: busybox, and the links `sh -c "sleep 3600"` needs.
  const rootfs = join(work, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const applet of ['sh', 'sleep', 'echo']) await symlink('busybox', join(rootfs, 'bin', applet));
  execFileSync('tar', ['-C', rootfs, '-czf', join(work, 'rootfs.tgz'), '.']);
  ({ server, base } = await serveFiles(new Map([['/rootfs.tgz', join(work, 'rootfs.tgz')]])));
});

after(async () => {
  for (const a of agents) a.proc.kill('SIGKILL');
  server?.close();
  if (dockerHost)
    cleanUp(
      made.map((m) => m.resource),
      made.map((m) => m.repo),
    );
  for (const r of roots) await rm(r.dir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

/** What a converged v2 looks like on the engine and in the agent's records. */
async function assertConverged(root: Root, name: string, repo: string, generation: number, tag: string) {
  const s = await ready(root, name, generation);
  assert.deepEqual(s.lastResult, { status: 200, message: 'AOTA docker import COMMAND SUCCESSFUL', job_id: '' });
  assert.deepEqual(containersOf(name), [`${tag} running ${repo}:${tag}`], 'exactly one container, the new version, running');
  assert.deepEqual(tagsOf(repo), [tag], 'the old version pruned');
  assert.equal(imageIdsOf(repo).length, 1, 'exactly one image');
  assert.equal(docker(['exec', `inbm-${name}-${tag}`, 'echo', 'alive']), 'alive');
  const results = JSON.parse(await readFile(join(root.state, 'results.json'), 'utf8')) as Array<{
    name: string;
    result: { status: number };
  }>;
  const mine = results.filter((r) => r.name === name).map((r) => r.result.status);
  assert.ok(!mine.includes(401), 'a resumed import is not refused as already present');
}

/** Every journal point of the rollout, in order: before/started/ran/done of each step, then complete. */
const ROLLOUT_POINTS = ['fetch', 'stop-old', 'start', 'soak', 'commit']
  .flatMap((s) => ['before', 'started', 'ran', 'done'].map((w) => `${s}:${w}`))
  .concat('complete');

describe('SIGKILL at every journalled step of a ContainerImage rollout (v1 → v2), restarted: converges', { concurrency: 4 }, () => {
  for (const point of ROLLOUT_POINTS) {
    it(`killed at ${point}`, async () => {
      const { root, name, repo } = await withV1();
      const doomed = await agentOn(root, { INBM_CRASH_AT: `ContainerImage/${name}:${point}` });
      await drop(root, 'app.yaml', doc(name, repo, '2', SOAK));
      assert.equal((await doomed.exited).signal, 'SIGKILL', 'the crash hook fired');
      const restartedAt = Date.now();
      const agent = await agentOn(root);
      await assertConverged(root, name, repo, 2, '2');
      if (point === 'soak:started' || point === 'soak:ran') {
        // Cut short (started) or not marked done (ran): the restarted agent soaks again.
        const j = await journalOf(root, name);
        assert.equal(j.steps.soak.state, 'done');
        assert.ok(Date.parse(j.steps.soak.at) >= restartedAt, 'the soak was done again after the restart');
        assert.ok(Date.now() - restartedAt >= SOAK * 1000, 'and it took the soak time');
      }
      assert.equal(await stopAgent(agent), 0);
      // Settled: another agent start changes nothing.
      const again = await agentOn(root);
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual(containersOf(name), [`2 running ${repo}:2`]);
      assert.equal((await statusOf(root, name)).phase, 'Ready');
      assert.equal(await stopAgent(again), 0);
    });
  }
});

describe('SIGKILL during a first version (nothing old), restarted', () => {
  for (const point of ['fetch:ran', 'start:started', 'start:ran', 'soak:started', 'soak:ran']) {
    it(`killed at ${point}: converges, the import not refused, the soak done in full`, async () => {
      const name = unique('crash-first');
      const repo = `inbm-it/${name}`;
      made.push({ resource: name, repo });
      const root = await makeRoot('resyncSeconds: 1\n');
      roots.push(root);
      const doomed = await agentOn(root, { INBM_CRASH_AT: `ContainerImage/${name}:${point}` });
      await trustRepository(root, `${base}/`);
      await drop(root, 'app.yaml', doc(name, repo, '1', SOAK));
      assert.equal((await doomed.exited).signal, 'SIGKILL', 'the crash hook fired');
      const restartedAt = Date.now();
      const agent = await agentOn(root);
      await assertConverged(root, name, repo, 1, '1');
      const j = await journalOf(root, name);
      assert.ok(Date.parse(j.steps.soak.at) >= restartedAt, 'soaked by the restarted agent');
      assert.ok(Date.now() - restartedAt >= SOAK * 1000);
      assert.equal(await stopAgent(agent), 0);
    });
  }
});
