/**
 * ComposeStack: a docker-compose project running, stopped (down) or absent (down, images
 * removed, files gone). Each version of the stack lives in its own directory,
 * `<cacheDir>/compose/<project>/<generation>`. A new version is brought up over the old one,
 * soaked, and committed (the old directory removed) only if every container of the project
 * stayed up (and those with a health check are healthy); otherwise it is taken down and the previous directory brought up again.
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { healthSettleMs, soak } from '../../controller/gates/index.js';
import type { JournalView } from '../../controller/journal.js';
import type { ExecuteContext, Plan, Reconciler, Step } from '../../controller/types.js';
import { writeFileAtomic } from '../../core/atomic.js';
import { InbmError, ok, Status } from '../../core/result.js';
import type { DocumentOf } from '../../desired/kinds/index.js';
import { type ComposeDriver, composeProjectName, locateStack, type StackLocation } from '../../drivers/compose.js';
import type { ComposeEngine, StackContainer } from '../../drivers/compose-state.js';
import { extract } from '../../drivers/download/archive.js';
import { download } from '../../drivers/download/fetch.js';

type ComposeStack = DocumentOf<'ComposeStack'>;

/** What to do if a rollout's new version does not come up or stay up. */
export interface Rollback {
  /** The version to bring up again, if there is one. */
  previous?: number;
  /** Whether the stack was up (in any version) when the rollout began: a stopped stack stays down. */
  restore: boolean;
  /** The new version's directory was fetched by this rollout: remove it. */
  discard: boolean;
}

export type StackStep = Step & {
  type: 'fetch' | 'pull' | 'up' | 'soak' | 'commit' | 'down' | 'remove' | 'purge';
  /** The version (stack directory) the step works on. */
  version?: number;
  /** commit: the directories of the versions to remove. */
  versions?: number[];
  /** up and soak of a rollout. */
  rollback?: Rollback;
};

export interface StackObserved {
  /** The project's containers, found by the com.docker.compose.project label. */
  containers: StackContainer[];
  /** Versions whose directory is present, ascending. */
  versions: number[];
  /** The result of this generation's rollout, once it finished. */
  rollout?: { status: number; message: string };
  /** This rollout's fetch step began (journal): the new version's directory is its own even if present now. */
  fetched?: boolean;
  /**
   * How this rollout rolls back, recorded before its `up` changed anything: resumed after a kill
   * (a rollback cut short included) the engine no longer shows what was running before.
   */
  rollback?: Rollback;
}

export interface ComposeStackOptions {
  compose: ComposeDriver;
  engine: ComposeEngine;
  cacheDir: string;
  trusted: () => Promise<string[]>;
  credentials: (secretRef: string) => Promise<{ username: string; password: string }>;
}

const generationOf = (doc: ComposeStack) => doc.metadata.generation ?? 0;
export const runIdOf = (doc: ComposeStack) => `rollout-g${generationOf(doc)}`;
const projectOf = (doc: ComposeStack) => composeProjectName(doc.spec.project);
const step = (type: StackStep['type'], description: string, extra: Partial<StackStep> = {}): StackStep => ({
  id: type,
  type,
  description,
  ...extra,
});

/**
 * Running means: at least one container, every one running and none unhealthy. A health check
 * still starting is no failure yet, but no pass either (`pending`): the soak waits for it.
 */
export function stackHealth(containers: readonly StackContainer[]): { ok: boolean; pending?: boolean; message: string } {
  if (containers.length === 0) return { ok: false, message: 'no containers' };
  const down = containers.find((c) => !c.running);
  if (down) return { ok: false, message: `${down.service || down.name} exited with code ${down.exitCode}` };
  const sick = containers.find((c) => c.health === 'unhealthy');
  if (sick) return { ok: false, message: `${sick.service || sick.name} is unhealthy` };
  const starting = containers.filter((c) => c.health === 'starting').map((c) => c.service || c.name);
  if (starting.length > 0) return { ok: true, pending: true, message: `health of ${starting.join(', ')} is starting` };
  return { ok: true, message: `${containers.length} container(s) running` };
}

/** Pure: the steps from what the engine and the cache show to what the document asks. */
export function planComposeStack(doc: ComposeStack | undefined, o: StackObserved): Plan<StackStep> {
  if (!doc) return { steps: [], outcome: { phase: 'Ready', reason: 'NotManaged', message: 'document removed; stack left as it is' } };
  const project = projectOf(doc);
  const newest = o.versions.at(-1);
  const at = (v: number | undefined) => (v === undefined ? {} : { version: v });

  if (doc.spec.ensure === 'absent') {
    if (o.containers.length === 0 && o.versions.length === 0)
      return { steps: [], outcome: { phase: 'Ready', reason: 'Absent', message: `${project} is absent` } };
    const steps = [step('remove', `down ${project} and remove its images`, at(newest))];
    if (o.versions.length > 0) steps.push(step('purge', `remove the files of ${project}`, { versions: o.versions }));
    const result = ok('AOTA compose remove COMMAND SUCCESSFUL');
    return { steps, outcome: { phase: 'Ready', reason: 'Removed', message: result.message, result } };
  }

  if (doc.spec.ensure === 'stopped') {
    if (o.containers.length === 0) return { steps: [], outcome: { phase: 'Ready', reason: 'Stopped', message: `${project} is down` } };
    const result = ok('AOTA compose down COMMAND SUCCESSFUL');
    return {
      steps: [step('down', `down ${project}`, at(newest))],
      outcome: { phase: 'Ready', reason: 'Stopped', message: result.message, result },
    };
  }

  if (o.rollout && o.rollout.status !== 200)
    return {
      steps: [],
      // RolledBack only if the rollout changed something and undid it (our answer says so).
      outcome: {
        phase: 'Failed',
        reason: /; roll(ed|ing) back\b/.test(o.rollout.message) ? 'RolledBack' : 'RolloutFailed',
        message: o.rollout.message,
      },
    };
  // With a source, this generation is a version of its own; without, the newest one present runs.
  const target = doc.spec.source ? generationOf(doc) : newest;
  if (target === undefined)
    return {
      steps: [],
      outcome: { phase: 'Stalled', reason: 'NoSource', message: `${project} has no stack files and the document names no source` },
    };
  const have = o.versions.includes(target);
  const health = stackHealth(o.containers);
  const fetch = have ? [] : [step('fetch', `fetch and extract version ${target} of ${project}`, { version: target })];

  if (o.rollout) {
    // Rolled out and committed before: only drift is left to repair (stopped by hand, files gone).
    if (have && health.ok) return { steps: [], outcome: { phase: 'Ready', reason: 'Running', message: `${project} is running` } };
    return {
      steps: [...fetch, step('up', `up ${project} again (${health.message})`, { version: target })],
      gated: !have,
      outcome: { phase: 'Ready', reason: 'Restarted', message: `${project} was not running (${health.message}) and is up again` },
    };
  }

  const others = o.versions.filter((v) => v !== target);
  const rollback: Rollback = o.rollback ?? {
    ...(others.length > 0 ? { previous: others.at(-1)! } : {}),
    restore: o.containers.length > 0,
    // Resumed after a kill that came once the fetch had begun: the directory is there and still ours.
    discard: !have || o.fetched === true,
  };
  const pulls = doc.spec.pullPolicy === 'always' || doc.spec.registry !== undefined;
  const steps: StackStep[] = [
    ...fetch,
    ...(pulls
      ? [
          step('pull', `pull the images of ${project}${doc.spec.registry ? ` (logged in to ${doc.spec.registry.server})` : ''}`, {
            version: target,
          }),
        ]
      : []),
    step('up', `up version ${target} of ${project}`, { version: target, rollback }),
    step('soak', `soak ${doc.spec.soakSeconds} s`, { version: target, rollback }),
  ];
  if (others.length > 0) steps.push(step('commit', `remove the previous version(s) ${others.join(', ')}`, { versions: others }));
  const runId = runIdOf(doc);
  const result = ok(`AOTA compose ${doc.spec.pullPolicy === 'always' ? 'pull' : 'up'} COMMAND SUCCESSFUL`);
  return {
    steps,
    runId,
    gated: !have,
    complete: { requestId: runId, result },
    outcome: { phase: 'Ready', reason: 'Committed', message: result.message, result },
  };
}

export function composeStackReconciler(opts: ComposeStackOptions): Reconciler<ComposeStack, StackObserved, StackStep> {
  const { compose, engine } = opts;
  const rootOf = (doc: ComposeStack) => join(opts.cacheDir, 'compose', projectOf(doc));
  const dirOf = (doc: ComposeStack, v: number) => join(rootOf(doc), String(v));
  const locate = (doc: ComposeStack, v: number) => locateStack(dirOf(doc, v), doc.spec.file);
  const rollbackFile = (doc: ComposeStack) => join(rootOf(doc), '.rollback.json');
  const ctx: StackContext = { opts, rootOf, dirOf, locate, rollbackFile };
  return {
    kind: 'ComposeStack',
    async observe(doc, { journal }: { journal: JournalView }) {
      if (!doc) return { containers: [], versions: [] };
      const [containers, versions] = await Promise.all([engine.stack(projectOf(doc)), versionsIn(rootOf(doc))]);
      const rollout = journal.completed(runIdOf(doc));
      const fetched = journal.step(runIdOf(doc), 'fetch') !== undefined;
      const recorded = await readFile(rollbackFile(doc), 'utf8')
        .then((t) => JSON.parse(t) as { runId: string; rollback: Rollback })
        .catch(() => undefined);
      const rollback = recorded?.runId === runIdOf(doc) ? recorded.rollback : undefined;
      return { containers, versions, ...(rollout ? { rollout } : {}), ...(fetched ? { fetched } : {}), ...(rollback ? { rollback } : {}) };
    },
    plan: (doc, observed) => planComposeStack(doc, observed),
    async execute(s, doc, { signal, progress }) {
      const project = projectOf(doc);
      switch (s.type) {
        case 'fetch':
          return fetchStack(doc, s.version!, ctx, progress);
        case 'pull':
          return pullImages(doc, await locate(doc, s.version!), ctx);
        case 'up': {
          const stack = await locate(doc, s.version!);
          if (!s.rollback) return compose.up(stack, project);
          await writeFileAtomic(rollbackFile(doc), `${JSON.stringify({ runId: runIdOf(doc), rollback: s.rollback })}\n`);
          try {
            await compose.up(stack, project);
          } catch (err) {
            if (err instanceof InbmError && err.retryable) throw err;
            const back = await rollBack(doc, s.version!, s.rollback, ctx);
            throw new InbmError(Status.INSTALL_FAILED, `AOTA compose up: ${(err as Error).message}; ${back}`);
          }
          return;
        }
        case 'soak':
          return soakOrRollBack(doc, s, ctx, signal);
        case 'commit':
          for (const v of s.versions ?? []) await rm(dirOf(doc, v), { recursive: true, force: true });
          await rm(rollbackFile(doc), { force: true });
          return;
        case 'down':
        case 'remove': {
          const removeImages = s.type === 'remove';
          const stack = s.version === undefined ? undefined : await locate(doc, s.version).catch(() => undefined);
          if (stack) await compose.down(stack, project, removeImages);
          // No compose file (or leftovers it did not know): the engine removes what carries the label.
          await engine.removeStack(project, removeImages);
          return;
        }
        case 'purge':
          return rm(rootOf(doc), { recursive: true, force: true });
      }
    },
  };
}

interface StackContext {
  opts: ComposeStackOptions;
  rootOf: (doc: ComposeStack) => string;
  dirOf: (doc: ComposeStack, v: number) => string;
  locate: (doc: ComposeStack, v: number) => Promise<StackLocation>;
  /** Where a rollout keeps its rollback from its `up` until the soak passed or the rollback is done. */
  rollbackFile: (doc: ComposeStack) => string;
}

/** Version directories are named by generation; anything else (partial extractions, downloads) is not a version. */
async function versionsIn(root: string): Promise<number[]> {
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() && /^[0-9]+$/.test(e.name))
    .map((e) => Number(e.name))
    .sort((a, b) => a - b);
}

/** Download (trusted repositories only) and extract (no traversal) into a partial directory, renamed into place once complete. */
async function fetchStack(
  doc: ComposeStack,
  version: number,
  { opts, rootOf, dirOf }: StackContext,
  onProgress?: ExecuteContext['progress'],
): Promise<void> {
  const source = doc.spec.source;
  if (!source?.url && !source?.path) throw new InbmError(Status.INSTALL_FAILED, 'AOTA compose up: source.url or source.path is required');
  const root = rootOf(doc);
  const partial = join(root, `.${version}.partial`);
  const downloads = join(root, '.download');
  await mkdir(root, { recursive: true });
  await rm(partial, { recursive: true, force: true });
  try {
    let archive = source.path;
    if (source.url) {
      const creds = source.credentials ? await opts.credentials(source.credentials.secretRef) : undefined;
      const auth = creds ? { credentials: creds } : {};
      archive = (
        await download(source.url, { dir: downloads, trusted: await opts.trusted(), ...auth, ...(onProgress ? { onProgress } : {}) })
      ).path;
    }
    await extract(archive!, partial);
    await locateStack(partial, doc.spec.file);
    await rm(dirOf(doc, version), { recursive: true, force: true });
    await rename(partial, dirOf(doc, version));
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err instanceof InbmError ? new InbmError(err.status, `AOTA compose up: ${err.reason}`, err.retryable) : err;
  } finally {
    await rm(downloads, { recursive: true, force: true });
  }
}

/**
 * With a registry: log in (the engine checks the credentials), then pull every service image
 * through the engine, with the credentials only for images of that registry. Without: `compose pull`.
 * pullPolicy "missing" pulls only images not present yet.
 */
async function pullImages(doc: ComposeStack, stack: StackLocation, { opts }: StackContext): Promise<void> {
  const project = projectOf(doc);
  const { registry, pullPolicy } = doc.spec;
  if (!registry) return opts.compose.pull(stack, project);
  const creds = await opts.credentials(registry.credentials.secretRef);
  const auth = { ...creds, serveraddress: registry.server };
  await opts.engine.login(auth);
  for (const image of await opts.compose.images(stack, project)) {
    if (pullPolicy === 'missing' && (await opts.engine.hasImage(image))) continue;
    await opts.engine.pull(image, registryOf(image) === hostOf(registry.server) ? auth : undefined);
  }
}

/** "registry:5000/app:1" → "registry:5000"; Docker Hub images → "docker.io". */
export function registryOf(image: string): string {
  const first = image.split('/')[0]!;
  return image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'docker.io';
}
const hostOf = (server: string) => server.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');

/**
 * Keeps the new version only if every container of the project stays up for the soak time and
 * those with a health check are healthy at its end (still starting: up to healthSettleMs more).
 */
async function soakOrRollBack(doc: ComposeStack, s: StackStep, ctx: StackContext, signal: AbortSignal): Promise<void> {
  const project = projectOf(doc);
  // With a restart policy a service that exits comes back at once: a restart during the soak is an exit.
  const restartsAtStart = new Map((await ctx.opts.engine.stack(project)).map((c) => [c.id, c.restarts ?? 0]));
  const durationMs = doc.spec.soakSeconds * 1000;
  const verdict = await soak({
    durationMs,
    settleMs: healthSettleMs(durationMs),
    intervalMs: 250,
    signal,
    probe: async () => {
      const containers = await ctx.opts.engine.stack(project);
      const restarts = (c: StackContainer) => (c.restarts ?? 0) - (restartsAtStart.get(c.id) ?? 0);
      const looped = containers.find((c) => restarts(c) > 0);
      const who = looped?.service || looped?.name;
      // A restarted container that runs again reports exit code 0: only a stopped one has a code to tell.
      const h = !looped
        ? stackHealth(containers)
        : looped.running
          ? { ok: false, message: `${who} exited and was restarted ${restarts(looped)} time(s)` }
          : { ok: false, message: `${who} exited with code ${looped.exitCode} after ${restarts(looped)} restart(s)` };
      return {
        gate: 'stack',
        ok: h.ok,
        ...(h.pending ? { pending: true } : {}),
        measured: h.message,
        threshold: 'running',
        message: h.message,
      };
    },
  }).catch((err: unknown) => {
    // The agent is stopping: not a verdict. The step is not done, so the next start soaks again.
    if (signal.aborted) throw new InbmError(Status.INSTALL_FAILED, 'soak interrupted by shutdown', true);
    throw err;
  });
  // Passed: nothing will roll this rollout back any more.
  if (verdict.ok) return void (await rm(ctx.rollbackFile(doc), { force: true }));
  const back = await rollBack(doc, s.version!, s.rollback ?? { restore: false, discard: false }, ctx);
  const what = verdict.pending ? 'did not become healthy' : 'did not stay up';
  throw new InbmError(Status.INSTALL_FAILED, `AOTA compose up: ${project} ${what} (${verdict.message}); ${back}`);
}

/** Takes the new version down and brings the previous one up again; says what it did. */
async function rollBack(doc: ComposeStack, version: number, rb: Rollback, ctx: StackContext): Promise<string> {
  const said = await undo(doc, version, rb, ctx);
  // Done: a restart from here has no rollback left to finish.
  await rm(ctx.rollbackFile(doc), { force: true });
  return said;
}

async function undo(doc: ComposeStack, version: number, rb: Rollback, { opts, dirOf, locate }: StackContext): Promise<string> {
  const project = projectOf(doc);
  const fresh = await locate(doc, version).catch(() => undefined);
  if (fresh) await opts.compose.down(fresh, project).catch(() => opts.engine.removeStack(project, false));
  else await opts.engine.removeStack(project, false);
  if (rb.discard) await rm(dirOf(doc, version), { recursive: true, force: true });
  if (rb.previous === undefined || !rb.restore) return 'rolled back: the stack is down';
  try {
    // The previous version may have been fetched with another file name: fall back to the usual ones.
    const previous = await locate(doc, rb.previous).catch(() => locateStack(dirOf(doc, rb.previous!)));
    await opts.compose.up(previous, project);
  } catch (err) {
    return `rolling back to version ${rb.previous} failed too: ${err instanceof InbmError ? err.reason : (err as Error).message}`;
  }
  return `rolled back to version ${rb.previous}`;
}
