import { copyFile, rename } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type Result, resultOf } from '../core/result.js';
import { loadSettings } from '../settings.js';
import { type FileStatus, fileStatusPath, type ResourceStatus, readJson, statusPath } from '../status/files.js';
import { type ProgressRecord, readProgress } from '../status/progress.js';
import { readInput } from './input.js';
import { validateInput } from './validate.js';

const FINAL = new Set(['Ready', 'Stalled', 'Failed']);

/** Drops FILE into the desired-state directory by atomic rename; with wait, prints the result JSON. */
export async function apply(root: string | undefined, file: string, wait: boolean, timeoutMs = 120_000): Promise<number> {
  const input = await readInput(file);
  const checked = validateInput(input);
  if (checked.status !== 200) return print(checked);
  const settings = await loadSettings(root);
  const { paths } = settings;
  const mqtt = settings.cloud.mqtt;
  // A local broker with a CLI certificate configured: INBC's way (publish, wait, its exit codes).
  if (wait && input.format === 'xml' && mqtt?.cliCertFile && mqtt.cliKeyFile) {
    const { requestOverBroker } = await import('../cloud/request-client.js');
    const out = await requestOverBroker({ ...mqtt, certFile: mqtt.cliCertFile, keyFile: mqtt.cliKeyFile }, input.text, (event) =>
      process.stderr.write(`inbm: event: ${event}\n`),
    );
    if (out.result) print(out.result);
    else process.stderr.write(`inbm: ${out.reason}\n`);
    return out.code;
  }
  const name = basename(file);
  const started = Date.now();
  const tmp = join(paths.desiredDir, `.${name}.${process.pid}.tmp`);
  await copyFile(file, tmp);
  await rename(tmp, join(paths.desiredDir, name));
  if (!wait) return 0;
  const { progressBar } = await import('./progress-bar.js');
  const bar = progressBar(process.stderr);
  try {
    return print(await waitForResult(paths.stateDir, name, started, started + timeoutMs, undefined, bar.show));
  } finally {
    bar.end();
  }
}

/**
 * The result of the drop named NAME made at SINCE: the store's refusal or answer, or else the
 * results of the resources it became. TICK waits between looks (the agent wakes it on file events).
 * ON_PROGRESS, when given, is told of the transfers those resources' steps run meanwhile.
 */
export async function waitForResult(
  stateDir: string,
  name: string,
  since: number,
  deadline: number,
  tick: () => Promise<unknown> = () => sleep(10),
  onProgress?: (p: ProgressRecord) => void,
): Promise<Result> {
  // First the store's answer for this drop (refused, or the resources and generations it became) …
  let drop: FileStatus | undefined;
  while (!drop && Date.now() < deadline) {
    const s = await readJson<FileStatus>(fileStatusPath(stateDir, name));
    if (s && Date.parse(s.updatedAt) >= since) drop = s;
    else await tick();
  }
  if (!drop) return resultOf(new Error('timeout'));
  if (drop.result) return drop.result;
  // … then each resource's status once it describes that generation. Waiting with a result is an
  // answer too: a restart was issued and the reboot is pending.
  const answered = (s: ResourceStatus | undefined, generation: number) =>
    s !== undefined && s.observedGeneration >= generation && (FINAL.has(s.phase) || (s.phase === 'Waiting' && s.lastResult !== undefined));
  let lookedAt = 0;
  while (Date.now() < deadline) {
    if (onProgress && Date.now() - lookedAt >= PROGRESS_LOOK_MS) {
      lookedAt = Date.now();
      for (const { key } of drop.resources ?? []) {
        const p = await readProgress(stateDir, key);
        if (p && Date.parse(p.updatedAt) >= since) onProgress(p);
      }
    }
    const states = await Promise.all(
      (drop.resources ?? []).map(async ({ key, generation }) => {
        const [kind, rname] = key.split('/') as [string, string];
        const s = await readJson<ResourceStatus>(statusPath(stateDir, kind, rname));
        return answered(s, generation) ? s : undefined;
      }),
    );
    if (states.every((s) => s !== undefined)) {
      const failed = states.find((s) => s.lastResult && s.lastResult.status !== 200);
      return failed?.lastResult ?? states[0]?.lastResult ?? { status: 200, message: 'COMMAND SUCCESSFUL', job_id: '' };
    }
    await tick();
  }
  return resultOf(new Error('timeout'));
}

/** Progress files are read this often at most: a bar needs no more, the agent's disk no more. */
const PROGRESS_LOOK_MS = 200;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function print(result: Result): number {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.status === 200 ? 0 : 1;
}
