/**
 * Every AOTA fixture of the shared corpus (valid/aota-*.xml), dropped as it is into a real agent
 * against the real engine, with only its outside references moved to this machine: fetch URLs to
 * a loopback file server, registries to 127.0.0.1:5555 (open) or a htpasswd registry this file
 * runs (the fixture's own testuser/testpass), names made unique. The artifacts are built here:
 * image tarballs by `docker save`, a root filesystem tarball, compose tarballs, .debs by dpkg-deb.
 * Each answer is checked against the fixture README, and the engine (docker CLI) or the dpkg
 * database afterwards. The fixtures run in the order a device would see them: up/pull before
 * down/remove, a query after what it reports on.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { FIXTURES } from '../fixtures.js';
import { until } from '../until.js';
import { type Answer, request as askAgent } from './answer.js';
import { BASE_IMAGE, docker, engineUp, freePort, unique } from './engine.js';
import { makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';

const ID = unique('inbm-it-aota');
const OPEN = '127.0.0.1:5555';
/** Where scripts/test-env.sh's registry keeps repositories. */
const OPEN_STORAGE = '/var/lib/inbm-test/registry/docker/registry/v2/repositories';
/** The private-registry fixture's own credentials. */
const USER = 'testuser';
const PASSWORD = 'testpass';

/** What each fixture's references become here. */
const LOAD_REPO = `${ID}-sample-container`;
const IMPORT_REPO = `${ID}-hdcrpmlite`;
const PULL_REPO = `${OPEN}/${ID}/nginx`;
const STACK = `${ID}-simple-compose`;
const STACK_RENAMED = `${ID}-simple-compose-rename`;
const STACK_PRIVATE = `${ID}-private-compose`;
const COMPOSE_IMAGE = `${OPEN}/${ID}/compose:1`;
const RENAMED_IMAGE = `${ID}-compose-renamed:1`;

let dockerHost = '';
let server: Server;
let base = '';
let work = '';
let dpkgRoot = '';
let root: Root;
let agent: Running;
let registry: ChildProcess | undefined;
let authAddr = '';
let privateImage = '';
/** Image references this file made or caused; all removed at the end. */
const refs: string[] = [];
const files = new Map<string, string>();
/** The fixtures dropped so far (by file name). */
const dropped = new Set<string>();

const fixture = (file: string) => readFile(join(FIXTURES, 'valid', file), 'utf8');
const lines = (s: string) => s.split('\n').filter(Boolean);
/** Fails the test if `text` does not hold `from`: a fixture edited upstream must not pass silently. */
function swap(text: string, from: string, to: string): string {
  assert.ok(text.includes(from), `the fixture no longer holds ${from}`);
  return text.replaceAll(from, to);
}

/** Containers of a compose project: "service state" lines, sorted. */
const stackContainers = (project: string) =>
  lines(
    docker([
      'ps',
      '-a',
      '--filter',
      `label=com.docker.compose.project=${project}`,
      '--format',
      '{{.Label "com.docker.compose.service"}} {{.State}}',
    ]),
  ).sort();
const stackLabel = (project: string, label: string) =>
  lines(docker(['ps', '-a', '--filter', `label=com.docker.compose.project=${project}`, '--format', `{{.Label "${label}"}}`]));
/** Containers the agent made for a ContainerImage: "version state image" lines. */
const resourceContainers = (resource: string) =>
  lines(
    docker([
      'ps',
      '-a',
      '--filter',
      `label=inbm.dev/resource=${resource}`,
      '--format',
      '{{.Label "inbm.dev/version"}} {{.State}} {{.Image}}',
    ]),
  ).sort();
const imageId = (ref: string) => docker(['images', '-q', '--no-trunc', ref]);
const stackDir = (project: string) => join(root.dir, 'var', 'cache', 'manageability', 'compose', project);
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** A copy of the test image whose command keeps it up (the image's own /bin/sh would exit at once). */
function serviceImage(ref: string, variant: string): void {
  const cid = docker(['create', '--network', 'none', BASE_IMAGE]);
  try {
    docker(['commit', '--change', 'CMD ["/bin/sleep", "3600"]', '--change', `LABEL inbm.dev/test-variant=${variant}`, cid, ref]);
  } finally {
    docker(['rm', cid]);
  }
  refs.push(ref);
}

async function compose(name: string, file: string, image: string): Promise<void> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, file),
    `version: "2.4"\nservices:\n  app:\n    image: ${image}\n    network_mode: none\n    init: true\n    command: sleep 3600\n`,
  );
  execFileSync('tar', ['-C', dir, '-czf', join(work, `${name}.tar.gz`), '.']);
  files.set(`/${name}.tar.gz`, join(work, `${name}.tar.gz`));
}

async function deb(urlPath: string, name: string, version: string): Promise<void> {
  const dir = join(work, `deb-${name}`);
  await mkdir(join(dir, 'DEBIAN'), { recursive: true });
  await mkdir(join(dir, 'usr', 'share', name), { recursive: true });
  await writeFile(
    join(dir, 'DEBIAN', 'control'),
    `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: inbm <t@t>\nDescription: test\n`,
  );
  await writeFile(join(dir, 'usr', 'share', name, 'version'), `${version}\n`);
  const out = join(work, `${name}.deb`);
  execFileSync('dpkg-deb', ['-b', '--root-owner-group', dir, out], { stdio: 'ignore' });
  files.set(urlPath, out);
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

/** Debian's docker-registry with htpasswd auth on a free port, holding `privateImage`. */
async function startAuthRegistry(): Promise<void> {
  const dir = join(work, 'registry');
  await mkdir(dir);
  authAddr = `127.0.0.1:${await freePort()}`;
  await writeFile(join(dir, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', USER, PASSWORD], { encoding: 'utf8' }));
  await writeFile(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: ${authAddr}\nauth:\n  htpasswd:\n    realm: inbm-test\n    path: ${dir}/htpasswd\n`,
  );
  let log = '';
  registry = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  registry.stdout!.on('data', (d) => (log += d));
  registry.stderr!.on('data', (d) => (log += d));
  await until('auth registry listening', async () => {
    if (registry!.exitCode !== null) throw new Error(`docker-registry exited: ${log}`);
    return (await listening(authAddr)) ? true : undefined;
  });
  const config = join(dir, 'docker-config');
  docker(['login', authAddr, '-u', USER, '--password-stdin'], { DOCKER_CONFIG: config }, PASSWORD);
  privateImage = `${authAddr}/${ID}/private:1`;
  serviceImage(privateImage, 'private');
  docker(['push', privateImage], { DOCKER_CONFIG: config });
  docker(['rmi', privateImage]);
}

/** Drops the manifest (named as its fixture) and returns the agent's answer. */
async function request(file: string, text: string): Promise<Answer> {
  const answer = await askAgent(root, file, text);
  dropped.add(file);
  return answer;
}

const SUCCESS = (message: string) => ({ status: 200, message, job_id: '' });

before(async () => {
  dockerHost = engineUp(true);
  work = await mkdtemp(join(tmpdir(), 'inbm-it-aota-'));

  // docker load: a saved, gzipped image whose tag is the fixture's <version>.
  serviceImage(`${LOAD_REPO}:1.0`, 'load');
  docker(['save', '-o', join(work, 'load.tar'), `${LOAD_REPO}:1.0`]);
  docker(['rmi', `${LOAD_REPO}:1.0`]);
  await writeFile(join(work, 'sample-container-load.tgz'), gzipSync(await readFile(join(work, 'load.tar'))));
  files.set('/sample-container-load.tgz', join(work, 'sample-container-load.tgz'));
  // docker import: a busybox root filesystem.
  await mkdir(join(work, 'rootfs', 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(work, 'rootfs', 'bin', 'busybox'));
  await symlink('busybox', join(work, 'rootfs', 'bin', 'sh'));
  execFileSync('tar', ['-C', join(work, 'rootfs'), '-czf', join(work, 'hdcrpmlite.tgz'), '.']);
  files.set('/yoururl/hdcrpmlite.tgz', join(work, 'hdcrpmlite.tgz'));
  // docker pull: in the open registry only.
  serviceImage(`${PULL_REPO}:latest`, 'pull');
  docker(['push', `${PULL_REPO}:latest`]);
  docker(['rmi', `${PULL_REPO}:latest`]);
  // compose: the stacks' images in the open registry (compose up pulls what is missing), the
  // renamed stack's image local only.
  serviceImage(COMPOSE_IMAGE, 'compose-1');
  docker(['push', COMPOSE_IMAGE]);
  docker(['rmi', COMPOSE_IMAGE]);
  serviceImage(RENAMED_IMAGE, 'renamed');
  await compose('simple-compose', 'docker-compose.yml', COMPOSE_IMAGE);
  await compose('simple-compose-rename', 'custom.yml', RENAMED_IMAGE);
  await startAuthRegistry();
  await compose('private-compose', 'docker-compose.yml', privateImage);
  // application update: the fixture's file name, and one for the INBC fixture's bare host URL.
  await deb('/ubuntu/pool/main/n/net-tools/net-tools_1.60-25ubuntu2.1_amd64.deb', 'net-tools', '1.60-25ubuntu2.1');
  await deb('/www.example.com/inbc-hello_1.0_all.deb', 'inbc-hello', '1.0');
  dpkgRoot = join(work, 'dpkg-root');
  await mkdir(join(dpkgRoot, 'var', 'lib', 'dpkg', 'info'), { recursive: true });
  await mkdir(join(dpkgRoot, 'var', 'lib', 'dpkg', 'updates'), { recursive: true });
  await writeFile(join(dpkgRoot, 'var', 'lib', 'dpkg', 'status'), '');

  ({ server, base } = await serveFiles(files));
  // makeRoot's settings start with "commands:", so the install command lands inside it.
  root = await makeRoot(`  installPackage: [dpkg, --root=${dpkgRoot}, --log=/dev/null, -i, "{file}"]\nresyncSeconds: 1\n`);
  agent = await startAgent(root, { DOCKER_HOST: dockerHost });
  await trustRepository(root, `${base}/`);
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
    for (const project of [STACK, STACK_RENAMED, STACK_PRIVATE])
      for (const id of lines(docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]))) quiet(['rm', '-f', id]);
    // Read in one listing: other tests' containers may vanish between two calls.
    for (const line of lines(
      docker(['ps', '-a', '--filter', 'label=inbm.dev/resource', '--format', '{{.ID}} {{.Label "inbm.dev/resource"}}']),
    ))
      if (line.includes(ID)) quiet(['rm', '-f', line.split(' ')[0]!]);
    for (const ref of new Set([...refs, `${IMPORT_REPO}:1`, `${LOAD_REPO}:1.0`, `${PULL_REPO}:latest`, COMPOSE_IMAGE])) quiet(['rmi', ref]);
    // The open registry is shared: what this file pushed lives under its unique name.
    await rm(join(OPEN_STORAGE, ID), { recursive: true, force: true });
  }
  if (registry && registry.exitCode === null) {
    const gone = new Promise((r) => registry!.once('exit', r));
    registry.kill('SIGTERM');
    await gone;
  }
  if (work) await rm(work, { recursive: true, force: true });
});

describe('AOTA application update fixtures', () => {
  const installed = async () => await readFile(join(dpkgRoot, 'var', 'lib', 'dpkg', 'status'), 'utf8');

  it('aota-application-update.xml: the .deb fetched and installed by dpkg, no reboot', async () => {
    const text = swap(await fixture('aota-application-update.xml'), 'http://security.ubuntu.com', base);
    const { result } = await request('aota-application-update.xml', text);
    assert.deepEqual(result, SUCCESS('AOTA application update COMMAND SUCCESSFUL'));
    assert.match(await installed(), /Package: net-tools\nStatus: install ok installed\n/);
    assert.equal(await readFile(join(dpkgRoot, 'usr', 'share', 'net-tools', 'version'), 'utf8'), '1.60-25ubuntu2.1\n');
    assert.equal(await readFile(root.rebootLog, 'utf8').catch(() => ''), '');
  });

  it('aota-application-update-inbc.xml: no OTA certificate, so its placeholder signature is not checked', async () => {
    const text = swap(
      await fixture('aota-application-update-inbc.xml'),
      'http://www.example.com/',
      `${base}/www.example.com/inbc-hello_1.0_all.deb`,
    );
    assert.match(text, /<signature>ABCDEFG<\/signature>/);
    const { result } = await request('aota-application-update-inbc.xml', text);
    assert.deepEqual(result, SUCCESS('AOTA application update COMMAND SUCCESSFUL'));
    assert.match(await installed(), /Package: inbc-hello\nStatus: install ok installed\n/);
    assert.equal(await readFile(root.rebootLog, 'utf8').catch(() => ''), '');
  });
});

describe('AOTA docker fixtures', () => {
  it('aota-docker-import.xml: the root filesystem imported as the tag, no container', async () => {
    let text = swap(await fixture('aota-docker-import.xml'), 'yoururl/hdcrpmlite.tgz', `${base}/yoururl/hdcrpmlite.tgz`);
    text = swap(text, '<containerTag>hdcrpmlite:1</containerTag>', `<containerTag>${IMPORT_REPO}:1</containerTag>`);
    const { result, resources } = await request('aota-docker-import.xml', text);
    assert.deepEqual(result, SUCCESS('AOTA docker import COMMAND SUCCESSFUL'));
    assert.notEqual(imageId(`${IMPORT_REPO}:1`), '');
    assert.equal(docker(['run', '--rm', '--network', 'none', `${IMPORT_REPO}:1`, '/bin/busybox', 'echo', 'imported']), 'imported');
    assert.deepEqual(resourceContainers(resources[0]!), []);
  });

  it('aota-docker-load.xml: the image loaded (tagged with <version>) and one container of it running', async () => {
    let text = swap(await fixture('aota-docker-load.xml'), 'http://127.0.0.1:80', base);
    text = swap(text, '<containerTag>sample-container</containerTag>', `<containerTag>${LOAD_REPO}</containerTag>`);
    const { result, resources } = await request('aota-docker-load.xml', text);
    assert.deepEqual(result, SUCCESS('AOTA docker load COMMAND SUCCESSFUL'));
    assert.deepEqual(lines(docker(['images', LOAD_REPO, '--format', '{{.Tag}}'])), ['1.0']);
    assert.deepEqual(resourceContainers(resources[0]!), [`1.0 running ${LOAD_REPO}:1.0`]);
  });

  it('aota-docker-stats.xml: the answer holds the running container with its memory use', async () => {
    const { result, resources } = await request('aota-docker-stats.xml', await fixture('aota-docker-stats.xml'));
    assert.equal(result.status, 200);
    assert.deepEqual(resources, []);
    const stats = (JSON.parse(result.message) as { containerStats: Array<{ name: string; image: string; memoryBytes: number }> })
      .containerStats;
    const mine = stats.find((c) => c.image === `${LOAD_REPO}:1.0`);
    assert.ok(mine, JSON.stringify(stats));
    assert.ok(mine.memoryBytes > 0);
    assert.equal(mine.name, docker(['ps', '--filter', `ancestor=${LOAD_REPO}:1.0`, '--format', '{{.Names}}']));
  });

  it('aota-docker-pull.xml: pulled from the registry (tag latest), one container running', async () => {
    const text = swap(
      await fixture('aota-docker-pull.xml'),
      '<containerTag>registry.hub.docker.com/library/nginx</containerTag>',
      `<containerTag>${PULL_REPO}</containerTag>`,
    );
    const { result, resources } = await request('aota-docker-pull.xml', text);
    assert.deepEqual(result, SUCCESS('AOTA docker pull COMMAND SUCCESSFUL'));
    assert.notEqual(imageId(`${PULL_REPO}:latest`), '');
    assert.deepEqual(resourceContainers(resources[0]!), [`latest running ${PULL_REPO}:latest`]);
  });

  it('aota-docker-remove.xml (after the pull): its container and every tag of the image are gone', async () => {
    const text = swap(
      await fixture('aota-docker-remove.xml'),
      '<containerTag>hello-world</containerTag>',
      `<containerTag>${PULL_REPO}</containerTag>`,
    );
    const { result, resources } = await request('aota-docker-remove.xml', text);
    assert.deepEqual(result, SUCCESS('AOTA docker remove COMMAND SUCCESSFUL'));
    assert.deepEqual(resourceContainers(resources[0]!), []);
    assert.equal(imageId(`${PULL_REPO}:latest`), '');
    // The loaded one is another resource: untouched.
    assert.equal(lines(docker(['ps', '--filter', `ancestor=${LOAD_REPO}:1.0`, '-q'])).length, 1);
  });
});

describe('AOTA compose fixtures', () => {
  const up = async (file: string, project: string, fetchFrom: string, fetchTo: string) => {
    let text = swap(await fixture(file), fetchFrom, fetchTo);
    text = swap(text, /<containerTag>[^<]*<\/containerTag>/.exec(text)![0], `<containerTag>${project}</containerTag>`);
    return request(file, text);
  };

  it('aota-compose-up.xml: the stack up from the tarball, its image pulled from the registry', async () => {
    const { result } = await up('aota-compose-up.xml', STACK, 'http://127.0.0.1:80/simple-compose.tar.gz', `${base}/simple-compose.tar.gz`);
    assert.deepEqual(result, SUCCESS('AOTA compose up COMMAND SUCCESSFUL'));
    assert.deepEqual(stackContainers(STACK), ['app running']);
    assert.deepEqual(stackLabel(STACK, 'com.docker.compose.project.working_dir'), [join(stackDir(STACK), '1')]);
    assert.equal(docker(['ps', '--filter', `label=com.docker.compose.project=${STACK}`, '--format', '{{.Image}}']), COMPOSE_IMAGE);
  });

  it('aota-compose-list.xml: the answer lists the stack service, running', async () => {
    const text = swap(
      await fixture('aota-compose-list.xml'),
      '<containerTag>simplecompose</containerTag>',
      `<containerTag>${STACK}</containerTag>`,
    );
    const { result } = await request('aota-compose-list.xml', text);
    assert.equal(result.status, 200);
    const list = (JSON.parse(result.message) as { composeList: Array<{ service: string; image: string; running: boolean }> }).composeList;
    assert.deepEqual(
      list.map((c) => `${c.service} ${c.image} ${c.running}`),
      [`app ${COMPOSE_IMAGE} true`],
    );
  });

  it('aota-compose-pull.xml: a newer image under the same tag is pulled and the stack runs it', async () => {
    const old = imageId(COMPOSE_IMAGE);
    // The registry gets a new image under the same tag; the engine still holds the old one.
    const next = `${OPEN}/${ID}/compose-next:1`;
    serviceImage(next, 'compose-2');
    docker(['tag', next, COMPOSE_IMAGE]);
    docker(['push', COMPOSE_IMAGE]);
    const pushed = imageId(COMPOSE_IMAGE);
    docker(['tag', old, COMPOSE_IMAGE]);
    docker(['rmi', next]);
    assert.notEqual(pushed, old);
    const { result } = await up(
      'aota-compose-pull.xml',
      STACK,
      'http://127.0.0.1:80/simple-compose.tar.gz',
      `${base}/simple-compose.tar.gz`,
    );
    assert.deepEqual(result, SUCCESS('AOTA compose pull COMMAND SUCCESSFUL'));
    assert.equal(imageId(COMPOSE_IMAGE), pushed);
    assert.deepEqual(stackContainers(STACK), ['app running']);
    const running = docker(['ps', '--filter', `label=com.docker.compose.project=${STACK}`, '-q']);
    assert.equal(docker(['inspect', '--format', '{{.Image}}', running]), pushed);
    // The pull was a new version of the stack: the first one's files are gone.
    assert.equal(await exists(join(stackDir(STACK), '1')), false);
    // The old image lost its tag but is still ours to remove (by id: no name is left on it).
    refs.push(old);
  });

  it('aota-compose-up-custom-file.xml: docker-compose ran with the <file> the tarball holds', async () => {
    const { result } = await up(
      'aota-compose-up-custom-file.xml',
      STACK_RENAMED,
      'http://127.0.0.1:80/simple-compose-rename.tar.gz',
      `${base}/simple-compose-rename.tar.gz`,
    );
    assert.deepEqual(result, SUCCESS('AOTA compose up COMMAND SUCCESSFUL'));
    assert.deepEqual(stackContainers(STACK_RENAMED), ['app running']);
    assert.deepEqual(stackLabel(STACK_RENAMED, 'com.docker.compose.project.config_files'), ['custom.yml']);
  });

  it('aota-compose-up-private-registry.xml: logged in with the fixture credentials, the image pulled, the stack up', async () => {
    let text = swap(
      await fixture('aota-compose-up-private-registry.xml'),
      '<dockerRegistry>localhost:5000</dockerRegistry>',
      `<dockerRegistry>${authAddr}</dockerRegistry>`,
    );
    // The fixture's own credentials are what the registry here accepts.
    assert.ok(text.includes(`<dockerUsername>${USER}</dockerUsername><dockerPassword>${PASSWORD}</dockerPassword>`));
    text = swap(text, 'http://127.0.0.1:80/simple-compose.tar.gz', `${base}/private-compose.tar.gz`);
    text = swap(text, '<containerTag>simple-compose</containerTag>', `<containerTag>${STACK_PRIVATE}</containerTag>`);
    refs.push(privateImage);
    const { result } = await request('aota-compose-up-private-registry.xml', text);
    assert.deepEqual(result, SUCCESS('AOTA compose up COMMAND SUCCESSFUL'));
    assert.notEqual(imageId(privateImage), '');
    assert.deepEqual(stackContainers(STACK_PRIVATE), ['app running']);
    assert.equal(docker(['ps', '--filter', `label=com.docker.compose.project=${STACK_PRIVATE}`, '--format', '{{.Image}}']), privateImage);
    // The password went to a secret, not to the log, the status or the result history.
    assert.equal(agent.output().includes(PASSWORD), false);
    assert.equal((await readFile(join(root.state, 'results.json'), 'utf8')).includes(PASSWORD), false);
    const status = await readdir(join(root.state, 'status', 'ComposeStack'));
    for (const f of status) assert.equal((await readFile(join(root.state, 'status', 'ComposeStack', f), 'utf8')).includes(PASSWORD), false);
  });

  it('aota-compose-down.xml (after up and pull): the containers gone, image and files kept', async () => {
    const text = swap(
      await fixture('aota-compose-down.xml'),
      '<containerTag>simple-compose</containerTag>',
      `<containerTag>${STACK}</containerTag>`,
    );
    const { result } = await request('aota-compose-down.xml', text);
    assert.deepEqual(result, SUCCESS('AOTA compose down COMMAND SUCCESSFUL'));
    assert.deepEqual(stackContainers(STACK), []);
    assert.notEqual(imageId(COMPOSE_IMAGE), '');
    assert.equal(await exists(stackDir(STACK)), true);
    // The other stacks are other projects: still up.
    assert.deepEqual(stackContainers(STACK_RENAMED), ['app running']);
  });

  it('aota-compose-remove.xml (after down): the stack image and files are gone too', async () => {
    const text = swap(
      await fixture('aota-compose-remove.xml'),
      '<containerTag>simple-compose</containerTag>',
      `<containerTag>${STACK}</containerTag>`,
    );
    const { result } = await request('aota-compose-remove.xml', text);
    assert.deepEqual(result, SUCCESS('AOTA compose remove COMMAND SUCCESSFUL'));
    assert.deepEqual(stackContainers(STACK), []);
    assert.equal(imageId(COMPOSE_IMAGE), '');
    assert.equal(await exists(stackDir(STACK)), false);
  });
});

describe('the cloudadapter placeholder fixture', () => {
  it('aota-cloudadapter-generated.xml: 400 as the README records (docker has no "up"), the engine untouched', async () => {
    const { result, resources } = await request('aota-cloudadapter-generated.xml', await fixture('aota-cloudadapter-generated.xml'));
    assert.equal(result.status, 400);
    assert.match(result.message, /AOTA docker up: unsupported command for docker/);
    assert.deepEqual(resources, []);
    // Refused before any document: no resource, and nothing fetched or run under its names.
    assert.deepEqual(resourceContainers('image-6'), []);
    assert.equal(imageId('6'), '');
  });
});

it('every valid AOTA fixture of the corpus was run', async () => {
  const corpus = (await readdir(join(FIXTURES, 'valid'))).filter((f) => f.startsWith('aota-')).sort();
  assert.ok(corpus.length >= 15);
  assert.deepEqual([...dropped].sort(), corpus);
});
