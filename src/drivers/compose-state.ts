/**
 * What the engine holds of a compose stack, read through dockerode (loaded lazily) by the labels
 * docker-compose puts on every container: project, service, config-hash, working directory.
 * Also the engine calls a stack needs beside docker-compose itself: registry login (checkAuth),
 * authenticated pulls, and removing a stack whose compose file is gone.
 */
import type Dockerode from 'dockerode';
import { InbmError, Status } from '../core/result.js';
import { connectDocker, engine } from './docker.js';

export const LABEL_PROJECT = 'com.docker.compose.project';
export const LABEL_SERVICE = 'com.docker.compose.service';
export const LABEL_CONFIG_HASH = 'com.docker.compose.config-hash';
export const LABEL_WORKING_DIR = 'com.docker.compose.project.working_dir';

export interface StackContainer {
  id: string;
  name: string;
  service: string;
  image: string;
  running: boolean;
  /** healthy / unhealthy / starting, or undefined when the service has no health check */
  health?: string;
  exitCode: number;
  /** How often the engine restarted it (restart policy): a crash loop looks "running" between exits. */
  restarts?: number;
  configHash: string;
  /** The directory docker-compose ran in when it created the container. */
  workingDir?: string;
}

export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

export class ComposeEngine {
  private client: Promise<Dockerode> | undefined;

  constructor(private readonly socketPath?: string) {}

  private docker(): Promise<Dockerode> {
    this.client ??= connectDocker(this.socketPath);
    return this.client;
  }

  /** The containers (running or not) of a compose project. */
  stack(project: string): Promise<StackContainer[]> {
    return this.byLabel(LABEL_PROJECT, project);
  }

  /** Containers carrying `label` (with `value`, when given), inspected for state and health. */
  async byLabel(label: string, value?: string): Promise<StackContainer[]> {
    const d = await this.docker();
    const filter = value === undefined ? label : `${label}=${value}`;
    const list = await engine(() => d.listContainers({ all: true, filters: JSON.stringify({ label: [filter] }) }));
    const inspected = await Promise.all(
      list.map((c) =>
        engine(() => d.getContainer(c.Id).inspect()).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err))),
      ),
    );
    return inspected
      .filter((c) => c !== undefined)
      .map((c) => {
        const labels = c.Config.Labels ?? {};
        return {
          id: c.Id,
          name: c.Name.replace(/^\//, ''),
          service: labels[LABEL_SERVICE] ?? '',
          image: c.Config.Image,
          // The engine reports a container waiting to be restarted as Running too.
          running: c.State.Running && !c.State.Restarting,
          ...(c.State.Health?.Status ? { health: c.State.Health.Status } : {}),
          exitCode: c.State.ExitCode,
          restarts: c.RestartCount ?? 0,
          configHash: labels[LABEL_CONFIG_HASH] ?? '',
          ...(labels[LABEL_WORKING_DIR] ? { workingDir: labels[LABEL_WORKING_DIR] } : {}),
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Without a compose file to run `down` with: remove the project's containers (and their images). */
  async removeStack(project: string, removeImages: boolean): Promise<void> {
    const d = await this.docker();
    const containers = await this.stack(project);
    for (const c of containers) await engine(() => d.getContainer(c.id).remove({ force: true })).catch(ignoreNotFound);
    if (!removeImages) return;
    for (const image of new Set(containers.map((c) => c.image))) await engine(() => d.getImage(image).remove()).catch(ignoreNotFound);
  }

  /**
   * `docker login` as the engine does it (POST /auth): fails early, with the registry's reason,
   * before anything is pulled. Nothing is written to disk; each pull carries the credentials.
   */
  async login(auth: RegistryAuth): Promise<void> {
    const d = await this.docker();
    await engine(() => d.checkAuth(auth), 'registry login');
  }

  async hasImage(ref: string): Promise<boolean> {
    const d = await this.docker();
    return engine(() => d.getImage(ref).inspect()).then(
      () => true,
      (err: unknown) => (isNotFound(err) ? false : Promise.reject(err)),
    );
  }

  /** Pull failures arrive only inside the progress stream: read it to the end. */
  async pull(ref: string, auth?: RegistryAuth): Promise<void> {
    const d = await this.docker();
    const stream = await engine(() => d.pull(ref, auth ? { authconfig: auth } : {}), `pull ${ref}`);
    await new Promise<void>((resolve, reject) => {
      d.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
        const failed = events?.find((e) => e.error || e.errorDetail);
        if (err || failed)
          reject(
            new InbmError(
              Status.INSTALL_FAILED,
              `docker pull ${ref} failed: ${failed?.errorDetail?.message ?? failed?.error ?? err?.message}`,
            ),
          );
        else resolve();
      });
    });
  }
}

const isNotFound = (err: unknown) => (err as { statusCode?: number }).statusCode === 404;
const ignoreNotFound = (err: unknown) => {
  if (!isNotFound(err)) throw err;
};

/** Engine errors as results: an unreachable engine is worth retrying, anything else is a 400 with the engine's reason. */
