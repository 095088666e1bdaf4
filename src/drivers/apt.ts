/**
 * apt-get and dpkg for an OS update, as the reference runs them (spec §5.2 step 5): argument
 * arrays for each mode, and one runner that executes them in a target root through a settable
 * command prefix (`[]` = this machine, `['chroot', '/mnt/root']` = another root).
 */
import { spawn } from 'node:child_process';
import { InbmError, Status } from '../core/result.js';

export type AptMode = 'full' | 'download-only' | 'no-download';

/** No prompt may ever wait for an answer: keep changed conffiles, take the maintainer's defaults. */
export const APT_ENV = { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C', APT_LISTCHANGES_FRONTEND: 'none' } as const;
const CONF = ['-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold'];

export const aptUpdate = (): string[] => ['apt-get', '-yq', 'update'];

/**
 * What must run before the change itself: a dpkg run cut short (a crash, a power cut) leaves
 * half-configured packages that make every later apt-get refuse to work.
 */
export function aptRepair(mode: AptMode): string[][] {
  if (mode === 'download-only') return [];
  const noDownload = mode === 'no-download' ? ['--no-download'] : [];
  return [
    ['dpkg', '--configure', '-a', '--force-confdef', '--force-confold'],
    ['apt-get', '-yq', ...noDownload, ...CONF, '-f', 'install'],
  ];
}

/** The change: upgrade everything (new dependencies allowed) or install/upgrade the named packages. */
export function aptChange(mode: AptMode, packages: readonly string[]): string[] {
  const how = mode === 'download-only' ? ['--download-only'] : mode === 'no-download' ? ['--no-download', '--fix-missing'] : [];
  const what = packages.length > 0 ? ['install', ...packages] : ['--with-new-pkgs', 'upgrade'];
  return ['apt-get', '-yq', ...CONF, ...how, ...what];
}

/** Every command of one update, in order; download-only and full fetch indexes first, no-download never does. */
export function aptCommands(mode: AptMode, packages: readonly string[]): string[][] {
  return [...(mode === 'no-download' ? [] : [aptUpdate()]), ...aptRepair(mode), aptChange(mode, packages)];
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a template
const FORMAT = '${Package}\\t${Version}\\t${db:Status-Abbrev}\\n';
/** Installed versions (all packages, or the named ones); a name dpkg does not know exits 1. */
export const dpkgQuery = (packages: readonly string[] = []): string[] => ['dpkg-query', '-W', `-f=${FORMAT}`, ...packages];

/** `dpkg-query -W -f=…` output → name → version, installed packages only ("ii"). */
export function parseDpkgQuery(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const [name, version, status] = line.split('\t');
    if (name && version && status?.trim() === 'ii') out[name] = version;
  }
  return out;
}

/** The packages whose installed version differs (new, upgraded, downgraded, removed → ''). */
export function changedPackages(before: Record<string, string>, after: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, version] of Object.entries(after)) if (before[name] !== version) out[name] = version;
  for (const name of Object.keys(before)) if (!(name in after)) out[name] = '';
  return out;
}

/** apt's summary line when there is nothing to do. */
export const nothingToDo = (output: string): boolean => /\b0 upgraded, 0 newly installed\b/.test(output);

export interface AptRunOptions {
  /** Prepended to every command: `[]` runs on this machine. */
  prefix: readonly string[];
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Each line of output, for the log or a log file (the reference's logtofile). */
  onLine?: (line: string) => void;
}

/**
 * Runs one command in the target root and returns its output. A non-zero exit is a 400 naming
 * the command and apt's last error line; an abort (cancel) kills the whole process group.
 */
export function runApt(argv: readonly string[], opts: AptRunOptions): Promise<string> {
  const full = [...opts.prefix, ...argv];
  const [file, ...args] = full;
  const name = argv.slice(0, 2).join(' ');
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(cancelled(name));
    const child = spawn(file!, args, {
      env: { ...process.env, ...APT_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    let pending = '';
    const take = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      // Keep the tail only: an upgrade of a whole system prints megabytes.
      output = (output + text).slice(-256 * 1024);
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const l of lines) opts.onLine?.(l);
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    let why: 'abort' | 'timeout' | undefined;
    const kill = (reason: 'abort' | 'timeout') => {
      why = reason;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const onAbort = () => kill('abort');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = opts.timeoutMs ? setTimeout(() => kill('timeout'), opts.timeoutMs) : undefined;
    const done = () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (pending) opts.onLine?.(pending);
    };
    child.once('error', (err) => {
      done();
      reject(new InbmError(Status.INSTALL_FAILED, `SOTA: ${file} could not start: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      done();
      if (why === 'abort') return reject(cancelled(name));
      if (why === 'timeout') return reject(new InbmError(Status.INSTALL_FAILED, `SOTA: ${name} timed out after ${opts.timeoutMs} ms`));
      if (code === 0) return resolve(output);
      const last = lastError(output);
      reject(new InbmError(Status.INSTALL_FAILED, `SOTA: ${name} failed (${code ?? signal})${last ? `: ${last}` : ''}`));
    });
  });
}

export const cancelled = (what: string) => new InbmError(Status.INSTALL_FAILED, `SOTA: ${what} cancelled`);

/** apt's own reason ("E: Unable to locate package foo"), the line an operator needs. */
function lastError(output: string): string | undefined {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return (lines.filter((l) => /^(E|dpkg):/.test(l)).at(-1) ?? lines.at(-1))?.slice(0, 300);
}
