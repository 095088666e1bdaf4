/**
 * Telemetry as the reference's telemetry agent sends it: static attributes once at start,
 * a dynamic bundle every collectionIntervalSeconds, the cached bundles published every
 * publishIntervalSeconds (at most maxCacheSize kept while the link is down), and the software
 * BOM every swBomIntervalHours. Intervals come from the configuration file and are re-read on
 * every tick and whenever the file changes, so `inbm set` takes effect without a restart.
 */
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from '../core/log.js';
import { readConfValues } from '../reconcilers/configuration/index.js';
import { type Resolved, under } from '../settings.js';
import type { Link } from './link.js';
import {
  type ContainerStats,
  CpuMeter,
  chunkBom,
  dynamicValues,
  type SourcePaths,
  softwareBom,
  staticValues,
  swBomCommand,
  type Values,
} from './telemetry-sources.js';

export const TELEMETRY_TOPIC = 'manageability/telemetry';
export const EVENT_TOPIC = 'manageability/event';

export interface Envelope {
  /** Seconds since the epoch, fractional, as Python's time.time(). */
  timestamp: number;
  type: 'static_telemetry' | 'dynamic_telemetry';
  values: Values | Record<string, unknown>;
}

/** Where telemetry goes: INBM's topics by default, or a cloud adapter's own shapes. */
export interface TelemetryOut {
  telemetry(envelope: Envelope): Promise<void>;
  event(message: string): Promise<void>;
}

export function inbmOut(link: Link): TelemetryOut {
  return {
    telemetry: (e) => link.publish(TELEMETRY_TOPIC, JSON.stringify(e), { qos: 1 }),
    event: (m) => link.publish(EVENT_TOPIC, m, { qos: 1 }),
  };
}

/** Sends to several places (e.g. INBM's topics on the local broker and a cloud adapter). */
export function fanOut(...outs: TelemetryOut[]): TelemetryOut {
  return {
    telemetry: async (e) => void (await Promise.all(outs.map((o) => o.telemetry(e)))),
    event: async (m) => void (await Promise.all(outs.map((o) => o.event(m)))),
  };
}

/** The telemetry section of the configuration file, typed. */
export interface TelemetryConf {
  collectionIntervalSeconds: number;
  publishIntervalSeconds: number;
  maxCacheSize: number;
  enableSwBom: boolean;
  swBomIntervalHours: number;
}

const KEYS = ['collectionIntervalSeconds', 'publishIntervalSeconds', 'maxCacheSize', 'enableSwBom', 'swBomIntervalHours'];
/** The shipped defaults, used until the file can be read. */
export const DEFAULT_TELEMETRY_CONF: TelemetryConf = {
  collectionIntervalSeconds: 60,
  publishIntervalSeconds: 300,
  maxCacheSize: 100,
  enableSwBom: true,
  swBomIntervalHours: 24,
};

export async function readTelemetryConf(confFile: string): Promise<TelemetryConf> {
  const v = await readConfValues(confFile, KEYS);
  const num = (k: keyof TelemetryConf) => (v[k] ? Number(v[k]) : (DEFAULT_TELEMETRY_CONF[k] as number));
  return {
    collectionIntervalSeconds: num('collectionIntervalSeconds'),
    publishIntervalSeconds: num('publishIntervalSeconds'),
    maxCacheSize: num('maxCacheSize'),
    enableSwBom: v.enableSwBom !== 'false',
    swBomIntervalHours: num('swBomIntervalHours'),
  };
}

/**
 * When to publish, as the reference's TelemetryTimer counts it: each collection adds its
 * interval to the time since the last publish, and a publish is due once that reaches the
 * publish interval. One timer drives both, so a bundle is never published before it exists.
 */
export class Cadence {
  private sincePublish = 0;
  /** Records one collection; true when the cache should be published now. */
  collected(collectSeconds: number, publishSeconds: number): boolean {
    this.sincePublish += collectSeconds;
    if (this.sincePublish < publishSeconds) return false;
    this.sincePublish %= publishSeconds;
    return true;
  }
}

export interface TelemetryOptions {
  link: Link;
  settings: Resolved;
  /** Defaults to settings.paths.confFile. */
  confFile?: string;
  /** Defaults to INBM's `manageability/telemetry` and `manageability/event`. */
  out?: TelemetryOut;
  /** Container stats source (the agent's DockerDriver); asked only when its socket exists. */
  docker?: ContainerStats;
  log?: Logger;
  /**
   * Test override: every configured interval is multiplied by this (0.01 turns the conf's
   * 30 s into 300 ms). The conf values are still read and re-read; only the clock is faster.
   */
  timeScale?: number;
  /** The software BOM command; defaults to dpkg-query against the root's package database. */
  swBomCommand?: string[];
}

export interface Telemetry {
  /** A change notification: re-reads the conf now and reschedules if an interval changed. */
  reload(): Promise<void>;
  /** The values in force (after the last read of the conf). */
  conf(): TelemetryConf;
  /** Bundles collected and not yet published (at most maxCacheSize). */
  pending(): number;
  stop(): Promise<void>;
}

export function sourcePaths(settings: Resolved): SourcePaths {
  const { paths, root } = settings;
  return {
    procDir: dirname(paths.meminfo),
    sysDir: under(root, '/sys'),
    dmiDir: paths.dmiDir,
    deviceTreeDirs: [under(root, '/proc/device-tree'), under(root, '/sys/firmware/devicetree/base')],
    osRelease: paths.osRelease,
    powerSupplyDir: paths.powerSupplyDir,
    routeFile: paths.routeFile,
    diskPath: root ?? '/',
  };
}

export async function startTelemetry(o: TelemetryOptions): Promise<Telemetry> {
  const confFile = o.confFile ?? o.settings.paths.confFile;
  const out = o.out ?? inbmOut(o.link);
  const scale = o.timeScale ?? 1;
  const paths = sourcePaths(o.settings);
  const cpu = new CpuMeter(`${paths.procDir}/stat`);
  const bomArgv = o.swBomCommand ?? swBomCommand(o.settings.root ? under(o.settings.root, '/var/lib/dpkg') : undefined);
  // Only an engine that could answer is worth a dockerode import and a request.
  const docker = async () => (o.docker && (await o.docker.available()) ? o.docker : undefined);

  let conf = DEFAULT_TELEMETRY_CONF;
  let stopped = false;
  let collectTimer: NodeJS.Timeout | undefined;
  let bomTimer: NodeJS.Timeout | undefined;
  const cache: Envelope[] = [];
  const cadence = new Cadence();
  const warn = (err: unknown, what: string) => o.log?.warn({ err: err instanceof Error ? err.message : err }, what);

  const readConf = async (): Promise<TelemetryConf> => {
    try {
      return await readTelemetryConf(confFile);
    } catch (err) {
      warn(err, 'telemetry: configuration unreadable, keeping the last values');
      return conf;
    }
  };

  const armCollect = () => {
    clearTimeout(collectTimer);
    if (stopped) return;
    collectTimer = setTimeout(() => void tick(), conf.collectionIntervalSeconds * 1000 * scale);
    collectTimer.unref();
  };
  const armBom = () => {
    clearTimeout(bomTimer);
    if (stopped || !conf.enableSwBom) return;
    bomTimer = setTimeout(
      () =>
        void publishBom()
          .catch((err: unknown) => warn(err, 'telemetry: software BOM not published'))
          .finally(armBom),
      conf.swBomIntervalHours * 3600 * 1000 * scale,
    );
    bomTimer.unref();
  };

  /** Applies a freshly read conf; timers are re-armed only for the intervals that changed. */
  const apply = (next: TelemetryConf, rearm: boolean) => {
    const prev = conf;
    conf = next;
    if (rearm && next.collectionIntervalSeconds !== prev.collectionIntervalSeconds) armCollect();
    if (next.swBomIntervalHours !== prev.swBomIntervalHours || next.enableSwBom !== prev.enableSwBom) armBom();
    if (next.maxCacheSize < cache.length) cache.splice(0, cache.length - next.maxCacheSize);
  };

  const drain = async () => {
    // While the link is down bundles wait here (trimmed to maxCacheSize) rather than in the outbox.
    while (cache.length > 0 && o.link.connected) {
      const next = cache[0]!;
      await out.telemetry(next);
      // A trim while it was in flight may have removed it already.
      if (cache[0] === next) cache.shift();
    }
  };
  // One drain at a time, so the start-up publish and a tick's cannot send the same bundle twice.
  // (.finally runs after the assignment even when drain() has nothing to await.)
  let flushing: Promise<void> | undefined;
  const flush = (): Promise<void> => {
    flushing ??= drain().finally(() => {
      flushing = undefined;
    });
    return flushing;
  };

  const collect = async (): Promise<Envelope> => ({
    timestamp: Date.now() / 1000,
    type: 'dynamic_telemetry',
    values: await dynamicValues(paths, cpu, await docker()),
  });

  const tick = async () => {
    try {
      apply(await readConf(), false);
      cache.push(await collect());
      if (cache.length > conf.maxCacheSize) cache.splice(0, cache.length - conf.maxCacheSize);
      if (cadence.collected(conf.collectionIntervalSeconds, conf.publishIntervalSeconds)) await flush();
    } catch (err) {
      warn(err, 'telemetry: collection failed');
    } finally {
      armCollect();
    }
  };

  const publishBom = async () => {
    let lines: string[];
    try {
      lines = await softwareBom(bomArgv);
    } catch (err) {
      lines = [`Error gathering software BOM information. ${err instanceof Error ? err.message : String(err)}`];
    }
    const chunks = chunkBom(lines);
    if (chunks.length === 0) chunks.push([]);
    for (const [i, chunk] of chunks.entries()) {
      const value = lines.length === 0 ? 'No Software BOM packages available on platform' : { [`swbom_package_list_${i + 1}`]: chunk };
      await out.telemetry({ timestamp: Date.now() / 1000, type: 'dynamic_telemetry', values: { softwareBOM: value } });
    }
  };

  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  const reload = async () => apply(await readConf(), true);
  try {
    // The directory, not the file: the conf is replaced by rename, which a file watch would lose.
    watcher = watch(dirname(confFile), (_event, name) => {
      if (name !== null && name !== basename(confFile)) return;
      clearTimeout(debounce);
      debounce = setTimeout(() => void reload(), 50);
      debounce.unref();
    });
    watcher.on('error', (err) => warn(err, 'telemetry: configuration watch failed; re-reading at each collection only'));
    watcher.unref();
  } catch (err) {
    warn(err, 'telemetry: configuration watch failed; re-reading at each collection only');
  }

  conf = await readConf();
  const start = async () => {
    try {
      await out.telemetry({ timestamp: Date.now() / 1000, type: 'static_telemetry', values: await staticValues(paths) });
      cache.push(await collect());
      await flush();
      if (conf.enableSwBom) await publishBom();
    } catch (err) {
      warn(err, 'telemetry: initial publish failed');
    }
  };
  const started = start();
  armCollect();
  armBom();

  return {
    reload,
    conf: () => conf,
    pending: () => cache.length,
    async stop() {
      stopped = true;
      clearTimeout(collectTimer);
      clearTimeout(bomTimer);
      clearTimeout(debounce);
      watcher?.close();
      await started;
    },
  };
}
