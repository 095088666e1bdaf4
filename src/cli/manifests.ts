/**
 * INBC's manifests (inbm-reference.md §1.3–1.4, §7), built from verb arguments. Pure: each
 * builder validates its input first and throws InbmError(400) naming what is wrong, so nothing
 * is dropped for a request the agent would refuse anyway.
 */
import { type InbmError, installFailed } from '../core/result.js';
import { APPENDABLE_KEYS, keySection } from '../reconcilers/configuration/schema.js';

export type ConfigVerb = 'set' | 'append' | 'remove';
export type PowerVerb = 'restart' | 'shutdown';

const CMD: Record<ConfigVerb | 'get' | 'load', string> = {
  get: 'get_element',
  set: 'set_element',
  append: 'append',
  remove: 'remove',
  load: 'load',
};

const PATH_MAX = 1500;
const URL_MAX = 700;
const SIG_MAX = 1000;

export const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const failed = (verb: keyof typeof CMD, reason: string): InbmError =>
  installFailed(verb === 'load' ? `Configuration load: FAILED. Error: ${reason}` : `Configuration ${CMD[verb]} command: FAILED: ${reason}`);

function knownKey(verb: keyof typeof CMD, key: string): string {
  if (!keySection(key)) throw failed(verb, `unknown configuration key ${JSON.stringify(key)}`);
  return key;
}

/** `k1;k2` → the keys, each a configuration key. */
export function configKeys(path: string): string[] {
  const keys = path.split(';').filter((k) => k !== '');
  if (keys.length === 0) throw failed('get', 'name at least one key (KEY[;KEY…])');
  return keys.map((k) => knownKey('get', k));
}

/** `k:v;k2:v2` → pairs, refused as the reference refuses them (quotes, no colon, unknown key). */
export function configPairs(verb: ConfigVerb, path: string): Array<[string, string]> {
  if (path.includes('"')) throw failed(verb, 'double quotes are not allowed');
  if (path.length > PATH_MAX) throw failed(verb, `the path is longer than ${PATH_MAX} characters`);
  const pairs: Array<[string, string]> = [];
  for (const item of path.split(';')) {
    if (item === '') continue;
    const colon = item.indexOf(':');
    if (colon < 1) throw failed(verb, `${JSON.stringify(item)} is not KEY:VALUE`);
    const key = knownKey(verb, item.slice(0, colon));
    if (verb !== 'set' && !APPENDABLE_KEYS.includes(key)) {
      throw failed(verb, `${key}: ${verb} is only allowed for ${APPENDABLE_KEYS.join(', ')}`);
    }
    pairs.push([key, item.slice(colon + 1)]);
  }
  if (pairs.length === 0) throw failed(verb, 'name at least one KEY:VALUE');
  return pairs;
}

/** `<manifest><type>config</type><config><cmd>set_element</cmd><configtype><set><path>…` */
export function configManifest(verb: ConfigVerb, path: string): string {
  const pairs = configPairs(verb, path);
  const text = pairs.map(([k, v]) => `${k}:${v}`).join(';');
  return `<?xml version="1.0" encoding="utf-8"?><manifest><type>config</type><config><cmd>${CMD[verb]}</cmd><configtype><${verb}><path>${escapeXml(text)}</path></${verb}></configtype></config></manifest>`;
}

/** A URL becomes `<fetch>`, anything else an absolute local `<path>`; the signature is hex. */
export function loadManifest(source: string, absolute: (p: string) => string, signature?: string): string {
  if (source === '') throw failed('load', 'name a file or URL');
  if (source.includes('"')) throw failed('load', 'double quotes are not allowed');
  const isUrl = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(source);
  const where = isUrl ? source : absolute(source);
  const max = isUrl ? URL_MAX : PATH_MAX;
  if (where.length > max) throw failed('load', `the ${isUrl ? 'URL' : 'path'} is longer than ${max} characters`);
  if (signature !== undefined && !/^[0-9A-Fa-f]{1,1000}$/.test(signature)) {
    throw failed('load', `the signature must be 1 to ${SIG_MAX} hexadecimal digits`);
  }
  const body = `${isUrl ? `<fetch>${escapeXml(where)}</fetch>` : `<path>${escapeXml(where)}</path>`}${
    signature !== undefined ? `<signature>${signature}</signature>` : ''
  }`;
  return `<?xml version="1.0" encoding="utf-8"?><manifest><type>config</type><config><cmd>load</cmd><configtype><load>${body}</load></configtype></config></manifest>`;
}

/** `<manifest><type>cmd</type><cmd>restart</cmd></manifest>` */
export function powerManifest(verb: PowerVerb): string {
  return `<?xml version="1.0" encoding="utf-8"?><manifest><type>cmd</type><cmd>${verb}</cmd></manifest>`;
}
