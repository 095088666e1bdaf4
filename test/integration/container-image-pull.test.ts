/**
 * ContainerImage pull through the real agent from local registries (Debian's docker-registry on
 * 127.0.0.1): an open one (scripts/test-env.sh --registry, port 5555) and a second one with
 * htpasswd auth that this file runs itself. Credentials come as a secret (declarative document)
 * or through an AOTA manifest (translation writes the secret). The engine is checked with the
 * docker CLI. Last, the registry password and a download password are looked for everywhere the
 * agent writes or prints: log (debug), status files, results.json, result JSON.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeSecret } from '../../src/desired/secrets.js';
import { until } from '../until.js';
import { BASE_IMAGE, cleanUp, containersOf, docker, engineUp, freePort, imageIdsOf, tagsOf, unique } from './engine.js';
import { BIN, drop, makeRoot, type Root, type Running, startAgent, stopAgent } from './harness.js';

const OPEN = '127.0.0.1:5555';
/** Where scripts/test-env.sh's registry keeps repositories. */
const OPEN_STORAGE = '/var/lib/inbm-test/registry/docker/registry/v2/repositories';
const ID = unique('inbm-it-pull');
const USER = 'inbm-puller';
/** The planted secret: the auth registry's password and a download password. */
const SECRET = `Pw-${randomBytes(12).toString('base64url')}`;
const REPO_OPEN = `${ID}/open`;
const REPO_AUTH = `${ID}/auth`;
const REPO_AOTA = `${ID}/aota`;

let dockerHost = '';
let authAddr = '';
let registry: ChildProcess | undefined;
let regDir = '';
let dockerConfig = '';
let root: Root;
let agent: Running;
/** Every result JSON `inbm apply --wait` printed. */
const printed: string[] = [];
const resources: string[] = [];
const localRepos = [REPO_OPEN, REPO_AUTH, REPO_AOTA, `${OPEN}/${REPO_OPEN}`];
const pushed: Array<{ addr: string; repo: string; auth: boolean }> = [];

const status = async (name: string) => JSON.parse(await readFile(join(root.state, 'status', 'ContainerImage', `${name}.json`), 'utf8'));
const settled = (name: string, generation = 1) =>
  until(
    `${name} settled`,
    async () => {
      const s = await status(name);
      return s.observedGeneration === generation && s.lastResult && s.phase !== 'Reconciling' ? s : undefined;
    },
    60_000,
  );
const imageDoc = (name: string, image: string, extra = '') =>
  `apiVersion: inbm.dev/v1alpha1\nkind: ContainerImage\nmetadata: {name: ${name}}\nspec:\n  image: ${image}\n  tag: "1"\n  source: {method: pull${extra}}\n  container: {run: true, command: "sleep 3600", restartPolicy: "no"}\n  soakSeconds: 0\n`;

/** `inbm apply --wait FILE` against the test root; the result JSON it printed. */
function apply(file: string): { status: number; message: string } {
  let out: string;
  try {
    out = execFileSync(process.execPath, [BIN, '--root', root.dir, 'apply', '--wait', file], { encoding: 'utf8', timeout: 120_000 });
  } catch (err) {
    out = (err as { stdout?: string }).stdout ?? '';
  }
  printed.push(out);
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

async function listening(addr: string): Promise<boolean> {
  const [h, p] = addr.split(':') as [string, string];
  return new Promise((res) => {
    const s = connect(Number(p), h, () => {
      s.end();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

/** Pushes the test image as ADDR/REPO:1, then drops the local tag (the engine keeps the layers). */
function push(addr: string, repo: string, auth: boolean): void {
  const env: Record<string, string> = auth ? { DOCKER_CONFIG: dockerConfig } : {};
  docker(['tag', BASE_IMAGE, `${addr}/${repo}:1`]);
  docker(['push', `${addr}/${repo}:1`], env);
  docker(['rmi', `${addr}/${repo}:1`]);
  pushed.push({ addr, repo, auth });
}

before(async () => {
  dockerHost = engineUp(true);
  // The second registry: htpasswd auth (bcrypt), its own storage, a free port.
  regDir = await mkdtemp(join(tmpdir(), 'inbm-it-registry-'));
  dockerConfig = join(regDir, 'docker-config');
  authAddr = `127.0.0.1:${await freePort()}`;
  await writeFile(join(regDir, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', USER, SECRET], { encoding: 'utf8' }));
  await writeFile(
    join(regDir, 'config.yml'),
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${regDir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: ${authAddr}\nauth:\n  htpasswd:\n    realm: inbm-test\n    path: ${regDir}/htpasswd\n`,
  );
  let regLog = '';
  registry = spawn('docker-registry', ['serve', join(regDir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  registry.stdout!.on('data', (d) => (regLog += d));
  registry.stderr!.on('data', (d) => (regLog += d));
  await until('auth registry listening', async () => {
    if (registry!.exitCode !== null) throw new Error(`docker-registry exited: ${regLog}`);
    return (await listening(authAddr)) ? true : undefined;
  });
  docker(['login', authAddr, '-u', USER, '--password-stdin'], { DOCKER_CONFIG: dockerConfig }, SECRET);
  push(OPEN, REPO_OPEN, false);
  push(authAddr, REPO_AUTH, true);
  push(authAddr, REPO_AOTA, true);

  root = await makeRoot('resyncSeconds: 1\nlogLevel: debug\n');
  agent = await startAgent(root, { DOCKER_HOST: dockerHost });
});

after(async () => {
  if (agent) assert.equal(await stopAgent(agent), 0);
  if (dockerHost) {
    cleanUp(resources, localRepos);
    // The open registry is shared: delete what this file pushed there.
    for (const p of pushed.filter((x) => !x.auth)) {
      const head = await fetch(`http://${p.addr}/v2/${p.repo}/manifests/1`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      }).catch(() => undefined);
      const digest = head?.headers.get('docker-content-digest');
      if (digest) await fetch(`http://${p.addr}/v2/${p.repo}/manifests/${digest}`, { method: 'DELETE' }).catch(() => undefined);
    }
    // The registry keeps an emptied repository's directory (and lists it): ours has a unique name.
    await rm(join(OPEN_STORAGE, ID), { recursive: true, force: true });
  }
  if (registry && registry.exitCode === null) {
    const gone = new Promise((r) => registry!.once('exit', r));
    registry.kill('SIGTERM');
    await gone;
  }
  if (regDir) await rm(regDir, { recursive: true, force: true });
  if (root) await rm(root.dir, { recursive: true, force: true });
});

describe('docker pull through the agent', () => {
  it('from the open local registry, no credentials: the image pulled and one container running', async () => {
    const name = `${ID}-open`;
    resources.push(name);
    await drop(root, `${name}.yaml`, imageDoc(name, `${OPEN}/${REPO_OPEN}`));
    const s = await settled(name);
    assert.equal(s.phase, 'Ready', JSON.stringify(s));
    assert.deepEqual(s.lastResult, { status: 200, message: 'AOTA docker pull COMMAND SUCCESSFUL', job_id: '' });
    assert.deepEqual(tagsOf(`${OPEN}/${REPO_OPEN}`), ['1']);
    assert.deepEqual(containersOf(name), [`1 running ${OPEN}/${REPO_OPEN}:1`]);
  });

  it('from the htpasswd registry: refused without or with wrong credentials, pulled with the secret', async () => {
    // No credentials: the registry answers 401 and nothing is left behind.
    const anon = `${ID}-anon`;
    resources.push(anon);
    await drop(root, `${anon}.yaml`, imageDoc(anon, `${authAddr}/${REPO_AUTH}`));
    const refused = await settled(anon);
    assert.notEqual(refused.phase, 'Ready');
    assert.equal(refused.lastResult.status, 400);
    assert.match(refused.lastResult.message, /docker pull failed|docker: .*(auth|unauthorized)/i);
    assert.deepEqual(containersOf(anon), []);
    await unlink(join(root.desired, `${anon}.yaml`));

    // A wrong password, given as a secret.
    const wrong = `${ID}-wrong`;
    resources.push(wrong);
    await writeSecret(join(root.state, 'secrets'), { name: `${wrong}-login`, data: { username: USER, password: `${SECRET}x` } });
    await drop(
      root,
      `${wrong}.yaml`,
      imageDoc(wrong, REPO_AUTH, `, registry: {server: "${authAddr}", credentials: {secretRef: ${wrong}-login}}`),
    );
    const denied = await settled(wrong);
    assert.notEqual(denied.phase, 'Ready');
    assert.equal(denied.lastResult.status, 400);
    assert.deepEqual(containersOf(wrong), []);
    await unlink(join(root.desired, `${wrong}.yaml`));
    assert.deepEqual(tagsOf(REPO_AUTH), []);

    // The right one: the image reference is the bare repository, the registry host comes from `server`.
    const name = `${ID}-auth`;
    resources.push(name);
    await writeSecret(join(root.state, 'secrets'), { name: `${name}-login`, data: { username: USER, password: SECRET } });
    await drop(
      root,
      `${name}.yaml`,
      imageDoc(name, REPO_AUTH, `, registry: {server: "${authAddr}", credentials: {secretRef: ${name}-login}}`),
    );
    const s = await settled(name);
    assert.equal(s.phase, 'Ready', JSON.stringify(s));
    assert.equal(s.lastResult.status, 200);
    assert.deepEqual(tagsOf(REPO_AUTH), ['1']);
    assert.deepEqual(tagsOf(`${authAddr}/${REPO_AUTH}`), [], 'kept only under the name the document gives');
    assert.deepEqual(containersOf(name), [`1 running ${REPO_AUTH}:1`]);
    assert.equal(docker(['exec', `inbm-${name}-1`, 'echo', 'up']), 'up');
  });

  it('through an AOTA manifest with dockerRegistry/dockerUsername/dockerPassword', async () => {
    const manifest = join(root.dir, 'pull-aota.xml');
    await writeFile(
      manifest,
      `<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type><aota name="pull"><cmd>pull</cmd><app>docker</app><containerTag>${REPO_AOTA}:1</containerTag><configParams>{"execcmd":"sleep 3600"}</configParams><dockerRegistry>${authAddr}</dockerRegistry><dockerUsername>${USER}</dockerUsername><dockerPassword>${SECRET}</dockerPassword></aota></type></ota></manifest>`,
    );
    const name = `image-${REPO_AOTA.replace(/[^a-z0-9]+/g, '-')}`;
    resources.push(name);
    const result = apply(manifest);
    assert.deepEqual(result, { status: 200, message: 'AOTA docker pull COMMAND SUCCESSFUL', job_id: '' });
    // Translation kept the credentials out of the document, in a secret only root can read.
    const secrets = join(root.state, 'secrets');
    const files = (await readdir(secrets)).filter((f) => f.startsWith(name));
    assert.deepEqual(files, [`${name}-registry.json`]);
    assert.equal((await stat(join(secrets, files[0]!))).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(join(secrets, files[0]!), 'utf8')), { username: USER, password: SECRET });
    assert.deepEqual(tagsOf(REPO_AOTA), ['1']);
    assert.deepEqual(imageIdsOf(REPO_AOTA).length, 1);
    assert.deepEqual(containersOf(name), [`1 running ${REPO_AOTA}:1`]);
  });
});

describe('the planted secret goes nowhere', () => {
  it('as a download password (https that fails, and http that is refused): not in any log, status or result', async () => {
    const closed = await freePort();
    const conf = join(root.dir, 'etc', 'intel_manageability.conf');
    await writeFile(
      conf,
      (await readFile(conf, 'utf8')).replace(
        '<trustedRepositories>',
        `<trustedRepositories>\nhttps://127.0.0.1:${closed}/\nhttp://127.0.0.1:${closed}/`,
      ),
    );
    // http first: it fails at once; the https one may be retried later and would hold the controller.
    for (const scheme of ['http', 'https']) {
      const manifest = join(root.dir, `load-${scheme}.xml`);
      await writeFile(
        manifest,
        `<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>aota</type><repo>remote</repo></header><type><aota name="load"><cmd>load</cmd><app>docker</app><fetch>${scheme}://127.0.0.1:${closed}/images/app.tar</fetch><containerTag>${ID}/load-${scheme}:1</containerTag><username>${USER}</username><password>${SECRET}</password></aota></type></ota></manifest>`,
      );
      resources.push(`image-${ID}-load-${scheme}`);
      localRepos.push(`${ID}/load-${scheme}`);
      const result = apply(manifest);
      assert.notEqual(result.status, 200);
      if (scheme === 'http') {
        assert.equal(result.status, 300);
        assert.match(result.message, /credentials are only sent over https/);
      } else assert.match(result.message, /ECONNREFUSED|download failed/);
      // A failed download may be retried later; stop it (the file is in the desired-state dir unless settled).
      await unlink(join(root.desired, `load-${scheme}.xml`)).catch(() => {});
    }
    // The http one is refused when the manifest is read, before any secret is kept; the https one
    // kept its credentials as a secret and failed in the download.
    const secrets = (await readdir(join(root.state, 'secrets'))).filter((f) => f.includes('-load-'));
    assert.deepEqual(secrets, [`image-${ID}-load-https-download.json`]);
  });

  it('the agent log (debug), the status files, results.json and the printed results hold neither password', async () => {
    const log = agent.output();
    // What was logged includes the failures (the pull refused, the download retried).
    assert.match(log, /request failed/);
    assert.match(log, /waiting to retry/);
    const where: string[] = [];
    if (log.includes(SECRET)) where.push('agent log');
    for (const [i, out] of printed.entries()) if (out.includes(SECRET)) where.push(`printed result ${i}`);
    assert.ok(printed.length >= 3);
    // Everything the agent writes under its state dir except the secret store itself and the
    // archive of dropped manifests (the operator's own input, kept as it was dropped).
    const scanned: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) {
          if (!['secrets', 'applied', 'desired-state'].includes(e.name)) await walk(p);
        } else {
          scanned.push(p);
          if ((await readFile(p, 'utf8')).includes(SECRET)) where.push(p);
        }
      }
    };
    await walk(root.state);
    assert.ok(scanned.some((p) => p.endsWith('results.json')));
    assert.ok(scanned.filter((p) => p.includes(join('status', 'ContainerImage'))).length >= 5);
    assert.deepEqual(where, [], `the secret was found in: ${where.join(', ')}`);
    // The results on record include the failures with their reasons, so the scan saw real text.
    const results = JSON.parse(await readFile(join(root.state, 'results.json'), 'utf8')) as Array<{ result: { status: number } }>;
    assert.ok(results.some((r) => r.result.status !== 200));
  });
});
