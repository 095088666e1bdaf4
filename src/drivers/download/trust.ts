/**
 * Trusted-repository matching on URL parts, not strings: scheme and host must be equal, the
 * port equal after defaults, and the path must sit under the trusted path at a "/" boundary.
 * (The reference's plain prefix test lets http://127.0.0.1.evil/ through for http://127.0.0.1.)
 */

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443', 'ftp:': '21' };

export function parseUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

const portOf = (u: URL) => u.port || DEFAULT_PORT[u.protocol] || '';

/** The path with "." and ".." resolved (URL does this) and a trailing slash for prefix tests. */
const dirPath = (p: string) => (p.endsWith('/') ? p : `${p}/`);

export function isTrusted(url: string, trusted: readonly string[]): boolean {
  const u = parseUrl(url);
  if (!u || u.username || u.password || /%00/i.test(url)) return false;
  return trusted.some((entry) => {
    const t = parseUrl(entry.trim());
    if (!t) return false;
    if (t.protocol !== u.protocol || t.hostname.toLowerCase() !== u.hostname.toLowerCase() || portOf(t) !== portOf(u)) return false;
    const base = dirPath(decodeURIComponent(t.pathname));
    const path = decodeURIComponent(u.pathname);
    return base === '/' || path === base.slice(0, -1) || path.startsWith(base);
  });
}
