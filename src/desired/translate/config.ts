import { installFailed } from '../../core/result.js';
import type { Config } from '../../manifest/types.js';
import { shortHash, toName } from '../names.js';
import type { Context, Translation } from './context.js';

/** Only these keys hold lists (the dispatcher's whitelist for append/remove). */
const LIST_KEYS = new Set(['sotaSW', 'trustedRepositories']);
const KEY = /^[A-Za-z][A-Za-z0-9_]*$/;

export function translateConfig(ctx: Context, c: Config): Translation {
  const t = c.configtype;
  if (t.get) return { type: 'query', query: { target: 'config', keys: t.get.path.split(';').filter((k) => k !== '') } };
  if (t.load) {
    const source = {
      ...(t.load.fetch ? { url: t.load.fetch } : { path: t.load.path! }),
      ...(t.load.signature ? { signature: t.load.signature } : {}),
    };
    return ctx.documents(ctx.document('Configuration', 'config-load', { load: { requestId: ctx.requestId, source } }));
  }
  const op = t.set ? 'set' : t.append ? 'append' : 'remove';
  const pairs = keyValues(t[op]!.path, `config ${c.cmd}`);
  if (op === 'set') {
    const set = Object.fromEntries(pairs);
    return ctx.documents(ctx.document('Configuration', toName('config', ...Object.keys(set).sort()), { set }));
  }
  const lists: Record<string, string[]> = {};
  for (const [key, value] of pairs) {
    if (!LIST_KEYS.has(key))
      throw installFailed(`Configuration ${c.cmd} command: "${key}" is not a list key (sotaSW, trustedRepositories)`);
    (lists[key] ??= []).push(value);
  }
  // append and remove of the same values share a name, so a later remove replaces the earlier append.
  const name = toName('config', ...Object.keys(lists).sort(), shortHash(JSON.stringify(pairs)));
  return ctx.documents(ctx.document('Configuration', name, op === 'append' ? { append: lists } : { remove: lists }));
}

/** `k:v;k2:v2` as the reference splits it; double quotes are refused as it refuses them. */
function keyValues(path: string, what: string): Array<[string, string]> {
  if (path.includes('"')) throw installFailed(`Configuration ${what}: double quotes are not allowed in <path>`);
  const pairs: Array<[string, string]> = [];
  for (const item of path.split(';')) {
    if (item === '') continue;
    const colon = item.indexOf(':');
    if (colon < 1) throw installFailed(`Configuration ${what}: "${item}" is not key:value`);
    const key = item.slice(0, colon);
    if (!KEY.test(key)) throw installFailed(`Configuration ${what}: "${key}" is not a configuration key`);
    pairs.push([key, item.slice(colon + 1)]);
  }
  if (pairs.length === 0) throw installFailed(`Configuration ${what}: <path> names no key`);
  return pairs;
}
