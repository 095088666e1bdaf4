/**
 * `inbm provision`: the local Mosquitto broker the reference runs (inbm-reference.md §4.1): a CA,
 * a server certificate for 127.0.0.1, one client certificate per client (the agent, the CLI, a
 * cloud adapter), a mosquitto.conf with TLS, require_certificate and use_identity_as_username,
 * and an ACL that gives each certificate's CN only its own topics. openssl runs by argv.
 */
import { randomBytes } from 'node:crypto';
import { chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/atomic.js';
import { InbmError, Status } from '../core/result.js';
import { runCommand } from '../drivers/command.js';

/** Certificate CNs, which the broker takes as user names for the ACL. */
export const CLIENTS = { agent: 'inbm-agent', cli: 'inbc-program', cloud: 'cloudadapter-agent' } as const;

export interface ProvisionOptions {
  dir: string;
  port: number;
  days?: number;
  /** The user mosquitto drops to when started as root (its `user` option); it must read the broker key. */
  brokerUser?: string;
  force?: boolean;
}

export interface Provisioned {
  dir: string;
  conf: string;
  acl: string;
  ca: string;
  port: number;
  clients: Record<string, { cert: string; key: string }>;
}

const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function provision(opts: ProvisionOptions): Promise<Provisioned> {
  const { dir, port } = opts;
  const days = String(opts.days ?? 3650);
  const user = opts.brokerUser ?? 'mosquitto';
  if (!/^[a-z_][a-z0-9_-]*$/.test(user)) throw new InbmError(Status.COMMAND_FAILURE, `provision: bad user name ${JSON.stringify(user)}`);
  const ca = join(dir, 'ca.crt');
  if (!opts.force && (await stat(ca).catch(() => undefined))) {
    throw new InbmError(Status.COMMAND_FAILURE, `provision: ${ca} exists; --force replaces the CA and every certificate`);
  }
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await runCommand([
    'openssl',
    'req',
    '-x509',
    '-new',
    ...KEY_ARGS,
    '-keyout',
    join(dir, 'ca.key'),
    '-out',
    ca,
    '-days',
    days,
    '-subj',
    '/CN=inbm-local-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await issueCertificate(dir, 'broker', 'server', days);
  const clients: Provisioned['clients'] = {};
  for (const cn of Object.values(CLIENTS)) clients[cn] = await issueCertificate(dir, cn, 'client', days);

  const acl = join(dir, 'acl.file');
  await writeFileAtomic(acl, aclFile());
  const data = join(dir, 'data');
  await mkdir(data, { recursive: true, mode: 0o700 });
  const conf = join(dir, 'mosquitto.conf');
  await writeFileAtomic(conf, mosquittoConf(dir, port, user));
  await handOver(user, [join(dir, 'broker.key'), data]);
  return { dir, conf, acl, ca, port, clients };
}

/** A key and a certificate signed by the CA in DIR; the CN is NAME (the ACL user for a client). */
export async function issueCertificate(
  dir: string,
  name: string,
  use: 'server' | 'client',
  days = '3650',
): Promise<{ cert: string; key: string }> {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new InbmError(Status.COMMAND_FAILURE, `provision: bad client name ${JSON.stringify(name)}`);
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  const csr = join(dir, `.${name}.csr`);
  const ext = join(dir, `.${name}.ext`);
  await writeFile(
    ext,
    use === 'server'
      ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n'
      : 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n',
  );
  try {
    await runCommand(['openssl', 'req', '-new', ...KEY_ARGS, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
    await runCommand([
      'openssl',
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      join(dir, 'ca.crt'),
      '-CAkey',
      join(dir, 'ca.key'),
      '-set_serial',
      `0x${randomBytes(16).toString('hex')}`,
      '-days',
      days,
      '-extfile',
      ext,
      '-out',
      cert,
    ]);
  } finally {
    await rm(csr, { force: true });
    await rm(ext, { force: true });
  }
  return { cert, key };
}

/** Per-client users as in the reference's acl.file: each reads and writes only what its role needs. */
export function aclFile(): string {
  return `# inbm local broker: one user per client certificate (CN), as the reference's acl.file.
# A certificate whose CN is not listed here can connect but neither publish nor read anything
# except the agents' state flags.

user ${CLIENTS.agent}
topic read manageability/request/#
topic write manageability/response
topic write manageability/response/+
topic write manageability/event
topic write manageability/telemetry
topic write manageability/nodeupdate
topic readwrite configuration/#
topic readwrite dispatcher/#

user ${CLIENTS.cli}
topic write manageability/request/#
topic read manageability/response
topic read manageability/response/+
topic read manageability/event

user ${CLIENTS.cloud}
topic write manageability/request/#
topic read manageability/response
topic read manageability/response/+
topic read manageability/event
topic read manageability/telemetry
topic read manageability/nodeupdate
topic read configuration/update/#

pattern read +/state
`;
}

export function mosquittoConf(dir: string, port: number, user: string): string {
  return `# inbm local broker (generated by inbm provision): TLS with client certificates, ACL per CN.
per_listener_settings false
allow_anonymous false
user ${user}
persistence true
persistence_location ${join(dir, 'data')}/
max_inflight_messages 20
# Small request/result packets: Nagle's algorithm against delayed ACKs costs ~40 ms per hop.
set_tcp_nodelay true
max_packet_size 1000100

listener ${port} 127.0.0.1
cafile ${join(dir, 'ca.crt')}
certfile ${join(dir, 'broker.crt')}
keyfile ${join(dir, 'broker.key')}
tls_version tlsv1.2
require_certificate true
use_identity_as_username true
acl_file ${join(dir, 'acl.file')}
`;
}

/** When we are root and the broker's user exists, it must own its key and persistence folder. */
async function handOver(user: string, paths: string[]): Promise<void> {
  if (process.getuid?.() !== 0 || user === 'root') return;
  const line = (await readFile('/etc/passwd', 'utf8').catch(() => '')).split('\n').find((l) => l.startsWith(`${user}:`));
  if (!line) return;
  const [, , uid, gid] = line.split(':');
  for (const p of paths) await chown(p, Number(uid), Number(gid));
}

/** The agent's settings for the provisioned broker (printed for etc/inbm/agent.yaml). */
export function agentSettings(p: Provisioned, protocolVersion: 4 | 5 = 4): string {
  const c = p.clients[CLIENTS.agent]!;
  const cli = p.clients[CLIENTS.cli]!;
  return [
    'cloud:',
    '  mqtt:',
    `    url: mqtts://127.0.0.1:${p.port}`,
    `    clientId: ${CLIENTS.agent}`,
    `    caFile: ${p.ca}`,
    `    certFile: ${c.cert}`,
    `    keyFile: ${c.key}`,
    `    protocolVersion: ${protocolVersion}`,
    `    cliCertFile: ${cli.cert}`,
    `    cliKeyFile: ${cli.key}`,
    '',
  ].join('\n');
}

/** The CLI verb: provisions under DIR (default <root>/etc/inbm/mqtt) and prints the agent settings to use. */
export async function runProvision(
  root: string | undefined,
  opts: { dir?: string; port: string; days: string; brokerUser: string; force?: boolean; mqtt5?: boolean },
): Promise<number> {
  const { under } = await import('../settings.js');
  const port = Number(opts.port);
  const days = Number(opts.days);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InbmError(Status.COMMAND_FAILURE, `provision: bad port ${opts.port}`);
  if (!Number.isInteger(days) || days < 1) throw new InbmError(Status.COMMAND_FAILURE, `provision: bad days ${opts.days}`);
  const p = await provision({
    dir: opts.dir ?? under(root, '/etc/inbm/mqtt'),
    port,
    days,
    brokerUser: opts.brokerUser,
    ...(opts.force ? { force: true } : {}),
  });
  process.stderr.write(`inbm: broker files in ${p.dir}; start it with: mosquitto -c ${p.conf}\n`);
  process.stderr.write(`inbm: add to etc/inbm/agent.yaml:\n`);
  process.stdout.write(agentSettings(p, opts.mqtt5 ? 5 : 4));
  return 0;
}
