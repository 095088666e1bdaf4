import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { InbmError, ok, type Result, resultOf, Status } from '../core/result.js';
import { APPENDABLE_KEYS } from '../reconcilers/configuration/schema.js';
import { loadSettings } from '../settings.js';
import { readJson } from '../status/files.js';
import { type ConfigVerb, configKeys, configManifest, loadManifest, type PowerVerb, powerManifest } from './manifests.js';

type Root = () => string | undefined;
type Exit = (code: number) => void;

const QUERY_OPTIONS = ['all', 'hw', 'fw', 'os', 'status', 'version', 'security', 'guid', 'swbom'] as const;
/** Inventory sections an option picks (src/status/inventory.ts); other options pick a section of their own name. */
const QUERY_SECTIONS: Record<string, string> = { hw: 'hardware', fw: 'firmware', os: 'os', version: 'agent' };

/** INBC-style verbs: each builds an INBM manifest and applies it (get and query read files directly). */
export function registerVerbs(program: Command, root: Root, exit: Exit): void {
  program
    .command('get')
    .description('print configuration values (KEY[;KEY…]) from the configuration file; no agent needed')
    .argument('[keys]', 'KEY or KEY;KEY')
    .option('-p, --path <keys>', 'same as the argument (INBC spelling)')
    .action(async (keys: string | undefined, opts: { path?: string }) => {
      exit(await get(root(), keys ?? opts.path ?? ''));
    });

  const configVerb = (verb: ConfigVerb, description: string) =>
    program
      .command(verb)
      .description(description)
      .argument('[pairs]', 'KEY:VALUE[;KEY:VALUE…]')
      .option('-p, --path <pairs>', 'same as the argument (INBC spelling)')
      .option('--no-wait', 'drop the manifest without waiting for the result')
      .action(async (pairs: string | undefined, opts: { path?: string; wait: boolean }) => {
        exit(await drop(root(), verb, () => configManifest(verb, pairs ?? opts.path ?? ''), opts.wait));
      });
  configVerb('set', 'set configuration values (set_element manifest), applied by the running agent');
  configVerb('append', `append an entry to a list key (${APPENDABLE_KEYS.join(', ')})`);
  configVerb('remove', `remove an entry from a list key (${APPENDABLE_KEYS.join(', ')})`);

  program
    .command('load')
    .description('replace the configuration file with PATH (a file under the cache directory) or a URL')
    .argument('<source>', 'file path or URL')
    .option('-s, --signature <hex>', 'signature of the file')
    .option('--no-wait', 'drop the manifest without waiting for the result')
    .action(async (source: string, opts: { signature?: string; wait: boolean }) => {
      exit(await drop(root(), 'load', () => loadManifest(source, (p) => resolve(p), opts.signature), opts.wait));
    });

  const powerVerb = (verb: PowerVerb, description: string) =>
    program
      .command(verb)
      .description(description)
      .option('--no-wait', 'drop the manifest without waiting for the result')
      .action(async (opts: { wait: boolean }) => {
        exit(await drop(root(), verb, () => powerManifest(verb), opts.wait));
      });
  powerVerb('restart', 'restart the device (cmd manifest), done by the running agent');
  powerVerb('shutdown', 'shut the device down (cmd manifest), done by the running agent');

  program
    .command('query')
    .description('print the device inventory the agent wrote, or one part of it')
    .option('-o, --option <option>', QUERY_OPTIONS.join(', '), 'all')
    .action(async (opts: { option: string }) => {
      exit(await query(root(), opts.option));
    });
}

/** A refusal of a read (get, query): 400 without the install prefix the agent's results carry. */
const failure = (message: string): Result => ({ status: Status.INSTALL_FAILED, message, job_id: '' });

function print(result: Result): number {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.status === 200 ? 0 : 1;
}

/** Answers from the configuration file itself, as `key:value;key2:value2`. */
async function get(root: string | undefined, path: string): Promise<number> {
  let keys: string[];
  try {
    keys = configKeys(path);
  } catch (err) {
    return print(err instanceof InbmError ? failure(err.reason) : resultOf(err));
  }
  const { paths } = await loadSettings(root);
  const { readConfValues } = await import('../reconcilers/configuration/index.js');
  let values: Record<string, string>;
  try {
    values = await readConfValues(paths.confFile, keys);
  } catch (err) {
    const reason =
      err instanceof InbmError ? err.reason : `cannot read ${paths.confFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`;
    return print(failure(`Configuration get_element command: FAILED: ${reason}`));
  }
  // A list comes one entry per line; one line of output reads better with spaces between entries.
  const show = (key: string) => (APPENDABLE_KEYS.includes(key) ? values[key]!.split(/\s+/).filter(Boolean).join(' ') : values[key]!);
  return print(ok(keys.map((k) => `${k}:${show(k)}`).join(';')));
}

/** Builds the manifest (validation errors are printed before anything is written) and applies it. */
async function drop(root: string | undefined, verb: string, build: () => string, wait: boolean): Promise<number> {
  let xml: string;
  try {
    xml = build();
  } catch (err) {
    return print(resultOf(err));
  }
  // apply drops by base name, so the name must be unique per request.
  const dir = await mkdtemp(join(tmpdir(), 'inbm-verb-'));
  try {
    const file = join(dir, `inbc-${verb}-${Date.now()}-${process.pid}.xml`);
    await writeFile(file, xml, { mode: 0o600 });
    const { apply } = await import('./apply.js');
    return await apply(root, file, wait);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The inventory file the agent writes; an option other than all picks its section. */
async function query(root: string | undefined, option: string): Promise<number> {
  if (!(QUERY_OPTIONS as readonly string[]).includes(option)) {
    return print(failure(`query: option must be one of ${QUERY_OPTIONS.join(', ')}, got ${JSON.stringify(option)}`));
  }
  const { paths } = await loadSettings(root);
  const file = join(paths.stateDir, 'inventory.json');
  let inventory: Record<string, unknown> | undefined;
  try {
    inventory = await readJson<Record<string, unknown>>(file);
  } catch (err) {
    return print(failure(`query: cannot read ${file}: ${(err as Error).message}`));
  }
  if (!inventory) return print(failure('query: the agent has not written an inventory yet'));
  if (option === 'all') {
    process.stdout.write(`${JSON.stringify(inventory)}\n`);
    return 0;
  }
  const section = QUERY_SECTIONS[option] ?? option;
  if (!(section in inventory)) return print(failure(`query: the inventory has no ${option} information yet`));
  process.stdout.write(`${JSON.stringify({ [section]: inventory[section] })}\n`);
  return 0;
}
