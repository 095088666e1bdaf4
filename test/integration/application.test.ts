/** AOTA application update end to end: a .deb built here, served on 127.0.0.1, installed by dpkg into a throwaway root. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { BIN, makeRoot, type Root, type Running, startAgent, stopAgent } from './harness.js';

let server: Server;
let base: string;
let root: Root;
let agent: Running;
let dpkgRoot: string;
const files = new Map<string, Buffer>();

async function buildDeb(name: string, version: string): Promise<Buffer> {
  const d = await mkdtemp(join(tmpdir(), 'inbm-deb-'));
  await mkdir(join(d, 'pkg', 'DEBIAN'), { recursive: true });
  await mkdir(join(d, 'pkg', 'usr', 'share', name), { recursive: true });
  await writeFile(
    join(d, 'pkg', 'DEBIAN', 'control'),
    `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: inbm <t@t>\nDescription: test\n`,
  );
  await writeFile(join(d, 'pkg', 'usr', 'share', name, 'hello.txt'), `${name} ${version}\n`);
  const r = spawnSync('dpkg-deb', ['-b', '--root-owner-group', join(d, 'pkg'), join(d, 'out.deb')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return readFile(join(d, 'out.deb'));
}

before(async () => {
  files.set('/pool/inbm-hello_1.0_all.deb', await buildDeb('inbm-hello', '1.0'));
  files.set('/pool/broken_1.0_all.deb', Buffer.from('not a deb'));
  server = createServer((req, res) => {
    const body = files.get(req.url ?? '');
    if (body) res.end(body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dpkgRoot = await mkdtemp(join(tmpdir(), 'inbm-dpkg-'));
  await mkdir(join(dpkgRoot, 'var', 'lib', 'dpkg', 'info'), { recursive: true });
  await mkdir(join(dpkgRoot, 'var', 'lib', 'dpkg', 'updates'), { recursive: true });
  await writeFile(join(dpkgRoot, 'var', 'lib', 'dpkg', 'status'), '');
  root = await makeRoot(`  installPackage: [dpkg, --root=${dpkgRoot}, --log=/dev/null, -i, "{file}"]\n`);
  agent = await startAgent(root);
  // makeRoot's settings start with "commands:", so the line above lands inside it.
});
after(async () => {
  assert.equal(await stopAgent(agent), 0);
  await new Promise<void>((r) => server.close(() => r()));
});

function apply(xml: string): Promise<{ status: number; message: string }> {
  return new Promise((resolve) => {
    const file = join(root.dir, `app-${Date.now()}-${Math.random().toString(16).slice(2)}.xml`);
    void writeFile(file, xml).then(() => {
      const child = spawn(process.execPath, [BIN, '--root', root.dir, 'apply', file, '--wait'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.once('close', () => resolve(JSON.parse(out)));
    });
  });
}
const manifest = (fetch: string, reboot = 'no') =>
  `<manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type><aota name="app"><cmd>update</cmd><app>application</app><fetch>${fetch}</fetch><deviceReboot>${reboot}</deviceReboot></aota></type></ota></manifest>`;
const installed = async () => (await readFile(join(dpkgRoot, 'var', 'lib', 'dpkg', 'status'), 'utf8')).includes('Package: inbm-hello');

it('an untrusted repository is refused and nothing is installed', async () => {
  const r = await apply(manifest(`${base}/pool/inbm-hello_1.0_all.deb`));
  assert.equal(r.status, 400);
  assert.match(r.message, /not under a trusted repository/);
  assert.equal(await installed(), false);
});

it('a trusted .deb is fetched and installed by dpkg, without a reboot', async () => {
  const conf = join(root.dir, 'etc', 'intel_manageability.conf');
  const text = await readFile(conf, 'utf8');
  await writeFile(conf, text.replace('<trustedRepositories>', `<trustedRepositories>\n${base}/pool`));
  const r = await apply(manifest(`${base}/pool/inbm-hello_1.0_all.deb`));
  assert.deepEqual(r, { status: 200, message: 'AOTA application update COMMAND SUCCESSFUL', job_id: '' });
  assert.equal(await installed(), true);
  assert.equal(await readFile(join(dpkgRoot, 'usr', 'share', 'inbm-hello', 'hello.txt'), 'utf8'), 'inbm-hello 1.0\n');
  assert.equal(await readFile(root.rebootLog, 'utf8').catch(() => ''), '');
});

it('a broken package fails with dpkg named, once; a 404 is a 404', async () => {
  const r = await apply(manifest(`${base}/pool/broken_1.0_all.deb`));
  assert.equal(r.status, 400);
  assert.match(r.message, /AOTA application update FAILED: dpkg failed/);
  const missing = await apply(manifest(`${base}/pool/missing_1.0_all.deb`));
  assert.equal(missing.status, 404);
});

it('deviceReboot yes reboots after the install', async () => {
  const r = await apply(manifest(`${base}/pool/inbm-hello_1.0_all.deb`, 'yes'));
  assert.equal(r.status, 200);
  assert.equal((await readFile(root.rebootLog, 'utf8')).trim(), 'reboot');
});
