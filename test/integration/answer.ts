/** The answer a real agent gives to one dropped manifest, read from its state files. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Result } from '../../src/core/result.js';
import { fileStatusPath } from '../../src/status/files.js';
import { until } from '../until.js';
import { drop, type Root } from './harness.js';

export interface Answer {
  result: Result;
  /** The resources the manifest became (none for a query or a refusal). */
  resources: string[];
  /** The name it was dropped under in the desired-state directory. */
  file: string;
}

const history = async (root: Root) =>
  JSON.parse(await readFile(join(root.state, 'results.json'), 'utf8').catch(() => '[]')) as Array<{ name: string; result: Result }>;

/**
 * Drops the manifest and returns its answer: the store's (a refusal or a query's data), else the
 * first result each resource recorded after the drop (results.json, so an earlier request's
 * status for the same resource is never taken for this one's). A drop refused with 303 because
 * a resync pass held the controller is dropped again under another name.
 */
export async function request(root: Root, file: string, text: string, attempt = 0): Promise<Answer> {
  const before = (await history(root)).length;
  const started = Date.now();
  const name = attempt === 0 ? file : `${file}.${attempt}.xml`;
  await drop(root, name, text);
  const status = await until(
    `${name} taken by the store`,
    async () => {
      const s = JSON.parse(await readFile(fileStatusPath(root.state, name), 'utf8')) as {
        result?: Result;
        resources?: Array<{ key: string }>;
        updatedAt: string;
      };
      return Date.parse(s.updatedAt) >= started - 1000 ? s : undefined;
    },
    30_000,
  );
  if (status.result?.status === 303 && attempt < 5) {
    await new Promise((r) => setTimeout(r, 500));
    return request(root, file, text, attempt + 1);
  }
  if (status.result) return { result: status.result, resources: [], file: name };
  const resources = (status.resources ?? []).map((r) => r.key.split('/')[1]!);
  const answers = await until(
    `${name} answered`,
    async () => {
      const fresh = (await history(root)).slice(before);
      const mine = resources.map((n) => fresh.find((r) => r.name === n)?.result);
      return mine.every((r) => r !== undefined) ? (mine as Result[]) : undefined;
    },
    180_000,
  );
  return { result: answers.find((r) => r.status !== 200) ?? answers[0]!, resources, file: name };
}
