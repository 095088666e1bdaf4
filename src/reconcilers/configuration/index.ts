/**
 * Configuration documents → /etc/intel_manageability.conf. set/append/remove are declarative
 * (each pass makes the file hold them); load replaces the whole file once per requestId. The
 * whole resulting file is validated before it replaces the old one, which is kept as a backup.
 */
import { copyFile, readFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Reconciler } from '../../controller/types.js';
import { writeFileAtomic } from '../../core/atomic.js';
import { InbmError, ok, Status } from '../../core/result.js';
import type { DocumentOf } from '../../desired/kinds/index.js';
import { applyChanges, DEFAULT_CONF, getValues, parseConf, sameConf, serializeConf } from './conffile.js';

type Configuration = DocumentOf<'Configuration'>;

export interface ConfigurationOptions {
  confFile: string;
  /** Local load paths must be directly under this directory (as in the reference). */
  cacheDir: string;
}

/** Creates the shipped default file when none exists. */
export async function ensureConfFile(path: string): Promise<void> {
  try {
    await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await writeFileAtomic(path, DEFAULT_CONF);
  }
}

export async function readConfValues(confFile: string, keys: string[]): Promise<Record<string, string>> {
  return getValues(parseConf(await readFile(confFile, 'utf8')), keys);
}

export function configurationReconciler(opts: ConfigurationOptions): Reconciler<Configuration> {
  const replace = async (text: string) => {
    await copyFile(opts.confFile, `${opts.confFile}_bak`).catch(() => {});
    await writeFileAtomic(opts.confFile, text);
  };
  return {
    kind: 'Configuration',
    async reconcile(doc, { journal }) {
      if (!doc) return { phase: 'Ready', reason: 'NotManaged', message: 'document removed; file left as it is' };
      const key = `Configuration/${doc.metadata.name}`;
      const { load, ...changes } = doc.spec;
      if (load) {
        const done = await journal.completedResult(key, load.requestId);
        if (!done) {
          const text = await loadSource(load.source, opts.cacheDir);
          parseConf(text); // the whole new file must be valid before it replaces anything
          await journal.step(key, load.requestId, 'replace', () => replace(text));
          await journal.complete(key, load.requestId, ok('Configuration load: SUCCESSFUL'));
          return {
            phase: 'Ready',
            reason: 'Loaded',
            message: 'Configuration load: SUCCESSFUL',
            result: ok('Configuration load: SUCCESSFUL'),
          };
        }
      }
      if (!changes.set && !changes.append && !changes.remove) return { phase: 'Ready', reason: 'UpToDate', message: 'nothing to change' };
      const current = parseConf(await readFile(opts.confFile, 'utf8'));
      let next: ReturnType<typeof applyChanges>;
      try {
        next = applyChanges(current, changes);
      } catch (err) {
        if (err instanceof InbmError)
          throw new InbmError(Status.INSTALL_FAILED, `Configuration ${verb(doc)} command: FAILED: ${err.reason}`);
        throw err;
      }
      if (sameConf(current, next)) return { phase: 'Ready', reason: 'UpToDate', message: 'configuration holds the desired values' };
      await replace(serializeConf(next));
      const message = `Configuration ${verb(doc)} command: SUCCESSFUL`;
      return { phase: 'Ready', reason: 'Applied', message, result: ok(message) };
    },
  };
}

const verb = (doc: Configuration) => (doc.spec.set ? 'set_element' : doc.spec.append ? 'append' : 'remove');

async function loadSource(source: { url?: string | undefined; path?: string | undefined }, cacheDir: string): Promise<string> {
  let path = source.path;
  if (source.url) {
    if (!source.url.startsWith('file:')) {
      throw new InbmError(
        Status.INSTALL_FAILED,
        'Configuration load: FAILED. Error: remote fetch is not available yet (use a file under the cache directory)',
      );
    }
    path = fileURLToPath(source.url);
  }
  const full = resolve(path ?? '');
  if (relative(cacheDir, dirname(full)) !== '') {
    throw new InbmError(
      Status.INSTALL_FAILED,
      `Configuration load: Invalid configuration load path. The conf file is expected to be under ${cacheDir}`,
    );
  }
  return readFile(full, 'utf8');
}
