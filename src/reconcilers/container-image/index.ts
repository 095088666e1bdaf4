/**
 * ContainerImage: the image present (import, load or pull), and optionally one container of it
 * running. A new version is started beside the stopped old one, soaked, and committed only if it
 * stayed up (and, with a health check, is healthy); otherwise the old one is started again and
 * the new one removed.
 */
import { rm } from 'node:fs/promises';
import { healthSettleMs, soak } from '../../controller/gates/index.js';
import type { JournalView } from '../../controller/journal.js';
import type { ExecuteContext, Plan, Reconciler, Step } from '../../controller/types.js';
import type { Logger } from '../../core/log.js';
import { InbmError, ok, Status } from '../../core/result.js';
import type { DocumentOf } from '../../desired/kinds/index.js';
import { runCommand } from '../../drivers/command.js';
import { type ContainerState, type DockerDriver, parseDevice, parsePort } from '../../drivers/docker.js';
import { download } from '../../drivers/download/fetch.js';

type ContainerImage = DocumentOf<'ContainerImage'>;

export type ImageStep = Step & {
  type: 'fetch' | 'remove-containers' | 'remove-images' | 'stop-old' | 'start' | 'soak' | 'commit';
  ids?: string[];
  refs?: string[];
};

export interface ImageObserved {
  tags: string[];
  containers: ContainerState[];
  /** The result of this version's rollout, once it finished. */
  rollout?: { status: number; message: string };
  /** The journal holds this version's rollout as started: the agent stopped in the middle of it. */
  inFlight?: boolean;
  /** This rollout's fetch step began (journal): the image is its own even if it is present now. */
  fetched?: boolean;
}

export interface ContainerImageOptions {
  docker: DockerDriver;
  /**
   * Docker Bench Security after a new container is up (the conf's `dbs`): ON = a failing check
   * rolls the update back, WARN = reported only, OFF or no command = not run. The command gets
   * "{container}" and "{image}" replaced.
   */
  dbs?: () => Promise<{ mode: string; argv?: readonly string[] }>;
  cacheDir: string;
  trusted: () => Promise<string[]>;
  credentials: (secretRef: string) => Promise<{ username: string; password: string }>;
}

const tagOf = (doc: ContainerImage) => doc.spec.tag ?? 'latest';
/**
 * Journal identity of a rollout: each dropped manifest is a request of its own (its request id),
 * a declarative document asks once per generation.
 */
export const runIdOf = (doc: ContainerImage) => {
  const request = doc.metadata.annotations?.['inbm.dev/request-id'];
  return request ? `rollout-${tagOf(doc)}-${request}` : `rollout-${tagOf(doc)}-g${doc.metadata.generation ?? 0}`;
};
const step = (type: ImageStep['type'], description: string, extra: Partial<ImageStep> = {}): ImageStep => ({
  id: type,
  type,
  description,
  ...extra,
});
const FAILED_REASON: Record<number, string> = { [Status.IMAGE_PRESENT]: 'ImagePresent', [Status.NOT_FOUND]: 'NotFound' };
/**
 * A failed rollout is RolledBack only if it changed something and undid it (our own answer says
 * "rolled back" or "removed"); a failure before any change (a refused pull) just failed.
 */
export const failedReason = (r: { status: number; message: string }): string =>
  FAILED_REASON[r.status] ?? (/; (rolled back|removed)\b/.test(r.message) ? 'RolledBack' : 'RolloutFailed');

/** Pure: the steps from what the engine shows to what the document asks. */
export function planImage(doc: ContainerImage | undefined, o: ImageObserved): Plan<ImageStep> {
  if (!doc)
    return {
      steps: [],
      outcome: { phase: 'Ready', reason: 'NotManaged', message: 'document removed; image and containers left as they are' },
    };
  const { image, ensure } = doc.spec;
  const tag = tagOf(doc);
  if (ensure === 'absent') {
    const refs = (doc.spec.tag ? o.tags.filter((t) => t === tag) : o.tags).map((t) => `${image}:${t}`);
    const steps: ImageStep[] = [];
    if (o.containers.length > 0)
      steps.push(step('remove-containers', `remove ${o.containers.length} container(s)`, { ids: o.containers.map((c) => c.id) }));
    if (refs.length > 0) steps.push(step('remove-images', `remove ${refs.join(', ')}`, { refs }));
    const result = ok('AOTA docker remove COMMAND SUCCESSFUL');
    return steps.length > 0
      ? { steps, outcome: { phase: 'Ready', reason: 'Removed', message: result.message, result } }
      : { steps, outcome: { phase: 'Ready', reason: 'Absent', message: `${image} is absent` } };
  }
  if (o.rollout && o.rollout.status !== 200)
    return { steps: [], outcome: { phase: 'Failed', reason: failedReason(o.rollout), message: o.rollout.message } };
  const haveImage = o.tags.includes(tag);
  const runId = runIdOf(doc);
  // Started earlier and not finished (the agent was stopped or killed): finish it, step by step.
  const resuming = o.inFlight === true && !o.rollout;
  const method = doc.spec.source?.method;
  if (method === 'import' && haveImage && !o.rollout && !o.inFlight) {
    // The reference refuses to import over an image that is there already; a rollout of ours that
    // imported it before being interrupted is resumed instead.
    const failure = new InbmError(Status.IMAGE_PRESENT, 'AOTA docker import FAILED: FAILED IMAGE IMPORT, IMAGE ALREADY PRESENT').toResult();
    return {
      steps: [],
      runId,
      complete: { requestId: runId, result: failure },
      outcome: { phase: 'Failed', reason: 'ImagePresent', message: failure.message, result: failure },
    };
  }
  const steps: ImageStep[] = [];
  if (!haveImage) {
    if (!doc.spec.source)
      return {
        steps: [],
        outcome: { phase: 'Stalled', reason: 'NoSource', message: `${image}:${tag} is not present and the document names no source` },
      };
    steps.push(step('fetch', `${doc.spec.source.method} ${image}:${tag}`));
  }
  const result = ok(`AOTA docker ${method ?? 'pull'} COMMAND SUCCESSFUL`);
  const run = doc.spec.container?.run ?? false;
  // A device or port docker cannot read would fail the start after the old container stopped:
  // refused before any step instead.
  const invalid = run ? containerOptionsProblem(doc) : undefined;
  if (invalid && !resuming) {
    const failure = invalid.toResult();
    return {
      steps: [],
      runId,
      complete: { requestId: runId, result: failure },
      outcome: { phase: 'Failed', reason: 'InvalidContainer', message: failure.message, result: failure },
    };
  }
  const current = o.containers.find((c) => c.version === tag);
  const old = o.containers.filter((c) => c.version !== tag);
  if (!run)
    return steps.length > 0 || resuming
      ? {
          steps,
          runId,
          gated: !haveImage,
          complete: { requestId: runId, result },
          outcome: { phase: 'Ready', reason: 'Present', message: result.message, result },
        }
      : { steps, outcome: { phase: 'Ready', reason: 'Present', message: `${image}:${tag} is present` } };
  if (current && old.length === 0 && haveImage && !resuming) {
    if (current.running) return { steps: [], outcome: { phase: 'Ready', reason: 'Running', message: `${image}:${tag} is running` } };
    // Its restart policy is at work: starting it by hand would only race the engine.
    if (current.restarting)
      return { steps: [], outcome: { phase: 'Ready', reason: 'Restarting', message: `${image}:${tag} exited and is being restarted` } };
    // Drift: our container was stopped by hand; bring it back.
    return {
      steps: [step('start', `start ${current.name} again`)],
      outcome: { phase: 'Ready', reason: 'Restarted', message: `${image}:${tag} was stopped and is running again` },
    };
  }
  // A new rollout, or the rest of an interrupted one: the journal skips the steps already done,
  // and one cut short (a soak included) runs again from its start.
  if (old.some((c) => c.running || c.restarting))
    steps.push(step('stop-old', `stop ${old.map((c) => c.version).join(', ')}`, { ids: old.map((c) => c.id) }));
  // A rollback removes the new image only if this rollout fetched it: the engine is left as it was.
  // Resumed after a kill that came once the fetch had begun, the image is there and still its own.
  steps.push(
    step('start', `start ${image}:${tag}`),
    step('soak', `soak ${doc.spec.soakSeconds} s`, { refs: haveImage && !o.fetched ? [] : [`${image}:${tag}`] }),
  );
  if (old.length > 0)
    steps.push(
      step('commit', `remove the previous version(s) ${old.map((c) => c.version).join(', ')}`, {
        ids: old.map((c) => c.id),
        refs: [...new Set(old.map((c) => `${image}:${c.version}`))],
      }),
    );
  return {
    steps,
    runId,
    gated: !haveImage,
    complete: { requestId: runId, result },
    outcome: { phase: 'Ready', reason: 'Committed', message: result.message, result },
  };
}

function containerOptionsProblem(doc: ContainerImage): InbmError | undefined {
  try {
    for (const d of doc.spec.container?.devices ?? []) parseDevice(d);
    for (const p of doc.spec.container?.ports ?? []) parsePort(p);
    return undefined;
  } catch (err) {
    return err instanceof InbmError ? err : new InbmError(Status.INSTALL_FAILED, String(err));
  }
}

export function containerImageReconciler(opts: ContainerImageOptions): Reconciler<ContainerImage, ImageObserved, ImageStep> {
  const { docker } = opts;
  const containerName = (doc: ContainerImage) => `inbm-${doc.metadata.name}-${tagOf(doc).replace(/[^a-zA-Z0-9_.-]/g, '_')}`;
  return {
    kind: 'ContainerImage',
    async observe(doc, { journal }: { journal: JournalView }) {
      if (!doc) return { tags: [], containers: [] };
      const [tags, containers] = await Promise.all([docker.tags(doc.spec.image), docker.containers(doc.metadata.name)]);
      const runId = runIdOf(doc);
      const rollout = journal.completed(runId);
      return {
        tags,
        containers,
        ...(rollout ? { rollout } : {}),
        ...(journal.record?.runId === runId ? { inFlight: true } : {}),
        ...(journal.step(runId, 'fetch') ? { fetched: true } : {}),
      };
    },
    plan: (doc, observed) => planImage(doc, observed),
    async execute(s, doc, ctx) {
      const ref = `${doc.spec.image}:${tagOf(doc)}`;
      const mine = () => docker.containers(doc.metadata.name);
      switch (s.type) {
        case 'fetch':
          return fetchImage(doc, opts, ctx.progress);
        case 'remove-containers':
          for (const id of s.ids ?? []) await docker.removeContainer(id);
          return;
        case 'remove-images':
        case 'commit':
          if (s.type === 'commit') for (const id of s.ids ?? []) await docker.removeContainer(id);
          for (const r of s.refs ?? []) await docker.removeImage(r);
          return;
        case 'stop-old':
          for (const id of s.ids ?? []) await docker.stop(id);
          return;
        case 'start': {
          const current = (await mine()).find((c) => c.version === tagOf(doc));
          if (current) await docker.start(current.id);
          else {
            const c = doc.spec.container;
            await docker.run({
              name: containerName(doc),
              image: ref,
              resource: doc.metadata.name,
              version: tagOf(doc),
              restartPolicy: c?.restartPolicy ?? 'unless-stopped',
              ...(c?.command ? { command: c.command } : {}),
              ...(c?.devices?.length ? { devices: c.devices } : {}),
              ...(c?.ports?.length ? { ports: c.ports } : {}),
            });
          }
          return;
        }
        case 'soak':
          return soakOrRollBack(doc, opts, ctx, s.refs ?? []);
      }
    },
  };
}

async function fetchImage(doc: ContainerImage, opts: ContainerImageOptions, onProgress?: ExecuteContext['progress']): Promise<void> {
  const { source, image } = doc.spec;
  const tag = tagOf(doc);
  const { docker } = opts;
  if (!source) throw new InbmError(Status.INSTALL_FAILED, 'no source');
  if (source.method === 'pull') {
    const server = source.registry?.server;
    const login = source.registry
      ? { ...(await opts.credentials(source.registry.credentials.secretRef)), serveraddress: source.registry.server }
      : undefined;
    const remote = pullReference(image, server);
    await docker.pull(`${remote}:${tag}`, login);
    if (remote !== image) {
      // Kept under the name the document gives, so observing, running and pruning find it.
      await docker.tag(`${remote}:${tag}`, image, tag);
      await docker.removeImage(`${remote}:${tag}`);
    }
    if (!(await docker.tags(image)).includes(tag))
      throw new InbmError(Status.INSTALL_FAILED, `AOTA docker pull: ${image}:${tag} is not present after the pull`);
    return;
  }
  const url = source.artifact?.url;
  if (!url) throw new InbmError(Status.INSTALL_FAILED, `AOTA docker ${source.method}: artifact.url is required`);
  const creds = source.artifact?.credentials ? await opts.credentials(source.artifact.credentials.secretRef) : undefined;
  const { path } = await download(url, {
    dir: opts.cacheDir,
    trusted: await opts.trusted(),
    ...(creds ? { credentials: creds } : {}),
    ...(onProgress ? { onProgress } : {}),
  });
  try {
    if (source.method === 'import') await docker.importImage(path, image, tag);
    else await docker.loadImage(path);
  } finally {
    await rm(path, { force: true });
  }
  if (!(await docker.tags(image)).includes(tag)) {
    throw new InbmError(Status.INSTALL_FAILED, `AOTA docker ${source.method}: the archive does not hold ${image}:${tag}`);
  }
}

const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/**
 * What to pull: the image as named when it already names a registry (or the registry is Docker
 * Hub, the engine's default); else the image under the registry's host, as `docker pull` needs
 * it ("127.0.0.1:5000" + "app" → "127.0.0.1:5000/app").
 */
export function pullReference(image: string, server: string | undefined): string {
  if (!server) return image;
  const host = server
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  if (!host || DOCKER_HUB.has(host)) return image;
  const first = image.split('/')[0]!;
  const namesRegistry = image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  return namesRegistry ? image : `${host}/${image}`;
}

/**
 * Keeps the new container only if it stays up for the soak time, and (with a health check) is
 * healthy at its end: unhealthy fails at once, still starting gets healthSettleMs more. Else the
 * old one comes back.
 */
async function soakOrRollBack(
  doc: ContainerImage,
  opts: ContainerImageOptions,
  { log, signal }: Pick<ExecuteContext, 'log' | 'signal'>,
  fetched: readonly string[],
): Promise<void> {
  const { docker } = opts;
  const tag = tagOf(doc);
  const all = await docker.containers(doc.metadata.name);
  const fresh = all.find((c) => c.version === tag);
  const old = all.filter((c) => c.version !== tag);
  /** Takes the new version away and starts the previous one again; the engine is left as before the rollout. */
  const rollBack = async (reason: string): Promise<never> => {
    if (fresh) await docker.removeContainer(fresh.id);
    for (const c of old) await docker.start(c.id);
    for (const ref of fetched) await docker.removeImage(ref).catch(() => {});
    const back = old.length > 0 ? `rolled back to ${old.map((c) => c.version).join(', ')}` : 'removed';
    throw new InbmError(Status.INSTALL_FAILED, `AOTA docker: ${doc.spec.image}:${tag} ${reason}; ${back}`);
  };
  // Killed during a rollback, after the new container went and before the old one was started
  // again (or it was removed by hand meanwhile): finish that rollback, never leave nothing running.
  if (!fresh) return rollBack('is missing (its container is gone: a rollback cut short, finished now)');
  const durationMs = doc.spec.soakSeconds * 1000;
  const verdict = await soak({
    durationMs,
    settleMs: healthSettleMs(durationMs),
    intervalMs: 250,
    signal,
    probe: async () => {
      const c = await docker.inspect(fresh.id);
      // With a restart policy a container that exits comes back at once: a restart is an exit.
      const restarted = (c.restarts ?? 0) - (fresh.restarts ?? 0);
      const up = c.running && restarted === 0;
      const healthy = up && c.health !== 'unhealthy';
      // A restarted container that runs again reports exit code 0: only a stopped one has a code to tell.
      const exited = c.running
        ? `exited and was restarted ${restarted} time(s)`
        : `exited with code ${c.exitCode}${restarted > 0 ? ` after ${restarted} restart(s)` : ''}`;
      return {
        gate: 'container',
        ok: healthy,
        ...(healthy && c.health === 'starting' ? { pending: true } : {}),
        measured: up ? (c.health ?? 'running') : `exited ${c.exitCode}`,
        threshold: c.health ? 'healthy' : 'running',
        message: !up ? exited : c.health ? `${fresh.name} is ${c.health}` : 'running',
      };
    },
  }).catch((err: unknown) => {
    // The agent is stopping: not a verdict. The step is not done, so the next start soaks again.
    if (signal.aborted) throw new InbmError(Status.INSTALL_FAILED, 'soak interrupted by shutdown', true);
    throw err;
  });
  let reason = verdict.ok ? undefined : `${verdict.pending ? 'did not become healthy' : 'did not stay up'} (${verdict.message})`;
  if (!reason) reason = await benchSecurity(doc, fresh, opts, log);
  if (!reason) return;
  await rollBack(reason);
}

/** Runs the DBS check; returns why the update must be rolled back (ON and failing), else nothing. */
async function benchSecurity(
  doc: ContainerImage,
  c: ContainerState,
  opts: ContainerImageOptions,
  log: Logger,
): Promise<string | undefined> {
  const dbs = await opts.dbs?.();
  const mode = dbs?.mode.toUpperCase();
  if (!dbs?.argv || !mode || mode === 'OFF') return undefined;
  const image = `${doc.spec.image}:${tagOf(doc)}`;
  const argv = dbs.argv.map((a) => a.replaceAll('{container}', c.name).replaceAll('{image}', image));
  const failed = await runCommand(argv, 120_000).then(
    () => undefined,
    (err: unknown) => (err instanceof InbmError ? err.reason : String(err)),
  );
  if (!failed) return undefined;
  if (mode === 'ON') return `failed Docker Bench Security (${failed})`;
  log.warn({ container: c.name, reason: failed }, 'Docker Bench Security check failed (dbs WARN: kept)');
  return undefined;
}
