/** The private Docker engine of scripts/test-env.sh, as the ContainerImage integration tests use it. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const BASE_IMAGE = 'inbm-test/busybox:1';

let host: string | undefined;

/** Brings the engine (and, with `registry`, the registry on 127.0.0.1:5555) up; returns DOCKER_HOST. */
export function engineUp(registry = false): string {
  const out = execFileSync('bash', [resolve(REPO_ROOT, 'scripts', 'test-env.sh'), ...(registry ? ['--registry'] : [])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600_000,
  });
  const m = /^export DOCKER_HOST=(\S+)$/m.exec(out);
  if (!m) throw new Error(`test-env.sh printed no DOCKER_HOST:\n${out}`);
  host = m[1]!;
  return host;
}

/** The docker CLI against the test engine; its stdout, trimmed. */
export function docker(args: string[], env: Record<string, string> = {}, input?: string): string {
  if (!host) throw new Error('engineUp() first');
  return execFileSync('docker', args, {
    encoding: 'utf8',
    env: { ...process.env, DOCKER_HOST: host, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(input !== undefined ? { input } : {}),
  }).trim();
}

const lines = (s: string) => s.split('\n').filter(Boolean);

/** Containers carrying our resource label for `resource`: "version state image" lines, sorted. */
export function containersOf(resource: string): string[] {
  return lines(
    docker([
      'ps',
      '-a',
      '--filter',
      `label=inbm.dev/resource=${resource}`,
      '--format',
      '{{.Label "inbm.dev/version"}} {{.State}} {{.Image}}',
    ]),
  ).sort();
}

/** Tags present for a repository, sorted. */
export function tagsOf(repo: string): string[] {
  return lines(docker(['images', repo, '--format', '{{.Tag}}'])).sort();
}

/** Image ids present for a repository (one line per tag). */
export function imageIdsOf(repo: string): string[] {
  return lines(docker(['images', '--no-trunc', repo, '--format', '{{.ID}}']));
}

/** Removes the containers of these resources and every tag of these repositories (by name, never by id). */
export function cleanUp(resources: string[], repos: string[]): void {
  for (const r of resources)
    for (const id of lines(docker(['ps', '-aq', '--filter', `label=inbm.dev/resource=${r}`]))) docker(['rm', '-f', id]);
  for (const repo of repos) for (const t of tagsOf(repo)) docker(['rmi', `${repo}:${t}`]);
}

/** A name no other test (or earlier run) uses. */
export const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

/** A TCP port on 127.0.0.1 free right now. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

/**
 * A root filesystem for `docker import`, as WORK/rootfs.tgz: busybox and the applet links given
 * (`sh` for the default command; `sleep` for `sleep 3600`). `fill` adds to the tree first.
 */
export async function busyboxRootfs(work: string, applets = ['sh'], fill?: (rootfs: string) => Promise<void>): Promise<string> {
  const rootfs = join(work, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const applet of applets) await symlink('busybox', join(rootfs, 'bin', applet));
  await fill?.(rootfs);
  const tgz = join(work, 'rootfs.tgz');
  execFileSync('tar', ['-C', rootfs, '-czf', tgz, '.']);
  return tgz;
}
