/**
 * Checks the reference makes after its schema (dispatcher and agents, before touching the
 * system), done here once so every source gets the same 300 with the element named.
 */
import { badManifest } from '../core/result.js';
import type { Aota, Fota, Manifest, Sota } from './types.js';

const FETCH_SCHEMES = new Set(['http', 'https', 'file', 'ftp']);
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
/** The reference re-checks every package name with this after its looser XSD pattern. */
const APT_PACKAGE = /^[a-z0-9][a-z0-9.+-]*$/;

export function checkManifest(m: Manifest): void {
  checkEnvelope(m);
  if (m.config) {
    const child = Object.keys(m.config.configtype)[0];
    const expected = { get_element: 'get', set_element: 'set', load: 'load', append: 'append', remove: 'remove' }[m.config.cmd];
    if (child !== expected) {
      throw badManifest(`<config/cmd> is ${m.config.cmd} but <config/configtype> holds <${child}>, expected <${expected}>`);
    }
    if (m.config.configtype.load) {
      const load = m.config.configtype.load;
      if (!load.fetch && !load.path) throw badManifest('<config/configtype/load>: needs <fetch> or <path>');
      if (load.fetch) checkFetch(load.fetch, 'config/configtype/load/fetch');
    }
  }
  const ota = m.ota;
  if (ota) {
    const body = Object.keys(ota.type)[0];
    if (body !== ota.header.type) {
      throw badManifest(`<ota/header/type> is ${ota.header.type} but <ota/type> holds <${body}>`);
    }
    const t = ota.type;
    if (t.aota) checkAota(t.aota);
    if (t.fota) checkFota(t.fota, 'ota/type/fota');
    if (t.sota) checkSota(t.sota, 'ota/type/sota');
    if (t.pota) {
      checkFota(t.pota.fota, 'ota/type/pota/fota');
      checkSota(t.pota.sota, 'ota/type/pota/sota');
    }
  }
  const gpg = m.applicationSource?.add?.gpg;
  if (gpg) checkFetch(gpg.uri, 'applicationSource/add/gpg/uri');
  const filename =
    m.applicationSource?.add?.repo.filename ?? m.applicationSource?.update?.repo.filename ?? m.applicationSource?.remove?.repo.filename;
  if (filename !== undefined && (filename === '' || /[/\\]|^\.\.?$/.test(filename))) {
    throw badManifest('<applicationSource/…/repo/filename>: must be a plain file name without path separators');
  }
}

/** The header <type> names which body element must be present, and no other. */
function checkEnvelope(m: Manifest): void {
  const present = (['config', 'custom', 'query', 'ota', 'osSource', 'applicationSource'] as const).filter((k) => m[k] !== undefined);
  let allowed: readonly string[];
  switch (m.type) {
    case 'cmd':
      if (!m.cmd) throw badManifest('<manifest>: <type> is cmd but <cmd> is missing');
      if (m.cmd === 'query' && !m.query) throw badManifest('<manifest>: <cmd> is query but <query> is missing');
      if (m.cmd === 'custom' && !m.custom) throw badManifest('<manifest>: <cmd> is custom but <custom> is missing');
      allowed = m.cmd === 'query' ? ['query'] : m.cmd === 'custom' ? ['custom'] : [];
      break;
    case 'config':
      if (!m.config) throw badManifest('<manifest>: <type> is config but <config> is missing');
      allowed = ['config'];
      break;
    case 'ota':
      if (!m.ota) throw badManifest('<manifest>: <type> is ota but <ota> is missing');
      allowed = ['ota'];
      break;
    case 'source':
      if (!m.osSource && !m.applicationSource) {
        throw badManifest('<manifest>: <type> is source but neither <osSource> nor <applicationSource> is present');
      }
      if (m.osSource && m.applicationSource) throw badManifest('<manifest>: <osSource> and <applicationSource> cannot be combined');
      allowed = ['osSource', 'applicationSource'];
      break;
  }
  for (const k of present)
    if (!allowed.includes(k))
      throw badManifest(`<manifest>: <${k}> does not belong in a manifest of <type> ${m.type}${m.cmd ? `/${m.cmd}` : ''}`);
  if (m.cmd && m.type !== 'cmd') throw badManifest(`<manifest>: <cmd> does not belong in a manifest of <type> ${m.type}`);
  if (m.restart && !(m.type === 'cmd' && m.cmd === 'restart')) throw badManifest('<manifest>: <restart> only goes with <cmd>restart</cmd>');
}

function checkAota(a: Aota): void {
  const at = 'ota/type/aota';
  if (a.app === 'btrfs') throw badManifest(`<${at}/app>: btrfs is not a supported application type`);
  if (a.fetch !== undefined) checkFetch(a.fetch, `${at}/fetch`);
  checkCredentials(a.username, a.password, a.fetch, `${at}`);
  if ((a.dockerUsername === undefined) !== (a.dockerPassword === undefined)) {
    throw badManifest(`<${at}>: <dockerUsername> and <dockerPassword> must be given together`);
  }
}

function checkFota(f: Fota, at: string): void {
  if (f.fetch !== undefined) checkFetch(f.fetch, `${at}/fetch`);
  checkCredentials(f.username, f.password, f.fetch, at);
}

function checkSota(s: Sota, at: string): void {
  if (s.cmd === 'upgrade') throw badManifest(`<${at}/cmd>: upgrade is no longer supported, use update`);
  if (s.fetch !== undefined) checkFetch(s.fetch, `${at}/fetch`);
  checkCredentials(s.username, s.password, s.fetch, at);
  if (s.package_list) {
    for (const pkg of s.package_list.split(',')) {
      if (!APT_PACKAGE.test(pkg)) {
        throw badManifest(`<${at}/package_list>: "${pkg}" is not a valid package name (lowercase letters, digits, ".+-"; no architecture)`);
      }
    }
  }
}

/** A URL with a scheme must use one we can fetch; a scheme-less value fails only when fetched (as in the reference). */
function checkFetch(url: string, at: string): void {
  if (/%00/.test(url)) throw badManifest(`<${at}>: URL contains a NUL byte`);
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase();
  if (scheme !== undefined && !FETCH_SCHEMES.has(scheme)) {
    throw badManifest(`<${at}>: scheme "${scheme}" is not allowed (http, https, file, ftp)`);
  }
}

function checkCredentials(user: string | undefined, password: string | undefined, fetch: string | undefined, at: string): void {
  if (user === undefined && password === undefined) return;
  if (user === undefined || password === undefined) throw badManifest(`<${at}>: <username> and <password> must be given together`);
  const scheme = fetch === undefined ? undefined : SCHEME.exec(fetch)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'https') throw badManifest(`<${at}/fetch>: credentials are only sent over https`);
}
