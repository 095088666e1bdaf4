/** Configuration load from a trusted repository on 127.0.0.1, with and without a provisioned OTA certificate. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { constants, createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { BIN, makeRoot, type Root, type Running, startAgent, stopAgent } from './harness.js';

let server: Server;
let base: string;
let root: Root;
let agent: Running;
let served = '';

before(async () => {
  server = createServer((req, res) => {
    if (req.url === '/confs/new.conf') res.end(served);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  root = await makeRoot();
  agent = await startAgent(root);
});
after(async () => {
  assert.equal(await stopAgent(agent), 0);
  await new Promise<void>((r) => server.close(() => r()));
});

const conf = () => readFile(join(root.dir, 'etc', 'intel_manageability.conf'), 'utf8');
/** Async, so this process keeps serving HTTP while the CLI and the agent fetch from it. */
function inbm(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, '--root', root.dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}
const load = async (url: string, signature?: string) => {
  const args = ['load', url];
  if (signature) args.push('--signature', signature);
  return JSON.parse((await inbm(...args)).stdout) as { status: number; message: string };
};

it('an untrusted URL is refused and the file stays', async () => {
  const before = await conf();
  served = before.replace(/<maxCacheSize>\d+/, '<maxCacheSize>199');
  const r = await load(`${base}/confs/new.conf`);
  assert.equal(r.status, 400);
  assert.match(r.message, /Configuration load: FAILED.*not under a trusted repository/);
  assert.equal(await conf(), before);
});

it('a trusted URL loads the file', async () => {
  const appended = await inbm('append', `trustedRepositories:${base}/confs`);
  assert.equal(appended.status, 0, appended.stdout + appended.stderr);
  served = (await conf()).replace(/<maxCacheSize>\d+/, '<maxCacheSize>199');
  assert.deepEqual(await load(`${base}/confs/new.conf`), { status: 200, message: 'Configuration load: SUCCESSFUL', job_id: '' });
  assert.match(await conf(), /<maxCacheSize>199</);
});

it('with an OTA certificate provisioned, only a valid signature loads', async () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 3072,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const certDir = join(root.dir, 'etc', 'intel-manageability', 'public', 'dispatcher-agent');
  await mkdir(certDir, { recursive: true });
  await writeFile(join(certDir, 'ota_signature_cert.pem'), publicKey);
  served = (await conf()).replace(/<maxCacheSize>\d+/, '<maxCacheSize>133');
  const before = await conf();
  const unsigned = await load(`${base}/confs/new.conf`);
  assert.equal(unsigned.status, 400);
  assert.match(unsigned.message, /signature is required/);
  assert.equal(await conf(), before);
  const digest = createHash('sha384').update(served).digest('hex');
  const good = sign('sha384', Buffer.from(digest), {
    key: privateKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN,
  }).toString('hex');
  assert.equal((await load(`${base}/confs/new.conf`, `${good.slice(0, -2)}00`)).status, 400);
  assert.equal(await conf(), before);
  assert.equal((await load(`${base}/confs/new.conf`, good)).status, 200);
  assert.match(await conf(), /<maxCacheSize>133</);
});
