/**
 * The desired-state directory: YAML/JSON documents and INBM XML manifests dropped by atomic
 * rename. A file that fails to parse never replaces the last good state of what it named.
 */
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../core/atomic.js';
import type { Logger } from '../core/log.js';
import { badManifest, InbmError, installFailed, type Result, resultOf, Status } from '../core/result.js';
import { readJson, type StatusWriter } from '../status/files.js';
import { parseDocuments } from './document.js';
import type { Document } from './kinds/index.js';
import { shortHash } from './names.js';
import type { Query } from './query.js';
import { type Secret, writeSecret } from './secrets.js';
import { manifestToDesired } from './translate/index.js';

export interface Entry {
  doc: Document;
  generation: number;
  source: string;
  file: string;
  /** Removed, but it asked to be pruned: kept until its reconciler has undone it. */
  deleted?: true;
}

/** A document with this annotation set to "true" is undone on the device when it is removed. */
export const PRUNE = 'inbm.dev/prune';

interface IndexRecord {
  generation: number;
  spec: string;
}

export const keyOf = (doc: { kind: string; metadata: { name: string } }) => `${doc.kind}/${doc.metadata.name}`;
const ignored = (file: string) => {
  const b = basename(file);
  return b.startsWith('.') || b.endsWith('.tmp') || b.endsWith('~') || b.endsWith('.swp') || b.endsWith('.part');
};

export class DesiredStore {
  private readonly entries = new Map<string, Entry>();
  private readonly byFile = new Map<string, string[]>();
  private readonly settledKeys = new Set<string>();
  /** file → stat signature of the version last loaded */
  private readonly seen = new Map<string, string>();
  private readonly queue = new Map<string, Promise<void>>();
  private readonly rechecks = new Set<NodeJS.Timeout>();
  private index: Record<string, IndexRecord> = {};
  private watcher: { close(): Promise<void> } | undefined;

  constructor(
    private readonly dir: string,
    private readonly stateDir: string,
    private readonly status: StatusWriter,
    private readonly log: Logger,
    private readonly onChange: (key: string) => void,
    /** Asked before an XML manifest is taken: returns a result (303) to refuse it while busy. */
    private readonly admitManifest: () => Result | undefined = () => undefined,
    /** Answers query manifests (device, config get, docker stats/list, compose list). */
    private readonly answer?: (query: Query) => Promise<Result>,
    /**
     * Asked before the busy check: a request that acts on the running one (a SOTA cancel) is
     * answered here, since it must get through exactly while the mutation slot is taken.
     */
    private readonly interrupt?: (documents: Document[]) => Result | undefined,
  ) {}

  get(key: string): Entry | undefined {
    return this.entries.get(key);
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  async start(): Promise<void> {
    this.index = (await readJson<Record<string, IndexRecord>>(join(this.stateDir, 'desired-index.json'))) ?? {};
    const { watch } = await import('chokidar');
    const watcher = watch(this.dir, { depth: 0, ignoreInitial: false, ignored: (p: string) => p !== this.dir && ignored(p) });
    // chokidar drops a second change to the same path within ~50 ms: every event also schedules
    // a stat check shortly after, and rescan() (on the resync timer) compares the whole directory.
    watcher.on('add', (p: string) => this.changed(p));
    watcher.on('change', (p: string) => this.changed(p));
    watcher.on('unlink', (p: string) => this.changed(p));
    watcher.on('error', (err: unknown) => this.log.error({ err }, 'watch error'));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    this.watcher = watcher;
  }

  async stop(): Promise<void> {
    await this.watcher?.close();
    for (const t of this.rechecks) clearTimeout(t);
    await Promise.all(this.queue.values());
  }

  private changed(path: string): void {
    void this.check(path);
    const t = setTimeout(() => {
      this.rechecks.delete(t);
      void this.check(path);
    }, RECHECK_MS);
    this.rechecks.add(t);
  }

  /** Compares every file with what was loaded from it; catches what the watcher missed. */
  async rescan(): Promise<void> {
    const files = (await readdir(this.dir).catch(() => [] as string[])).filter((f) => !ignored(f));
    const gone = [...this.seen.keys()].filter((f) => !files.includes(f));
    await Promise.all([...files, ...gone].map((f) => this.check(join(this.dir, f))));
  }

  /** Loads, reloads or unloads one file if it differs from what was last taken from it (one at a time per file). */
  private check(path: string): Promise<void> {
    const file = basename(path);
    const next = (this.queue.get(file) ?? Promise.resolve()).then(async () => {
      const st = await stat(path).catch(() => undefined);
      if (!st) {
        if (this.seen.has(file)) await this.unload(path);
        return;
      }
      const signature = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (this.seen.get(file) === signature) return;
      this.seen.set(file, signature);
      await this.load(path);
    });
    const settled = next.catch((err: unknown) => this.log.error({ err, file }, 'could not load'));
    this.queue.set(file, settled);
    return settled;
  }

  /** Reads one dropped file; on any error its status says why and earlier documents stay. */
  async load(path: string): Promise<void> {
    const file = basename(path);
    const log = this.log.child({ file });
    let docs: Document[];
    try {
      docs = await this.documentsOf(path);
    } catch (err) {
      if (err instanceof Answered) {
        await this.status.fileResult(file, err.result);
        await this.archive(file);
        return;
      }
      if (err instanceof QueryRequest) {
        const result = this.answer ? await this.answer(err.query) : badManifest(`${file}: queries are not answered here`).toResult();
        await this.status.fileResult(file, result);
        await this.archive(file);
        return;
      }
      const result = resultOf(err instanceof InbmError ? err : badManifest(`${file}: ${(err as Error).message}`));
      log.warn({ status: result.status, message: result.message }, 'file refused');
      await this.status.fileResult(file, result);
      // A request answered busy is finished: left in place it would run after a restart.
      if (result.status === Status.IN_PROGRESS) await this.archive(file);
      return;
    }
    const keys = docs.map(keyOf);
    // A request is one-shot: a second one for a resource whose request has not settled would
    // replace it unseen. The reference answers busy; so do we, and the first runs to its end.
    const holder = file.endsWith('.xml')
      ? keys.map((k) => this.entries.get(k)?.file).find((f) => f?.endsWith('.xml') && f !== file)
      : undefined;
    if (holder) {
      const result = new InbmError(
        Status.IN_PROGRESS,
        `${file}: the request in ${holder} for the same resource has not finished`,
      ).toResult();
      log.warn({ status: result.status, holder }, 'file refused');
      await this.status.fileResult(file, result);
      await this.archive(file);
      return;
    }
    for (const old of this.byFile.get(file) ?? []) if (!keys.includes(old)) this.drop(old);
    this.byFile.set(file, keys);
    let indexChanged = false;
    const accepted: Array<{ key: string; generation: number }> = [];
    for (const doc of docs) {
      const key = keyOf(doc);
      // A new request identity (each manifest drop) is a new generation even with the same spec.
      const spec = JSON.stringify([doc.spec, doc.metadata.annotations?.['inbm.dev/request-id'] ?? null]);
      const prev = this.index[key];
      const generation = prev && prev.spec === spec ? prev.generation : (prev?.generation ?? 0) + 1;
      if (!prev || prev.generation !== generation) {
        this.index[key] = { generation, spec };
        indexChanged = true;
      }
      doc.metadata.generation = generation;
      const source = doc.metadata.annotations?.['inbm.dev/source'] ?? 'file';
      this.entries.set(key, { doc, generation, source, file });
      accepted.push({ key, generation });
    }
    if (indexChanged) await writeFileAtomic(join(this.stateDir, 'desired-index.json'), JSON.stringify(this.index));
    await this.status.fileAccepted(file, accepted);
    for (const { key } of accepted) this.onChange(key);
  }

  private async documentsOf(path: string): Promise<Document[]> {
    const text = await readFile(path, 'utf8');
    const file = basename(path);
    let requestId: string | undefined;
    if (isManifest(text)) {
      // Each drop of a manifest is a new request, even with the same content (a second restart
      // must restart again); re-reading the same drop after a crash gives the same identity.
      const st = await stat(path);
      requestId = `f-${shortHash(`${file}\0${st.ino}\0${st.mtimeMs}\0${text}`, 16)}`;
    }
    const { documents, secrets } = documentsFromText(text, file, requestId);
    const interrupted = requestId ? this.interrupt?.(documents) : undefined;
    if (interrupted) throw new Answered(interrupted);
    // Only a change waits for the one mutation slot; a query (thrown above) never does.
    if (requestId) {
      const busy = this.admitManifest();
      if (busy) throw new InbmError(Status.IN_PROGRESS, busy.message);
    }
    for (const secret of secrets) await writeSecret(join(this.stateDir, 'secrets'), secret);
    return documents;
  }

  /**
   * A manifest is a request, not lasting intent: once its resources settle (done, refused or
   * failed) the file moves to <state>/applied/ and its documents stop being managed, leaving
   * the device as the request made it — the reference's imperative meaning.
   */
  async settled(key: string, phase: string, source?: { file?: string; generation: number }): Promise<void> {
    const entry = this.entries.get(key);
    // The pass was for an older drop than the one now holding the key: that drop is not done.
    if (!entry || (source && (source.file !== entry.file || source.generation !== entry.generation))) return;
    if (!entry.file.endsWith('.xml') || !['Ready', 'Stalled', 'Failed'].includes(phase)) return;
    const keys = this.byFile.get(entry.file) ?? [];
    this.settledKeys.add(key);
    if (!keys.every((k) => this.settledKeys.has(k))) return;
    for (const k of keys) {
      this.entries.delete(k);
      this.settledKeys.delete(k);
    }
    this.byFile.delete(entry.file);
    // A newer drop under the same name is a new request: leave it for the watcher.
    const st = await stat(join(this.dir, entry.file)).catch(() => undefined);
    if (!st || this.seen.get(entry.file) !== `${st.ino}:${st.size}:${st.mtimeMs}`) return;
    await this.archive(entry.file);
  }

  /** The archive keeps a finished request for the record, never its passwords (they live in secrets/). */
  private async archive(file: string): Promise<void> {
    const from = join(this.dir, file);
    try {
      const text = await readFile(from, 'utf8');
      await writeFileAtomic(join(this.stateDir, 'applied', file), redactManifest(text), 0o600);
      await rm(from, { force: true });
    } catch (err) {
      this.log.warn({ err, file }, 'could not archive');
    }
  }

  private async unload(path: string): Promise<void> {
    const file = basename(path);
    this.seen.delete(file);
    const keys = this.byFile.get(file);
    if (!keys) return; // archived after settling, or never accepted
    await this.status.fileGone(file);
    for (const key of keys) this.drop(key);
    this.byFile.delete(file);
  }

  private drop(key: string): void {
    const entry = this.entries.get(key);
    if (entry && !entry.deleted && entry.doc.metadata.annotations?.[PRUNE] === 'true') this.entries.set(key, { ...entry, deleted: true });
    else this.entries.delete(key);
    this.onChange(key);
  }

  /** The controller has pruned a removed document: forget it. */
  forget(key: string): void {
    if (this.entries.get(key)?.deleted) this.entries.delete(key);
  }
}

const RECHECK_MS = 100;

/** A request answered at once by the interrupt hook, never stored. */
class Answered {
  constructor(readonly result: Result) {}
}

/** A dropped manifest that asks instead of changes: answered, never stored. */
export class QueryRequest {
  constructor(readonly query: Query) {}
}

/** Manifest elements that carry credentials, blanked in anything we keep. */
export const redactManifest = (xml: string): string =>
  xml.replace(/<(password|dockerPassword|username|dockerUsername)>[^<]*<\/\1>/g, '<$1>[redacted]</$1>');
const isManifest = (text: string) => text.trimStart().startsWith('<');

/** The documents a dropped file holds (XML manifests translated), and the secrets they refer to. */
export function documentsFromText(text: string, file: string, requestId?: string): { documents: Document[]; secrets: Secret[] } {
  if (!isManifest(text)) return { documents: parseDocuments(text, file), secrets: [] };
  const t = manifestToDesired(text, { source: 'file', ...(requestId ? { requestId } : {}) });
  if (t.type === 'query') throw new QueryRequest(t.query);
  // Valid manifests this agent does not carry out: refused at install time, never half-run.
  if (t.type === 'schedule') {
    throw installFailed(
      `schedule ${t.requestId} (${t.jobs.length} job${t.jobs.length === 1 ? '' : 's'}): scheduled requests are not run by this agent; send each manifest as its own request`,
    );
  }
  if (t.type !== 'documents') throw installFailed(`a ${t.type} manifest is not handled by this agent`);
  // Re-validated through the kind so defaults apply exactly as for a YAML document.
  return { documents: t.documents.map((d, i) => parseDocuments(JSON.stringify(d), `${file}[${i}]`)[0]!), secrets: t.secrets };
}

/** Every document in the desired-state directory, skipping refused files (for `inbm plan`). */
export async function readDesiredDir(
  dir: string,
): Promise<{ entries: Map<string, { doc: Document; generation: number; source: string }>; refused: string[] }> {
  const entries = new Map<string, { doc: Document; generation: number; source: string }>();
  const refused: string[] = [];
  for (const file of (await readdir(dir).catch(() => [] as string[])).sort()) {
    if (ignored(file)) continue;
    try {
      for (const doc of documentsFromText(await readFile(join(dir, file), 'utf8'), file).documents) {
        entries.set(keyOf(doc), {
          doc,
          generation: doc.metadata.generation ?? 1,
          source: doc.metadata.annotations?.['inbm.dev/source'] ?? 'file',
        });
      }
    } catch (err) {
      refused.push(`${file}: ${resultOf(err).message}`);
    }
  }
  return { entries, refused };
}
