/**
 * Real Debian roots for the OS-update tests: a writable btrfs snapshot of the cached debootstrap
 * base (scripts/sota-root.sh), a local apt repository inside it with the tiny package
 * `inbm-demo` (versions published on demand), and version 1 installed.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const SCRIPT = resolve(import.meta.dirname, '..', '..', 'scripts', 'sota-root.sh');
let mount: string | null | undefined;

/** The mounted cache (built on first use, ~40 s cold); null when not root or the build fails. */
export function sotaMount(): string | null {
  if (mount === undefined) {
    if (process.getuid?.() !== 0 || process.env.INBM_NO_SOTA) mount = null;
    else {
      const out = execFileSync('bash', [SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 });
      const m = /^SOTA_MNT=(\/\S+)$/m.exec(out);
      if (!m) throw new Error(`sota-root.sh printed no SOTA_MNT:\n${out}`);
      mount = m[1]!;
    }
  }
  return mount;
}

export const run = (argv: string[]) => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
export const chrootRun = (root: string, argv: string[]) =>
  execFileSync('chroot', [root, ...argv], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' },
  });

export interface AptRoot {
  /** The writable subvolume holding the Debian root. */
  root: string;
  /** Where this root's snapshots go (same filesystem). */
  snapshots: string;
  /** Adds version `v` of inbm-demo to the repository (a failing postinst when `failing`). */
  publish(v: string, failing?: boolean): Promise<void>;
  /** The installed version of inbm-demo, or undefined. */
  version(): string | undefined;
  remove(): void;
}

const REPO = '/srv/inbm-repo';

/** A fresh root with inbm-demo 1 installed from its own local repository. */
export async function makeAptRoot(mnt: string, name: string): Promise<AptRoot> {
  const id = `${name}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const root = join(mnt, 'work', id);
  const snapshots = join(mnt, 'work', `${id}.snapshots`);
  run(['btrfs', 'subvolume', 'snapshot', join(mnt, 'base'), root]);
  await mkdir(snapshots, { recursive: true });
  const repo = join(root, REPO);
  await mkdir(repo, { recursive: true });
  await writeFile(join(root, 'etc', 'apt', 'sources.list.d', 'inbm.list'), `deb [trusted=yes] file:${REPO} ./\n`);
  const build = await mkdtemp(join(tmpdir(), 'inbm-deb-'));
  const publish = async (v: string, failing = false) => {
    const pkg = join(build, `inbm-demo_${v}`);
    await mkdir(join(pkg, 'DEBIAN'), { recursive: true });
    await mkdir(join(pkg, 'usr', 'share', 'inbm-demo'), { recursive: true });
    await writeFile(
      join(pkg, 'DEBIAN', 'control'),
      `Package: inbm-demo\nVersion: ${v}\nArchitecture: all\nMaintainer: inbm tests <t@example.invalid>\nDescription: OS update test package\n`,
    );
    if (failing) {
      await writeFile(join(pkg, 'DEBIAN', 'postinst'), '#!/bin/sh\necho "inbm-demo: postinst refuses" >&2\nexit 1\n');
      await chmod(join(pkg, 'DEBIAN', 'postinst'), 0o755);
    }
    await writeFile(join(pkg, 'usr', 'share', 'inbm-demo', 'version'), `${v}\n`);
    run(['dpkg-deb', '-Zgzip', '--root-owner-group', '-b', pkg, join(repo, `inbm-demo_${v}_all.deb`)]);
    await writeFile(join(repo, 'Packages'), execFileSync('apt-ftparchive', ['packages', '.'], { cwd: repo, encoding: 'utf8' }));
  };
  await publish('1');
  chrootRun(root, ['apt-get', '-yq', 'update']);
  chrootRun(root, ['apt-get', '-yq', 'install', 'inbm-demo']);
  return {
    root,
    snapshots,
    publish,
    version() {
      try {
        // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a template
        return chrootRun(root, ['dpkg-query', '-W', '-f=${Version}', 'inbm-demo']).trim() || undefined;
      } catch {
        return undefined;
      }
    },
    remove() {
      for (const dir of [root, snapshots]) {
        // Snapshots are subvolumes: delete each, then the folder.
        try {
          for (const line of run(['btrfs', 'subvolume', 'list', '-o', mnt]).split('\n')) {
            const path = line.split(' path ')[1];
            if (path && join(mnt, path).startsWith(`${dir}/`)) run(['btrfs', 'subvolume', 'delete', join(mnt, path)]);
          }
        } catch {
          // already gone
        }
        try {
          run(['btrfs', 'subvolume', 'delete', dir]);
        } catch {
          execFileSync('rm', ['-rf', dir]);
        }
      }
      void rm(build, { recursive: true, force: true });
    },
  };
}
