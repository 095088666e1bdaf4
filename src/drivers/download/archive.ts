/**
 * Archive extraction that cannot write outside its target: no absolute paths, no "..", no
 * links that point out of the target, no device files or FIFOs. Any such entry refuses the whole
 * archive and removes what was extracted.
 */
import { mkdir, rm } from 'node:fs/promises';
import { isAbsolute, normalize, posix, resolve, sep } from 'node:path';
import { type ReadEntry, x } from 'tar';
import { InbmError, Status } from '../../core/result.js';

const ALLOWED = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

export async function extract(archive: string, target: string): Promise<string[]> {
  await mkdir(target, { recursive: true });
  const root = resolve(target);
  const files: string[] = [];
  let refusal: string | undefined;
  const inside = (p: string) => {
    const full = resolve(root, p);
    return full === root || full.startsWith(root + sep);
  };
  const check = (entry: ReadEntry): string | undefined => {
    const path = entry.path;
    if (isAbsolute(path) || path.split(/[\\/]/).includes('..')) return `entry "${path}" leaves the target`;
    if (!ALLOWED.has(entry.type)) return `entry "${path}" is a ${entry.type}, not a file`;
    if (entry.type === 'SymbolicLink' || entry.type === 'Link') {
      const link = entry.linkpath ?? '';
      const dest = entry.type === 'SymbolicLink' ? posix.join(posix.dirname(path), link) : link;
      if (isAbsolute(link) || !inside(normalize(dest))) return `link "${path}" points outside the target`;
    }
    return undefined;
  };
  try {
    await x({
      file: archive,
      cwd: root,
      strict: true,
      preservePaths: false,
      preserveOwner: false,
      noChmod: false,
      filter: (_path, entry) => {
        const e = entry as ReadEntry;
        const why = check(e);
        if (why) refusal ??= why;
        else if (e.type !== 'Directory') files.push(e.path);
        return !why;
      },
    });
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw new InbmError(Status.INSTALL_FAILED, `archive cannot be extracted: ${(err as Error).message.split('\n')[0]}`);
  }
  if (refusal) {
    await rm(root, { recursive: true, force: true });
    throw new InbmError(Status.INSTALL_FAILED, `archive refused: ${refusal}`);
  }
  return files;
}
