/**
 * AOTA requests that must fail, through a real agent against the real engine, each leaving the
 * device as it was: an application package with a wrong (or no) signature while an OTA
 * certificate is provisioned; docker load of a new version over a running one from a 404, an
 * untrusted URL, a look-alike host, a redirect off the trusted list, a truncated transfer, a
 * corrupt tarball, and an image whose container exits at once (rolled back); a compose stack
 * update from a corrupt tarball, and one whose service crash-loops. The engine is read with the
 * docker CLI before and after.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { until } from '../until.js';
import { request } from './answer.js';
import { BASE_IMAGE, docker, engineUp, unique } from './engine.js';
import { makeRoot, type Root, type Running, startAgent, stopAgent, trustRepository } from './harness.js';

const ID = unique('inbm-it-fail');
const REPO = `${ID}/app`;
const STACK_IMAGE = `${ID}/stack:1`;
const PROJECT = `${ID}-stack`;

let dockerHost = '';
let server: Server;
let base = '';
let port = 0;
let work = '';
let dpkgRoot = '';
let root: Root;
let agent: Running;
/** URL path → body; what the server was asked for, in order. */
const bodies = new Map<string, Buffer>();
const asked: string[] = [];
let privateKey = '';

const lines = (s: string) => s.split('\n').filter(Boolean);
const cacheDir = () => join(root.dir, 'var', 'cache', 'manageability');

/** A copy of the test image with this command (the image's own /bin/sh would exit at once). */
function image(ref: string, cmd: string[]): void {
  const cid = docker(['create', '--network', 'none', BASE_IMAGE]);
  try {
    docker(['commit', '--change', `CMD ${JSON.stringify(cmd)}`, cid, ref]);
  } finally {
    docker(['rm', cid]);
  }
}

async function saved(tag: string, cmd: string[]): Promise<void> {
  image(`${REPO}:${tag}`, cmd);
  const file = join(work, `app-${tag}.tar`);
  docker(['save', '-o', file, `${REPO}:${tag}`]);
  docker(['rmi', `${REPO}:${tag}`]);
  bodies.set(`/repo/app-${tag}.tar`, await readFile(file));
}

/** RSA-PSS over the hex SHA-384 digest, as the reference signs packages. */
const signature = (data: Buffer) =>
  sign('sha384', Buffer.from(createHash('sha384').update(data).digest('hex')), {
    key: privateKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN,
  }).toString('hex');

const aota = (body: string) =>
  `<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type>${body}</type></ota></manifest>`;
const loadXml = (url: string, tag: string) =>
  aota(
    `<aota name="app"><cmd>load</cmd><app>docker</app><fetch>${url}</fetch><version>1.0</version><containerTag>${REPO}:${tag}</containerTag></aota>`,
  );
const appXml = (url: string, sig?: string) =>
  aota(
    `<aota name="app"><cmd>update</cmd><app>application</app><fetch>${url}</fetch>${sig === undefined ? '' : `<signature>${sig}</signature>`}<deviceReboot>no</deviceReboot></aota>`,
  );
const composeXml = (url: string) =>
  aota(
    `<aota name="stack"><cmd>up</cmd><app>compose</app><fetch>${url}</fetch><version>1.0</version><containerTag>${PROJECT}</containerTag></aota>`,
  );

/** What the engine holds of REPO and its container: ids included, so a re-created one shows. */
function engineState(): { containers: string[]; images: string[] } {
  return {
    containers: lines(
      docker([
        'ps',
        '-a',
        '--no-trunc',
        '--filter',
        `label=inbm.dev/resource=image-${REPO.replace(/[^a-z0-9]+/g, '-')}`,
        '--format',
        '{{.ID}} {{.Label "inbm.dev/version"}} {{.State}}',
      ]),
    ).sort(),
    images: lines(docker(['images', '--no-trunc', REPO, '--format', '{{.Tag}} {{.ID}}'])).sort(),
  };
}
const stackState = () =>
  lines(docker(['ps', '-a', '--no-trunc', '--filter', `label=com.docker.compose.project=${PROJECT}`, '--format', '{{.ID}} {{.State}}']));
/** Downloads left in the cache (the compose directory holds the stacks themselves). */
const leftovers = async () => (await readdir(cacheDir()).catch(() => [] as string[])).filter((f) => f !== 'compose');

before(async () => {
  dockerHost = engineUp();
  work = await mkdtemp(join(tmpdir(), 'inbm-it-fail-'));
  await saved('1', ['/bin/sleep', '3600']);
  await saved('2', ['/bin/sleep', '3600']);
  await saved('3', ['/bin/sh', '-c', 'exit 3']);
  bodies.set('/private/app-2.tar', bodies.get('/repo/app-2.tar')!);
  bodies.set('/repo/corrupt.tar', Buffer.from('this is no image archive'));
  bodies.set('/repo/corrupt.tar.gz', Buffer.from('this is no gzip at all'));

  // A stack of a local image, and a .deb.
  image(STACK_IMAGE, ['/bin/sleep', '3600']);
  await mkdir(join(work, 'stack'));
  await writeFile(
    join(work, 'stack', 'docker-compose.yml'),
    `version: "2.4"\nservices:\n  app:\n    image: ${STACK_IMAGE}\n    network_mode: none\n    init: true\n`,
  );
  execFileSync('tar', ['-C', join(work, 'stack'), '-czf', join(work, 'stack.tar.gz'), '.']);
  bodies.set('/repo/stack.tar.gz', await readFile(join(work, 'stack.tar.gz')));
  // The same service crash-looping under its restart policy.
  await mkdir(join(work, 'crash'));
  await writeFile(
    join(work, 'crash', 'docker-compose.yml'),
    `version: "2.4"\nservices:\n  app:\n    image: ${STACK_IMAGE}\n    network_mode: none\n    init: true\n    restart: unless-stopped\n    command: sh -c "exit 3"\n`,
  );
  execFileSync('tar', ['-C', join(work, 'crash'), '-czf', join(work, 'crash.tar.gz'), '.']);
  bodies.set('/repo/crash.tar.gz', await readFile(join(work, 'crash.tar.gz')));
  await mkdir(join(work, 'deb', 'DEBIAN'), { recursive: true });
  await writeFile(
    join(work, 'deb', 'DEBIAN', 'control'),
    'Package: inbm-signed\nVersion: 1.0\nArchitecture: all\nMaintainer: inbm <t@t>\nDescription: test\n',
  );
  execFileSync('dpkg-deb', ['-b', '--root-owner-group', join(work, 'deb'), join(work, 'signed.deb')], { stdio: 'ignore' });
  bodies.set('/repo/inbm-signed_1.0_all.deb', await readFile(join(work, 'signed.deb')));
  dpkgRoot = join(work, 'dpkg-root');
  await mkdir(join(dpkgRoot, 'var', 'lib', 'dpkg', 'info'), { recursive: true });
  await mkdir(join(dpkgRoot, 'var', 'lib', 'dpkg', 'updates'), { recursive: true });
  await writeFile(join(dpkgRoot, 'var', 'lib', 'dpkg', 'status'), '');

  server = createServer((req, res) => {
    const url = req.url ?? '';
    asked.push(url);
    const body = bodies.get(url);
    if (url === '/repo/redirect-out') res.writeHead(302, { location: '/private/app-2.tar' }).end();
    else if (url === '/repo/truncated.tar') {
      // Always cut off: the downloader's resumes get the same, and it gives up.
      const full = bodies.get('/repo/app-2.tar')!;
      res.writeHead(200, { 'content-length': full.length });
      res.write(full.subarray(0, 4096), () => res.destroy());
    } else if (body) res.end(body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;

  root = await makeRoot(`  installPackage: [dpkg, --root=${dpkgRoot}, --log=/dev/null, -i, "{file}"]\nresyncSeconds: 1\n`);
  // The OTA certificate, provisioned where the settings look for it: packages must be signed.
  const pair = generateKeyPairSync('rsa', {
    modulusLength: 3072,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  privateKey = pair.privateKey;
  const certDir = join(root.dir, 'etc', 'intel-manageability', 'public', 'dispatcher-agent');
  await mkdir(certDir, { recursive: true });
  await writeFile(join(certDir, 'ota_signature_cert.pem'), pair.publicKey);
  agent = await startAgent(root, { DOCKER_HOST: dockerHost });
  await trustRepository(root, `${base}/repo`);
});

after(async () => {
  if (agent) assert.equal(await stopAgent(agent), 0);
  server?.close();
  if (dockerHost) {
    const quiet = (args: string[]) => {
      try {
        docker(args);
      } catch {}
    };
    for (const id of lines(docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${PROJECT}`]))) quiet(['rm', '-f', id]);
    for (const id of lines(docker(['ps', '-aq', '--filter', `label=inbm.dev/resource=image-${REPO.replace(/[^a-z0-9]+/g, '-')}`])))
      quiet(['rm', '-f', id]);
    for (const tag of ['1', '2', '3']) quiet(['rmi', `${REPO}:${tag}`]);
    quiet(['rmi', STACK_IMAGE]);
  }
  if (work) await rm(work, { recursive: true, force: true });
});

describe('an application package while an OTA certificate is provisioned', () => {
  const url = () => `${base}/repo/inbm-signed_1.0_all.deb`;
  const installed = async () => (await readFile(join(dpkgRoot, 'var', 'lib', 'dpkg', 'status'), 'utf8')).includes('Package: inbm-signed');

  it('a wrong signature: 400, nothing installed, the downloaded file removed', async () => {
    const wrong = signature(Buffer.from('some other file'));
    const { result } = await request(root, 'app-wrong-sig.xml', appXml(url(), wrong));
    assert.equal(result.status, 400);
    assert.match(result.message, /signature check failed: the signature does not match the file/);
    assert.equal(await installed(), false);
    assert.ok(asked.includes('/repo/inbm-signed_1.0_all.deb'), 'the package was downloaded before the check');
    assert.deepEqual(await leftovers(), []);
  });

  it('no signature at all: 400, nothing installed, nothing left', async () => {
    const { result } = await request(root, 'app-no-sig.xml', appXml(url()));
    assert.equal(result.status, 400);
    assert.match(result.message, /a signature is required/);
    assert.equal(await installed(), false);
    assert.deepEqual(await leftovers(), []);
  });

  it('the right signature: installed (the check above was the certificate at work)', async () => {
    const { result } = await request(root, 'app-good-sig.xml', appXml(url(), signature(bodies.get('/repo/inbm-signed_1.0_all.deb')!)));
    assert.deepEqual(result, { status: 200, message: 'AOTA application update COMMAND SUCCESSFUL', job_id: '' });
    assert.equal(await installed(), true);
    assert.deepEqual(await leftovers(), []);
  });
});

describe('docker load of a new version over a running one: each failure leaves the engine as it was', () => {
  let was: ReturnType<typeof engineState>;

  it('version 1 loaded and running', async () => {
    const { result } = await request(root, 'load-1.xml', loadXml(`${base}/repo/app-1.tar`, '1'));
    assert.deepEqual(result, { status: 200, message: 'AOTA docker load COMMAND SUCCESSFUL', job_id: '' });
    was = engineState();
    assert.equal(was.containers.length, 1);
    assert.match(was.containers[0]!, / 1 running$/);
    assert.deepEqual(
      was.images.map((l) => l.split(' ')[0]),
      ['1'],
    );
  });

  const cases: Array<{ what: string; url: () => string; status: number; message: RegExp; retried?: boolean }> = [
    { what: 'a 404', url: () => `${base}/repo/app-missing.tar`, status: 404, message: /not found/ },
    { what: 'an untrusted URL', url: () => `${base}/private/app-2.tar`, status: 400, message: /is not under a trusted repository/ },
    {
      what: 'a look-alike host (127.0.0.1.evil)',
      url: () => `http://127.0.0.1.evil:${port}/repo/app-2.tar`,
      status: 400,
      message: /is not under a trusted repository/,
    },
    {
      what: 'a redirect off the trusted list',
      url: () => `${base}/repo/redirect-out`,
      status: 400,
      message: /redirect to .*\/private\/app-2\.tar leaves the trusted repositories/,
    },
    {
      what: 'a truncated download',
      url: () => `${base}/repo/truncated.tar`,
      status: 400,
      message: /transfer ended early|download interrupted/,
      retried: true,
    },
    { what: 'a corrupt image tarball', url: () => `${base}/repo/corrupt.tar`, status: 400, message: /docker load failed/ },
  ];
  for (const c of cases) {
    it(`${c.what}: ${c.status}, version 1 still the one running, no new image, no download left`, async () => {
      const { result, file } = await request(root, `load-${c.what.replace(/[^a-z0-9]+/g, '-')}.xml`, loadXml(c.url(), '2'));
      // A transfer that keeps breaking is retried later: withdraw the request.
      if (c.retried) await unlink(join(root.desired, file)).catch(() => {});
      assert.equal(result.status, c.status, result.message);
      assert.match(result.message, c.message);
      assert.deepEqual(engineState(), was);
      // A retry may still be writing its partial file: it removes it when it gives up.
      if (c.retried) await until('the partial download removed', async () => ((await leftovers()).length === 0 ? true : undefined), 60_000);
      assert.deepEqual(await leftovers(), []);
    });
  }

  it('the untrusted, look-alike and redirected-off URLs were never fetched', () => {
    assert.deepEqual(
      asked.filter((u) => u.startsWith('/private/')),
      [],
    );
  });

  it('a version whose container exits at once (restart policy unless-stopped, a crash loop): 400, rolled back to version 1, its image removed', async () => {
    const { result } = await request(root, 'load-3.xml', loadXml(`${base}/repo/app-3.tar`, '3'));
    assert.equal(result.status, 400);
    assert.match(result.message, /did not stay up \(.*(exited with code 3|exited and was restarted \d+ time\(s\)).*\); rolled back to 1$/);
    assert.deepEqual(engineState(), was);
  });
});

describe('a compose stack update that fails: the running version stays', () => {
  it('400, the running version untouched (same container), no new version directory', async () => {
    const first = await request(root, 'stack-1.xml', composeXml(`${base}/repo/stack.tar.gz`));
    assert.deepEqual(first.result, { status: 200, message: 'AOTA compose up COMMAND SUCCESSFUL', job_id: '' });
    const running = stackState();
    assert.equal(running.length, 1);
    assert.match(running[0]!, / running$/);
    const dir = join(cacheDir(), 'compose', PROJECT);
    const versions = await readdir(dir);

    const { result } = await request(root, 'stack-corrupt.xml', composeXml(`${base}/repo/corrupt.tar.gz`));
    assert.equal(result.status, 400);
    assert.match(result.message, /AOTA compose up: /);
    assert.deepEqual(stackState(), running);
    assert.deepEqual(await readdir(dir), versions);
    assert.deepEqual(await leftovers(), []);
  });

  it('a version whose service crash-loops under restart: unless-stopped: 400, version 1 up again from its own files', async () => {
    const dir = join(cacheDir(), 'compose', PROJECT);
    const versions = await readdir(dir);
    const { result } = await request(root, 'stack-crash.xml', composeXml(`${base}/repo/crash.tar.gz`));
    assert.equal(result.status, 400);
    assert.match(
      result.message,
      /did not stay up \(.*app (exited with code 3|exited and was restarted \d+ time\(s\)).*\); rolled back to version 1$/,
    );
    const state = stackState();
    assert.equal(state.length, 1);
    assert.match(state[0]!, / running$/);
    assert.deepEqual(
      lines(
        docker([
          'ps',
          '--filter',
          `label=com.docker.compose.project=${PROJECT}`,
          '--format',
          '{{.Label "com.docker.compose.project.working_dir"}}',
        ]),
      ),
      [join(dir, '1')],
    );
    assert.deepEqual(await readdir(dir), versions);
  });
});
