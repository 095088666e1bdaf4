/**
 * OSUpdate (SOTA): apt with a btrfs snapshot and a verdict after the reboot, or Mender A/B on
 * Yocto. observe reads the journal, the recorded state and — once the reboot happened — the
 * health; plan.ts decides; execute runs one step and records what the next pass needs.
 */
import { appendFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { networkGate, servicesGate } from '../../controller/gates/index.js';
import type { Reconciler } from '../../controller/types.js';
import { writeFileAtomic } from '../../core/atomic.js';
import type { Logger } from '../../core/log.js';
import { InbmError, Status } from '../../core/result.js';
import { aptChange, aptRepair, aptUpdate, changedPackages, dpkgQuery, nothingToDo, parseDpkgQuery, runApt } from '../../drivers/apt.js';
import { runCommand } from '../../drivers/command.js';
import { download } from '../../drivers/download/fetch.js';
import { MenderDriver, osFamily, releaseDateError } from '../../drivers/mender.js';
import type { SnapshotDriver } from '../../drivers/snapshot.js';
import { readJson } from '../../status/files.js';
import { type UpdateState, writeUpdateRecord } from '../../status/update-record.js';
import {
  aptFailure,
  NO_SNAPSHOT,
  type OSUpdate,
  type OsObserved,
  type OsPlanOptions,
  type OsState,
  type OsStep,
  planOsUpdate,
  verdictDue,
} from './plan.js';

export type { OsObserved, OsState, OsStep } from './plan.js';
export { planOsUpdate, verdictDue } from './plan.js';

export interface OsUpdateOptions {
  stateDir: string;
  cacheDir: string;
  osRelease: string;
  /** Prefix that runs apt-get/dpkg in the target root (`[]` = this machine); absent = refused. */
  apt?: readonly string[];
  snapshots: SnapshotDriver;
  /** e.g. ['mender']; used on Yocto. */
  mender?: readonly string[];
  reboot?: readonly string[];
  graceMs: number;
  /** sotaSW, networkCheck and proceedWithoutRollback, read fresh from the configuration file. */
  conf: () => Promise<{ services: string[]; networkCheck: boolean; proceedWithoutRollback: boolean }>;
  serviceCheck?: string[];
  routeFile: string;
  trusted: () => Promise<string[]>;
  credentials: (secretRef: string) => Promise<{ username: string; password: string }>;
  aptTimeoutMs?: number;
}

export interface OsUpdateReconciler extends Reconciler<OSUpdate, OsObserved, OsStep> {
  /**
   * Stops the download-only update running now, for the cancel request `by`; returns the
   * cancelled request's id, or undefined when none runs (the cancel then answers 400).
   */
  cancel(by: string): string | undefined;
}

const statePath = (dir: string) => join(dir, 'os-update.json');

export async function readOsState(stateDir: string, requestId: string): Promise<OsState | undefined> {
  const st = await readJson<OsState>(statePath(stateDir));
  return st?.requestId === requestId ? st : undefined;
}

export function osUpdateReconciler(opts: OsUpdateOptions): OsUpdateReconciler {
  const { stateDir } = opts;
  let running: { requestId: string; abort: AbortController } | undefined;
  /** cancel request id → the download-only request it stopped (this process only: a download does not survive a restart). */
  const cancelled = new Map<string, string>();
  const planOpts = (): OsPlanOptions => ({
    apt: opts.apt !== undefined,
    mender: opts.mender !== undefined,
    reboot: opts.reboot !== undefined,
    graceMs: opts.graceMs,
  });
  const family = async () => osFamily(await readFile(opts.osRelease, 'utf8').catch(() => 'ID=debian\n'));
  const save = async (st: OsState) => writeFileAtomic(statePath(stateDir), `${JSON.stringify(st, null, 2)}\n`);
  const load = async (doc: OSUpdate): Promise<OsState> =>
    (await readOsState(stateDir, doc.spec.requestId)) ?? { requestId: doc.spec.requestId };
  const record = (doc: OSUpdate, status: UpdateState, error?: string) =>
    writeUpdateRecord(stateDir, { status, type: 'sota', metadata: JSON.stringify(doc.spec), ...(error ? { error } : {}) });
  const apt = (argv: readonly string[], doc: OSUpdate, log: Logger, signal?: AbortSignal) =>
    runApt(argv, {
      prefix: opts.apt!,
      timeoutMs: opts.aptTimeoutMs ?? 60 * 60_000,
      ...(signal ? { signal } : {}),
      onLine: doc.spec.logToFile ? toFile : (line) => log.debug({ apt: line }),
    });
  // logtofile: command output to a file instead of the log, appended in order.
  let written = Promise.resolve();
  const toFile = (line: string) => {
    written = written.then(() => appendFile(join(stateDir, 'os-update.log'), `${line}\n`)).catch(() => {});
  };
  const versions = async (doc: OSUpdate, log: Logger) => parseDpkgQuery(await apt(dpkgQuery(), doc, log));
  const reboot = () => runCommand(opts.reboot!);

  async function health(doc: OSUpdate, st: OsState, log: Logger): Promise<{ ok: boolean; reason: string }> {
    const c = await opts.conf();
    const problems: string[] = [];
    const gates = [
      servicesGate({ services: c.services, command: opts.serviceCheck }),
      networkGate({ routePath: opts.routeFile, enabled: c.networkCheck }),
    ];
    for (const g of gates) {
      const r = await g.check({}).catch((err: unknown) => ({ ok: false, message: `could not be evaluated: ${String(err)}` }));
      if (!r.ok) problems.push(`${g.name}: ${r.message}`);
    }
    if ((await family()) === 'yocto') {
      const now = await new MenderDriver(opts.mender!).artifact().catch(() => undefined);
      if (!now || now === st.artifact) problems.push(`mender: still running ${now ?? 'an unknown artifact'}`);
    } else {
      const wanted = Object.entries(st.installed?.changed ?? {}).filter(([, v]) => v !== '');
      const have = await versions(doc, log).catch(() => ({}) as Record<string, string>);
      const wrong = wanted.filter(([name, v]) => have[name] !== v).map(([name, v]) => `${name} ${have[name] ?? 'missing'} != ${v}`);
      if (wrong.length > 0) problems.push(`packages: ${wrong.join(', ')}`);
    }
    return problems.length ? { ok: false, reason: problems.join('; ') } : { ok: true, reason: 'healthy' };
  }

  /** Rolls the root back (or leaves the Mender update uncommitted); recorded as a failed update. */
  async function revert(doc: OSUpdate, st: OsState, reason: string) {
    if (st.snapshot) await opts.snapshots.rollback(st.snapshot);
    await record(doc, 'FAIL', reason);
  }

  const failureOf = (err: unknown, changed: boolean) => ({ reason: err instanceof InbmError ? err.reason : String(err), changed });

  /** apt-get update failed: nothing was changed; drop the snapshot, record it, report it. */
  async function aptUpdateFailed(doc: OSUpdate, st: OsState, err: unknown): Promise<never> {
    const failure = failureOf(err, false);
    await save({ ...st, failure });
    if (st.snapshot) await opts.snapshots.remove(st.snapshot);
    await record(doc, 'FAIL', failure.reason);
    throw aptFailure(failure, st.snapshot);
  }

  /**
   * The change itself failed, the last step of its pass: recorded, and the step ends there. The
   * rollback (revert, the reboot into the snapshot) and the answer are the planner's next steps,
   * each journalled, so a power cut in between never reboots twice.
   */
  async function aptInstallFailed(st: OsState, err: unknown): Promise<void> {
    await save({ ...st, failure: failureOf(err, true) });
  }

  return {
    kind: 'OSUpdate',
    cancel(by) {
      if (!running) return undefined;
      running.abort.abort();
      cancelled.set(by, running.requestId);
      return running.requestId;
    },
    async observe(doc, { journal, log }) {
      const base = { bootId: journal.bootId, steps: {}, family: await family() };
      if (!doc) return base;
      const { requestId } = doc.spec;
      const completed = journal.completed(requestId);
      const steps = journal.record?.runId === requestId ? journal.record.steps : {};
      const state = await readOsState(stateDir, requestId);
      const by = cancelled.get(requestId);
      const o: OsObserved = {
        ...base,
        steps,
        ...(completed ? { completed } : {}),
        ...(state ? { state } : {}),
        ...(by ? { cancelled: by } : {}),
      };
      if (state && verdictDue(doc, o)) o.health = await health(doc, state, log);
      return o;
    },
    plan: (doc, observed, now) => planOsUpdate(doc, observed, now, planOpts()),
    async execute(s, doc, ctx) {
      const st = await load(doc);
      const { packages } = doc.spec;
      const mode = doc.spec.mode === 'cancel' ? 'full' : doc.spec.mode; // a cancel plans no apt step
      switch (s.type) {
        case 'snapshot': {
          const why = await opts.snapshots.unsupported();
          let snapshot: OsState['snapshot'] = null;
          if (why) {
            if (!(await opts.conf()).proceedWithoutRollback) throw new InbmError(Status.INSTALL_FAILED, `${NO_SNAPSHOT} (${why})`);
            ctx.log.warn({ reason: why }, 'no snapshot possible; proceeding without rollback as configured');
          } else snapshot = await opts.snapshots.take(`inbm-sota-${doc.spec.requestId}`);
          // Versions before the change: what "updated" means after the reboot.
          const before = await versions(doc, ctx.log);
          await save({ ...st, snapshot, before });
          return;
        }
        case 'apt-update':
          try {
            await apt(aptUpdate(), doc, ctx.log, mode === 'download-only' ? downloadSignal(doc, ctx.signal) : undefined);
          } catch (err) {
            if (mode === 'download-only') throw stopped(err, ctx.signal);
            return aptUpdateFailed(doc, st, err);
          } finally {
            if (mode === 'download-only') running = undefined;
          }
          return;
        case 'apt-install': {
          if (mode === 'download-only') {
            try {
              const out = await apt(aptChange(mode, packages), doc, ctx.log, downloadSignal(doc, ctx.signal));
              await save({ ...st, installed: { changed: {}, noUpdate: nothingToDo(out) } });
            } catch (err) {
              throw stopped(err, ctx.signal);
            } finally {
              running = undefined;
            }
            return;
          }
          try {
            for (const argv of aptRepair(mode)) await apt(argv, doc, ctx.log);
            await apt(aptChange(mode, packages), doc, ctx.log);
          } catch (err) {
            return aptInstallFailed(st, err);
          }
          const changed = changedPackages(st.before ?? {}, await versions(doc, ctx.log));
          await save({ ...st, installed: { changed, noUpdate: Object.keys(changed).length === 0 } });
          return;
        }
        case 'mender-install':
          return menderInstall(doc, st);
        case 'record':
          return record(doc, st.installed?.noUpdate ? 'NO_UPDATE_AVAILABLE' : 'SUCCESS');
        case 'record-pending':
          return record(doc, 'PENDING');
        case 'reboot':
        case 'revert-reboot':
          await reboot();
          return;
        case 'verdict':
          await save({ ...st, verdict: s.verdict! });
          return;
        case 'commit':
          if ((await family()) === 'yocto') await menderCommit(st, ctx.log);
          if (st.snapshot) await opts.snapshots.remove(st.snapshot);
          return record(doc, st.installed?.noUpdate ? 'NO_UPDATE_AVAILABLE' : 'SUCCESS');
        case 'revert':
          return revert(doc, st, st.verdict?.reason ?? st.failure?.reason ?? 'reverted');
        case 'discard':
          if (st.snapshot) await opts.snapshots.remove(st.snapshot);
          return record(doc, 'FAIL', st.failure?.reason);
      }
    },
  };

  /**
   * A commit run again after a crash finds nothing to commit: that is fine when the new artifact
   * is the one running (the earlier commit took); anything else is a failure.
   */
  async function menderCommit(st: OsState, log: Logger): Promise<void> {
    const mender = new MenderDriver(opts.mender!);
    try {
      await mender.commit();
    } catch (err) {
      const now = await mender.artifact().catch(() => undefined);
      if (!now || now === st.artifact) throw err;
      log.warn({ artifact: now, err }, 'mender commit refused; the new artifact runs, taken as committed earlier');
    }
  }

  /** The signal a download-only listens to: the agent stopping, or a cancel request. */
  function downloadSignal(doc: OSUpdate, agent: AbortSignal): AbortSignal {
    running = { requestId: doc.spec.requestId, abort: new AbortController() };
    return AbortSignal.any([agent, running.abort.signal]);
  }

  /** Yocto: release-date check, the artifact fetched (or a local file), `mender install`. */
  async function menderInstall(doc: OSUpdate, st: OsState): Promise<void> {
    const mender = new MenderDriver(opts.mender!);
    const artifact = st.artifact ?? (await mender.artifact());
    const early = releaseDateError(doc.spec.releaseDate, artifact);
    if (early) throw early;
    await save({ ...st, artifact });
    const source = doc.spec.source;
    if (!source?.path && !source?.url) throw new InbmError(Status.INSTALL_FAILED, 'SOTA: Yocto needs the Mender artifact (fetch or path)');
    let file = source.path;
    let fetched = false;
    if (!file) {
      fetched = true;
      const creds = source.credentials ? await opts.credentials(source.credentials.secretRef) : undefined;
      file = (await download(source.url!, { dir: opts.cacheDir, trusted: await opts.trusted(), ...(creds ? { credentials: creds } : {}) }))
        .path;
    }
    if (doc.spec.mode === 'download-only') {
      await save({ ...st, artifact, installed: { changed: {}, noUpdate: false } });
      return;
    }
    try {
      await mender.install(file);
    } catch (err) {
      // The running partition is untouched: nothing to roll back.
      await save({ ...st, artifact, failure: { reason: err instanceof InbmError ? err.reason : String(err), changed: false } });
      await record(doc, 'FAIL', err instanceof InbmError ? err.reason : String(err));
      throw err;
    } finally {
      // Mender has copied the image to the other partition: the download has served its purpose.
      if (fetched) await rm(file, { force: true });
    }
    await save({ ...st, artifact, installed: { changed: {}, noUpdate: false } });
  }
}

/** A download-only stopped with the agent is taken up again at the next start, not failed. */
function stopped(err: unknown, agent: AbortSignal): unknown {
  if (!agent.aborted) return err;
  return new InbmError(Status.INSTALL_FAILED, 'SOTA: download interrupted by the agent stopping', true);
}
