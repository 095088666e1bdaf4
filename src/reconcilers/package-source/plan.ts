/**
 * PackageSource planning, pure: what the observed files hold against what the document asks
 * gives the writes and removals to make. Each dropped manifest is answered once (its request
 * id), even when the device already holds what it asks.
 */
import { join } from 'node:path';
import type { Plan, Step } from '../../controller/types.js';
import { InbmError, ok, type Result, Status } from '../../core/result.js';
import type { DocumentOf } from '../../desired/kinds/index.js';
import { addLines, hasControl, LineError, removeLines, renderDeb822, renderOneLine } from './sources-file.js';

export type PackageSource = DocumentOf<'PackageSource'>;

export interface SourcePaths {
  /** /etc/apt/sources.list */
  sourcesList: string;
  /** /etc/apt/sources.list.d */
  sourcesDir: string;
  /** /usr/share/keyrings */
  keyringDir: string;
}

export interface SourceObserved {
  /** The target file's text; undefined = it does not exist (or the document names no valid file). */
  text?: string;
  /** Key files of the document's key name (or its .gpg/.asc twin) now in the keyring folder. */
  keys: string[];
  /** This request was answered already. */
  completed?: { status: number; message: string };
}

export type SourceStep =
  | (Step & { type: 'write'; path: string; text: string })
  | (Step & { type: 'remove'; path: string })
  | (Step & { type: 'fetch-key'; url: string; name: string })
  | (Step & { type: 'remove-key'; path: string });

export const SUCCESS = 'SUCCESS';
export const ERROR_PREFIX = 'Error changing sources files';

export const requestIdOf = (doc: PackageSource): string | undefined => doc.metadata.annotations?.['inbm.dev/request-id'];

/** Why a file or key name cannot be used, or undefined: it must stay a plain name in its folder. */
export function badName(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return 'is required';
  if (/[/\\]/.test(value)) return `"${value}" must not contain a path separator`;
  if (value.includes('..')) return `"${value}" must not contain ".."`;
  if (value === '.' || value.startsWith('.')) return `"${value}" must not start with "."`;
  if (hasControl(value)) return 'must not contain control characters';
  return undefined;
}

/** The file this document edits, once its name is known to be safe. */
export function targetPath(doc: PackageSource, paths: SourcePaths): string | undefined {
  if (doc.spec.target === 'os') return paths.sourcesList;
  const { filename } = doc.spec;
  return filename !== undefined && badName(filename) === undefined ? join(paths.sourcesDir, filename) : undefined;
}

const refusal = (reason: string) => new InbmError(Status.INSTALL_FAILED, `${ERROR_PREFIX}: ${reason}`);

/** The steps that make the files hold the document; throws a refusal for what cannot be done. */
function stepsFor(doc: PackageSource, o: SourceObserved, paths: SourcePaths): SourceStep[] {
  // A manifest's add fetches the key again (it may have changed); a standing document only when it is missing.
  const fresh = requestIdOf(doc) !== undefined;
  const { target, ensure, lines, filename, gpgKey } = doc.spec;
  const path = targetPath(doc, paths);
  const write = (text: string | undefined, what: string): SourceStep[] =>
    text === undefined || text === o.text ? [] : [{ id: 'write', type: 'write', path: path!, text, description: `${what} ${path}` }];
  if (target === 'os') {
    if (filename !== undefined) throw refusal('filename: only application sources name a file');
    if (gpgKey) throw refusal('gpgKey: only application sources carry a key');
    if (ensure === 'exact') return write(renderOneLine(lines), `set ${lines.length} line(s) of`);
    if (ensure === 'present') return write(addLines(o.text, lines), 'add lines to');
    return write(removeLines(o.text, lines), 'remove lines from');
  }
  const nameProblem = badName(filename);
  if (nameProblem) throw refusal(`filename ${nameProblem}`);
  if (gpgKey) {
    const keyProblem = badName(gpgKey.name);
    if (keyProblem) throw refusal(`gpgKey.name ${keyProblem}`);
  }
  if (ensure === 'absent') {
    const steps: SourceStep[] = [];
    if (o.text !== undefined) steps.push({ id: 'remove', type: 'remove', path: path!, description: `remove ${path}` });
    for (const k of o.keys)
      steps.push({ id: `remove-key-${k}`, type: 'remove-key', path: join(paths.keyringDir, k), description: `remove key ${k}` });
    return steps;
  }
  if (!/\.(list|sources)$/.test(filename!)) throw refusal(`filename "${filename}" must end in .list or .sources (apt reads no other file)`);
  if (lines.length === 0) throw refusal('lines: an application source needs at least one line');
  const text = filename!.endsWith('.sources') ? renderDeb822(lines) : renderOneLine(lines);
  const steps: SourceStep[] = [];
  // The key first: a source whose key is missing makes apt-get update fail for every source.
  if (gpgKey?.url && (o.keys.length === 0 || fresh)) {
    steps.push({ id: 'fetch-key', type: 'fetch-key', url: gpgKey.url, name: gpgKey.name, description: `fetch key ${gpgKey.name}` });
  } else if (gpgKey && o.keys.length === 0) {
    throw refusal(`gpgKey.url is needed: key ${gpgKey.name} is not in ${paths.keyringDir}`);
  }
  return [...steps, ...write(text, 'write')];
}

/** Pure: from the observed files to the steps, with the answer for the request that asked. */
export function planPackageSource(doc: PackageSource | undefined, o: SourceObserved, paths: SourcePaths): Plan<SourceStep> {
  if (!doc) return { steps: [], outcome: { phase: 'Ready', reason: 'NotManaged', message: 'document removed; sources left as they are' } };
  const requestId = requestIdOf(doc);
  if (requestId && o.completed) {
    const phase = o.completed.status === 200 ? 'Ready' : 'Failed';
    return { steps: [], outcome: { phase, reason: 'Completed', message: o.completed.message } };
  }
  const answer = (result: Result) => (requestId ? { complete: { requestId, result } } : {});
  let steps: SourceStep[];
  try {
    steps = stepsFor(doc, o, paths);
  } catch (err) {
    const refused = err instanceof LineError ? refusal(err.message) : err;
    if (!(refused instanceof InbmError)) throw err;
    const result = refused.toResult();
    return { steps: [], ...answer(result), outcome: { phase: 'Stalled', reason: 'Refused', message: result.message, result } };
  }
  const result = ok(SUCCESS);
  if (steps.length === 0 && !requestId)
    return { steps, outcome: { phase: 'Ready', reason: 'UpToDate', message: `${describe(doc)} already as asked` } };
  return {
    steps,
    ...answer(result),
    outcome: { phase: 'Ready', reason: steps.length > 0 ? 'Applied' : 'UpToDate', message: `${describe(doc)}: ${SUCCESS}`, result },
  };
}

/** Pure: undo a removed document that asked to be pruned: its lines, or its file and key, go; nothing else. */
export function prunePackageSource(doc: PackageSource, o: SourceObserved, paths: SourcePaths): Plan<SourceStep> {
  const { ensure, gpgKey } = doc.spec;
  if (ensure !== 'present')
    return { steps: [], outcome: { phase: 'Ready', reason: 'Pruned', message: `removed; nothing to undo for ensure ${ensure}` } };
  const undo: PackageSource = {
    ...doc,
    metadata: { ...doc.metadata, annotations: {} },
    spec: { ...doc.spec, ensure: 'absent', ...(gpgKey ? { gpgKey: { name: gpgKey.name } } : {}) },
  };
  const plan = planPackageSource(undo, o, paths);
  return plan.outcome.phase === 'Ready'
    ? { ...plan, outcome: { ...plan.outcome, reason: 'Pruned', message: `pruned: ${describe(doc)} undone` } }
    : plan;
}

export const describe = (doc: PackageSource): string =>
  doc.spec.target === 'os' ? `os sources (${doc.spec.ensure})` : `application source ${doc.spec.filename ?? '?'} (${doc.spec.ensure})`;
