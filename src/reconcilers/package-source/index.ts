/**
 * PackageSource: APT sources. os edits /etc/apt/sources.list line by line (add, remove, or
 * exactly these lines); application owns one file in sources.list.d (one-line .list or deb822
 * .sources) and optionally its signing key in the keyring folder. Files are written atomically
 * and only when their text changes, so applying the same document twice changes nothing.
 */
import { access, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Reconciler } from '../../controller/types.js';
import { writeFileAtomic } from '../../core/atomic.js';
import { InbmError, Status } from '../../core/result.js';
import { installKey, type KeyringOptions, keyNames } from './keyring.js';
import {
  badName,
  ERROR_PREFIX,
  type PackageSource,
  planPackageSource,
  prunePackageSource,
  requestIdOf,
  type SourceObserved,
  type SourcePaths,
  type SourceStep,
  targetPath,
} from './plan.js';

export interface PackageSourceOptions extends SourcePaths, Omit<KeyringOptions, 'keyringDir'> {}

async function readText(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InbmError(Status.INSTALL_FAILED, `${ERROR_PREFIX}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

async function presentKeys(doc: PackageSource, keyringDir: string): Promise<string[]> {
  const name = doc.spec.gpgKey?.name;
  if (name === undefined || badName(name) !== undefined) return [];
  const found: string[] = [];
  for (const n of keyNames(name)) if (await exists(join(keyringDir, n))) found.push(n);
  return found;
}

/** A step's error as the reference reports it: 400, saying it came from changing sources; the retry verdict stays. */
function wrapped(err: unknown): InbmError {
  if (err instanceof InbmError)
    return err.reason.startsWith(ERROR_PREFIX)
      ? err
      : new InbmError(Status.INSTALL_FAILED, `${ERROR_PREFIX}: ${err.reason}`, err.retryable, { cause: err });
  const e = err as NodeJS.ErrnoException;
  return new InbmError(Status.INSTALL_FAILED, `${ERROR_PREFIX}: ${e.code ?? 'error'}${e.path ? ` on ${e.path}` : ''}`, false, {
    cause: err,
  });
}

export function packageSourceReconciler(opts: PackageSourceOptions): Reconciler<PackageSource, SourceObserved, SourceStep> {
  const paths: SourcePaths = { sourcesList: opts.sourcesList, sourcesDir: opts.sourcesDir, keyringDir: opts.keyringDir };
  return {
    kind: 'PackageSource',
    async observe(doc, { journal }) {
      if (!doc) return { keys: [] };
      const requestId = requestIdOf(doc);
      const completed = requestId ? journal.completed(requestId) : undefined;
      return {
        text: await readText(targetPath(doc, paths)),
        keys: await presentKeys(doc, paths.keyringDir),
        ...(completed ? { completed } : {}),
      };
    },
    plan: (doc, observed) => planPackageSource(doc, observed, paths),
    prune: (doc, observed) => prunePackageSource(doc, observed, paths),
    async execute(step, _doc, { log }) {
      try {
        switch (step.type) {
          case 'write':
            await writeFileAtomic(step.path, step.text, 0o644);
            return;
          case 'remove':
          case 'remove-key':
            await rm(step.path, { force: true });
            return;
          case 'fetch-key': {
            const { file, changed } = await installKey(step.url, step.name, { ...opts, keyringDir: paths.keyringDir });
            log.info({ key: file, changed }, changed ? 'signing key stored' : 'signing key unchanged');
            return;
          }
        }
      } catch (err) {
        throw wrapped(err);
      }
    },
  };
}
