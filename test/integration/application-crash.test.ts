/**
 * AOTA application update with deviceReboot yes (install: download + dpkg -i into a throwaway
 * dpkg root; then reboot), the agent SIGKILLed at each journal point the planner gives
 * (before/started/ran/done of install and reboot) and right after the request is marked
 * complete, then started again. Each case answers as the uncut run does (one record in the
 * history), dpkg's status shows the package installed once, and the reboot command ran once:
 * a kill before it ran leaves it to the restart, a kill after it ran (the boot id changed, as the
 * harness's reboot makes it) never runs it again. dpkg -i runs again only when the kill came
 * after it ran and before the journal said so (install:ran): the step is redone, and dpkg keeps
 * one package.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseDocuments } from '../../src/desired/document.js';
import type { DocumentOf } from '../../src/desired/kinds/index.js';
import { planApplication } from '../../src/reconcilers/application/index.js';
import { until } from '../until.js';
import { drop, makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';

const PKG = 'inbm-hello';
/** toName('app', file without .deb): the document the manifest becomes, and its journal key. */
const DOC = 'app-inbm-hello-1-0-all';
let server: Server;
let base = '';
let work = '';
const dirs: string[] = [];
const agents = new Set<Running>();

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'inbm-app-crash-'));
  const pkg = join(work, 'pkg');
  await mkdir(join(pkg, 'DEBIAN'), { recursive: true });
  await mkdir(join(pkg, 'usr', 'share', PKG), { recursive: true });
  await writeFile(
    join(pkg, 'DEBIAN', 'control'),
    `Package: ${PKG}\nVersion: 1.0\nArchitecture: all\nMaintainer: inbm <t@t>\nDescription: test\n`,
  );
  await writeFile(join(pkg, 'usr', 'share', PKG, 'hello.txt'), `${PKG} 1.0\n`);
  const r = spawnSync('dpkg-deb', ['-b', '--root-owner-group', pkg, join(work, 'hello.deb')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  ({ server, base } = await serveFiles(new Map([[`/pool/${PKG}_1.0_all.deb`, join(work, 'hello.deb')]])));
});
after(async () => {
  for (const a of agents) a.proc.kill('SIGKILL');
  server?.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

const manifest = () =>
  `<manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type><aota name="app"><cmd>update</cmd><app>application</app><fetch>${base}/pool/${PKG}_1.0_all.deb</fetch><deviceReboot>yes</deviceReboot></aota></type></ota></manifest>`;

interface Device {
  root: Root;
  dpkg: string;
}
async function device(): Promise<Device> {
  const dpkg = await mkdtemp(join(tmpdir(), 'inbm-dpkg-'));
  dirs.push(dpkg);
  await mkdir(join(dpkg, 'var', 'lib', 'dpkg', 'info'), { recursive: true });
  await mkdir(join(dpkg, 'var', 'lib', 'dpkg', 'updates'), { recursive: true });
  await writeFile(join(dpkg, 'var', 'lib', 'dpkg', 'status'), '');
  // makeRoot's settings start with "commands:", so this line lands inside it.
  const root = await makeRoot(
    `  installPackage: [dpkg, --root=${dpkg}, --log=${join(dpkg, 'dpkg.log')}, -i, "{file}"]\nresyncSeconds: 1\n`,
  );
  dirs.push(root.dir);
  return { root, dpkg };
}

async function agentOn(root: Root, env: Record<string, string> = {}): Promise<Running> {
  const a = await startAgent(root, env);
  agents.add(a);
  void a.exited.then(() => agents.delete(a));
  return a;
}

/** Each package stanza of dpkg's status: "name status". */
const dpkgStatus = async (d: Device) =>
  (await readFile(join(d.dpkg, 'var', 'lib', 'dpkg', 'status'), 'utf8'))
    .split('\n\n')
    .filter((s) => s.trim())
    .map((s) => `${/^Package: (.*)$/m.exec(s)?.[1]} ${/^Status: (.*)$/m.exec(s)?.[1]}`);
/** How often dpkg unpacked the package (its own log). */
const unpacks = async (d: Device) =>
  (await readFile(join(d.dpkg, 'dpkg.log'), 'utf8').catch(() => '')).split('\n').filter((l) => / (install|upgrade) inbm-hello:all /.test(l))
    .length;
const reboots = async (d: Device) => (await readFile(d.root.rebootLog, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
const history = async (d: Device) =>
  (
    JSON.parse(await readFile(join(d.root.state, 'results.json'), 'utf8').catch(() => '[]')) as Array<{
      kind: string;
      result: { status: number; message: string };
    }>
  )
    .filter((r) => r.kind === 'ApplicationPackage')
    .map((r) => `${r.result.status} ${r.result.message}`);

/** One run, armed at `point` (none: uncut): the answer and what the device shows after it. */
async function run(point?: string) {
  const d = await device();
  const first = await agentOn(d.root, point ? { INBM_CRASH_AT: `ApplicationPackage/${DOC}:${point}` } : {});
  // The agent writes the configuration file at its first start.
  await trustRepository(d.root, `${base}/pool`);
  await drop(d.root, 'app.xml', manifest());
  let agent = first;
  if (point) {
    assert.equal((await first.exited).signal, 'SIGKILL', `the agent died at ${point}`);
    agent = await agentOn(d.root);
  }
  const st = await until(
    'the request settled',
    async () => {
      const s = JSON.parse(await readFile(join(d.root.state, 'status', 'ApplicationPackage', `${DOC}.json`), 'utf8'));
      return ['Ready', 'Stalled', 'Failed'].includes(s.phase) && s.lastResult ? s : undefined;
    },
    30_000,
  );
  // Settled: a resync or two more change nothing.
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(await stopAgent(agent), 0);
  return {
    answer: `${st.phase} ${st.lastResult.status} ${st.lastResult.message}`,
    history: await history(d),
    dpkg: await dpkgStatus(d),
    unpacks: await unpacks(d),
    reboots: await reboots(d),
  };
}

describe('ApplicationPackage: SIGKILL at every journal point of an update with reboot converges', { concurrency: 4 }, () => {
  let uncut: ReturnType<typeof run> | undefined;
  const baseline = () => (uncut ??= run());
  const doc = parseDocuments(
    `apiVersion: inbm.dev/v1alpha1\nkind: ApplicationPackage\nmetadata: {name: x}\nspec: {requestId: r, source: {url: "https://h/p.deb"}, reboot: true}\n`,
  )[0] as DocumentOf<'ApplicationPackage'>;
  const plan = planApplication(doc, {}, { install: ['dpkg'], reboot: ['reboot'] });
  assert.deepEqual(
    plan.steps.map((s) => s.id),
    ['install', 'reboot'],
  );
  const points = [...plan.steps.flatMap((s) => ['before', 'started', 'ran', 'done'].map((w) => `${s.id}:${w}`)), 'complete'];

  it('uncut: 200, installed once, one reboot', async () => {
    const want = await baseline();
    assert.equal(want.answer, 'Ready 200 AOTA application update COMMAND SUCCESSFUL');
    assert.deepEqual(want.history, ['200 AOTA application update COMMAND SUCCESSFUL']);
    assert.deepEqual(want.dpkg, [`${PKG} install ok installed`]);
    assert.equal(want.unpacks, 1);
    assert.equal(want.reboots, 1);
  });
  for (const point of points)
    it(`killed at ${point}`, async () => {
      const want = await baseline();
      const got = await run(point);
      assert.equal(got.answer, want.answer);
      assert.deepEqual(got.history, want.history, 'one record of the answer');
      assert.deepEqual(got.dpkg, want.dpkg, 'the package installed, once');
      assert.equal(got.unpacks, point === 'install:ran' ? 2 : 1, 'dpkg -i redone only when cut between its run and its done mark');
      assert.equal(got.reboots, 1, 'the reboot command ran once');
    });
});
