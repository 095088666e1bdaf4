/**
 * The cloud side of the agent: the local broker link (configured Mosquitto, or the embedded
 * broker), its outbox, and the INBM topics served through it. Nothing here is fatal to the
 * agent: without a broker the file drop and the CLI still work.
 */
import { join } from 'node:path';
import type { GateRun } from '../controller/gates/index.js';
import type { Logger } from '../core/log.js';
import type { DockerDriver } from '../drivers/docker.js';
import { readConfValues } from '../reconcilers/configuration/index.js';
import { type Resolved, under } from '../settings.js';
import { ADAPTER_FILE, type CloudAdapter, connectionOf, loadAdapterFile, startAdapter } from './adapters/index.js';
import { DropPort } from './agent-port.js';
import { type EmbeddedBroker, startEmbeddedBroker } from './broker.js';
import { type Diagnostics, startDiagnostics } from './diagnostics.js';
import { serveInbmTopics, TOPICS } from './inbm-topics.js';
import type { AgentPort, Link } from './link.js';
import { MqttLink } from './mqtt-link.js';
import { Outbox } from './outbox.js';
import { fanOut, inbmOut, startTelemetry, type Telemetry } from './telemetry.js';

export interface Cloud {
  /** The local broker link; undefined when there is none (embedded broker disabled or its port taken). */
  link: MqttLink | undefined;
  port: AgentPort;
  broker: EmbeddedBroker | undefined;
  stop(): Promise<void>;
}

/** The outbox's bound when the configuration file cannot be read. */
const DEFAULT_CACHE = 100;

/** What the cloud side reads of the rest of the agent: the gates for diagnostics, the engine for container stats. */
export interface CloudDeps {
  measure: () => Promise<GateRun>;
  docker?: DockerDriver;
}

export async function startCloud(settings: Resolved, log: Logger, deps?: CloudDeps): Promise<Cloud> {
  const { paths } = settings;
  const port = new DropPort({ desiredDir: paths.desiredDir, stateDir: paths.stateDir });
  await port.start();
  const mqtt = settings.cloud.mqtt;
  let broker: EmbeddedBroker | undefined;
  // Unauthenticated, so only where nothing real is at stake unless asked for: under --root.
  if (!mqtt && (settings.cloud.embedded.enabled ?? settings.root !== undefined)) {
    try {
      broker = await startEmbeddedBroker(settings.cloud.embedded.port, log.child({ component: 'broker' }));
      log.info({ port: broker.port, url: broker.url }, 'embedded broker listening');
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'embedded broker not started; MQTT requests are off');
    }
  }
  const url = mqtt?.url ?? broker?.url;
  let link: MqttLink | undefined;
  let topics: { stop(): void } | undefined;
  let services: Promise<{ stop(): Promise<void> } | undefined> | undefined;
  if (url) {
    const maxCache = async () => {
      const v = await readConfValues(paths.confFile, ['maxCacheSize']).catch(() => ({}) as Record<string, string>);
      const n = Number(v.maxCacheSize);
      return Number.isInteger(n) && n > 0 ? n : DEFAULT_CACHE;
    };
    const outbox = await Outbox.open(join(paths.stateDir, 'outbox'), maxCache, (count) =>
      log.warn({ count }, 'outbox full: oldest messages dropped'),
    );
    link = await MqttLink.start({
      url,
      clientId: mqtt?.clientId ?? 'inbm-agent',
      // aedes speaks MQTT 3.1.1 only.
      protocolVersion: mqtt?.protocolVersion ?? 4,
      ...(mqtt?.caFile ? { caFile: mqtt.caFile } : {}),
      ...(mqtt?.certFile ? { certFile: mqtt.certFile } : {}),
      ...(mqtt?.keyFile ? { keyFile: mqtt.keyFile } : {}),
      outbox,
      log: log.child({ component: 'mqtt' }),
      stateTopic: TOPICS.state,
    });
    const l = link;
    topics = await serveInbmTopics({
      link,
      port,
      log: log.child({ component: 'inbm-topics' }),
      confFile: paths.confFile,
      onConnected: (listener) => l.onConnected(listener),
    });
    log.info({ outbox: outbox.size }, 'inbm topics served');
    // Telemetry and the cloud adapter come up in the background: the agent is ready without them.
    if (deps)
      services = startServices(settings, link, port, maxCache, log, deps).catch((err: unknown) => {
        log.error({ err }, 'telemetry and cloud adapter not started');
        return undefined;
      });
  }
  return {
    link,
    port,
    broker,
    async stop() {
      await (await services)?.stop();
      topics?.stop();
      port.stop();
      await link?.stop();
      await broker?.close();
    },
  };
}

/**
 * Telemetry, diagnostics and the cloud adapter named by adapter.cfg (ThingsBoard, generic), which
 * gets its own connection and outbox; telemetry goes to the local topics and to that cloud.
 */
async function startServices(
  settings: Resolved,
  link: MqttLink,
  port: AgentPort,
  maxCache: () => Promise<number>,
  log: Logger,
  deps: CloudDeps,
): Promise<{ stop(): Promise<void> }> {
  const { paths } = settings;
  const adapterPath = under(settings.root, ADAPTER_FILE);
  const file = await loadAdapterFile(adapterPath).catch((err: unknown) => {
    log.error({ err: { message: (err as Error).message } }, 'cloud adapter file refused; INBM topics only');
    return undefined;
  });
  const connection = file ? connectionOf(file) : undefined;
  let cloudLink: MqttLink | undefined;
  if (connection) {
    cloudLink = await MqttLink.start({
      ...connection,
      clientId: connection.clientId ?? 'inbm-cloud',
      outbox: await Outbox.open(join(paths.stateDir, 'outbox-cloud'), maxCache, (count) =>
        log.warn({ count }, 'cloud outbox full: oldest messages dropped'),
      ),
      log: log.child({ component: 'mqtt-cloud' }),
    });
  }
  const diagnostics: Diagnostics = await startDiagnostics({
    link,
    measure: deps.measure,
    confFile: paths.confFile,
    ...(deps.docker ? { docker: deps.docker } : {}),
    log: log.child({ component: 'diagnostics' }),
  });
  let adapter: CloudAdapter | undefined;
  if (file && cloudLink) {
    adapter = await startAdapter({ link: cloudLink, port, adapter: file, adapterFilePath: adapterPath, diagnose: diagnostics.run, log });
  }
  const telemetry: Telemetry = await startTelemetry({
    link,
    settings,
    timeScale: settings.telemetryTimeScale,
    ...(deps.docker ? { docker: deps.docker } : {}),
    log: log.child({ component: 'telemetry' }),
    ...(adapter ? { out: fanOut(inbmOut(link), adapter) } : {}),
  });
  return {
    async stop() {
      await telemetry.stop();
      await diagnostics.stop();
      await adapter?.stop();
      await cloudLink?.stop();
    },
  };
}

export type { AgentPort, Link };
