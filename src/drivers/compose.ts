/**
 * The only code that runs docker-compose: Debian's standalone docker-compose 1.29 (v1), spawned
 * with an argument array, never a shell. Every call names its project (`-p`), its compose file
 * (`-f`), runs in the stack directory with DOCKER_HOST pointing at the engine the rest of the
 * agent uses, and has a time limit: past it the whole process group is killed and the call fails
 * with a 400 saying so. (Spawned here rather than through the `docker-compose` npm package,
 * which gives no handle on the child to stop it.) Stack state is not read here: see
 * compose-state.ts.
 */
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { parse } from 'yaml';
import { InbmError, Status } from '../core/result.js';

/** Where a stack's compose file is: `dir` is the working directory, `file` is relative to it. */
export interface StackLocation {
  dir: string;
  file: string;
}

/** How long each docker-compose subcommand may run, in milliseconds. */
export interface ComposeTimeouts {
  up: number;
  pull: number;
  down: number;
  config: number;
}

/** Generous: `up` and `pull` may pull large images over a slow link. */
export const DEFAULT_COMPOSE_TIMEOUTS: ComposeTimeouts = { up: 600_000, pull: 600_000, down: 120_000, config: 60_000 };

export interface ComposeDriverOptions {
  /** The engine, unless DOCKER_HOST is set (the same rule as DockerDriver). */
  socketPath?: string;
  /** docker-compose binary (default: found on PATH). */
  executablePath?: string;
  timeouts?: Partial<ComposeTimeouts>;
  /** How long a timed-out docker-compose gets after SIGTERM before SIGKILL. */
  killGraceMs?: number;
}

const DEFAULT_FILES = ['docker-compose.yml', 'docker-compose.yaml', 'compose.yml', 'compose.yaml'];
/** Only the tail of stderr is reported; bound what is kept of each stream. */
const MAX_OUTPUT = 1024 * 1024;

/** docker-compose v1 lower-cases the project name and drops all but [-_a-z0-9]; its labels carry the result. */
export function composeProjectName(name: string): string {
  return name.toLowerCase().replace(/[^-_a-z0-9]/g, '');
}

interface ComposeOutput {
  exitCode: number | null;
  out: string;
  err: string;
}

export class ComposeDriver {
  private readonly timeouts: ComposeTimeouts;

  constructor(private readonly opts: ComposeDriverOptions = {}) {
    this.timeouts = { ...DEFAULT_COMPOSE_TIMEOUTS, ...opts.timeouts };
  }

  /** `up -d --remove-orphans`: creates, recreates (config changed) and starts the services. */
  async up(stack: StackLocation, project: string): Promise<void> {
    await this.run('up', stack, project, ['--remove-orphans', '-d']);
  }

  /** `down` (containers and networks); with removeImages also `--rmi all`. Volumes are kept. */
  async down(stack: StackLocation, project: string, removeImages = false): Promise<void> {
    await this.run('down', stack, project, ['--remove-orphans', ...(removeImages ? ['--rmi', 'all'] : [])]);
  }

  /** `pull` of every service image (registry credentials come from the engine's pulls, not here). */
  async pull(stack: StackLocation, project: string): Promise<void> {
    await this.run('pull', stack, project);
  }

  /** The image of each service, after interpolation (`docker-compose config`). */
  async images(stack: StackLocation, project: string): Promise<string[]> {
    const r = await this.run('config', stack, project);
    const config = parse(r.out) as { services?: Record<string, { image?: unknown }> } | null;
    return [
      ...new Set(
        Object.values(config?.services ?? {})
          .map((s) => s?.image)
          .filter((i): i is string => typeof i === 'string'),
      ),
    ];
  }

  private async run(what: keyof ComposeTimeouts, stack: StackLocation, project: string, options: string[] = []): Promise<ComposeOutput> {
    const host = process.env.DOCKER_HOST ?? `unix://${this.opts.socketPath ?? '/var/run/docker.sock'}`;
    const argv = [this.opts.executablePath ?? 'docker-compose', '--ansi', 'never', '-p', project, '-f', stack.file, what, ...options];
    const limit = this.timeouts[what];
    const r = await execBounded(argv, {
      cwd: stack.dir,
      env: { ...process.env, DOCKER_HOST: host },
      timeoutMs: limit,
      killGraceMs: this.opts.killGraceMs ?? 5_000,
    }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new InbmError(Status.INSTALL_FAILED, 'docker-compose is not installed');
      throw new InbmError(Status.INSTALL_FAILED, `docker-compose ${what} failed: ${err.message}`);
    });
    if (r.timedOut) throw new InbmError(Status.INSTALL_FAILED, `docker-compose ${what} timed out after ${limit / 1000} s and was stopped`);
    if (r.exitCode !== 0) throw failure(what, r);
    return r;
  }
}

/**
 * Spawns argv in a process group of its own, keeping the tail of its output. Past `timeoutMs`
 * the group gets SIGTERM, then SIGKILL after the grace time, and the call settles once the
 * direct child has exited (a straggler keeping the pipes open does not hold it).
 */
function execBounded(
  argv: readonly string[],
  o: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; killGraceMs: number },
): Promise<ComposeOutput & { timedOut: boolean }> {
  const [file, ...args] = argv as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: o.cwd, env: o.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const keep = (acc: string, chunk: Buffer) => (acc + chunk.toString('utf8')).slice(-MAX_OUTPUT);
    child.stdout.on('data', (c: Buffer) => (out = keep(out, c)));
    child.stderr.on('data', (c: Buffer) => (err = keep(err, c)));
    let timedOut = false;
    let kill: NodeJS.Timeout | undefined;
    const group = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      group('SIGTERM');
      kill = setTimeout(() => group('SIGKILL'), o.killGraceMs);
    }, o.timeoutMs);
    const done = (exitCode: number | null) => {
      clearTimeout(timer);
      if (timedOut) {
        // Whatever the group still holds goes now, not after the grace time.
        clearTimeout(kill);
        group('SIGKILL');
      }
      resolve({ exitCode, out, err, timedOut });
    };
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code) => {
      if (timedOut) done(code);
    });
    child.once('close', (code) => done(code));
  });
}

/** A failed run becomes a 400 naming the subcommand and compose's own last error line. */
function failure(what: string, r: ComposeOutput): InbmError {
  const text = `${r.err}\n${r.out}`;
  const reason =
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !/^(Creating|Starting|Stopping|Removing|Recreating|Pulling)\b.*(\.\.\.|done)$/.test(l))
      .at(-1) ?? `exit ${r.exitCode}`;
  // An engine that is not answering (yet) is worth another try; a bad compose file is not.
  const retryable = /couldn't connect to docker daemon|error while fetching server api version|connection refused/i.test(text);
  return new InbmError(Status.INSTALL_FAILED, `docker-compose ${what} failed: ${reason.slice(0, 300)}`, retryable);
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
