/**
 * A credentialed download over real https, end to end: a loopback TLS server with its own CA
 * (trusted by the agent through NODE_EXTRA_CA_CERTS, as an operator would for a private
 * repository) that answers only to the right Basic credentials. The agent finds the engine
 * through its settings (docker.socket) with DOCKER_HOST empty. The password reaches the server
 * and nowhere else the agent writes.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { promisify } from 'node:util';
import { busyboxRootfs, cleanUp, engineUp, tagsOf, unique } from './engine.js';
import { BIN, makeRoot, type Root, type Running, startAgent, stopAgent, trustRepository } from './harness.js';

const run = promisify(execFile);
const ID = unique('inbm-it-https');
const USER = 'fleet';
const SECRET = `pw-${unique('https-secret')}`;
let dockerHost = '';
let server: Server;
let base = '';
let work = '';
let root: Root;
let agent: Running;
const seen: Array<string | undefined> = [];

/** A CA and a server certificate for IP 127.0.0.1 signed by it, made with openssl. */
function certificates(dir: string): { ca: string; key: string; cert: string } {
  const o = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=inbm test CA']);
  o(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  o([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  ]);
  return { ca: join(dir, 'ca.pem'), key: join(dir, 'server.key'), cert: join(dir, 'server.pem') };
}

const manifest = (repo: string, password: string) =>
  `<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type><aota name="imp"><cmd>import</cmd><app>docker</app><fetch>${base}/rootfs.tgz</fetch><version>1.0</version><containerTag>${repo}:1</containerTag><username>${USER}</username><password>${password}</password></aota></type></ota></manifest>`;

async function request(file: string, text: string): Promise<{ status: number; message: string }> {
  const path = join(work, file);
  await writeFile(path, text);
  let out: string;
  try {
    out = (await run(process.execPath, [BIN, '--root', root.dir, 'apply', '--wait', path], { encoding: 'utf8', timeout: 60_000 })).stdout;
  } catch (err) {
    out = (err as { stdout?: string }).stdout ?? '';
  }
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

before(async () => {
  dockerHost = engineUp();
  work = await mkdtemp(join(tmpdir(), 'inbm-it-https-'));
  const tls = certificates(work);
  const body = await readFile(await busyboxRootfs(work));
  const good = `Basic ${Buffer.from(`${USER}:${SECRET}`).toString('base64')}`;
  server = createServer({ key: await readFile(tls.key), cert: await readFile(tls.cert) }, (req, res) => {
    seen.push(req.headers.authorization);
    if (req.url !== '/rootfs.tgz') return void res.writeHead(404).end();
    if (req.headers.authorization !== good) return void res.writeHead(401, { 'www-authenticate': 'Basic realm="inbm"' }).end();
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const socket = dockerHost.replace(/^unix:\/\//, '');
  root = await makeRoot(`resyncSeconds: 30\nlogLevel: debug\ndocker:\n  socket: ${socket}\n`);
  // The engine from the settings alone: DOCKER_HOST empty in the agent's environment.
  agent = await startAgent(root, { DOCKER_HOST: '', NODE_EXTRA_CA_CERTS: tls.ca });
  await trustRepository(root, `${base}/`);
});

after(async () => {
  if (agent) assert.equal(await stopAgent(agent), 0);
  server?.close();
  if (dockerHost) cleanUp([], [`${ID}/good`, `${ID}/bad`]);
  if (root) await rm(root.dir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

it('the right credentials over https: 200, the image imported through the engine the settings name', async () => {
  const result = await request('good.xml', manifest(`${ID}/good`, SECRET));
  assert.deepEqual(result, { status: 200, message: 'AOTA docker import COMMAND SUCCESSFUL', job_id: '' });
  assert.deepEqual(tagsOf(`${ID}/good`), ['1']);
  assert.ok(seen.includes(`Basic ${Buffer.from(`${USER}:${SECRET}`).toString('base64')}`), 'the server got the credentials');
});

it('wrong credentials: refused with the server’s answer, nothing imported', async () => {
  const result = await request('bad.xml', manifest(`${ID}/bad`, 'not-the-password'));
  assert.notEqual(result.status, 200);
  assert.match(result.message, /401/);
  assert.deepEqual(tagsOf(`${ID}/bad`), []);
});

it('the password is in no log line, status file or result the agent wrote', async () => {
  assert.ok(agent.output().length > 0);
  assert.ok(!agent.output().includes(SECRET), 'agent log');
  const hits: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      // The secret store holds it by design; the archive and the drop dir hold the operator's own manifest.
      if (e.isDirectory()) {
        if (!['secrets', 'applied', 'desired-state'].includes(e.name)) await walk(p);
      } else if ((await readFile(p, 'utf8')).includes(SECRET)) hits.push(p);
    }
  };
  await walk(root.state);
  assert.deepEqual(hits, []);
});
