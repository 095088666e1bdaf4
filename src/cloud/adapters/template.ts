/**
 * The reference's generic cloud configuration (`config_schema.json`) as zod, and its two
 * engines: the Formatter that fills topic/payload templates and the MethodParser that reads a
 * method call out of an incoming topic and JSON payload (`cloud/client/utilities.py`).
 */
import { z } from 'zod';

const Channel = z.object({ pub: z.string().min(1), format: z.string() });
const Rule = z.union([
  z.object({ path: z.string() }),
  z.object({ regex: z.string().refine(compiles, 'must be a valid regular expression'), group: z.number().int().min(0) }),
]);

function compiles(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

export const GenericConfig = z.object({
  mqtt: z.object({
    username: z.string(),
    password: z.string().optional(),
    client_id: z.string().optional(),
    hostname: z.string().min(1),
    port: z.number().int().min(1).max(65535),
  }),
  proxy: z.union([z.object({ auto: z.boolean() }), z.object({ hostname: z.string(), port: z.number().int() })]).optional(),
  tls: z.object({ version: z.enum(['TLSv1.2', 'TLSv1.3']), certificates: z.string().optional() }).optional(),
  x509: z.object({ device_cert: z.string(), device_key: z.string().optional() }).optional(),
  event: Channel,
  telemetry: Channel,
  attribute: Channel,
  method: Channel.extend({
    sub: z.string().min(1),
    parse: z.object({ single: z.record(z.string(), Rule), aggregate: z.object({ path: z.string() }).optional() }),
  }),
  echoers: z.array(Channel.extend({ sub: z.string().min(1) })).optional(),
  node_update: Channel.optional(),
});
export type GenericConfig = z.infer<typeof GenericConfig>;

/** Escapes what would break the JSON string a `{field}` usually sits in; `{raw_field}` skips it. */
export function escapeField(s: string): string {
  // The reference escapes \ " \n \r \t; other control characters would break JSON just as well.
  const named: Record<string, string> = { '\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  let out = '';
  for (const c of s) {
    const code = c.charCodeAt(0);
    out += named[c] ?? (code < 0x20 ? `\\u${code.toString(16).padStart(4, '0')}` : c);
  }
  return out;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** The strftime directives a template is likely to use, in UTC (the reference formats utcnow()). */
export function strftime(format: string, t: Date): string {
  const map: Record<string, () => string> = {
    Y: () => String(t.getUTCFullYear()),
    m: () => pad(t.getUTCMonth() + 1),
    d: () => pad(t.getUTCDate()),
    H: () => pad(t.getUTCHours()),
    M: () => pad(t.getUTCMinutes()),
    S: () => pad(t.getUTCSeconds()),
    f: () => pad(t.getUTCMilliseconds() * 1000, 6),
    s: () => String(Math.floor(t.getTime() / 1000)),
    Z: () => 'UTC',
    z: () => '+0000',
    '%': () => '%',
  };
  return format.replace(/%(.)/g, (all, d: string) => map[d]?.() ?? all);
}

export type Fields = Record<string, string | number | undefined>;

/**
 * A template with `{field}` placeholders. Defaults: `{ts}` (ms epoch), `{timestamp}`
 * ("%Y-%m-%d %H:%M:%S UTC"), `{timestamp=<strftime>}`, and the connection's username/client_id.
 * A field nobody supplies stays as written, as in the reference.
 */
export class Formatter {
  constructor(
    private readonly template: string,
    private readonly defaults: Fields = {},
  ) {}

  format(fields: Fields = {}, time: Date = new Date()): string {
    return this.template.replace(/\{([\w=:\-.%]+)\}/g, (all, f: string) => {
      const raw = f.startsWith('raw_');
      const name = raw ? f.slice(4) : f;
      if (fields[name] !== undefined) return raw ? String(fields[name]) : escapeField(String(fields[name]));
      if (name === 'ts') return String(time.getTime());
      if (name === 'timestamp') return strftime('%Y-%m-%d %H:%M:%S UTC', time);
      if (this.defaults[name] !== undefined) return String(this.defaults[name]);
      const [head, ...rest] = f.split('=');
      if (head === 'timestamp' && rest.length > 0) return strftime(rest.join('='), time);
      return all;
    });
  }
}

export interface ParsedMethod {
  method: string;
  args: Record<string, unknown>;
  /** Other parsed symbols (request_id and anything else the rules name), for the response templates. */
  symbols: Record<string, string>;
}

/** `root/child/...` through nested objects; anything else on the way gives undefined. */
function byPath(obj: unknown, path: string): unknown {
  let v = obj;
  for (const p of path.split('/').filter((s) => s.trim())) {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

export class MethodParser {
  private readonly rules: Array<[string, RegExp | string, number]>;
  constructor(
    single: GenericConfig['method']['parse']['single'],
    private readonly aggregate?: { path: string },
  ) {
    this.rules = Object.entries(single).map(([key, r]) => ('path' in r ? [key, r.path, 0] : [key, new RegExp(r.regex), r.group]));
  }

  /** Throws SyntaxError for a payload that is not JSON (the reference drops such messages). */
  parse(topic: string, payload: string): ParsedMethod[] {
    const body: unknown = JSON.parse(payload);
    if (!this.aggregate) return [this.single(topic, body)];
    const list = byPath(body, this.aggregate.path);
    return Array.isArray(list) ? list.map((p) => this.single(topic, p)) : [];
  }

  private single(topic: string, body: unknown): ParsedMethod {
    const parsed: Record<string, unknown> = {};
    for (const [key, rule, group] of this.rules)
      parsed[key] = typeof rule === 'string' ? byPath(body, rule) : (rule.exec(topic)?.[group] ?? undefined);
    const { method, args, ...rest } = parsed;
    const symbols: Record<string, string> = {};
    for (const [k, v] of Object.entries(rest))
      if (v !== undefined && v !== null) symbols[k] = typeof v === 'string' ? v : JSON.stringify(v);
    return {
      method: typeof method === 'string' ? method : '',
      args: args && typeof args === 'object' && !Array.isArray(args) ? (args as Record<string, unknown>) : {},
      symbols,
    };
  }
}
