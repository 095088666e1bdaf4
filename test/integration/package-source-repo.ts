/**
 * A tiny signed APT repository on the local disk (dpkg-deb, apt-ftparchive, a throwaway gpg key)
 * and apt-get update run against a test root without chroot, as the package-source tests use them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SignedRepo {
  /** The repository directory: a flat repo, so its one-line entry is `file:<dir> ./`. */
  dir: string;
  /** The signing key, armored and binary. */
  armoredKey: string;
  binaryKey: string;
  /** Stops the gpg-agent the key generation started and removes the repository. */
  close(): Promise<void>;
}

function run(argv: string[], cwd?: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', ...(cwd ? { cwd } : {}) });
  assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

export async function makeSignedRepo(pkg = 'inbm-source-test'): Promise<SignedRepo> {
  const base = await mkdtemp(join(tmpdir(), 'inbm-apt-repo-'));
  const dir = join(base, 'repo');
  const home = join(base, 'gnupg');
  await mkdir(join(base, 'pkg', 'DEBIAN'), { recursive: true });
  await mkdir(dir);
  await mkdir(home, { mode: 0o700 });
  await writeFile(
    join(base, 'pkg', 'DEBIAN', 'control'),
    `Package: ${pkg}\nVersion: 1.0\nArchitecture: all\nMaintainer: inbm <t@t>\nDescription: package-source test\n`,
  );
  run(['dpkg-deb', '-b', '--root-owner-group', join(base, 'pkg'), join(dir, `${pkg}_1.0_all.deb`)]);
  await writeFile(join(dir, 'Packages'), run(['apt-ftparchive', 'packages', '.'], dir));
  await writeFile(join(dir, 'Release'), run(['apt-ftparchive', 'release', '.'], dir));
  const gpg = ['gpg', '--homedir', home, '--batch', '--no-tty'];
  run([...gpg, '--passphrase', '', '--quick-gen-key', 'inbm source test <t@t>', 'ed25519', 'sign', 'never']);
  await writeFile(join(base, 'key.asc'), run([...gpg, '--armor', '--export']));
  const binary = spawnSync('gpg', [...gpg.slice(1), '--export']);
  assert.equal(binary.status, 0);
  await writeFile(join(base, 'key.gpg'), binary.stdout);
  run([...gpg, '--yes', '--clearsign', '--output', join(dir, 'InRelease'), join(dir, 'Release')]);
  return {
    dir,
    armoredKey: join(base, 'key.asc'),
    binaryKey: join(base, 'key.gpg'),
    close: async () => {
      spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
      await rm(base, { recursive: true, force: true });
    },
  };
}

/** The directories apt-get needs under a root it is pointed at with -o Dir=ROOT. */
export async function prepareAptRoot(root: string): Promise<void> {
  for (const d of [
    'etc/apt/sources.list.d',
    'etc/apt/apt.conf.d',
    'etc/apt/preferences.d',
    'etc/apt/trusted.gpg.d',
    'var/lib/apt/lists/partial',
    'var/cache/apt/archives/partial',
    'var/lib/dpkg',
  ])
    await mkdir(join(root, d), { recursive: true });
  await writeFile(join(root, 'var/lib/dpkg/status'), '', { flag: 'a' });
}

/** apt-get update reading only ROOT's sources; root stays root (the sandbox user cannot read mkdtemp dirs). */
export async function aptUpdate(root: string): Promise<{ status: number | null; output: string; lists: string[] }> {
  // Lists left by an earlier run would pass for this run's fetch.
  const listDir = join(root, 'var/lib/apt/lists');
  for (const f of await readdir(listDir).catch(() => [] as string[]))
    if (f !== 'partial') await rm(join(listDir, f), { recursive: true, force: true });
  const r = spawnSync(
    'apt-get',
    [
      '-o',
      `Dir=${root}`,
      '-o',
      `Dir::State::status=${join(root, 'var/lib/dpkg/status')}`,
      '-o',
      'Debug::NoLocking=1',
      '-o',
      'APT::Sandbox::User=root',
      'update',
    ],
    { encoding: 'utf8' },
  );
  const lists = (await readdir(listDir).catch(() => [] as string[])).filter((f) => f !== 'partial' && f !== 'auxfiles');
  return { status: r.status, output: `${r.stdout}${r.stderr}`, lists };
}
