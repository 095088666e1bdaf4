import { copyFile, rename } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type Result, resultOf } from '../core/result.js';
import { loadSettings } from '../settings.js';
import { type FileStatus, fileStatusPath, type ResourceStatus, readJson, statusPath } from '../status/files.js';
import { readInput } from './input.js';
import { validateInput } from './validate.js';

const FINAL = new Set(['Ready', 'Stalled', 'Failed']);

/** Drops FILE into the desired-state directory by atomic rename; with wait, prints the result JSON. */
export async function apply(root: string | undefined, file: string, wait: boolean, timeoutMs = 120_000): Promise<number> {
  const checked = validateInput(await readInput(file));
  if (checked.status !== 200) return print(checked);
  const { paths } = await loadSettings(root);
  const name = basename(file);
  const started = Date.now();
  const tmp = join(paths.desiredDir, `.${name}.${process.pid}.tmp`);
  await copyFile(file, tmp);
  await rename(tmp, join(paths.desiredDir, name));
  if (!wait) return 0;
  const deadline = started + timeoutMs;
  // First the store's answer for this drop (refused, or the resources and generations it became) …
  let drop: FileStatus | undefined;
  while (!drop && Date.now() < deadline) {
    const s = await readJson<FileStatus>(fileStatusPath(paths.stateDir, name));
    if (s && Date.parse(s.updatedAt) >= started) drop = s;
    else await sleep(10);
  }
  if (!drop) return print(resultOf(new Error('timeout')));
  if (drop.result) return print(drop.result);
  // … then each resource's status once it describes that generation. Waiting with a result is an
  // answer too: a restart was issued and the reboot is pending.
  const answered = (s: ResourceStatus | undefined, generation: number) =>
    s !== undefined && s.observedGeneration >= generation && (FINAL.has(s.phase) || (s.phase === 'Waiting' && s.lastResult !== undefined));
  while (Date.now() < deadline) {
    const states = await Promise.all(
      (drop.resources ?? []).map(async ({ key, generation }) => {
        const [kind, rname] = key.split('/') as [string, string];
        const s = await readJson<ResourceStatus>(statusPath(paths.stateDir, kind, rname));
        return answered(s, generation) ? s : undefined;
      }),
    );
    if (states.every((s) => s !== undefined)) {
      const failed = states.find((s) => s.lastResult && s.lastResult.status !== 200);
      return print(failed?.lastResult ?? states[0]?.lastResult ?? { status: 200, message: 'COMMAND SUCCESSFUL', job_id: '' });
    }
    await sleep(10);
  }
  return print(resultOf(new Error('timeout')));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function print(result: Result): number {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.status === 200 ? 0 : 1;
}
