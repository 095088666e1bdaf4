/**
 * The only code that runs docker-compose: the `docker-compose` npm package (loaded lazily),
 * driving Debian's standalone docker-compose 1.29 (v1) with an argument array, never a shell.
 * Every call names its project (`-p`), its compose file (`-f`) and runs in the stack directory,
 * with DOCKER_HOST pointing at the engine the rest of the agent uses. Stack state is not read
 * here (the package's ps/images parsers do not understand v1 output): see compose-state.ts.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type { IDockerComposeOptions, IDockerComposeResult } from 'docker-compose';
import { parse } from 'yaml';
import { InbmError, Status } from '../core/result.js';

/** Where a stack's compose file is: `dir` is the working directory, `file` is relative to it. */
export interface StackLocation {
  dir: string;
  file: string;
}

export interface ComposeDriverOptions {
  /** The engine, unless DOCKER_HOST is set (the same rule as DockerDriver). */
  socketPath?: string;
  /** docker-compose binary (default: found on PATH). */
  executablePath?: string;
}

const DEFAULT_FILES = ['docker-compose.yml', 'docker-compose.yaml', 'compose.yml', 'compose.yaml'];

/** docker-compose v1 lower-cases the project name and drops all but [-_a-z0-9]; its labels carry the result. */
export function composeProjectName(name: string): string {
  return name.toLowerCase().replace(/[^-_a-z0-9]/g, '');
}

export class ComposeDriver {
  private lib: Promise<typeof import('docker-compose')> | undefined;

  constructor(private readonly opts: ComposeDriverOptions = {}) {}

  /** `up -d --remove-orphans`: creates, recreates (config changed) and starts the services. */
  async up(stack: StackLocation, project: string): Promise<void> {
    const c = await this.compose();
    await run('up', () => c.upAll(this.options(stack, project, ['--remove-orphans'])));
  }

  /** `down` (containers and networks); with removeImages also `--rmi all`. Volumes are kept. */
  async down(stack: StackLocation, project: string, removeImages = false): Promise<void> {
    const c = await this.compose();
    await run('down', () => c.down(this.options(stack, project, ['--remove-orphans', ...(removeImages ? ['--rmi', 'all'] : [])])));
  }

  /** `pull` of every service image (registry credentials come from the engine's pulls, not here). */
  async pull(stack: StackLocation, project: string): Promise<void> {
    const c = await this.compose();
    await run('pull', () => c.pullAll(this.options(stack, project)));
  }

  /** The image of each service, after interpolation (`docker-compose config`). */
  async images(stack: StackLocation, project: string): Promise<string[]> {
    const c = await this.compose();
    const r = await run('config', () => c.execCompose('config', [], this.options(stack, project)));
    const config = parse(r.out) as { services?: Record<string, { image?: unknown }> } | null;
    return [
      ...new Set(
        Object.values(config?.services ?? {})
          .map((s) => s?.image)
          .filter((i): i is string => typeof i === 'string'),
      ),
    ];
  }

  private compose(): Promise<typeof import('docker-compose')> {
    this.lib ??= import('docker-compose');
    return this.lib;
  }

  private options(stack: StackLocation, project: string, commandOptions: string[] = []): IDockerComposeOptions {
    const host = process.env.DOCKER_HOST ?? `unix://${this.opts.socketPath ?? '/var/run/docker.sock'}`;
    return {
      cwd: stack.dir,
      config: stack.file,
      executable: { standalone: true, ...(this.opts.executablePath ? { executablePath: this.opts.executablePath } : {}) },
      composeOptions: ['--ansi', 'never', '-p', project],
      commandOptions,
      env: { ...process.env, DOCKER_HOST: host },
      // Only the tail of stderr is reported; bound what is kept.
      maxOutputLength: 1024 * 1024,
    };
  }
}

/** A failed run becomes a 400 naming the subcommand and compose's own last error line. */
async function run(what: string, call: () => Promise<IDockerComposeResult>): Promise<IDockerComposeResult> {
  try {
    return await call();
  } catch (err) {
    const e = err as Partial<IDockerComposeResult> & NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new InbmError(Status.INSTALL_FAILED, 'docker-compose is not installed');
    const text = `${e.err ?? ''}\n${e.out ?? ''}`;
    const reason =
      text
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !/^(Creating|Starting|Stopping|Removing|Recreating|Pulling)\b.*(\.\.\.|done)$/.test(l))
        .at(-1) ?? `exit ${e.exitCode ?? e.message}`;
    // An engine that is not answering (yet) is worth another try; a bad compose file is not.
    const retryable = /couldn't connect to docker daemon|error while fetching server api version|connection refused/i.test(text);
    throw new InbmError(Status.INSTALL_FAILED, `docker-compose ${what} failed: ${reason.slice(0, 300)}`, retryable);
  }
}

/**
 * Finds the compose file in an extracted stack: `file` (default docker-compose.yml and its
 * usual other names) at the top, or inside the archive's single top-level folder (the
 * reference's tarballs hold `<name>/docker-compose.yml`). Never outside `dir`.
 */
export async function locateStack(dir: string, file?: string): Promise<StackLocation> {
  const root = resolve(dir);
  const names = file ? [file] : DEFAULT_FILES;
  const isFile = async (p: string) => (await stat(p).catch(() => undefined))?.isFile() === true;
  const inside = (p: string) => p.startsWith(root + sep);
  const search = async (base: string): Promise<StackLocation | undefined> => {
    for (const n of names) {
      const full = resolve(base, n);
      if (inside(full) && (await isFile(full))) return { dir: base, file: relative(base, full) };
    }
    return undefined;
  };
  const top = await search(root);
  if (top) return top;
  const entries = (await readdir(root, { withFileTypes: true }).catch(() => [])).filter((e) => !e.name.startsWith('.'));
  if (entries.length === 1 && entries[0]!.isDirectory()) {
    const nested = await search(join(root, entries[0]!.name));
    if (nested) return nested;
  }
  throw new InbmError(Status.INSTALL_FAILED, `the stack holds no ${names.join(' or ')}`);
}
