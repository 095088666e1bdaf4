/**
 * The INBM local API (inbm-reference.md §4.1) over a Link: requests in on
 * manageability/request/<type>, the result on manageability/response, events on
 * manageability/event, configuration values retained on configuration/update/<section>/<key>.
 * Payloads are the reference's, down to Python's json.dumps spacing.
 */
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from '../core/log.js';
import { type Result, resultOf, Status } from '../core/result.js';
import { getValues, parseConf } from '../reconcilers/configuration/conffile.js';
import { SECTION_KEYS, SECTIONS } from '../reconcilers/configuration/schema.js';
import type { DropPort, Tracked } from './agent-port.js';
import type { AgentPort, Link } from './link.js';
import type { MessageMeta, MqttPublishOptions } from './mqtt-link.js';

export const TOPICS = {
  request: 'manageability/request',
  response: 'manageability/response',
  event: 'manageability/event',
  telemetry: 'manageability/telemetry',
  configUpdate: 'configuration/update',
  /** The dispatcher's retained running/dead flag (`<agent>/state`). */
  state: 'dispatcher/state',
} as const;

/** Request types whose payload is a manifest. */
const MANIFEST_TYPES = new Set(['install', 'query']);
/** Request types whose payload is ignored: the topic is the command. */
const POWER_TYPES = new Set(['restart', 'shutdown', 'decommission']);

/** `{"status": 200, "message": "…", "job_id": ""}`: json.dumps' separators and ASCII escaping. */
export function formatResult(r: Result): string {
  const str = (s: string) => JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `{"status": ${r.status}, "message": ${str(r.message)}, "job_id": ${str(r.job_id)}}`;
}

/** A Link that may carry MQTT 5 correlation data (MqttLink); under 3.1.1 it is simply not sent. */
export type RequestLink = Link & { publish(topic: string, payload: string | Buffer, opts?: MqttPublishOptions): Promise<void> };

/** Where a requester may ask for its result (MQTT 5 response topic): its own level under the response topic. */
const PRIVATE_RESPONSE = /^manageability\/response\/[^/+#]+$/;

export interface InbmTopicsOptions {
  link: RequestLink;
  /** With track/resume (DropPort) a request survives an agent restart between receipt and answer. */
  port: AgentPort & Partial<Pick<DropPort, 'track' | 'resume'>>;
  log: Logger;
  confFile: string;
  /** Registers a call after every (re)connection: retained values are published to the broker then. */
  onConnected?: (listener: () => void) => void;
}

export interface InbmTopics {
  stop(): void;
  /** Requests received and not yet answered. */
  readonly pending: number;
}

/** Serves requests and publishes configuration values until stopped. */
export async function serveInbmTopics(opts: InbmTopicsOptions): Promise<InbmTopics> {
  const { link, port, log } = opts;
  let pending = 0;
  let stopped = false;

  /** Passes one result on: the event first (INBC stops listening at the result), then the result. */
  const reply = async (t: Tracked) => {
    const result = await t.result.catch((err: unknown) => resultOf(err));
    log.info({ topic: t.note.topic, status: result.status }, 'request answered');
    await link.publish(TOPICS.event, result.message, { qos: 1 });
    const correlation = t.note.correlation ? Buffer.from(t.note.correlation, 'base64') : undefined;
    // The reference's scheduler answers a schedule it cannot parse in plain text, not JSON.
    const payload =
      t.note.schedule && result.status === Status.BAD_MANIFEST
        ? `Error parsing schedule manifest: ${result.message.replace(/^FAILED TO PARSE\/VALIDATE MANIFEST: /, '')}`
        : formatResult(result);
    await link.publish(t.note.topic ?? TOPICS.response, payload, {
      qos: 1,
      ...(correlation ? { correlationData: correlation } : {}),
    });
    // Handed to the broker or in the outbox: from here a restart must not answer it again.
    await t.done();
  };

  const take = async (type: string, id: string | undefined, payload: Buffer, meta: MessageMeta | undefined) => {
    const xml = POWER_TYPES.has(type)
      ? `<?xml version="1.0" encoding="utf-8"?><manifest><type>cmd</type><cmd>${type}</cmd></manifest>`
      : payload.toString('utf8');
    // An MQTT 5 requester that named its own response topic gets the result alone there, so
    // concurrent requesters never take each other's results (3.1.1 has only the shared topic).
    const own = meta?.responseTopic && PRIVATE_RESPONSE.test(meta.responseTopic) ? meta.responseTopic : undefined;
    const note: Record<string, string> = { topic: own ?? (id ? `${TOPICS.response}/${id}` : TOPICS.response) };
    if (own && meta?.correlationData) note.correlation = meta.correlationData.toString('base64');
    if (type === 'schedule') {
      // As the reference's dispatcher: an empty acknowledgement on response/<request_id> first.
      note.schedule = '1';
      await link.publish(note.topic!, '', { qos: 1 });
    }
    await reply(port.track ? await port.track(xml, 'mqtt', note) : untracked(port.submitManifest(xml, 'mqtt'), note));
  };

  const count = (what: Promise<void>, topic: string) => {
    pending++;
    void what.catch((err: unknown) => log.error({ err, topic }, 'request not answered')).finally(() => pending--);
  };
  // Requests a previous run took but did not answer (it stopped or crashed meanwhile).
  for (const t of (await port.resume?.()) ?? []) count(reply(t), t.note.topic ?? TOPICS.response);

  await link.subscribe(`${TOPICS.request}/#`, (topic: string, payload: Buffer, meta?: MessageMeta) => {
    if (stopped) return;
    const [type, id, ...rest] = topic.slice(TOPICS.request.length + 1).split('/');
    const known = type !== undefined && (MANIFEST_TYPES.has(type) || POWER_TYPES.has(type) || type === 'schedule');
    if (!known || rest.length > 0 || (type === 'schedule' && !id)) {
      log.warn({ topic }, 'request on an unknown topic ignored');
      return;
    }
    count(take(type, type === 'schedule' ? id : undefined, payload, meta), topic);
  });

  const config = await publishConfiguration(link, opts.confFile, log, opts.onConnected);
  return {
    get pending() {
      return pending;
    },
    stop() {
      stopped = true;
      config.stop();
    },
  };
}

/**
 * Every leaf value of the configuration file, retained, so an agent that subscribes later still
 * reads the current value; republished for the keys that change.
 */
export async function publishConfiguration(
  link: RequestLink,
  confFile: string,
  log: Logger,
  onConnected?: (listener: () => void) => void,
): Promise<{ stop(): void }> {
  const last = new Map<string, string>();
  let running: Promise<void> = Promise.resolve();
  const publishChanged = () =>
    (running = running.then(async () => {
      let values: Map<string, string>;
      try {
        values = confValues(await readFile(confFile, 'utf8'));
      } catch (err) {
        // A file being replaced or refused by its schema: the next change event tries again.
        log.debug({ err: { message: (err as Error).message } }, 'configuration not readable');
        return;
      }
      // Retained values need no outbox: each connection publishes them all again.
      if (!link.connected) return;
      for (const [topic, value] of values) {
        if (last.get(topic) === value) continue;
        last.set(topic, value);
        await link.publish(topic, JSON.stringify(value), { qos: 1, retain: true });
      }
    }));
  onConnected?.(() => {
    last.clear();
    void publishChanged();
  });
  await publishChanged();
  let timer: NodeJS.Timeout | undefined;
  // The directory, not the file: the configuration is replaced by rename, which ends a file watch.
  const watcher: FSWatcher = watch(dirname(confFile), (_event, name) => {
    if (name !== basename(confFile)) return;
    clearTimeout(timer);
    timer = setTimeout(() => void publishChanged(), 50);
  });
  watcher.on('error', (err) => log.warn({ err }, 'configuration watch failed'));
  return {
    stop() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}

function confValues(xml: string): Map<string, string> {
  const conf = parseConf(xml);
  const out = new Map<string, string>();
  for (const section of SECTIONS) {
    const keys = SECTION_KEYS[section];
    const values = getValues(conf, keys);
    for (const key of keys) out.set(`${TOPICS.configUpdate}/${section}/${key}`, values[key] ?? '');
  }
  return out;
}

const untracked = (result: Promise<Result>, note: Record<string, string>): Tracked => ({ note, result, done: async () => {} });
