/**
 * An application source add with a signing key (fetch-key, then write the .list file), with the
 * agent SIGKILLed at each journalled step (before/started/ran/done) and right after the request
 * is marked complete, then started again: the device ends with exactly the expected file and
 * key, neither written a second time once it was on disk (same inode and mtime), no temp file
 * left beside them, and one 200 in the history for the request.
 */
import assert from 'node:assert/strict';
import type { Stats } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { until } from '../until.js';
import { drop, makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';
import { makeSignedRepo, type SignedRepo } from './package-source-repo.js';

const FILE = 'inbm-test.list';
const KEY_NAME = 'inbm-test.gpg';
/** toName('app-source', FILE): the document the manifest becomes, and its journal key. */
const DOC = 'app-source-inbm-test-list';
const POINTS = ['fetch-key', 'write'].flatMap((s) => ['before', 'started', 'ran', 'done'].map((p) => `${s}:${p}`)).concat('complete');

let repo: SignedRepo;
let server: Server;
let base: string;
const agents = new Set<Running>();

before(async () => {
  repo = await makeSignedRepo();
  ({ server, base } = await serveFiles(new Map([['/keys/repo.asc', repo.armoredKey]])));
});
after(async () => {
  for (const a of agents) if (a.proc.exitCode === null && a.proc.signalCode === null) await stopAgent(a);
  await new Promise<void>((r) => server.close(() => r()));
  await repo.close();
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
