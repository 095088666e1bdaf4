/**
 * PackageSource requests with the agent SIGKILLed at each journalled step (before/started/ran/
 * done) and right after the request is marked complete, then started again:
 * - an application source add with a signing key (fetch-key, then write the .list file): the
 *   device ends with exactly the expected file and key, neither written a second time once it
 *   was on disk (same inode and mtime), no temp file left beside them;
 * - an application source remove (the file and both key twins), an application source update,
 *   and osSource add / update / remove of sources.list lines, with the step ids taken from the
 *   planner itself: the sources files and keyrings end byte for byte as an uncut run leaves
 *   them, and apt-get update in the root accepts them;
 * each with one 200 in the history for the request.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, type Stats } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateDocument } from '../../src/desired/document.js';
import { manifestToDesired } from '../../src/desired/translate/index.js';
import { keyNames } from '../../src/reconcilers/package-source/keyring.js';
import { type PackageSource, planPackageSource, type SourceObserved } from '../../src/reconcilers/package-source/plan.js';
import { until } from '../until.js';
import { drop, makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';
import { aptUpdate, makeSignedRepo, prepareAptRoot, type SignedRepo } from './package-source-repo.js';

const FILE = 'inbm-test.list';
const KEY_NAME = 'inbm-test.gpg';
/** toName('app-source', FILE): the document the manifest becomes, and its journal key. */
const DOC = 'app-source-inbm-test-list';
const POINTS = ['fetch-key', 'write'].flatMap((s) => ['before', 'started', 'ran', 'done'].map((p) => `${s}:${p}`)).concat('complete');

// Made before the tests are declared: the planner that names the steps reads files they seed.
const repo: SignedRepo = await makeSignedRepo();
/** A second repository, for the line each case leaves alone. */
const other: SignedRepo = await makeSignedRepo('inbm-source-other');
let server: Server;
let base: string;
const agents = new Set<Running>();

before(async () => {
  ({ server, base } = await serveFiles(new Map([['/keys/repo.asc', repo.armoredKey]])));
});
after(async () => {
  for (const a of agents) if (a.proc.exitCode === null && a.proc.signalCode === null) await stopAgent(a);
  await new Promise<void>((r) => server.close(() => r()));
  await repo.close();
  await other.close();
});

const pkgs = (lines: string[]) => lines.map((l) => `<source_pkg>${l}</source_pkg>`).join('');
const appAdd = (line: string) =>
  `<manifest><type>source</type><applicationSource><add><gpg><uri>${base}/keys/repo.asc</uri><keyname>${KEY_NAME}</keyname></gpg>` +
  `<repo><repos>${pkgs([line])}</repos><filename>${FILE}</filename></repo></add></applicationSource></manifest>`;

interface Paths {
  sourcesDir: string;
  keyring: string;
  cache: string;
}
const pathsOf = (root: Root): Paths => ({
  sourcesDir: join(root.dir, 'etc/apt/sources.list.d'),
  keyring: join(root.dir, 'usr/share/keyrings'),
  cache: join(root.dir, 'var/cache/manageability'),
});
const statOf = (path: string) => stat(path).catch(() => undefined);
const identity = (s: Stats | undefined) => s && { ino: s.ino, mtimeMs: s.mtimeMs };
const entries = (dir: string) => readdir(dir).catch(() => [] as string[]);

async function agentOn(root: Root, env: Record<string, string> = {}): Promise<Running> {
  const a = await startAgent(root, env);
  agents.add(a);
  return a;
}

describe('PackageSource: SIGKILL at every journalled step of an application source add converges', { concurrency: 3 }, () => {
  for (const point of POINTS) {
    it(`killed at ${point}`, async () => {
      const root = await makeRoot();
      const p = pathsOf(root);
      const line = `deb [signed-by=${join(p.keyring, KEY_NAME)}] file:${repo.dir} ./`;
      const crashing = await agentOn(root, { INBM_CRASH_AT: `PackageSource/${DOC}:${point}` });
      // The agent writes the configuration file at its first start.
      await trustRepository(root, `${base}/keys`);
      await drop(root, 'source.xml', appAdd(line));
      const { signal } = await crashing.exited;
      assert.equal(signal, 'SIGKILL', `the agent died at ${point}`);
      // What was on disk when it died: whatever is there must not be written again.
      const atCrash = {
        file: identity(await statOf(join(p.sourcesDir, FILE))),
        key: identity(await statOf(join(p.keyring, KEY_NAME))),
      };
      if (point === 'fetch-key:ran' || point === 'fetch-key:done' || point.startsWith('write:') || point === 'complete')
        assert.ok(atCrash.key, 'the key was stored before the kill');
      if (point === 'write:ran' || point === 'write:done' || point === 'complete')
        assert.ok(atCrash.file, 'the file was written before the kill');

      const agent = await agentOn(root);
      try {
        const st = await until(
          'the request settled',
          async () => {
            const s = JSON.parse(await readFile(join(root.state, 'status', 'PackageSource', `${DOC}.json`), 'utf8'));
            return ['Ready', 'Stalled', 'Failed'].includes(s.phase) ? s : undefined;
          },
          30_000,
        );
        assert.equal(st.phase, 'Ready', JSON.stringify(st));
        // What `inbm apply --wait` and the status file give as the request's answer; after a kill
        // right after the journal's complete mark, the controller takes it from the journal.
        assert.deepEqual(st.lastResult, { status: 200, message: 'SUCCESS', job_id: '' });
        const history = (
          JSON.parse(await readFile(join(root.state, 'results.json'), 'utf8')) as Array<{
            kind: string;
            result: { status: number; message: string };
          }>
        )
          .filter((r) => r.kind === 'PackageSource')
          .map((r) => `${r.result.status} ${r.result.message}`);
        assert.deepEqual(history, ['200 SUCCESS'], 'one answer for the request');

        assert.equal(await readFile(join(p.sourcesDir, FILE), 'utf8'), `${line}\n`);
        // gpg is installed here: the armored key is stored dearmored, byte for byte the binary export.
        assert.deepEqual(await readFile(join(p.keyring, KEY_NAME)), await readFile(repo.binaryKey));
        assert.deepEqual(await entries(p.sourcesDir), [FILE], 'no temp file beside the list');
        assert.deepEqual(await entries(p.keyring), [KEY_NAME], 'no temp file or twin beside the key');
        assert.deepEqual(
          (await entries(p.cache)).filter((f) => f.startsWith('key-') || f.startsWith('gpg-')),
          [],
          'no download or gpg home left in the cache',
        );
        if (atCrash.file) assert.deepEqual(identity(await statOf(join(p.sourcesDir, FILE))), atCrash.file, 'the list was written once');
        if (atCrash.key) assert.deepEqual(identity(await statOf(join(p.keyring, KEY_NAME))), atCrash.key, 'the key was written once');
      } finally {
        await stopAgent(agent);
      }
    });
  }
});

const POINT_SUFFIXES = ['before', 'started', 'ran', 'done'];
const pointsOf = (steps: string[]) => [...steps.flatMap((s) => POINT_SUFFIXES.map((p) => `${s}:${p}`)), 'complete'];
const sourcePaths = (p: Paths) => ({
  sourcesList: join(p.sourcesDir, '..', 'sources.list'),
  sourcesDir: p.sourcesDir,
  keyringDir: p.keyring,
});

interface Case {
  title: string;
  /** Relative path → content: what the root holds before the request. */
  seed(p: Paths): Promise<Record<string, string | Buffer>>;
  manifest(p: Paths): string;
}

const appLine = (p: Paths, opts = '') => `deb [${opts}signed-by=${join(p.keyring, KEY_NAME)}] file:${repo.dir} ./`;
const repoLine = `deb [trusted=yes] file:${repo.dir} ./`;
const otherLine = `deb [trusted=yes] file:${other.dir} ./`;
const LIST = `etc/apt/sources.list.d/${FILE}`;
const KEYS = 'usr/share/keyrings';
const osManifest = (verb: 'add' | 'update' | 'remove', lines: string[]) =>
  `<manifest><type>source</type><osSource><${verb}><repos>${pkgs(lines)}</repos></${verb}></osSource></manifest>`;
/** The application source as an uncut add leaves it, with the other repository in sources.list. */
const added = async (p: Paths): Promise<Record<string, string | Buffer>> => ({
  'etc/apt/sources.list': `${otherLine}\n`,
  [LIST]: `${appLine(p)}\n`,
  [`${KEYS}/${KEY_NAME}`]: await readFile(repo.binaryKey),
});

const CASES: Case[] = [
  {
    title: 'an application source remove (the file and both key twins)',
    // Both names a key may be stored under (keyNames), so each remove-key step is planned.
    seed: async (p) => ({ ...(await added(p)), [`${KEYS}/inbm-test.asc`]: await readFile(repo.armoredKey) }),
    manifest: () =>
      `<manifest><type>source</type><applicationSource><remove><gpg><keyname>${KEY_NAME}</keyname></gpg>` +
      `<repo><filename>${FILE}</filename></repo></remove></applicationSource></manifest>`,
  },
  {
    title: 'an application source update',
    seed: added,
    manifest: (p) =>
      `<manifest><type>source</type><applicationSource><update><repo><repos>${pkgs([appLine(p, 'arch=amd64 ')])}</repos>` +
      `<filename>${FILE}</filename></repo></update></applicationSource></manifest>`,
  },
  {
    title: 'an osSource add',
    seed: async () => ({ 'etc/apt/sources.list': `# seeded\n${otherLine}\n` }),
    manifest: () => osManifest('add', [repoLine]),
  },
  {
    title: 'an osSource update',
    seed: async () => ({ 'etc/apt/sources.list': `# old\n${otherLine}\n` }),
    manifest: () => osManifest('update', [repoLine]),
  },
  {
    title: 'an osSource remove',
    seed: async () => ({ 'etc/apt/sources.list': `${otherLine}\n${repoLine}\n` }),
    manifest: () => osManifest('remove', [repoLine]),
  },
];

async function seeded(c: Case): Promise<{ root: Root; p: Paths }> {
  const root = await makeRoot();
  const p = pathsOf(root);
  await prepareAptRoot(root.dir);
  for (const [rel, content] of Object.entries(await c.seed(p))) {
    await mkdir(join(root.dir, rel, '..'), { recursive: true });
    await writeFile(join(root.dir, rel), content);
  }
  return { root, p };
}

/** The document the manifest becomes and the steps the planner gives for the seeded root, as the reconciler observes it. */
async function planned(c: Case): Promise<{ name: string; steps: string[] }> {
  const { p } = await seeded(c);
  const t = manifestToDesired(c.manifest(p), { source: 'file' });
  assert.equal(t.type, 'documents');
  const doc = validateDocument(t.documents[0]) as PackageSource;
  const paths = sourcePaths(p);
  const target = doc.spec.target === 'os' ? paths.sourcesList : join(p.sourcesDir, doc.spec.filename!);
  const names = doc.spec.gpgKey ? keyNames(doc.spec.gpgKey.name) : [];
  const observed: SourceObserved = {
    ...(await readFile(target, 'utf8').then(
      (text) => ({ text }),
      () => ({}),
    )),
    keys: names.filter((n) => existsSync(join(p.keyring, n))),
  };
  return { name: doc.metadata.name, steps: planPackageSource(doc, observed, paths).steps.map((s) => s.id) };
}

/** The sources files and keyrings (keys by digest), the root's path written as <root>: what apt reads. */
async function aptFiles(root: Root): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const list = join(root.dir, 'etc/apt/sources.list');
  const text = await readFile(list, 'utf8').catch(() => undefined);
  if (text !== undefined) out['etc/apt/sources.list'] = text.replaceAll(root.dir, '<root>');
  for (const f of (await entries(join(root.dir, 'etc/apt/sources.list.d'))).sort())
    out[`etc/apt/sources.list.d/${f}`] = (await readFile(join(root.dir, 'etc/apt/sources.list.d', f), 'utf8')).replaceAll(
      root.dir,
      '<root>',
    );
  for (const f of (await entries(join(root.dir, KEYS))).sort())
    out[`${KEYS}/${f}`] = createHash('sha256')
      .update(await readFile(join(root.dir, KEYS, f)))
      .digest('hex');
  return out;
}
const identities = async (root: Root, files: Record<string, string>) =>
  Object.fromEntries(await Promise.all(Object.keys(files).map(async (rel) => [rel, identity(await statOf(join(root.dir, rel)))] as const)));

async function settled(root: Root, doc: string) {
  return until(
    'the request settled',
    async () => {
      const s = JSON.parse(await readFile(join(root.state, 'status', 'PackageSource', `${doc}.json`), 'utf8'));
      return ['Ready', 'Stalled', 'Failed'].includes(s.phase) ? s : undefined;
    },
    30_000,
  );
}
const historyOf = async (root: Root) =>
  (
    JSON.parse(await readFile(join(root.state, 'results.json'), 'utf8')) as Array<{
      kind: string;
      result: { status: number; message: string };
    }>
  )
    .filter((r) => r.kind === 'PackageSource')
    .map((r) => `${r.result.status} ${r.result.message}`);

async function aptAccepts(root: Root) {
  const apt = await aptUpdate(root.dir);
  assert.equal(apt.status, 0, apt.output);
  assert.ok(
    apt.lists.some((f) => /_Packages(\.|$)/.test(f)),
    `apt fetched a package list: ${apt.lists.join(' ')}`,
  );
}

/** Each case once without a kill: the files it leaves are what every killed run must end with. */
const uncut = new Map<Case, Promise<Record<string, string>>>();
const uncutRun = (c: Case, doc: string) => {
  if (!uncut.has(c))
    uncut.set(
      c,
      (async () => {
        const { root, p } = await seeded(c);
        const agent = await agentOn(root);
        try {
          await drop(root, 'source.xml', c.manifest(p));
          assert.equal((await settled(root, doc)).phase, 'Ready');
          await aptAccepts(root);
          return aptFiles(root);
        } finally {
          await stopAgent(agent);
        }
      })(),
    );
  return uncut.get(c)!;
};

const plans = await Promise.all(CASES.map(async (c) => ({ c, ...(await planned(c)) })));

// The cases are independent roots: run side by side, a few agents each.
describe('PackageSource: remove, update and osSource writes under SIGKILL', { concurrency: 3 }, () => {
  for (const { c, name, steps } of plans) {
    describe(`PackageSource: SIGKILL at every journalled step of ${c.title} (${steps.join(', ')}) converges`, { concurrency: 4 }, () => {
      it('the planner has steps for it', () => assert.ok(steps.length > 0));
      for (const point of pointsOf(steps)) {
        it(`killed at ${point}`, async () => {
          const expected = await uncutRun(c, name);
          const { root, p } = await seeded(c);
          const crashing = await agentOn(root, { INBM_CRASH_AT: `PackageSource/${name}:${point}` });
          await drop(root, 'source.xml', c.manifest(p));
          const { signal } = await crashing.exited;
          assert.equal(signal, 'SIGKILL', `the agent died at ${point}`);
          const atCrash = await aptFiles(root);
          const idsAtCrash = await identities(root, atCrash);

          const agent = await agentOn(root);
          try {
            const st = await settled(root, name);
            assert.equal(st.phase, 'Ready', JSON.stringify(st));
            assert.deepEqual(st.lastResult, { status: 200, message: 'SUCCESS', job_id: '' });
            assert.deepEqual(await historyOf(root), ['200 SUCCESS'], 'one answer for the request');
            const now = await aptFiles(root);
            assert.deepEqual(now, expected, 'the files as an uncut run leaves them, no temp file beside them');
            // A file already as it ends up when the agent died is not written again.
            const ids = await identities(root, now);
            for (const [rel, content] of Object.entries(now))
              if (atCrash[rel] === content) assert.deepEqual(ids[rel], idsAtCrash[rel], `${rel} written once`);
            await aptAccepts(root);
          } finally {
            await stopAgent(agent);
          }
        });
      }
    });
  }
});
