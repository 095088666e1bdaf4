import { copyFile, rename } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type Result, resultOf } from '../core/result.js';
import { parseDocuments } from '../desired/document.js';
import { keyOf } from '../desired/store.js';
import { manifestToDesired } from '../desired/translate/index.js';
import { loadSettings } from '../settings.js';
import { type FileStatus, type ResourceStatus, readJson, statusPath } from '../status/files.js';
import { readInput } from './input.js';
import { validateInput } from './validate.js';

const FINAL = new Set(['Ready', 'Stalled', 'Failed']);

/** Drops FILE into the desired-state directory by atomic rename; with wait, prints the result JSON. */
export async function apply(root: string | undefined, file: string, wait: boolean, timeoutMs = 120_000): Promise<number> {
  const input = await readInput(file);
  const checked = validateInput(input);
  if (checked.status !== 200) return print(checked);
  const { paths } = await loadSettings(root);
  const name = basename(file);
  const keys =
    input.format === 'yaml'
      ? parseDocuments(input.text).map(keyOf)
      : (() => {
          const t = manifestToDesired(input.text, { source: 'cli' });
          return t.type === 'documents' ? t.documents.map(keyOf) : [];
        })();
  const started = Date.now();
  const tmp = join(paths.desiredDir, `.${name}.${process.pid}.tmp`);
  await copyFile(file, tmp);
  await rename(tmp, join(paths.desiredDir, name));
  if (!wait) return 0;
  while (Date.now() - started < timeoutMs) {
    const refused = await readJson<FileStatus>(join(paths.stateDir, 'status', 'files', `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.json`));
    if (refused && Date.parse(refused.updatedAt) >= started) return print(refused.result);
    const states = await Promise.all(
      keys.map((k) => readJson<ResourceStatus>(statusPath(paths.stateDir, ...(k.split('/') as [string, string])))),
    );
    // Waiting with a result is an answer too: a restart was issued and the reboot is pending.
    const answered = (s: ResourceStatus | undefined) =>
      s !== undefined &&
      Date.parse(s.updatedAt) >= started - 5 &&
      (FINAL.has(s.phase) || (s.phase === 'Waiting' && s.lastResult !== undefined));
    if (states.length > 0 && states.every(answered)) {
      const failed = states.find((s) => s!.lastResult && s!.lastResult.status !== 200);
      return print(failed?.lastResult ?? states[0]!.lastResult ?? { status: 200, message: 'COMMAND SUCCESSFUL', job_id: '' });
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return print(resultOf(new Error('timeout')));
}

function print(result: Result): number {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.status === 200 ? 0 : 1;
}
