/**
 * The source list queries, answered from the files: os = the deb lines of sources.list, as a JSON
 * list; application = one {name, sources} per file in sources.list.d. The JSON is spaced as the
 * reference's json.dumps writes it, since clients compare the text.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InbmError, Status } from '../../core/result.js';
import { listDeb822, listOneLine } from './sources-file.js';

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') return undefined;
    throw new InbmError(Status.INSTALL_FAILED, `Error changing sources files: cannot read ${path}: ${code ?? 'error'}`);
  }
}

export async function listOsSources(sourcesList: string): Promise<string> {
  return pyJson(listOneLine((await readIfThere(sourcesList)) ?? ''));
}

export async function listApplicationSources(sourcesDir: string): Promise<string> {
  // As the reference's glob: hidden files (our own temp files among them) are not sources.
  const names = (await readdir(sourcesDir).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
  const out: Array<{ name: string; sources: string[] }> = [];
  for (const name of names) {
    const text = await readIfThere(join(sourcesDir, name));
    if (text === undefined) continue;
    out.push({ name, sources: name.endsWith('.sources') ? listDeb822(text) : listOneLine(text) });
  }
  return pyJson(out);
}

/** JSON as Python's json.dumps writes it by default: ", " and ": " separators, non-ASCII escaped. */
export function pyJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pyJson).join(', ')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.entries(value)
      .map(([k, v]) => `${pyJson(k)}: ${pyJson(v)}`)
      .join(', ')}}`;
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
