/**
 * The only code that talks to the Docker engine (dockerode, loaded lazily: it is the heaviest
 * import). The engine is found through DOCKER_HOST or the given socket, independent of --root.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type Dockerode from 'dockerode';
import { InbmError, Status } from '../core/result.js';

export const LABEL_RESOURCE = 'inbm.dev/resource';
export const LABEL_VERSION = 'inbm.dev/version';

export interface ContainerState {
  id: string;
  name: string;
  version: string;
  running: boolean;
  /** healthy / unhealthy / starting, or undefined when the image defines no health check */
  health?: string;
  exitCode: number;
  /** How often the engine restarted it (restart policy): a crash loop looks "running" between exits. */
  restarts?: number;
  /** Exited, and the engine is about to start it again (restart policy); not `running`. */
  restarting?: boolean;
}

export interface RunSpec {
  name: string;
  image: string;
  resource: string;
  version: string;
  command?: string;
  restartPolicy: 'no' | 'always' | 'unless-stopped' | 'on-failure';
  /** docker --device: HOST[:CONTAINER][:PERMISSIONS] */
  devices?: readonly string[];
  /** docker -p: [[IP:]HOST_PORT:]CONTAINER_PORT[/PROTOCOL] */
  ports?: readonly string[];
}

export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions: string;
}

const badOption = (reason: string) => new InbmError(Status.INSTALL_FAILED, `AOTA docker: ${reason}`);

/** As `docker run --device` reads it; a second part that is only r/w/m letters is the permissions. */
export function parseDevice(spec: string): DeviceMapping {
  const parts = spec.split(':');
  const [host, second, third] = parts;
  const isMode = (m: string | undefined) => m !== undefined && /^[rwm]{1,3}$/.test(m) && new Set(m).size === m.length;
  const fail = () => badOption(`device "${spec}" is not HOST[:CONTAINER][:rwm] with absolute paths`);
  if (!host || parts.length > 3 || !host.startsWith('/')) throw fail();
  const container = parts.length === 2 && isMode(second) ? host : (second ?? host);
  const mode = parts.length === 3 ? third : parts.length === 2 && isMode(second) ? second : 'rwm';
  if (!container.startsWith('/') || !isMode(mode)) throw fail();
  return { PathOnHost: host, PathInContainer: container, CgroupPermissions: mode! };
}

const PORT = /^(?:(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(\d{1,5})?:)?(\d{1,5})(?:\/(tcp|udp|sctp))?$/;

/** As `docker run -p` reads it (no ranges): the exposed port key and its host binding. */
export function parsePort(spec: string): { key: string; binding: { HostIp: string; HostPort: string } } {
  const m = PORT.exec(spec.trim());
  const valid = (p: string | undefined) => p === undefined || (Number(p) >= 1 && Number(p) <= 65535);
  if (!m || !valid(m[2]) || !valid(m[3]))
    throw badOption(`port "${spec}" is not [[IP:]HOST_PORT:]CONTAINER_PORT[/tcp|udp|sctp] with ports 1-65535`);
  return {
    key: `${Number(m[3])}/${m[4] ?? 'tcp'}`,
    binding: { HostIp: (m[1] ?? '').replace(/^\[|\]$/g, ''), HostPort: m[2] === undefined ? '' : String(Number(m[2])) },
  };
}

/** The engine's create options for one labelled container (pure: unit-tested without an engine). */
export function createOptions(spec: RunSpec): Dockerode.ContainerCreateOptions {
  const ports = (spec.ports ?? []).map(parsePort);
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of ports) (bindings[p.key] ??= []).push(p.binding);
  return {
    name: spec.name,
    Image: spec.image,
    ...(spec.command ? { Cmd: ['/bin/sh', '-c', spec.command] } : {}),
    Labels: { [LABEL_RESOURCE]: spec.resource, [LABEL_VERSION]: spec.version },
    ...(ports.length > 0 ? { ExposedPorts: Object.fromEntries(ports.map((p) => [p.key, {}])) } : {}),
    // Busybox as PID 1 ignores SIGTERM: an init makes stop take milliseconds, not 10 s.
    HostConfig: {
      Init: true,
      NetworkMode: 'none',
      RestartPolicy: { Name: spec.restartPolicy },
      ...(spec.devices?.length ? { Devices: spec.devices.map(parseDevice) } : {}),
      ...(ports.length > 0 ? { PortBindings: bindings } : {}),
    },
  };
}

export class DockerDriver {
  private client: Promise<Dockerode> | undefined;

  constructor(private readonly socketPath?: string) {}

  /**
   * Whether an engine could answer, without loading dockerode (~5 MiB the agent only pays once
   * it has containers to look at): the unix socket exists; a TCP DOCKER_HOST is taken as is.
   */
  async available(): Promise<boolean> {
    const socket = engineSocket(this.socketPath);
    if (socket === undefined) return true;
    return (await stat(socket).catch(() => undefined))?.isSocket() ?? false;
  }

  private docker(): Promise<Dockerode> {
    this.client ??= connectDocker(this.socketPath);
    return this.client;
  }

  /** Tags present locally for a repository ("repo:tag" → tag). */
  async tags(repo: string): Promise<string[]> {
    const d = await this.docker();
    const images = await engine(() => d.listImages({ filters: JSON.stringify({ reference: [repo] }) }));
    return images
      .flatMap((i) => i.RepoTags ?? [])
      .filter((t) => t.startsWith(`${repo}:`))
      .map((t) => t.slice(repo.length + 1));
  }

  async containers(resource: string): Promise<ContainerState[]> {
    const d = await this.docker();
    const list = await engine(() => d.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL_RESOURCE}=${resource}`] }) }));
    return Promise.all(list.map((c) => this.inspect(c.Id)));
  }

  async inspect(id: string): Promise<ContainerState> {
    const d = await this.docker();
    const c = await engine(() => d.getContainer(id).inspect());
    return {
      id: c.Id,
      name: c.Name.replace(/^\//, ''),
      version: c.Config.Labels?.[LABEL_VERSION] ?? '',
      // The engine reports a container waiting to be restarted as Running too.
      running: c.State.Running && !c.State.Restarting,
      ...(c.State.Health?.Status ? { health: c.State.Health.Status } : {}),
      exitCode: c.State.ExitCode,
      restarts: c.RestartCount ?? 0,
      ...(c.State.Restarting ? { restarting: true } : {}),
    };
  }

  /** Running containers with one CPU and memory sample each (AOTA docker stats). */
  async stats(): Promise<Array<{ name: string; image: string; cpuPercent: number; memoryBytes: number }>> {
    const d = await this.docker();
    const running = await engine(() => d.listContainers());
    return Promise.all(
      running.map(async (c) => {
        const s = (await engine(() => d.getContainer(c.Id).stats({ stream: false }))) as unknown as {
          cpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage?: number; online_cpus?: number };
          precpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage?: number };
          memory_stats: { usage?: number };
        };
        const cpu = s.cpu_stats.cpu_usage.total_usage - s.precpu_stats.cpu_usage.total_usage;
        const system = (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats.system_cpu_usage ?? 0);
        const cpuPercent = system > 0 ? Math.round((cpu / system) * (s.cpu_stats.online_cpus ?? 1) * 10000) / 100 : 0;
        return { name: (c.Names[0] ?? c.Id).replace(/^\//, ''), image: c.Image, cpuPercent, memoryBytes: s.memory_stats.usage ?? 0 };
      }),
    );
  }

  /** Containers (running or not), optionally of one image repository (AOTA docker list). */
  async list(repo?: string): Promise<Array<{ name: string; image: string; state: string }>> {
    const d = await this.docker();
    const all = await engine(() => d.listContainers({ all: true }));
    return all
      .filter((c) => !repo || c.Image === repo || c.Image.startsWith(`${repo}:`))
      .map((c) => ({ name: (c.Names[0] ?? c.Id).replace(/^\//, ''), image: c.Image, state: c.State }));
  }

  /** docker import of a root filesystem tarball. */
  async importImage(file: string, repo: string, tag: string): Promise<void> {
    const d = await this.docker();
    const stream = await engine(() => d.importImage(createReadStream(file) as never, { repo, tag }));
    await follow(d, stream, 'import');
  }

  /** docker load of an image tarball; its failures arrive only inside the progress stream. */
  async loadImage(file: string): Promise<void> {
    const d = await this.docker();
    const stream = await engine(() => d.loadImage(createReadStream(file) as never, { quiet: true }));
    await follow(d, stream, 'load');
  }

  async pull(ref: string, auth?: { username: string; password: string; serveraddress: string }): Promise<void> {
    const d = await this.docker();
    const stream = await engine(() => d.pull(ref, auth ? { authconfig: auth } : {}));
    await follow(d, stream, 'pull');
  }

  /** docker tag SOURCE REPO:TAG */
  async tag(source: string, repo: string, tag: string): Promise<void> {
    const d = await this.docker();
    await engine(() => d.getImage(source).tag({ repo, tag }));
  }

  async run(spec: RunSpec): Promise<string> {
    const d = await this.docker();
    const options = createOptions(spec);
    const container = await engine(() => d.createContainer(options));
    await engine(() => container.start());
    return container.id;
  }

  async start(id: string): Promise<void> {
    const d = await this.docker();
    await engine(() => d.getContainer(id).start()).catch(ignore(304));
  }

  async stop(id: string): Promise<void> {
    const d = await this.docker();
    await engine(() => d.getContainer(id).stop({ t: 5 })).catch(ignore(304));
  }

  async removeContainer(id: string): Promise<void> {
    const d = await this.docker();
    await engine(() => d.getContainer(id).remove({ force: true })).catch(ignore(404));
  }

  async removeImage(ref: string): Promise<void> {
    const d = await this.docker();
    await engine(() => d.getImage(ref).remove()).catch(ignore(404));
  }
}

/** The unix socket the engine answers on: DOCKER_HOST's when set (undefined for tcp), else the given one. */
function engineSocket(socketPath?: string): string | undefined {
  const host = process.env.DOCKER_HOST;
  if (host) return host.startsWith('unix://') ? host.slice('unix://'.length) : undefined;
  return socketPath ?? '/var/run/docker.sock';
}

/** The engine client: DOCKER_HOST when set, else the given socket. */
export async function connectDocker(socketPath?: string): Promise<Dockerode> {
  const { default: Docker } = await import('dockerode');
  const socket = engineSocket(socketPath);
  // dockerode reads a tcp DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) itself.
  return socket === undefined ? new Docker() : new Docker({ socketPath: socket });
}

/** Engine errors as results: 404 stays 404, an unreachable engine is worth retrying. */
export async function engine<T>(call: () => Promise<T>, what = 'docker'): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const e = err as { statusCode?: number; json?: { message?: string }; message?: string; code?: string };
    if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED')
      throw new InbmError(Status.INSTALL_FAILED, `docker engine unreachable: ${e.code}`, true);
    const wrapped = new InbmError(
      e.statusCode === 404 ? Status.NOT_FOUND : Status.INSTALL_FAILED,
      `${what}: ${e.json?.message ?? e.message ?? String(err)}`,
    );
    (wrapped as { statusCode?: number }).statusCode = e.statusCode;
    throw wrapped;
  }
}

const ignore = (code: number) => (err: unknown) => {
  if ((err as { statusCode?: number }).statusCode !== code) throw err;
};

function follow(d: Dockerode, stream: NodeJS.ReadableStream, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    d.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
      const failed = events?.find((e) => e.error || e.errorDetail);
      if (err || failed)
        reject(
          new InbmError(Status.INSTALL_FAILED, `docker ${what} failed: ${failed?.errorDetail?.message ?? failed?.error ?? err?.message}`),
        );
      else resolve();
    });
  });
}
