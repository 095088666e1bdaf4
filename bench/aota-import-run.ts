/**
 * aota-import-run: `docker import` of a root-filesystem tarball and one container started from
 * it, through the agent versus the raw docker CLI, on the private engine of scripts/test-env.sh.
 *
 * Agent round: a ContainerImage document (method import from a file:// URL of the tarball, a
 * container running `sleep 3600`, soakSeconds 0) is renamed into the desired-state directory of
 * a running agent (built CLI, temp root); timed from the rename until the resource's status file
 * shows it Ready with its result. Raw round: `docker import FILE REPO:TAG` then
 * `docker run -d --network none --init --name N REPO:TAG /bin/sh -c 'sleep 3600'`, timed from
 * the first spawn until the second exits. Rounds alternate agent / raw; after each, the document
 * is removed (and unloaded) and the container and image are removed with the CLI, untimed.
 * Prints {"bench":"aota-import-run","value":<agent median / raw median>,"unit":"ratio",...}.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, watch } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BIN } from '../test/bin.js';

const REPO_DIR = resolve(import.meta.dirname, '..');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const WARMUP = 1;
const ROUND_TIMEOUT_MS = 60_000;
const RUN_ID = randomBytes(3).toString('hex');
const REPO = `inbm-bench-${RUN_ID}/app`;
const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

if (process.getuid?.() !== 0) throw new Error('aota-import-run needs root (it runs the private docker engine)');
const envOut = execFileSync('bash', [join(REPO_DIR, 'scripts', 'test-env.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const DOCKER_HOST = /^export DOCKER_HOST=(\S+)$/m.exec(envOut)?.[1];
if (!DOCKER_HOST) throw new Error(`test-env.sh printed no DOCKER_HOST:\n${envOut}`);
const dockerEnv = { ...process.env, DOCKER_HOST };

/** The CLI, asynchronously (the agent's status watcher keeps running meanwhile). */
function cli(args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn(DOCKER_CLI, args, { env: dockerEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.once('error', rej);
    p.once('exit', (code) => (code === 0 ? res(out.trim()) : rej(new Error(`docker ${args.join(' ')}: ${code}: ${err}`))));
  });
}
const quiet = (args: string[]) => cli(args).catch(() => '');

const root = await mkdtemp(join(tmpdir(), 'inbm-bench-import-'));
const state = join(root, 'var', 'lib', 'inbm');
const desiredDir = join(state, 'desired-state');
const statusDir = join(state, 'status', 'ContainerImage');
const work = join(root, 'work');
const tarball = join(work, 'rootfs.tgz');

let agent: ChildProcess | undefined;
let logTail = '';
let warnings = 0;
const made: Array<{ container: string; ref: string }> = [];
const fail = (message: string): never => {
  throw new Error(`${message}\n--- agent log tail ---\n${logTail.slice(-4000)}`);
};

try {
  // The tarball both sides import: busybox and the links `sh -c "sleep 3600"` needs.
  await mkdir(join(work, 'rootfs', 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(work, 'rootfs', 'bin', 'busybox'));
  for (const applet of ['sh', 'sleep']) await symlink('busybox', join(work, 'rootfs', 'bin', applet));
  execFileSync('tar', ['-C', join(work, 'rootfs'), '-czf', tarball, '.']);
  const tarBytes = (await stat(tarball)).size;

  // The machine files the pre-change gates read under --root (as the integration tests' roots).
  await mkdir(join(root, 'proc', 'net'), { recursive: true });
  await writeFile(join(root, 'proc', 'meminfo'), 'MemTotal:       8000000 kB\nMemAvailable:   4000000 kB\n');
  await writeFile(
    join(root, 'proc', 'net', 'route'),
    'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\neth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n',
  );
  await mkdir(join(root, 'etc', 'inbm'), { recursive: true });
  await writeFile(join(root, 'etc', 'inbm', 'agent.yaml'), 'commands:\n  reboot: [/bin/true]\n');

  agent = spawn(process.execPath, [BIN, '--root', root, 'agent'], { stdio: ['ignore', 'ignore', 'pipe'], env: dockerEnv });
  const exited = new Promise<number | null>((r) => agent!.once('exit', (code) => r(code)));
  await new Promise<void>((resolveReady, rejectReady) => {
    agent!.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      logTail = (logTail + text).slice(-16_000);
      warnings += text.match(/"level":(40|50|60)/g)?.length ?? 0;
      if (logTail.includes('agent ready')) resolveReady();
    });
    void exited.then((code) => rejectReady(new Error(`agent exited (${code}) before ready\n${logTail}`)));
  });
  const conf = join(root, 'etc', 'intel_manageability.conf');
  await writeFile(conf, (await readFile(conf, 'utf8')).replace('<trustedRepositories>', `<trustedRepositories>\nfile://${work}/`));
  await mkdir(statusDir, { recursive: true });

  // Status watcher: resolves a pending wait when the named resource's status says Ready with a result.
  let pending: { name: string; resolve: (s: { at: number; status: number; message: string }) => void } | undefined;
  const check = async (): Promise<void> => {
    const want = pending;
    if (!want) return;
    let s: { phase?: string; lastResult?: { status: number; message: string } };
    try {
      s = JSON.parse(await readFile(join(statusDir, `${want.name}.json`), 'utf8'));
    } catch {
      return;
    }
    if (pending === want && s.lastResult && ['Ready', 'Stalled', 'Failed'].includes(s.phase ?? '')) {
      pending = undefined;
      want.resolve({ at: performance.now(), status: s.lastResult.status, message: s.lastResult.message });
    }
  };
  const watcher = watch(statusDir, () => void check());
  const poll = setInterval(() => void check(), 5);

  const document = (name: string, tag: string) =>
    `apiVersion: inbm.dev/v1alpha1\nkind: ContainerImage\nmetadata: {name: ${name}}\nspec:\n  image: ${REPO}\n  tag: "${tag}"\n  source: {method: import, artifact: {url: "file://${tarball}"}}\n  container: {run: true, command: "sleep 3600", restartPolicy: "no"}\n  soakSeconds: 0\n`;

  async function agentRound(i: number): Promise<number> {
    const name = `bench-${RUN_ID}-${i}`;
    const tag = `a${i}`;
    made.push({ container: `inbm-${name}-${tag}`, ref: `${REPO}:${tag}` });
    const file = `${name}.yaml`;
    await writeFile(join(desiredDir, `.${file}.tmp`), document(name, tag));
    const done = new Promise<{ at: number; status: number; message: string }>((r) => {
      pending = { name, resolve: r };
    });
    const t0 = performance.now();
    await rename(join(desiredDir, `.${file}.tmp`), join(desiredDir, file));
    let timer: NodeJS.Timeout | undefined;
    const got = await Promise.race([done, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ROUND_TIMEOUT_MS)))]);
    clearTimeout(timer);
    if (!got) fail(`agent round ${i} timed out`);
    if (got!.status !== 200) fail(`agent round ${i}: ${got!.status} ${got!.message}`);
    const ms = got!.at - t0;
    // Untimed clean-up: unmanage (the store drops the file's status once unloaded), then remove.
    await rm(join(desiredDir, file));
    const fileStatus = join(state, 'status', 'files', `${file}.json`);
    for (let w = 0; w < 500 && existsSync(fileStatus); w++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    await quiet(['rm', '-f', `inbm-${name}-${tag}`]);
    await quiet(['rmi', `${REPO}:${tag}`]);
    return ms;
  }

  async function rawRound(i: number): Promise<number> {
    const tag = `r${i}`;
    const container = `inbm-bench-raw-${RUN_ID}-${i}`;
    made.push({ container, ref: `${REPO}:${tag}` });
    const t0 = performance.now();
    await cli(['import', tarball, `${REPO}:${tag}`]);
    await cli(['run', '-d', '--network', 'none', '--init', '--name', container, `${REPO}:${tag}`, '/bin/sh', '-c', 'sleep 3600']);
    const ms = performance.now() - t0;
    const running = await cli(['inspect', '-f', '{{.State.Running}}', container]);
    if (running !== 'true') throw new Error(`raw round ${i}: container not running`);
    await quiet(['rm', '-f', container]);
    await quiet(['rmi', `${REPO}:${tag}`]);
    return ms;
  }

  const agentMs: number[] = [];
  const rawMs: number[] = [];
  for (let i = 0; i < WARMUP + ROUNDS; i++) {
    // Alternate which side goes first, so neither always follows the other's clean-up.
    const a = i % 2 === 0 ? await agentRound(i) : undefined;
    const r = await rawRound(i);
    const a2 = a ?? (await agentRound(i));
    if (i >= WARMUP) {
      agentMs.push(a2);
      rawMs.push(r);
    }
  }
  watcher.close();
  clearInterval(poll);

  agent.kill('SIGTERM');
  const code = await exited;
  agent = undefined;

  const median = (xs: number[]) => {
    const s = [...xs].sort((x, y) => x - y);
    const m = s.length >> 1;
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  };
  const r2 = (x: number) => Number(x.toFixed(2));
  const agentMedian = median(agentMs);
  const rawMedian = median(rawMs);
  console.log(
    JSON.stringify({
      bench: 'aota-import-run',
      value: r2(agentMedian / rawMedian),
      unit: 'ratio',
      agent_median_ms: r2(agentMedian),
      raw_median_ms: r2(rawMedian),
      agent_ms: agentMs.map(r2),
      raw_ms: rawMs.map(r2),
      rounds: agentMs.length,
      warmup_rounds: WARMUP,
      tarball_bytes: tarBytes,
      docker_cli: DOCKER_CLI,
      agent_warnings: warnings,
      agent_exit_code: code,
      goal: '<= 1.10',
    }),
  );
} finally {
  if (agent) {
    agent.kill('SIGTERM');
    await new Promise((r) => {
      agent!.once('exit', r);
      setTimeout(r, 5000).unref();
    });
  }
  for (const m of made) {
    await quiet(['rm', '-f', m.container]);
    await quiet(['rmi', m.ref]);
  }
  await rm(root, { recursive: true, force: true });
}
