/**
 * Signing keys for application sources: fetched only from trusted repositories, checked to be an
 * OpenPGP public key, and stored in the keyring folder in a form apt reads. apt 2.6 takes an
 * armored key only from a file not named *.gpg, and a binary key only from one not named *.asc,
 * so the stored name follows the content (measured with signed-by against a signed local repo).
 */
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { writeFileAtomic } from '../../core/atomic.js';
import { InbmError, Status } from '../../core/result.js';
import { runCommand } from '../../drivers/command.js';
import { download, redact } from '../../drivers/download/fetch.js';

export interface KeyringOptions {
  cacheDir: string;
  keyringDir: string;
  trusted: () => Promise<string[]>;
  /** gpg for --dearmor: a path, null = never use it, undefined = look for it on PATH. */
  gpg?: string | null;
}

const MAX_KEY_BYTES = 1024 * 1024;
const ARMOR = '-----BEGIN PGP PUBLIC KEY BLOCK-----';

/** Armored or binary OpenPGP public key, or neither (an error page, a certificate…). */
export function keyFormat(bytes: Uint8Array): 'armored' | 'binary' | undefined {
  const head = Buffer.from(bytes.subarray(0, 200)).toString('latin1').trimStart();
  if (head.startsWith(ARMOR)) return 'armored';
  const tag = bytes[0];
  if (tag === undefined || (tag & 0x80) === 0) return undefined;
  // The first packet must be a public key (tag 6), in the new or the old packet format.
  const packet = (tag & 0x40) !== 0 ? tag & 0x3f : (tag >> 2) & 0x0f;
  return packet === 6 ? 'binary' : undefined;
}

const swapExt = (name: string, from: string, to: string) => `${name.slice(0, -from.length)}${to}`;

/** The names a key may be stored under: the one asked for and its .gpg/.asc twin. */
export function keyNames(name: string): string[] {
  if (name.endsWith('.gpg')) return [name, swapExt(name, '.gpg', '.asc')];
  if (name.endsWith('.asc')) return [name, swapExt(name, '.asc', '.gpg')];
  return [name];
}

/** Pure: where a key of this format goes, and whether it must be dearmored to be read there. */
export function keyTarget(name: string, format: 'armored' | 'binary', canDearmor: boolean): { file: string; dearmor: boolean } {
  if (format === 'binary') return { file: name.endsWith('.asc') ? swapExt(name, '.asc', '.gpg') : name, dearmor: false };
  if (name.endsWith('.asc')) return { file: name, dearmor: false };
  if (canDearmor) return { file: name, dearmor: true };
  return { file: name.endsWith('.gpg') ? swapExt(name, '.gpg', '.asc') : name, dearmor: false };
}

async function findGpg(opt: string | null | undefined): Promise<string | undefined> {
  if (opt !== undefined) return opt ?? undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const p = join(dir, 'gpg');
    if (
      await access(p, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return p;
  }
  return undefined;
}

async function dearmor(gpg: string, armored: Uint8Array, cacheDir: string): Promise<Buffer> {
  // A throwaway home: dearmoring needs no keyring, and root's own must not be touched.
  const home = await mkdtemp(join(cacheDir, 'gpg-'));
  try {
    await writeFile(join(home, 'in.asc'), armored);
    await runCommand([
      gpg,
      '--batch',
      '--no-tty',
      '--homedir',
      home,
      '--yes',
      '--output',
      join(home, 'out.gpg'),
      '--dearmor',
      join(home, 'in.asc'),
    ]);
    return await readFile(join(home, 'out.gpg'));
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** Fetches the key and stores it; an identical key already there is left untouched. Returns the file name used. */
export async function installKey(url: string, name: string, opts: KeyringOptions): Promise<{ file: string; changed: boolean }> {
  const { path } = await download(url, {
    dir: opts.cacheDir,
    trusted: await opts.trusted(),
    maxBytes: MAX_KEY_BYTES,
    name: `key-${process.pid}-${name}.download`,
  });
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } finally {
    await rm(path, { force: true });
  }
  const format = keyFormat(bytes);
  if (!format) throw new InbmError(Status.INSTALL_FAILED, `${redact(url)} is not an OpenPGP public key`);
  const gpg = await findGpg(opts.gpg);
  const target = keyTarget(name, format, gpg !== undefined);
  const data = target.dearmor ? await dearmor(gpg!, bytes, opts.cacheDir) : bytes;
  const dest = join(opts.keyringDir, target.file);
  const old = await readFile(dest).catch(() => undefined);
  const changed = !old?.equals(data);
  if (changed) await writeFileAtomic(dest, data, 0o644);
  // A twin in the other format (stored before gpg was installed, say) would be stale.
  for (const other of keyNames(name)) if (other !== target.file) await rm(join(opts.keyringDir, other), { force: true });
  return { file: target.file, changed };
}
