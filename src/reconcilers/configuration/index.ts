/**
 * Configuration documents → /etc/intel_manageability.conf. set/append/remove are declarative
 * (each pass makes the file hold them); load replaces the whole file once per requestId. The
 * whole resulting file is validated before it replaces the old one, which is kept as a backup.
 */
import { copyFile, readFile, rm, stat } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plan, Reconciler, Step } from '../../controller/types.js';
import { writeFileAtomic } from '../../core/atomic.js';
import { InbmError, ok, Status } from '../../core/result.js';
import type { DocumentOf } from '../../desired/kinds/index.js';
import { download } from '../../drivers/download/fetch.js';
import { checkSignature, type HashAlgorithm, loadVerifyKey } from '../../drivers/download/signature.js';
import { applyChanges, type Conf, type ConfChanges, DEFAULT_CONF, getValues, parseConf, sameConf, serializeConf } from './conffile.js';

type Configuration = DocumentOf<'Configuration'>;

export interface ConfigurationOptions {
  confFile: string;
  /** Local load paths must be directly under this directory (as in the reference); downloads land here. */
  cacheDir: string;
  /** When this file exists, a load must carry a valid signature. */
  otaCertFile?: string;
}

/** `base`: the identity of the file the text was computed from; the write is refused if it changed since. */
export type ConfigStep = Step & { type: 'write'; text: string; base?: string };

export interface ConfigObserved {
  conf?: Conf;
  /** dev:ino:size:mtime:ctime of the file `conf` was read from. */
  confId?: string;
  error?: InbmError;
  /** For a load: the new file's text, already read and validated (or why it cannot be). */
  load?: { text?: string; error?: InbmError; done: boolean };
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

const verb = (doc: Configuration) => (doc.spec.set ? 'set_element' : doc.spec.append ? 'append' : 'remove');

/** Pure: the write that makes the file hold the document, or why it cannot. */
export function planConfiguration(doc: Configuration | undefined, o: ConfigObserved): Plan<ConfigStep> {
  if (!doc) return { steps: [], outcome: { phase: 'Ready', reason: 'NotManaged', message: 'document removed; file left as it is' } };
  const stalled = (err: InbmError): Plan<ConfigStep> => ({
    steps: [],
    outcome: { phase: 'Stalled', reason: `Result${err.status}`, message: err.message, result: err.toResult() },
    ...(doc.spec.load && !o.load?.done ? { complete: { requestId: doc.spec.load.requestId, result: err.toResult() } } : {}),
  });
  const { load, ...changes } = doc.spec;
  if (load && o.load && !o.load.done) {
    if (o.load.error || o.load.text === undefined)
      return stalled(o.load.error ?? new InbmError(Status.INSTALL_FAILED, 'Configuration load: FAILED'));
    const result = ok('Configuration load: SUCCESSFUL');
    return {
      steps: [{ id: 'load', type: 'write', text: o.load.text, description: 'replace the configuration file' }],
      runId: load.requestId,
      complete: { requestId: load.requestId, result },
      // set/append/remove in the same document are applied by the next pass, on the new file.
      outcome: { phase: 'Ready', reason: 'Loaded', message: result.message, result, requeueAfterMs: 0 },
    };
  }
  if (!changes.set && !changes.append && !changes.remove)
    return { steps: [], outcome: { phase: 'Ready', reason: 'UpToDate', message: 'nothing to change' } };
  if (!o.conf) return stalled(new InbmError(Status.COMMAND_FAILURE, `configuration file cannot be read: ${o.error?.reason ?? 'unknown'}`));
  if (holds(o.conf, changes))
    return { steps: [], outcome: { phase: 'Ready', reason: 'UpToDate', message: 'configuration holds the desired values' } };
  let next: Conf;
  try {
    next = applyChanges(o.conf, changes);
  } catch (err) {
    if (!(err instanceof InbmError)) throw err;
    return stalled(new InbmError(Status.INSTALL_FAILED, `Configuration ${verb(doc)} command: FAILED: ${err.reason}`));
  }
  if (sameConf(o.conf, next))
    return { steps: [], outcome: { phase: 'Ready', reason: 'UpToDate', message: 'configuration holds the desired values' } };
  const result = ok(`Configuration ${verb(doc)} command: SUCCESSFUL`);
  return {
    steps: [
      {
        id: 'write',
        type: 'write',
        text: serializeConf(next),
        ...(o.confId ? { base: o.confId } : {}),
        description: `write ${Object.keys({ ...changes.set, ...changes.append, ...changes.remove }).join(', ')}`,
      },
    ],
    outcome: { phase: 'Ready', reason: 'Applied', message: result.message, result },
  };
}

const DEFAULTS = parseConf(DEFAULT_CONF);

/** Pure: undo a removed document — keys it set go back to the shipped defaults, entries it appended go. */
export function pruneConfiguration(doc: Configuration, o: ConfigObserved): Plan<ConfigStep> {
  const set = doc.spec.set ? getValues(DEFAULTS, Object.keys(doc.spec.set)) : undefined;
  const undo = { ...doc, spec: { ...(set ? { set } : {}), ...(doc.spec.append ? { remove: doc.spec.append } : {}) } };
  const plan = planConfiguration(undo, o);
  const message = `pruned: ${plan.steps.length > 0 ? 'restored' : 'already at'} ${Object.keys({ ...doc.spec.set, ...doc.spec.append }).join(', ') || 'nothing'}`;
  return {
    ...plan,
    outcome: {
      ...plan.outcome,
      reason: plan.outcome.phase === 'Ready' ? 'Pruned' : plan.outcome.reason,
      message: plan.outcome.phase === 'Ready' ? message : plan.outcome.message,
    },
  };
}

/**
 * Cheap check that the file already says what the document asks, without rebuilding it; any
 * doubt (unknown key, a value written differently) falls through to the full apply-and-compare.
 */
function holds(conf: Conf, changes: ConfChanges): boolean {
  try {
    const keys = [...Object.keys(changes.set ?? {}), ...Object.keys(changes.append ?? {}), ...Object.keys(changes.remove ?? {})];
    const now = getValues(conf, keys);
    const list = (k: string) => (now[k] ?? '').split('\n');
    return (
      Object.entries(changes.set ?? {}).every(([k, v]) => now[k] === v) &&
      Object.entries(changes.append ?? {}).every(([k, vs]) => vs.every((v) => list(k).includes(v))) &&
      Object.entries(changes.remove ?? {}).every(([k, vs]) => vs.every((v) => !list(k).includes(v)))
    );
  } catch {
    return false;
  }
}

const REUSE_MS = 20;

export function configurationReconciler(opts: ConfigurationOptions): Reconciler<Configuration, ConfigObserved, ConfigStep> {
  // The last parsed file, reused while a stat says it is the same file (a stat costs far less
  // than read + parse + validate, which every converged resource would otherwise repeat). The
  // stat comes before the read: a change in between only makes the next pass read again.
  let cached: { id: string; conf: Conf; at: number } | undefined;
  const fileId = async (): Promise<string | undefined> => {
    const s = await stat(opts.confFile, { bigint: true }).catch(() => undefined);
    return s && `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  };
  // A resync looks at every resource in a burst; within REUSE_MS the last stat stands in for a
  // new one. Staleness cannot lose an edit: a write re-checks the file identity (step.base).
  const readConf = async (): Promise<{ conf: Conf; id?: string }> => {
    if (cached && performance.now() - cached.at < REUSE_MS) return cached;
    const id = await fileId();
    if (id !== undefined && cached?.id === id) {
      cached.at = performance.now();
      return cached;
    }
    cached = undefined;
    // Without a stat, read anyway: the read reports the error as it always has.
    const conf = parseConf(await readFile(opts.confFile, 'utf8'));
    if (id !== undefined) cached = { id, conf, at: performance.now() };
    return { conf, ...(id ? { id } : {}) };
  };
  return {
    kind: 'Configuration',
    async observe(doc, { journal }) {
      const observed: ConfigObserved = {};
      try {
        const { conf, id } = await readConf();
        observed.conf = conf;
        if (id) observed.confId = id;
      } catch (err) {
        observed.error = err instanceof InbmError ? err : new InbmError(Status.COMMAND_FAILURE, (err as Error).message);
      }
      const load = doc?.spec.load;
      if (load) {
        const done = journal.completed(load.requestId) !== undefined;
        observed.load = { done };
        if (!done) {
          try {
            const text = await readLoadSource(load.source, opts, observed.conf);
            parseConf(text); // the whole new file must be valid before it replaces anything
            observed.load.text = text;
          } catch (err) {
            if (!(err instanceof InbmError)) throw err;
            observed.load.error = new InbmError(Status.INSTALL_FAILED, `Configuration load: FAILED. Error: ${err.reason}`);
          }
        }
      }
      return observed;
    },
    plan: (doc, observed) => planConfiguration(doc, observed),
    prune: (doc, observed) => pruneConfiguration(doc, observed),
    async execute(step) {
      if (step.base && step.base !== (await fileId())) {
        cached = undefined;
        throw new InbmError(Status.COMMAND_FAILURE, 'the configuration file changed while the change was planned; planning again', true);
      }
      cached = undefined;
      await copyFile(opts.confFile, `${opts.confFile}_bak`).catch(() => {});
      await writeFileAtomic(opts.confFile, step.text);
    },
  };
}

interface LoadSource {
  url?: string | undefined;
  path?: string | undefined;
  signature?: string | undefined;
  hashAlgorithm?: HashAlgorithm | undefined;
}

/**
 * The new file's text: a local file directly under the cache directory (as the reference
 * demands), or a download from a trusted repository. With an OTA certificate provisioned the
 * signature is mandatory and checked before the text is used.
 */
async function readLoadSource(source: LoadSource, opts: ConfigurationOptions, conf: Conf | undefined): Promise<string> {
  let path = source.path;
  let downloaded = false;
  if (source.url?.startsWith('file:')) path = fileURLToPath(source.url);
  else if (source.url) {
    const trusted = conf ? getValues(conf, ['trustedRepositories']).trustedRepositories!.split('\n').filter(Boolean) : [];
    path = (await download(source.url, { dir: opts.cacheDir, trusted, name: `config-load-${process.pid}.conf` })).path;
    downloaded = true;
  }
  const full = resolve(path ?? '');
  try {
    if (!downloaded && relative(opts.cacheDir, dirname(full)) !== '') {
      throw new InbmError(Status.INSTALL_FAILED, `Invalid configuration load path. The conf file is expected to be under ${opts.cacheDir}`);
    }
    const cert = opts.otaCertFile && (await stat(opts.otaCertFile).catch(() => undefined)) ? opts.otaCertFile : undefined;
    if (cert) await checkSignature(full, source.signature, await loadVerifyKey(cert), source.hashAlgorithm);
    return await readFile(full, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new InbmError(Status.INSTALL_FAILED, `cannot read ${full}: ${err.code ?? err.message}`);
    });
  } finally {
    if (downloaded) await rm(full, { force: true });
  }
}
