/**
 * The agent's own settings: one YAML file of ours, validated at start with every error named by
 * its path. Paths are device paths; `--root DIR` (or INBM_ROOT) places all of them under DIR.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { InbmError, Status } from './core/result.js';

const AbsPath = z.string().regex(/^\//, 'an absolute path');
const Seconds = z.number().int().min(1).max(86400);
const Command = z.array(z.string().min(1)).min(1).describe('argument array, never a shell string');

export const Settings = z
  .object({
    paths: z
      .object({
        confFile: AbsPath.default('/etc/intel_manageability.conf'),
        firmwareToolInfo: AbsPath.default('/etc/firmware_tool_info.conf'),
        stateDir: AbsPath.default('/var/lib/inbm'),
        desiredDir: AbsPath.default('/var/lib/inbm/desired-state'),
        cacheDir: AbsPath.default('/var/cache/manageability'),
        dmiDir: AbsPath.default('/sys/devices/virtual/dmi/id'),
        bootIdFile: AbsPath.default('/proc/sys/kernel/random/boot_id'),
        meminfo: AbsPath.default('/proc/meminfo'),
        powerSupplyDir: AbsPath.default('/sys/class/power_supply'),
        routeFile: AbsPath.default('/proc/net/route'),
        osRelease: AbsPath.default('/etc/os-release'),
        otaCert: AbsPath.default('/etc/intel-manageability/public/dispatcher-agent/ota_signature_cert.pem'),
        aptSourcesList: AbsPath.default('/etc/apt/sources.list'),
        aptSourcesDir: AbsPath.default('/etc/apt/sources.list.d'),
        keyringDir: AbsPath.default('/usr/share/keyrings').describe('signing keys of application sources'),
      })
      .strict()
      .prefault({}),
    commands: z
      .object({
        reboot: Command.optional(),
        shutdown: Command.optional(),
        serviceCheck: Command.optional().describe('e.g. [systemctl, is-active, --quiet, "{service}"]'),
        installPackage: Command.optional().describe('installs a fetched .deb, e.g. [dpkg, -i, "{file}"]'),
        dockerBenchSecurity: Command.optional().describe('checks a new container, e.g. [/usr/local/bin/dbs-check, "{container}"]'),
      })
      .strict()
      .prefault({}),
    os: z
      .object({
        aptPrefix: Command.optional().describe(
          'runs apt-get/dpkg in the target root, e.g. [chroot, /mnt/root]; absent = the host (refused under --root)',
        ),
        rootSubvolume: AbsPath.optional().describe('btrfs subvolume of the root, snapshotted before an OS update; host default /'),
        snapshotDir: AbsPath.optional().describe('where plain btrfs snapshots go; default <rootSubvolume>/.snapshots'),
        snapper: Command.optional().describe('snapper and its config, e.g. [snapper, -c, root]; host default when installed'),
        rollback: Command.optional().describe('makes the next boot use "{snapshot}" instead of "{subvolume}"; default btrfs set-default'),
        mender: Command.optional().describe('the Mender client on Yocto; host default [mender]'),
      })
      .strict()
      .prefault({})
      .describe('OS update (SOTA); device paths, not moved by --root'),
    docker: z
      .object({
        socket: AbsPath.default('/var/run/docker.sock').describe('the engine, unless DOCKER_HOST is set; not moved by --root'),
        composeTimeoutSeconds: z
          .object({ up: Seconds.optional(), pull: Seconds.optional(), down: Seconds.optional() })
          .strict()
          .prefault({})
          .describe('how long docker-compose up/pull/down may run before it is killed (default 600/600/120)'),
      })
      .strict()
      .prefault({}),
    cloud: z
      .object({
        mqtt: z
          .object({
            url: z.string().regex(/^mqtts?:\/\//, 'an mqtt:// or mqtts:// URL'),
            clientId: z.string().min(1).optional(),
            caFile: AbsPath.optional(),
            certFile: AbsPath.optional(),
            keyFile: AbsPath.optional(),
            protocolVersion: z
              .union([z.literal(4), z.literal(5)])
              .default(4)
              .describe('4 = MQTT 3.1.1, 5 = MQTT 5'),
            cliCertFile: AbsPath.optional().describe('the CLI verbs go through the broker with this certificate (INBC)'),
            cliKeyFile: AbsPath.optional(),
          })
          .strict()
          .optional()
          .describe('broker to connect to; absent = the embedded local broker'),
        embedded: z
          .object({
            enabled: z
              .boolean()
              .optional()
              .describe('default: on under --root (a demo), off on a device, where any local user could reach it'),
            port: z.number().int().min(0).max(65535).default(1883).describe('plain MQTT on 127.0.0.1 only; 0 = any free port'),
          })
          .strict()
          .prefault({})
          .describe('the broker started when cloud.mqtt is absent (a demo: no TLS, loopback only)'),
      })
      .strict()
      .prefault({}),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
    resyncSeconds: z.number().int().min(1).max(86400).default(300),
    rebootGraceSeconds: z.number().int().min(1).max(3600).default(120).describe('how long a reboot may take to happen'),
    /** Crashes with SIGKILL right before the named journal step (tests only). */
    crashAt: z.string().optional(),
    /**
     * Tests only: multiplies every telemetry interval of the configuration file (0.01 turns
     * publishIntervalSeconds 120 into 1.2 s), so a test can watch an interval change take effect.
     * The conf values are still read and range-checked as on a device; only the clock is faster.
     */
    telemetryTimeScale: z
      .number()
      .positive()
      .max(1)
      .default(1)
      .describe('tests only: telemetry intervals are multiplied by this; 1 on a device'),
  })
  .strict();
export type Settings = z.infer<typeof Settings>;

/** Commands that change the machine; used only when not running under --root. */
const HOST_COMMANDS = {
  reboot: ['/sbin/shutdown', '-r', 'now'],
  shutdown: ['/sbin/shutdown', '-h', 'now'],
  serviceCheck: ['systemctl', 'is-active', '--quiet', '{service}'],
  installPackage: ['dpkg', '-i', '{file}'],
};

export const SETTINGS_FILE = '/etc/inbm/agent.yaml';

export interface Resolved extends Settings {
  root: string | undefined;
}

/** Reads `<root>/etc/inbm/agent.yaml` if it exists; a missing file means defaults. */
export async function loadSettings(root: string | undefined, file?: string): Promise<Resolved> {
  const path = file ?? under(root, SETTINGS_FILE);
  let raw: unknown = {};
  try {
    raw = parse(await readFile(path, 'utf8')) ?? {};
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new InbmError(Status.COMMAND_FAILURE, `settings ${path}: ${(err as Error).message.split('\n')[0]}`);
  }
  const result = Settings.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new InbmError(Status.COMMAND_FAILURE, `settings ${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const s = result.data;
  const paths = Object.fromEntries(Object.entries(s.paths).map(([k, v]) => [k, under(root, v)])) as Settings['paths'];
  // Under --root the host's power commands are never defaults: a demo must not reboot the machine.
  const commands = root ? s.commands : { ...HOST_COMMANDS, ...s.commands };
  return { ...s, paths, commands, root };
}

export const under = (root: string | undefined, path: string): string => (root ? join(root, path) : path);
