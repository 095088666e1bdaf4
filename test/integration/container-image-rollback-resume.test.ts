/**
 * A ContainerImage rollback cut short: the agent dies after the new container was taken away
 * and before the previous one was started again (here: killed once the soak began, the new
 * container then removed, as the rollback would). The restarted agent must finish that rollback:
 * the previous version running again, the new image gone, a 400 that says what happened.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { until } from '../until.js';
import { busyboxRootfs, cleanUp, containersOf, docker, engineUp, tagsOf, unique } from './engine.js';
import { drop, makeRoot, type Root, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';

const NAME = unique('rb-resume');
const REPO = `inbm-it/${NAME}`;
let dockerHost = '';
let server: Server;
let base = '';
let work = '';
let root: Root;

const doc = (tag: string, soak: number) =>
  `apiVersion: inbm.dev/v1alpha1\nkind: ContainerImage\nmetadata: {name: ${NAME}}\nspec:\n  image: ${REPO}\n  tag: "${tag}"\n  source: {method: import, artifact: {url: "${base}/rootfs.tgz"}}\n  container: {run: true, command: "sleep 3600", restartPolicy: "no"}\n  soakSeconds: ${soak}\n`;
const statusOf = async () => JSON.parse(await readFile(join(root.state, 'status', 'ContainerImage', `${NAME}.json`), 'utf8'));
const settled = (generation: number) =>
  until(`generation ${generation} settled`, async () => {
    const s = await statusOf().catch(() => undefined);
    return s?.observedGeneration === generation && ['Ready', 'Stalled', 'Failed'].includes(s.phase) && s.lastResult ? s : undefined;
  });

before(async () => {
  dockerHost = engineUp();
  work = await mkdtemp(join(tmpdir(), 'inbm-it-rbresume-'));
  ({ server, base } = await serveFiles(new Map([['/rootfs.tgz', await busyboxRootfs(work, ['sh', 'sleep'])]])));
  root = await makeRoot('resyncSeconds: 1\n');
});

after(async () => {
  server?.close();
  if (dockerHost) cleanUp([NAME], [REPO]);
  if (root) await rm(root.dir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

it('killed mid-rollback (new container gone, old one stopped): the restart starts the old one again and removes the new image', async () => {
  const first = await startAgent(root, { DOCKER_HOST: dockerHost });
  await trustRepository(root, `${base}/`);
  await drop(root, 'app.yaml', doc('1', 0));
  assert.equal((await settled(1)).phase, 'Ready');
  assert.equal(await stopAgent(first), 0);

  const dying = await startAgent(root, { DOCKER_HOST: dockerHost, INBM_CRASH_AT: `ContainerImage/${NAME}:soak:started` }, { ready: false });
  await drop(root, 'app.yaml', doc('2', 30));
  assert.equal((await dying.exited).signal, 'SIGKILL');
  assert.deepEqual(containersOf(NAME), [`1 exited ${REPO}:1`, `2 running ${REPO}:2`], 'v1 stopped, v2 started, soak begun');
  // What the rollback does first, before the kill that cut it short.
  docker(['rm', '-f', `inbm-${NAME}-2`]);

  const again = await startAgent(root, { DOCKER_HOST: dockerHost });
  try {
    const s = await settled(2);
    assert.equal(s.phase, 'Failed');
    assert.equal(s.lastResult.status, 400);
    assert.match(s.lastResult.message, new RegExp(`${REPO}:2 is missing .*; rolled back to 1$`));
    assert.deepEqual(containersOf(NAME), [`1 running ${REPO}:1`], 'the previous version runs again');
    assert.deepEqual(tagsOf(REPO), ['1'], 'the image this rollout fetched is gone');
  } finally {
    assert.equal(await stopAgent(again), 0);
  }
});
