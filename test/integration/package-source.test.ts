/**
 * type=source manifests end to end through a real agent on a temp root: sources.list and
 * sources.list.d change by exactly the expected lines and files, a signing key comes from a
 * trusted repository on 127.0.0.1, and apt-get update on the same root (no chroot) accepts the
 * result against a signed local file: repository.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { keyFormat } from '../../src/reconcilers/package-source/keyring.js';
import { BIN, makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';
import { aptUpdate, makeSignedRepo, prepareAptRoot, type SignedRepo } from './package-source-repo.js';

const FIXTURES = '/work/shared/fixtures/inbm-manifests/valid';
const SEC = 'deb http://archive.ubuntu.com/ubuntu/ jammy-security main restricted';
const UNI = 'deb http://archive.ubuntu.com/ubuntu/ jammy-security universe';

let repo: SignedRepo;
let server: Server;
let base: string;
let root: Root;
let agent: Running;
let sourcesList: string;
let sourcesDir: string;
let keyring: string;

before(async () => {
  repo = await makeSignedRepo();
  root = await makeRoot();
  const page = join(root.dir, 'page.html');
  await writeFile(page, '<html>Not a key</html>');
  ({ server, base } = await serveFiles(
    new Map([
      ['/keys/repo.asc', repo.armoredKey],
      ['/keys/page.html', page],
    ]),
  ));
  await prepareAptRoot(root.dir);
  sourcesList = join(root.dir, 'etc/apt/sources.list');
  sourcesDir = join(root.dir, 'etc/apt/sources.list.d');
  keyring = join(root.dir, 'usr/share/keyrings');
  agent = await startAgent(root);
  await trustRepository(root, `${base}/keys`);
});
after(async () => {
  assert.equal(await stopAgent(agent), 0);
  await new Promise<void>((r) => server.close(() => r()));
  await repo.close();
});

let seq = 0;
function apply(text: string, ext = 'xml'): Promise<{ status: number; message: string }> {
  return new Promise((resolve) => {
    const file = join(root.dir, `source-${++seq}.${ext}`);
    void writeFile(file, text).then(() => {
      const child = spawn(process.execPath, [BIN, '--root', root.dir, 'apply', file, '--wait'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.once('close', () => resolve(JSON.parse(out)));
    });
  });
}
const fixture = async (name: string) => apply(await readFile(join(FIXTURES, name), 'utf8'));
const pkgs = (lines: string[]) => lines.map((l) => `<source_pkg>${l}</source_pkg>`).join('');
const osManifest = (verb: 'add' | 'update' | 'remove', lines: string[]) =>
  `<manifest><type>source</type><osSource><${verb}><repos>${pkgs(lines)}</repos></${verb}></osSource></manifest>`;
const appAdd = (filename: string, lines: string[], gpg?: { uri: string; keyname: string }) =>
  `<manifest><type>source</type><applicationSource><add>${gpg ? `<gpg><uri>${gpg.uri}</uri><keyname>${gpg.keyname}</keyname></gpg>` : ''}<repo><repos>${pkgs(lines)}</repos><filename>${filename}</filename></repo></add></applicationSource></manifest>`;
const appUpdate = (filename: string, lines: string[]) =>
  `<manifest><type>source</type><applicationSource><update><repo><repos>${pkgs(lines)}</repos><filename>${filename}</filename></repo></update></applicationSource></manifest>`;
const appRemove = (filename: string, keyname?: string) =>
  `<manifest><type>source</type><applicationSource><remove>${keyname ? `<gpg><keyname>${keyname}</keyname></gpg>` : ''}<repo><filename>${filename}</filename></repo></remove></applicationSource></manifest>`;
const SUCCESS = { status: 200, message: 'SUCCESS', job_id: '' };
const text = (path: string) => readFile(path, 'utf8').catch(() => undefined);
const gone = async (path: string) => (await stat(path).catch(() => undefined)) === undefined;
const fetched = (lists: string[]) => lists.some((f) => /_Packages(\.|$)/.test(f));
async function aptAccepts(): Promise<string[]> {
  const apt = await aptUpdate(root.dir);
  assert.equal(apt.status, 0, apt.output);
  return apt.lists;
}

describe('osSource', () => {
  it('the documented add, list and remove fixtures change exactly their lines of sources.list', async () => {
    const local = `deb [trusted=yes] file:${repo.dir} ./`;
    const seeded = `# seeded by the test\n${local}\n`;
    await writeFile(sourcesList, seeded);
    assert.deepEqual(await fixture('source-os-add.xml'), SUCCESS);
    assert.equal(await text(sourcesList), `${seeded}${SEC}\n${UNI}\n`);
    const list = await fixture('source-os-list.xml');
    assert.deepEqual(list, { status: 200, message: `["${local}", "${SEC}", "${UNI}"]`, job_id: '' });
    assert.deepEqual(await fixture('source-os-remove.xml'), SUCCESS);
    assert.equal(await text(sourcesList), seeded);
    assert.ok(fetched(await aptAccepts()));
  });

  it('update makes sources.list these lines and no others; apt accepts it', async () => {
    const local = `deb [trusted=yes] file:${repo.dir} ./`;
    await writeFile(sourcesList, `# old\n${SEC}\n`);
    assert.deepEqual(await apply(osManifest('update', [local])), SUCCESS);
    assert.equal(await text(sourcesList), `${local}\n`);
    assert.ok(fetched(await aptAccepts()));
    assert.deepEqual(await apply(osManifest('remove', [local])), SUCCESS);
    assert.equal(await text(sourcesList), '');
  });

  it('a malformed line is refused with 400 naming it, and the file is left as it was', async () => {
    await writeFile(sourcesList, `${SEC}\n`);
    const r = await apply(osManifest('add', [UNI, 'deb http://archive.ubuntu.com/ubuntu/ jammy']));
    assert.equal(r.status, 400);
    assert.match(r.message, /Error changing sources files: lines\[1\]: suite "jammy" needs at least one component/);
    assert.equal(await text(sourcesList), `${SEC}\n`);
    await writeFile(sourcesList, '');
  });
});

describe('applicationSource', () => {
  const listFile = () => join(sourcesDir, 'inbm-test.list');
  const line = () => `deb [signed-by=${join(keyring, 'inbm-test.gpg')}] file:${repo.dir} ./`;
  const key = () => ({ uri: `${base}/keys/repo.asc`, keyname: 'inbm-test.gpg' });

  it('add fetches the key from the trusted repository and writes the file; apt verifies the repo with it', async () => {
    assert.deepEqual(await apply(appAdd('inbm-test.list', [line()], key())), SUCCESS);
    assert.equal(await text(listFile()), `${line()}\n`);
    // gpg is installed here, so the armored key was dearmored into the .gpg name apt reads.
    assert.equal(keyFormat(await readFile(join(keyring, 'inbm-test.gpg'))), 'binary');
    assert.ok(fetched(await aptAccepts()));
  });

  it('the same manifest again changes nothing', async () => {
    const [file, k] = [await stat(listFile()), await stat(join(keyring, 'inbm-test.gpg'))];
    assert.deepEqual(await apply(appAdd('inbm-test.list', [line()], key())), SUCCESS);
    const [file2, k2] = [await stat(listFile()), await stat(join(keyring, 'inbm-test.gpg'))];
    assert.deepEqual([file2.ino, file2.mtimeMs, k2.ino, k2.mtimeMs], [file.ino, file.mtimeMs, k.ino, k.mtimeMs]);
  });

  it('the list fixture answers each file with its deb lines', async () => {
    assert.deepEqual(await fixture('source-app-list.xml'), {
      status: 200,
      message: `[{"name": "inbm-test.list", "sources": ["${line()}"]}]`,
      job_id: '',
    });
  });

  it('update rewrites the file with the new lines', async () => {
    const updated = `deb [arch=amd64 signed-by=${join(keyring, 'inbm-test.gpg')}] file:${repo.dir} ./`;
    assert.deepEqual(await apply(appUpdate('inbm-test.list', [updated])), SUCCESS);
    assert.equal(await text(listFile()), `${updated}\n`);
    assert.ok(fetched(await aptAccepts()));
  });

  it('remove deletes the file and its key', async () => {
    assert.deepEqual(await apply(appRemove('inbm-test.list', 'inbm-test.gpg')), SUCCESS);
    assert.ok(await gone(listFile()));
    assert.ok(await gone(join(keyring, 'inbm-test.gpg')));
    assert.ok(!fetched(await aptAccepts()));
  });

  it('a .sources file is written in deb822, apt verifies with it, and it lists as one-line entries', async () => {
    const file = join(sourcesDir, 'inbm-test.sources');
    assert.deepEqual(await apply(appAdd('inbm-test.sources', [line()], key())), SUCCESS);
    assert.equal(await text(file), `Types: deb\nURIs: file:${repo.dir}\nSuites: ./\nSigned-By: ${join(keyring, 'inbm-test.gpg')}\n`);
    assert.ok(fetched(await aptAccepts()));
    const list = await fixture('source-app-list.xml');
    assert.equal(list.message, `[{"name": "inbm-test.sources", "sources": ["${line()}"]}]`);
    assert.deepEqual(await apply(appRemove('inbm-test.sources', 'inbm-test.gpg')), SUCCESS);
    assert.ok(await gone(file));
  });

  it('a key outside the trusted repositories, or not a key at all, is refused and nothing is written', async () => {
    const fromFixture = await fixture('source-app-add-gpg.xml');
    assert.equal(fromFixture.status, 400);
    assert.match(fromFixture.message, /Error changing sources files: .*is not under a trusted repository/);
    const notKey = await apply(appAdd('inbm-test.list', [line()], { uri: `${base}/keys/page.html`, keyname: 'inbm-test.gpg' }));
    assert.equal(notKey.status, 400);
    assert.match(notKey.message, /Error changing sources files: .*is not an OpenPGP public key/);
    assert.ok(await gone(join(sourcesDir, 'google-chrome.list')));
    assert.ok(await gone(listFile()));
    assert.ok(await gone(join(keyring, 'inbm-test.gpg')));
  });

  it('names with ".." or a path separator are refused with 400 naming the field', async () => {
    const key = await apply(appAdd('ok.list', [line()], { uri: `${base}/keys/repo.asc`, keyname: '../../etc/evil.gpg' }));
    assert.equal(key.status, 400);
    assert.match(key.message, /Error changing sources files: gpgKey\.name .*path separator/);
    const dots = await apply(appAdd('evil..list', [line()]));
    assert.equal(dots.status, 400);
    assert.match(dots.message, /Error changing sources files: filename .*must not contain "\.\."/);
    const doc = [
      'apiVersion: inbm.dev/v1alpha1',
      'kind: PackageSource',
      'metadata: { name: evil }',
      'spec: { target: application, filename: ../evil.list, lines: ["deb file:/x ./"] }',
    ].join('\n');
    const yaml = await apply(doc, 'yaml');
    assert.equal(yaml.status, 400);
    assert.match(yaml.message, /Error changing sources files: filename .*path separator/);
    assert.ok(await gone(join(root.dir, 'etc/evil.gpg')));
    assert.ok(await gone(join(root.dir, 'etc/apt/evil.list')));
    assert.ok(await gone(join(sourcesDir, 'ok.list')));
  });
});
