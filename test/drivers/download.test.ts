/** The shared downloader against a real HTTP server on 127.0.0.1, and the signature check. */
import assert from 'node:assert/strict';
import { constants, createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InbmError } from '../../src/core/result.js';
import { download, type Progress, redact } from '../../src/drivers/download/fetch.js';
import { checkSignature, loadVerifyKey } from '../../src/drivers/download/signature.js';
import { isTrusted } from '../../src/drivers/download/trust.js';

const BODY = Buffer.from('x'.repeat(200_000));
let server: Server;
let base: string;
let requests: string[] = [];
let truncateOnce = true;

function handler(req: IncomingMessage, res: ServerResponse): void {
  requests.push(`${req.method} ${req.url} ${req.headers.range ?? ''}`.trim());
  const url = req.url ?? '';
  if (url === '/repo/ok.bin') {
    res.writeHead(200, { 'content-length': BODY.length });
    res.end(BODY);
  } else if (url === '/repo/flaky.bin') {
    // First attempt breaks half way; the retry asks for the rest by Range.
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      const from = Number(range[1]);
      res.writeHead(206, { 'content-length': BODY.length - from, 'content-range': `bytes ${from}-${BODY.length - 1}/${BODY.length}` });
      res.end(BODY.subarray(from));
    } else if (truncateOnce) {
      truncateOnce = false;
      res.writeHead(200, { 'content-length': BODY.length });
      res.write(BODY.subarray(0, 50_000), () => setTimeout(() => res.destroy(), 100));
    } else {
      res.writeHead(200, { 'content-length': BODY.length });
      res.end(BODY);
    }
  } else if (url === '/repo/always-truncated.bin') {
    res.writeHead(200, { 'content-length': BODY.length });
    res.write(BODY.subarray(0, 1000), () => res.destroy());
  } else if (url === '/repo/huge.bin') {
    res.writeHead(200, { 'content-length': 10 * 1024 ** 3 });
    res.write('x');
  } else if (url === '/repo/stall.bin') {
    res.writeHead(200, { 'content-length': 1000 });
    res.write('x'.repeat(10));
  } else if (url === '/repo/to-trusted') {
    res.writeHead(302, { location: '/repo/ok.bin' });
    res.end();
  } else if (url === '/repo/to-elsewhere') {
    res.writeHead(302, { location: '/private/ok.bin' });
    res.end();
  } else {
    res.writeHead(404);
    res.end('missing');
  }
}

before(async () => {
  server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const dir = () => mkdtemp(join(tmpdir(), 'inbm-dl-'));
const trusted = () => [`${base}/repo`];
const leftovers = async (d: string) => (await readdir(d)).filter((f) => f.startsWith('.'));
async function refused(p: Promise<unknown>, status: number, reason: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof InbmError, String(e));
    assert.equal(e.status, status);
    assert.match(e.reason, reason);
    return true;
  });
}

describe('trusted repositories', () => {
  it('match scheme, host and port exactly and the path at a "/" boundary', () => {
    const t = ['http://127.0.0.1', 'https://repo.example/pool/', 'https://repo.example:8443/debs'];
    const yes = [
      'http://127.0.0.1/x.tgz',
      'http://127.0.0.1:80/x',
      'https://repo.example/pool/a/b.deb',
      'https://repo.example:8443/debs/x',
      'https://REPO.example/pool/x',
    ];
    const no = [
      'http://127.0.0.1.evil/x.tgz',
      'http://127.0.0.1:8080/x',
      'https://127.0.0.1/x',
      'https://repo.example/poolside/x',
      'https://repo.example/pool/../etc/passwd',
      'https://repo.example:8443/debsx/y',
      'https://user:pw@repo.example/pool/x',
      'http://127.0.0.1/x%00.tgz',
      'not a url',
    ];
    for (const u of yes) assert.ok(isTrusted(u, t), u);
    for (const u of no) assert.ok(!isTrusted(u, t), u);
  });
  it('file: URLs by path boundary', () => {
    assert.ok(isTrusted('file:///var/cache/manageability/x.tar', ['file:///var/cache/manageability']));
    assert.ok(!isTrusted('file:///var/cache/manageability-evil/x.tar', ['file:///var/cache/manageability']));
  });
});

describe('download', () => {
  it('fetches a trusted file with progress events and leaves no partial file', async () => {
    const d = await dir();
    const events: Progress[] = [];
    const { path, bytes } = await download(`${base}/repo/ok.bin`, { dir: d, trusted: trusted(), onProgress: (p) => events.push(p) });
    assert.equal(bytes, BODY.length);
    assert.deepEqual(await readFile(path), BODY);
    assert.equal(events.at(-1)?.bytes, BODY.length);
    assert.equal(events.at(-1)?.total, BODY.length);
    assert.deepEqual(await leftovers(d), []);
  });
  it('404 is a 404 result and nothing is left', async () => {
    const d = await dir();
    await refused(download(`${base}/repo/nope.bin`, { dir: d, trusted: trusted() }), 404, /not found/);
    assert.deepEqual(await readdir(d), []);
  });
  it('an untrusted URL is refused without a request', async () => {
    requests = [];
    await refused(download('http://127.0.0.1.evil/x.tgz', { dir: await dir(), trusted: trusted() }), 400, /not under a trusted repository/);
    await refused(download(`${base}/private/ok.bin`, { dir: await dir(), trusted: trusted() }), 400, /not under a trusted/);
    assert.deepEqual(requests, []);
  });
  it('follows a redirect that stays trusted and refuses one that leaves', async () => {
    const ok = await download(`${base}/repo/to-trusted`, { dir: await dir(), trusted: trusted(), name: 'r.bin' });
    assert.equal(ok.bytes, BODY.length);
    requests = [];
    await refused(download(`${base}/repo/to-elsewhere`, { dir: await dir(), trusted: trusted() }), 400, /redirect .* leaves the trusted/);
    assert.deepEqual(requests, ['GET /repo/to-elsewhere'], 'the untrusted target is never requested');
  });
  it('resumes by Range after a broken connection', async () => {
    truncateOnce = true;
    requests = [];
    const d = await dir();
    const { path } = await download(`${base}/repo/flaky.bin`, { dir: d, trusted: trusted() });
    assert.deepEqual(await readFile(path), BODY);
    assert.equal(requests.length, 2);
    assert.match(requests[1]!, /bytes=50000-$/);
  });
  it('gives up after its retries on a transfer that always breaks, leaving nothing', async () => {
    const d = await dir();
    await refused(
      download(`${base}/repo/always-truncated.bin`, { dir: d, trusted: trusted(), retries: 1 }),
      400,
      /interrupted|ended early/,
    );
    assert.deepEqual(await readdir(d), []);
  });
  it('refuses a file over the size cap from its Content-Length', async () => {
    const d = await dir();
    await refused(
      download(`${base}/repo/huge.bin`, { dir: d, trusted: trusted(), maxBytes: 1024 ** 2 }),
      400,
      /more than the 1048576 bytes allowed/,
    );
    assert.deepEqual(await readdir(d), []);
  });
  it('refuses when the cache has no room for it', async () => {
    await refused(
      download(`${base}/repo/ok.bin`, { dir: await dir(), trusted: trusted(), reserveBytes: 1024 ** 5 }),
      400,
      /not enough space/,
    );
  });
  it('an idle transfer times out', async () => {
    const d = await dir();
    await refused(download(`${base}/repo/stall.bin`, { dir: d, trusted: trusted(), idleTimeoutMs: 200, retries: 0 }), 400, /stalled/);
    assert.deepEqual(await readdir(d), []);
  });
  it('credentials are never sent over http', async () => {
    await refused(
      download(`${base}/repo/ok.bin`, { dir: await dir(), trusted: trusted(), credentials: { username: 'u', password: 'p' } }),
      400,
      /only sent over https/,
    );
  });
  it('copies a trusted file: URL; a missing one is 404', async () => {
    const src = await dir();
    await writeFile(join(src, 'conf.xml'), 'hello');
    const { path } = await download(`file://${src}/conf.xml`, { dir: await dir(), trusted: [`file://${src}`] });
    assert.equal(await readFile(path, 'utf8'), 'hello');
    await refused(download(`file://${src}/missing.xml`, { dir: await dir(), trusted: [`file://${src}`] }), 404, /not found/);
  });
  it('URLs in messages lose their userinfo and query', () => {
    assert.equal(redact('https://u:secret@h/x.deb?token=abc'), 'https://h/x.deb');
  });
});

describe('signatures', () => {
  const pair = (bits: number) =>
    generateKeyPairSync('rsa', {
      modulusLength: bits,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
  const signFile = (data: Buffer, privateKey: string, alg = 'sha384') => {
    const digest = createHash(alg).update(data).digest('hex');
    return sign(alg, Buffer.from(digest), {
      key: privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN,
    }).toString('hex');
  };
  const { publicKey, privateKey } = pair(3072);

  it('a good RSA-PSS signature over the hex digest passes (sha384 and sha256)', async () => {
    const d = await dir();
    await writeFile(join(d, 'key.pem'), publicKey);
    await writeFile(join(d, 'pkg.deb'), BODY);
    const key = await loadVerifyKey(join(d, 'key.pem'));
    await checkSignature(join(d, 'pkg.deb'), signFile(BODY, privateKey), key);
    await checkSignature(join(d, 'pkg.deb'), signFile(BODY, privateKey, 'sha256'), key, 'sha256');
  });
  it('a wrong or missing signature deletes the file', async () => {
    const d = await dir();
    await writeFile(join(d, 'key.pem'), publicKey);
    const key = await loadVerifyKey(join(d, 'key.pem'));
    await writeFile(join(d, 'pkg.deb'), BODY);
    await refused(checkSignature(join(d, 'pkg.deb'), signFile(Buffer.from('other'), privateKey), key), 400, /does not match/);
    assert.deepEqual(await readdir(d), ['key.pem']);
    await writeFile(join(d, 'pkg.deb'), BODY);
    await refused(checkSignature(join(d, 'pkg.deb'), undefined, key), 400, /a signature is required/);
    assert.deepEqual(await readdir(d), ['key.pem']);
  });
  it('keys under 3072 bits are refused', async () => {
    const d = await dir();
    await writeFile(join(d, 'small.pem'), pair(2048).publicKey);
    await refused(loadVerifyKey(join(d, 'small.pem')), 400, /2048 bits, at least 3072/);
  });
});
