/**
 * The composition root: reads settings, builds drivers and reconcilers, wires the store to the
 * controller. Nothing else creates drivers or holds process-wide state.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Cloud } from './cloud/index.js';
import { Controller } from './controller/controller.js';
import { type GateRun, preInstallGates, runGates } from './controller/gates/index.js';
import { Journal } from './controller/journal.js';
import type { Reconciler } from './controller/types.js';
import { sweepTempFiles, writeFileAtomic } from './core/atomic.js';
import { createLogger, type Logger } from './core/log.js';
import { InbmError, ok, type Result, Status } from './core/result.js';
import { collectGarbage, trimAfterStart } from './core/trim.js';
import { VERSION } from './core/version.js';
import type { Document } from './desired/kinds/index.js';
import { readSecret } from './desired/secrets.js';
import { DesiredStore } from './desired/store.js';
import { ComposeDriver } from './drivers/compose.js';
import { ComposeEngine } from './drivers/compose-state.js';
import { DockerDriver } from './drivers/docker.js';
import { SnapshotDriver } from './drivers/snapshot.js';
import { answerQuery } from './queries/answer.js';
import { applicationReconciler } from './reconcilers/application/index.js';
import { composeStackReconciler } from './reconcilers/compose-stack/index.js';
import { configurationReconciler, ensureConfFile, readConfValues } from './reconcilers/configuration/index.js';
import { containerImageReconciler } from './reconcilers/container-image/index.js';
import { type FirmwareOptions, firmwareReconciler } from './reconcilers/firmware/index.js';
import { type OsUpdateOptions, type OsUpdateReconciler, osUpdateReconciler } from './reconcilers/os-update/index.js';
import { packageSourceReconciler } from './reconcilers/package-source/index.js';
import { platformUpdateReconciler } from './reconcilers/platform-update/index.js';
import { powerReconciler } from './reconcilers/power/index.js';
import { loadSettings, type Resolved, under } from './settings.js';
import { StatusWriter } from './status/files.js';
import { collectInventory, writeInventory } from './status/inventory.js';
import { ProgressWriter } from './status/progress.js';

export interface Agent {
  settings: Resolved;
  controller: Controller;
  store: DesiredStore;
  log: Logger;
  /** The local broker link and the port requests enter by; undefined if it could not start. */
  cloud: Cloud | undefined;
  stop(): Promise<void>;
}

export async function startAgent(options: { root?: string; logLevel?: string }): Promise<Agent> {
  const settings = await loadSettings(options.root);
  const log = createLogger(options.logLevel ?? settings.logLevel);
  const { paths } = settings;
  for (const dir of [paths.stateDir, paths.desiredDir, paths.cacheDir, join(paths.stateDir, 'journal')])
    await mkdir(dir, { recursive: true });
  await ensureConfFile(paths.confFile);
  const bootId = await readBootId(paths.bootIdFile, settings.root !== undefined);

  const crashAt = settings.crashAt ?? process.env.INBM_CRASH_AT;
  const journal = new Journal(join(paths.stateDir, 'journal'), bootId, (point) => {
    if (crashAt && point === crashAt) process.kill(process.pid, 'SIGKILL');
  });
  await journal.noteBoot();
  const statusDirs = (await readdir(join(paths.stateDir, 'status')).catch(() => [] as string[])).map((d) =>
    join(paths.stateDir, 'status', d),
  );
  const swept = await sweepTempFiles([
    paths.stateDir,
    join(paths.stateDir, 'journal'),
    join(paths.stateDir, 'secrets'),
    dirname(paths.confFile),
    dirname(paths.aptSourcesList),
    paths.aptSourcesDir,
    paths.keyringDir,
    ...statusDirs,
  ]);
  if (swept > 0) log.info({ swept }, 'removed temp files of an interrupted write');
  const status = new StatusWriter(paths.stateDir);
  const progress = new ProgressWriter(paths.stateDir);
  await progress.reset();
  const engines = buildEngines(settings);
  const reconcilers = buildReconcilers(settings, engines);
  let controller: Controller | undefined;
  const store = new DesiredStore(
    paths.desiredDir,
    paths.stateDir,
    status,
    log.child({ component: 'store' }),
    (key) => controller?.enqueue(key),
    () => (controller?.current ? new InbmError(Status.IN_PROGRESS, `${controller.current} is being applied`).toResult() : undefined),
    (query) =>
      answerQuery(query, {
        confFile: paths.confFile,
        stateDir: paths.stateDir,
        aptSourcesList: paths.aptSourcesList,
        aptSourcesDir: paths.aptSourcesDir,
        ...engines,
      }),
    (docs) => cancelDownload(docs, reconcilers.get('OSUpdate') as OsUpdateReconciler | undefined),
  );
  controller = new Controller({
    reconcilers,
    desired: store,
    status,
    journal,
    log: log.child({ component: 'controller' }),
    gates: () => measureGates(settings),
    resyncMs: settings.resyncSeconds * 1000,
    onSettled: (key, phase, source) => store.settled(key, phase, source),
    progress,
  });
  await store.start();
  const refreshInventory = () =>
    collectInventory(paths, VERSION)
      .then((inv) => writeInventory(paths.stateDir, inv))
      .catch((err: unknown) => log.warn({ err }, 'inventory not written'));
  await refreshInventory();
  const inventoryTimer = setInterval(() => {
    void Promise.allSettled([refreshInventory(), store.rescan()]).then(collectGarbage);
  }, settings.resyncSeconds * 1000);
  inventoryTimer.unref();
  const trim = trimAfterStart(10_000);
  // After the store: a request arriving over MQTT is a drop it must already watch.
  const { startCloud } = await import('./cloud/index.js');
  const cloud = await startCloud(settings, log.child({ component: 'cloud' }), {
    measure: () => measureGates(settings),
    docker: engines.docker,
  }).catch((err: unknown) => {
    log.error({ err }, 'cloud link not started');
    return undefined;
  });
  // Ready is logged in the same tick the controller starts: its first pass (which may finish an
  // update begun before a reboot) always comes after the line that says the agent is up.
  controller.start();
  log.info({ root: settings.root ?? '/', desiredDir: paths.desiredDir, bootId }, 'agent ready');
  return {
    settings,
    controller,
    store,
    log,
    cloud,
    async stop() {
      clearInterval(inventoryTimer);
      clearTimeout(trim);
      await cloud?.stop();
      await store.stop();
      await controller.stop();
      log.info('agent stopped');
      log.flush();
    },
  };
}

/** The engine clients, made once and shared by reconcilers and query answers. */
export function buildEngines(settings: Resolved) {
  return { docker: new DockerDriver(settings.docker.socket), compose: new ComposeEngine(settings.docker.socket) };
}

export function buildReconcilers(settings: Resolved, engines = buildEngines(settings)): Map<string, Reconciler> {
  const { paths, commands } = settings;
  const trusted = async () =>
    (await readConfValues(paths.confFile, ['trustedRepositories'])).trustedRepositories!.split('\n').filter(Boolean);
  const credentials = (name: string) => readSecret(join(paths.stateDir, 'secrets'), name);
  const firmwareOpts: FirmwareOptions = {
    stateDir: paths.stateDir,
    cacheDir: paths.cacheDir,
    dmiDir: paths.dmiDir,
    deviceTreeDirs: [under(settings.root, '/proc/device-tree'), under(settings.root, '/sys/firmware/devicetree/base')],
    firmwareToolInfo: paths.firmwareToolInfo,
    otaCertFile: paths.otaCert,
    ...(commands.reboot ? { reboot: commands.reboot } : {}),
    graceMs: settings.rebootGraceSeconds * 1000,
    trusted,
    credentials,
  };
  const osOpts: OsUpdateOptions = {
    stateDir: paths.stateDir,
    cacheDir: paths.cacheDir,
    osRelease: paths.osRelease,
    // Under --root nothing defaults to the host: apt, snapshots and Mender only where set.
    ...(settings.os.aptPrefix || !settings.root ? { apt: settings.os.aptPrefix ?? [] } : {}),
    snapshots: new SnapshotDriver({
      ...(settings.os.rootSubvolume || !settings.root ? { subvolume: settings.os.rootSubvolume ?? '/' } : {}),
      ...(settings.os.snapshotDir ? { snapshotDir: settings.os.snapshotDir } : {}),
      ...(settings.os.snapper || !settings.root ? { snapper: settings.os.snapper ?? 'detect' } : {}),
      ...(settings.os.rollback ? { rollback: settings.os.rollback } : {}),
    }),
    ...(settings.os.mender || !settings.root ? { mender: settings.os.mender ?? ['mender'] } : {}),
    ...(commands.reboot ? { reboot: commands.reboot } : {}),
    graceMs: settings.rebootGraceSeconds * 1000,
    conf: async () => {
      const v = await readConfValues(paths.confFile, ['sotaSW', 'networkCheck', 'proceedWithoutRollback']);
      return {
        services: (v.sotaSW ?? '').split(/\s+/).filter(Boolean),
        networkCheck: v.networkCheck !== 'false',
        proceedWithoutRollback: v.proceedWithoutRollback === 'true',
      };
    },
    ...(commands.serviceCheck ? { serviceCheck: commands.serviceCheck } : {}),
    routeFile: paths.routeFile,
    trusted,
    credentials,
  };
  const list = [
    configurationReconciler({ confFile: paths.confFile, cacheDir: paths.cacheDir, otaCertFile: paths.otaCert }),
    powerReconciler({
      ...(commands.reboot ? { reboot: commands.reboot } : {}),
      ...(commands.shutdown ? { shutdown: commands.shutdown } : {}),
      secretsVolume: under(settings.root, '/var/intel-manageability/secret.img'),
      graceMs: settings.rebootGraceSeconds * 1000,
    }),
    containerImageReconciler({
      docker: engines.docker,
      dbs: async () => ({
        mode: (await readConfValues(paths.confFile, ['dbs'])).dbs ?? 'OFF',
        ...(commands.dockerBenchSecurity ? { argv: commands.dockerBenchSecurity } : {}),
      }),
      cacheDir: paths.cacheDir,
      trusted,
      credentials,
    }),
    composeStackReconciler({
      compose: new ComposeDriver({
        socketPath: settings.docker.socket,
        timeouts: Object.fromEntries(Object.entries(settings.docker.composeTimeoutSeconds).map(([k, v]) => [k, v * 1000])),
      }),
      engine: engines.compose,
      cacheDir: paths.cacheDir,
      trusted,
      credentials,
    }),
    applicationReconciler({
      cacheDir: paths.cacheDir,
      otaCertFile: paths.otaCert,
      ...(commands.installPackage ? { install: commands.installPackage } : {}),
      ...(commands.reboot ? { reboot: commands.reboot } : {}),
      trusted,
      credentials,
    }),
    firmwareReconciler(firmwareOpts),
    osUpdateReconciler(osOpts),
    platformUpdateReconciler({ firmware: firmwareOpts, os: osOpts }),
    packageSourceReconciler({
      sourcesList: paths.aptSourcesList,
      sourcesDir: paths.aptSourcesDir,
      keyringDir: paths.keyringDir,
      cacheDir: paths.cacheDir,
      trusted,
    }),
  ] as unknown as Reconciler[];
  return new Map(list.map((r) => [r.kind, r]));
}

/** The pre-change gates with the thresholds the configuration file holds right now. */
export async function measureGates(settings: Resolved): Promise<GateRun> {
  const { paths } = settings;
  const keys = ['minStorageMB', 'minMemoryMB', 'minPowerPercent', 'networkCheck', 'sotaSW'];
  const v = await readConfValues(paths.confFile, keys);
  return runGates(
    preInstallGates({
      cacheDir: paths.cacheDir,
      meminfoPath: paths.meminfo,
      powerSupplyDir: paths.powerSupplyDir,
      routePath: paths.routeFile,
      minStorageMB: Number(v.minStorageMB),
      minMemoryMB: Number(v.minMemoryMB),
      minPowerPercent: Number(v.minPowerPercent),
      networkCheck: v.networkCheck !== 'false',
      services: (v.sotaSW ?? '').split(/\s+/).filter(Boolean),
      serviceCheckCommand: settings.commands.serviceCheck,
    }),
  );
}

/**
 * A SOTA cancel stops the download-only that runs now and is answered at once; with none
 * running it goes on to the reconciler, which answers as the reference does.
 */
function cancelDownload(docs: Document[], os: OsUpdateReconciler | undefined): Result | undefined {
  const [doc] = docs;
  if (docs.length !== 1 || doc?.kind !== 'OSUpdate' || doc.spec.mode !== 'cancel' || !os) return undefined;
  return os.cancel(doc.spec.requestId) ? ok('Request complete.') : undefined;
}

/** Under --root a missing boot id is made once, so agent restarts look like the same boot. */
async function readBootId(path: string, underRoot: boolean): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if (!underRoot || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const id = randomUUID();
    await mkdir(dirname(path), { recursive: true });
    await writeFileAtomic(path, `${id}\n`);
    return id;
  }
}
