/**
 * The downloader every reconciler shares: trusted repositories only (redirects included),
 * credentials only over https and only to the origin they were given for, a size cap, free
 * space checked before and during the transfer, connect and idle timeouts, retries with capped
 * backoff that resume by Range, progress events, and never a partial file left behind.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { InbmError, Status } from '../../core/result.js';
import { isTrusted, parseUrl } from './trust.js';

export interface Progress {
  bytes: number;
  total?: number;
  /** bytes per second since the transfer started */
  rate: number;
}

export interface DownloadOptions {
  /** Directory the file lands in (the download cache); free space is measured there. */
  dir: string;
  trusted: readonly string[];
  credentials?: { username: string; password: string };
  maxBytes?: number;
  /** Space that must stay free in `dir` after the download. */
  reserveBytes?: number;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  retries?: number;
  maxRedirects?: number;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** File name in `dir`; defaults to the URL's last path segment. */
  name?: string;
}

const DEFAULTS = { maxBytes: 4 * 1024 ** 3, reserveBytes: 0, connectTimeoutMs: 10_000, idleTimeoutMs: 30_000, retries: 3, maxRedirects: 5 };
const BACKOFF_BASE_MS = 200;
const BACKOFF_CAP_MS = 5_000;
const SPACE_CHECK_EVERY = 8 * 1024 * 1024;

const fail = (reason: string, retryable = false) => new InbmError(Status.INSTALL_FAILED, reason, retryable);

/** Downloads `url` into `opts.dir`; resolves with the final path. */
export async function download(url: string, opts: DownloadOptions): Promise<{ path: string; bytes: number }> {
  const o = { ...DEFAULTS, ...opts };
  const u = parseUrl(url);
  if (!u) throw fail(`invalid URL: ${redact(url)}`);
  if (!isTrusted(url, o.trusted)) throw fail(`${redact(url)} is not under a trusted repository`);
  if (o.credentials && u.protocol !== 'https:') throw fail('credentials are only sent over https');
  await mkdir(o.dir, { recursive: true });
  const name = safeName(o.name ?? decodeURIComponent(basename(u.pathname)) ?? 'download');
  const final = join(o.dir, name);
  const part = join(o.dir, `.${name}.part`);
  try {
    if (u.protocol === 'file:') {
      await copyLocal(fileURLToPath(u), part, o);
    } else if (u.protocol === 'http:' || u.protocol === 'https:') {
      await fetchWithRetries(u, part, o);
    } else {
      throw fail(`${u.protocol.slice(0, -1)} downloads are not supported`);
    }
    await rename(part, final);
    return { path: final, bytes: (await stat(final)).size };
  } catch (err) {
    await rm(part, { force: true });
    throw err;
  }
}

async function copyLocal(path: string, part: string, o: typeof DEFAULTS & DownloadOptions): Promise<void> {
  const size = (await stat(path).catch(() => undefined))?.size;
  if (size === undefined) throw new InbmError(Status.NOT_FOUND, `file not found: ${path}`);
  if (size > o.maxBytes) throw fail(`file is ${size} bytes, more than the ${o.maxBytes} bytes allowed`);
  await ensureSpace(o.dir, size, o.reserveBytes);
  await pipeline(createReadStream(path), createWriteStream(part, { mode: 0o640 }));
}

async function fetchWithRetries(start: URL, part: string, o: typeof DEFAULTS & DownloadOptions): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      // Resume from what reached the disk, not from what was counted in flight.
      const have = attempt === 0 ? 0 : ((await stat(part).catch(() => undefined))?.size ?? 0);
      await fetchOnce(start, part, have, o);
      return;
    } catch (err) {
      const retryable = err instanceof InbmError && err.retryable;
      if (!retryable || attempt >= o.retries || o.signal?.aborted) throw err;
      const delay = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** One GET (following trusted redirects), appending from `offset` when the server honours Range. */
async function fetchOnce(start: URL, part: string, offset: number, o: typeof DEFAULTS & DownloadOptions): Promise<void> {
  let url = start;
  for (let hop = 0; ; hop++) {
    const res = await get(url, offset, o, url.origin === start.origin);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      if (hop >= o.maxRedirects) throw fail('too many redirects');
      const next = new URL(res.headers.location, url);
      if (!isTrusted(next.href, o.trusted)) throw fail(`redirect to ${redact(next.href)} leaves the trusted repositories`);
      url = next;
      continue;
    }
    if (status === 404) {
      res.resume();
      throw new InbmError(Status.NOT_FOUND, `not found: ${redact(url.href)}`);
    }
    if (status >= 500 || status === 408 || status === 429) {
      res.resume();
      throw fail(`server answered ${status}`, true);
    }
    if (status !== 200 && status !== 206) {
      res.resume();
      throw fail(`server answered ${status} ${res.statusMessage ?? ''}`.trim());
    }
    const resumed = status === 206 && offset > 0;
    const already = resumed ? offset : 0;
    const length = Number(res.headers['content-length'] ?? Number.NaN);
    const total = Number.isFinite(length) ? already + length : undefined;
    if (total !== undefined && total > o.maxBytes) {
      res.destroy();
      throw fail(`file is ${total} bytes, more than the ${o.maxBytes} bytes allowed`);
    }
    await ensureSpace(o.dir, (total ?? 0) - already, o.reserveBytes);
    await receive(res, part, already, total, o);
    if (total !== undefined && (await stat(part)).size !== total) throw fail('transfer ended early', true);
    return;
  }
}

function get(url: URL, offset: number, o: typeof DEFAULTS & DownloadOptions, sameOrigin: boolean): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'user-agent': 'inbm' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    // Credentials never follow a redirect to another origin.
    if (o.credentials && sameOrigin && url.protocol === 'https:') {
      headers.authorization = `Basic ${Buffer.from(`${o.credentials.username}:${o.credentials.password}`).toString('base64')}`;
    }
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { headers, signal: o.signal });
    const connect = setTimeout(() => req.destroy(fail(`connection to ${url.host} timed out`, true)), o.connectTimeoutMs);
    req.once('socket', (s) => s.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => clearTimeout(connect)));
    req.once('response', (res) => {
      clearTimeout(connect);
      resolve(res);
    });
    req.once('error', (err) => {
      clearTimeout(connect);
      reject(
        err instanceof InbmError ? err : fail(`download failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`, !o.signal?.aborted),
      );
    });
    req.end();
  });
}

async function receive(
  res: IncomingMessage,
  part: string,
  already: number,
  total: number | undefined,
  o: typeof DEFAULTS & DownloadOptions,
): Promise<void> {
  const out = createWriteStream(part, { flags: already > 0 ? 'a' : 'w', mode: 0o640 });
  const started = Date.now();
  let bytes = already;
  let sinceCheck = 0;
  res.setTimeout(o.idleTimeoutMs, () => res.destroy(fail('download stalled (no data)', true)));
  try {
    for await (const chunk of res) {
      const b = chunk as Buffer;
      bytes += b.length;
      sinceCheck += b.length;
      if (bytes > o.maxBytes) throw fail(`file is larger than the ${o.maxBytes} bytes allowed`);
      if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
      if (sinceCheck >= SPACE_CHECK_EVERY) {
        sinceCheck = 0;
        await ensureSpace(o.dir, total === undefined ? 0 : total - bytes, o.reserveBytes);
      }
      o.onProgress?.({
        bytes,
        ...(total !== undefined ? { total } : {}),
        rate: Math.round(((bytes - already) * 1000) / Math.max(1, Date.now() - started)),
      });
    }
  } catch (err) {
    throw err instanceof InbmError
      ? err
      : fail(`download interrupted: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, true);
  } finally {
    await new Promise<void>((r) => out.end(() => r()));
  }
}

async function ensureSpace(dir: string, needed: number, reserve: number): Promise<void> {
  const s = await statfs(dir);
  const free = s.bavail * s.bsize;
  if (needed + reserve > free) throw fail(`not enough space in ${dir}: ${needed} bytes needed, ${free} free`);
}

/** URLs in messages never carry userinfo or query strings (tokens live there). */
export function redact(url: string): string {
  const u = parseUrl(url);
  if (!u) return '(invalid URL)';
  u.username = '';
  u.password = '';
  u.search = '';
  return u.href;
}

function safeName(name: string): string {
  const n = name.replace(/[/\\\0]/g, '_').replace(/^\.+/, '');
  return n === '' ? 'download' : n;
}
