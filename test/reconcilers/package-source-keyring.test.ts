/**
 * Signing keys against real apt: a key served on 127.0.0.1 is stored where apt-get update (run
 * on a test root, without chroot) verifies a signed local repository with it — dearmored by gpg
 * when it is there, kept armored as .asc when it is not.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InbmError } from '../../src/core/result.js';
import { installKey, keyFormat } from '../../src/reconcilers/package-source/keyring.js';
import { aptUpdate, makeSignedRepo, prepareAptRoot, type SignedRepo } from '../integration/package-source-repo.js';

let repo: SignedRepo;
let server: Server;
let base: string;
let root: string;
let keyring: string;
const files = new Map<string, Buffer>();

before(async () => {
  repo = await makeSignedRepo();
  files.set('/keys/repo.asc', await readFile(repo.armoredKey));
  files.set('/keys/repo.bin', await readFile(repo.binaryKey));
  files.set('/keys/page.html', Buffer.from('<html>Not a key</html>'));
  server = createServer((req, res) => {
    const body = files.get(req.url ?? '');
    if (body) res.end(body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  root = await mkdtemp(join(tmpdir(), 'inbm-keyring-'));
  keyring = join(root, 'usr/share/keyrings');
  await prepareAptRoot(root);
});
after(async () => {
  await repo.close();
  await rm(root, { recursive: true, force: true });
  await new Promise<void>((r) => server.close(() => r()));
});

const opts = (gpg?: string | null) => ({
  cacheDir: join(root, 'cache'),
  keyringDir: keyring,
  trusted: async () => [`${base}/keys`],
  ...(gpg !== undefined ? { gpg } : {}),
});
const useKey = (file: string) =>
  writeFile(join(root, 'etc/apt/sources.list'), `deb [signed-by=${join(keyring, file)}] file:${repo.dir} ./\n`);
const fetchedPackages = (lists: string[]) => lists.some((f) => /_Packages(\.|$)/.test(f));

describe('installKey', () => {
  it('an armored key asked for as .gpg is stored as .asc without gpg, and apt verifies with it', async () => {
    const r = await installKey(`${base}/keys/repo.asc`, 'repo.gpg', opts(null));
    assert.deepEqual(r, { file: 'repo.asc', changed: true });
    assert.equal(keyFormat(await readFile(join(keyring, 'repo.asc'))), 'armored');
    await useKey('repo.asc');
    const apt = await aptUpdate(root);
    assert.equal(apt.status, 0, apt.output);
    assert.ok(fetchedPackages(apt.lists), apt.lists.join(' '));
  });

  it('the same key as .gpg is what apt refuses when armored (why the name follows the content)', async () => {
    await writeFile(join(keyring, 'armored-as.gpg'), await readFile(repo.armoredKey));
    await useKey('armored-as.gpg');
    const apt = await aptUpdate(root);
    assert.notEqual(apt.status, 0);
    assert.match(apt.output, /NO_PUBKEY|not signed/);
  });

  it('with gpg the key is dearmored into the .gpg name, the stale .asc twin goes, and apt verifies', async () => {
    const r = await installKey(`${base}/keys/repo.asc`, 'repo.gpg', opts());
    assert.deepEqual(r, { file: 'repo.gpg', changed: true });
    assert.equal(keyFormat(await readFile(join(keyring, 'repo.gpg'))), 'binary');
    await assert.rejects(stat(join(keyring, 'repo.asc')), { code: 'ENOENT' });
    await useKey('repo.gpg');
    const apt = await aptUpdate(root);
    assert.equal(apt.status, 0, apt.output);
    assert.ok(fetchedPackages(apt.lists));
  });

  it('fetching the same key again leaves the file untouched', async () => {
    const before = await stat(join(keyring, 'repo.gpg'));
    const r = await installKey(`${base}/keys/repo.asc`, 'repo.gpg', opts());
    assert.equal(r.changed, false);
    const now = await stat(join(keyring, 'repo.gpg'));
    assert.equal(now.ino, before.ino);
    assert.equal(now.mtimeMs, before.mtimeMs);
  });

  it('a binary key is stored as it came', async () => {
    const r = await installKey(`${base}/keys/repo.bin`, 'bin.asc', opts(null));
    assert.deepEqual(r, { file: 'bin.gpg', changed: true });
    assert.deepEqual(await readFile(join(keyring, 'bin.gpg')), await readFile(repo.binaryKey));
  });

  it('an untrusted location or a file that is not a key is refused and nothing is stored', async () => {
    await assert.rejects(installKey(`${base}/elsewhere/repo.asc`, 'x.gpg', opts()), (e: unknown) => {
      return e instanceof InbmError && e.status === 400 && /not under a trusted repository/.test(e.reason);
    });
    await assert.rejects(installKey(`${base}/keys/page.html`, 'y.gpg', opts()), /is not an OpenPGP public key/);
    for (const f of ['x.gpg', 'x.asc', 'y.gpg', 'y.asc']) await assert.rejects(stat(join(keyring, f)), { code: 'ENOENT' });
  });
});
