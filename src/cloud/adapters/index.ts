/**
 * Which cloud adapter runs, chosen by the reference's adapter.cfg
 * (`{"cloud": …, "config": {…}}`, /etc/intel-manageability/secret/cloudadapter-agent/adapter.cfg):
 *   "thingsboard"        → the native ThingsBoard adapter (the config's mqtt section is the connection)
 *   "inbm" / "local"     → none: requests arrive on INBM's own topics (src/cloud/mqtt-link.ts)
 *   "azure"              → not implemented yet; docs/cloud-adapters.md says what it needs
 *   "inbs", "ucc"        → not supported (gRPC / raw command service)
 *   anything else        → the generic adapter, driven by `config`
 */
import { readFile, rm } from 'node:fs/promises';
import { z } from 'zod';
import type { Logger } from '../../core/log.js';
import { InbmError, Status } from '../../core/result.js';
import type { DiagnosticResult } from '../diagnostics.js';
import type { AgentPort, Link } from '../link.js';
import { parseGenericConfig, startGeneric } from './generic.js';
import { GenericConfig } from './template.js';
import { type CloudAdapter, startThingsBoard } from './thingsboard.js';

export type { CloudAdapter } from './thingsboard.js';

export const ADAPTER_FILE = '/etc/intel-manageability/secret/cloudadapter-agent/adapter.cfg';

export const AdapterFile = z.object({
  cloud: z.string().min(1),
  config: z.unknown().optional(),
  auxiliary_files: z.array(z.string()).optional(),
});
export type AdapterFile = z.infer<typeof AdapterFile>;

export async function loadAdapterFile(path: string): Promise<AdapterFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InbmError(Status.COMMAND_FAILURE, `cloud adapter file ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new InbmError(Status.COMMAND_FAILURE, `cloud adapter file ${path}: not JSON`);
  }
  const r = AdapterFile.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new InbmError(Status.COMMAND_FAILURE, `cloud adapter file ${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return r.data;
}

/** What the Link needs to reach the cloud broker, from a generic/ThingsBoard config. Holds the secret password: never log it. */
export interface CloudConnection {
  url: string;
  username: string;
  password?: string;
  clientId?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export function connectionOf(file: AdapterFile): CloudConnection | undefined {
  const r = GenericConfig.shape.mqtt.safeParse((file.config as { mqtt?: unknown } | undefined)?.mqtt);
  if (!r.success) return undefined;
  const cfg = file.config as GenericConfig;
  const m = r.data;
  return {
    url: `${cfg.tls ? 'mqtts' : 'mqtt'}://${m.hostname}:${m.port}`,
    username: m.username,
    ...(m.password ? { password: m.password } : {}),
    ...(m.client_id ? { clientId: m.client_id } : {}),
    ...(cfg.tls?.certificates ? { caFile: cfg.tls.certificates } : {}),
    ...(cfg.x509?.device_cert ? { certFile: cfg.x509.device_cert } : {}),
    ...(cfg.x509?.device_key ? { keyFile: cfg.x509.device_key } : {}),
  };
}

export interface AdapterOptions {
  link: Link;
  port: AgentPort;
  adapter: AdapterFile;
  /** The adapter.cfg path, removed by decommission_device as the reference does. */
  adapterFilePath?: string;
  log?: Logger;
  responseWaitMs?: number;
  /** Serves the `triggerdiagnostic` method (startDiagnostics(...).run). */
  diagnose?: (cmd: string) => Promise<DiagnosticResult>;
}

/** Starts the configured adapter; undefined when requests come over INBM's own topics. */
export async function startAdapter(o: AdapterOptions): Promise<CloudAdapter | undefined> {
  const cloud = o.adapter.cloud.toLowerCase();
  const common = {
    link: o.link,
    port: o.port,
    ...(o.log ? { log: o.log.child({ component: `cloud-${cloud}` }) } : {}),
    ...(o.responseWaitMs !== undefined ? { responseWaitMs: o.responseWaitMs } : {}),
    ...(o.diagnose ? { diagnose: o.diagnose } : {}),
    ...(o.adapterFilePath ? { onDecommission: () => removeFiles([o.adapterFilePath!, ...(o.adapter.auxiliary_files ?? [])]) } : {}),
  };
  switch (cloud) {
    case 'inbm':
    case 'local':
      return undefined;
    case 'thingsboard':
      return startThingsBoard(common);
    case 'azure':
      throw new InbmError(Status.COMMAND_FAILURE, 'cloud adapter azure: not implemented (see docs/cloud-adapters.md)');
    case 'inbs':
    case 'ucc':
      throw new InbmError(Status.COMMAND_FAILURE, `cloud adapter ${cloud}: not supported`);
    default:
      parseGenericConfig(o.adapter.config);
      return startGeneric({ ...common, config: o.adapter.config });
  }
}

async function removeFiles(paths: string[]): Promise<void> {
  await Promise.all(paths.map((p) => rm(p, { force: true })));
}
