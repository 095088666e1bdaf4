/**
 * APT source files as text: one-line entries (sources.list, *.list) and deb822 stanzas
 * (*.sources). Pure: check, edit, convert and list; the reconciler reads and writes the files.
 * Every line is checked the way apt reads it, because one malformed entry makes apt refuse
 * every source on the device, not just the new one.
 */

/** One-line option names and their deb822 field names (sources.list(5)). */
const FIELDS: Record<string, string> = {
  arch: 'Architectures',
  lang: 'Languages',
  target: 'Targets',
  pdiffs: 'PDiffs',
  'by-hash': 'By-Hash',
  'allow-insecure': 'Allow-Insecure',
  'allow-weak': 'Allow-Weak',
  'allow-downgrade-to-insecure': 'Allow-Downgrade-To-Insecure',
  trusted: 'Trusted',
  'signed-by': 'Signed-By',
  'check-valid-until': 'Check-Valid-Until',
  'valid-until-min': 'Valid-Until-Min',
  'valid-until-max': 'Valid-Until-Max',
  'check-date': 'Check-Date',
  'date-max-future': 'Date-Max-Future',
  'inrelease-path': 'InRelease-Path',
  snapshot: 'Snapshot',
};
const OPTION_OF = Object.fromEntries(Object.entries(FIELDS).map(([o, f]) => [f.toLowerCase(), o]));

export interface Entry {
  type: 'deb' | 'deb-src';
  options: Array<{ name: string; op: '=' | '+=' | '-='; value: string }>;
  uri: string;
  suite: string;
  components: string[];
}

/** A line that is not one thing the file should hold (what to say, and which line). */
export class LineError extends Error {
  constructor(
    readonly index: number,
    readonly reason: string,
  ) {
    super(`lines[${index}]: ${reason}`);
  }
}

const ONE_LINE = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)((?:\s+\S+)*)$/;
const OPTION = /^([a-z][a-z-]*)(\+=|-=|=)(\S+)$/;
const URI = /^[a-z][a-z0-9+.-]*:\S+$/i;
const FIELD_LINE = /^[A-Za-z][A-Za-z0-9-]*:/;
const CONTINUATION = /^[ \t]+\S/;

/** Tabs are spacing to apt; any other control character (a line break above all) would smuggle in another entry. */
export function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/** Spacing-insensitive identity of a line, as the reference compares stripped lines. */
export const normalize = (line: string): string => line.trim().replace(/\s+/g, ' ');
const isComment = (line: string) => line.trim().startsWith('#');

/** Parses a one-line entry; a string says why it is not one. */
export function parseOneLine(line: string): Entry | string {
  const m = ONE_LINE.exec(line.trim());
  if (!m) return 'not a source line: expected "deb|deb-src [options] uri suite [component...]"';
  const [, type, opts, uri, suite, rest] = m as unknown as [string, 'deb' | 'deb-src', string | undefined, string, string, string];
  const options: Entry['options'] = [];
  for (const o of (opts ?? '').trim().split(/\s+/).filter(Boolean)) {
    const om = OPTION.exec(o);
    if (!om) return `option "${o}" is not name=value`;
    if (!FIELDS[om[1]!]) return `unknown option "${om[1]}"`;
    options.push({ name: om[1]!, op: om[2] as '=' | '+=' | '-=', value: om[3]! });
  }
  if (!URI.test(uri)) return `"${uri}" is not a URI`;
  const components = rest.trim().split(/\s+/).filter(Boolean);
  // apt's rule: a suite ending in "/" is an exact path and takes no components; any other needs one.
  if (suite.endsWith('/') && components.length > 0) return `suite "${suite}" is an exact path and takes no components`;
  if (!suite.endsWith('/') && components.length === 0) return `suite "${suite}" needs at least one component`;
  return { type, options, uri, suite, components };
}

function checkControl(lines: readonly string[]): void {
  lines.forEach((l, i) => {
    if (hasControl(l)) throw new LineError(i, 'contains a line break or control character');
  });
}

/** The file for lines that must all be one-line entries (or comments): sources.list, *.list. */
export function renderOneLine(lines: readonly string[]): string {
  checkControl(lines);
  lines.forEach((l, i) => {
    if (isComment(l)) return;
    const e = parseOneLine(l);
    if (typeof e === 'string') throw new LineError(i, e);
  });
  return lines.length === 0 ? '' : `${lines.map((l) => l.trim()).join('\n')}\n`;
}

/**
 * The text of a *.sources file: one-line entries become one stanza each; deb822 field lines are
 * kept as given, a new stanza starting at each "Types:". The two kinds cannot be mixed.
 */
export function renderDeb822(lines: readonly string[]): string {
  checkControl(lines);
  const content = lines.map((l, i) => ({ l, i })).filter(({ l }) => !isComment(l));
  const fieldLike = content.filter(({ l }) => FIELD_LINE.test(l.trimEnd()) || CONTINUATION.test(l));
  if (content.length > 0 && fieldLike.length === content.length) return renderStanzas(lines);
  if (fieldLike.length > 0) throw new LineError(fieldLike[0]!.i, 'deb822 fields and one-line entries cannot be mixed in one file');
  const stanzas: string[] = [];
  lines.forEach((l, i) => {
    if (isComment(l)) return;
    const e = parseOneLine(l);
    if (typeof e === 'string') throw new LineError(i, e);
    stanzas.push(toStanza(e, i));
  });
  return stanzas.length === 0 ? '' : `${stanzas.join('\n\n')}\n`;
}

function toStanza(e: Entry, index: number): string {
  const out = [`Types: ${e.type}`, `URIs: ${e.uri}`, `Suites: ${e.suite}`];
  if (e.components.length > 0) out.push(`Components: ${e.components.join(' ')}`);
  for (const o of e.options) {
    if (o.op !== '=') throw new LineError(index, `option "${o.name}${o.op}" has no deb822 form; use a .list file`);
    out.push(`${FIELDS[o.name]}: ${o.value.split(',').join(' ')}`);
  }
  return out.join('\n');
}

function renderStanzas(lines: readonly string[]): string {
  const stanzas: Array<{ first: number; lines: string[] }> = [];
  lines.forEach((raw, i) => {
    const l = raw.trimEnd();
    const current = stanzas.at(-1);
    if (!current || (/^types:/i.test(l) && current.lines.some((x) => /^types:/i.test(x)))) stanzas.push({ first: i, lines: [l] });
    else current.lines.push(l);
  });
  for (const s of stanzas) {
    const fields = parseStanza(s.lines);
    if (typeof fields === 'string') throw new LineError(s.first, fields);
    const problem = checkStanza(fields);
    if (problem) throw new LineError(s.first, problem);
  }
  return `${stanzas.map((s) => s.lines.join('\n')).join('\n\n')}\n`;
}

/** Field name (lower case) → value, continuation lines joined by "\n". */
type Stanza = Map<string, string>;

function parseStanza(lines: readonly string[]): Stanza | string {
  const fields: Stanza = new Map();
  let last: string | undefined;
  for (const l of lines) {
    if (isComment(l)) continue;
    if (CONTINUATION.test(l)) {
      if (!last) return 'a continuation line comes before any field';
      fields.set(last, `${fields.get(last)}\n${l.trim()}`);
      continue;
    }
    const colon = l.indexOf(':');
    const name = l.slice(0, colon).toLowerCase();
    if (fields.has(name)) return `field "${l.slice(0, colon)}" appears twice in one stanza`;
    fields.set(name, l.slice(colon + 1).trim());
    last = name;
  }
  return fields;
}

function checkStanza(f: Stanza): string | undefined {
  const words = (k: string) => (f.get(k) ?? '').split(/\s+/).filter(Boolean);
  for (const k of ['types', 'uris', 'suites']) if (words(k).length === 0) return `a stanza needs ${k[0]!.toUpperCase()}${k.slice(1)}`;
  const bad = words('types').find((t) => t !== 'deb' && t !== 'deb-src');
  if (bad) return `Types: "${bad}" is neither deb nor deb-src`;
  const uri = words('uris').find((u) => !URI.test(u));
  if (uri) return `URIs: "${uri}" is not a URI`;
  const exact = words('suites').every((s) => s.endsWith('/'));
  if (!exact && words('components').length === 0) return 'a stanza whose suites are not exact paths needs Components';
  if (exact && words('components').length > 0) return 'exact-path suites take no Components';
  return undefined;
}

/** Splits a deb822 file into stanzas (blank lines separate them, comments are dropped). */
export function parseDeb822(text: string): Stanza[] {
  const out: Stanza[] = [];
  let block: string[] = [];
  const flush = () => {
    const s = parseStanza(block);
    if (block.length > 0 && typeof s !== 'string' && s.size > 0) out.push(s);
    block = [];
  };
  for (const l of text.split('\n')) {
    if (l.trim() === '') flush();
    else if (!isComment(l)) block.push(l);
  }
  flush();
  return out;
}

/** The deb and deb-src entries of a one-line file, as the reference lists them. */
export function listOneLine(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^deb(-src)?\s/.test(l));
}

/** A deb822 file's enabled entries written as one-line entries, so both formats list alike. */
export function listDeb822(text: string): string[] {
  const out: string[] = [];
  for (const f of parseDeb822(text)) {
    if ((f.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    const words = (k: string) => (f.get(k) ?? '').split(/\s+/).filter(Boolean);
    const options = [...f]
      // An inline key (several lines) has no one-line form; naming a keyring file does.
      .filter(([k, v]) => OPTION_OF[k] && !v.includes('\n'))
      .map(([k, v]) => `${OPTION_OF[k]}=${v.split(/\s+/).join(',')}`);
    const opts = options.length > 0 ? ` [${options.join(' ')}]` : '';
    const comps = words('components').join(' ');
    for (const type of words('types'))
      for (const uri of words('uris'))
        for (const suite of words('suites')) out.push(`${type}${opts} ${uri} ${suite}${comps ? ` ${comps}` : ''}`);
  }
  return out;
}

/** sources.list with `lines` appended where missing (add). */
export function addLines(text: string | undefined, lines: readonly string[]): string {
  const rendered = renderOneLine(lines);
  const have = new Set((text ?? '').split('\n').map(normalize));
  const missing = rendered
    .split('\n')
    .filter(Boolean)
    .filter((l) => !have.has(normalize(l)));
  if (missing.length === 0) return text ?? '';
  const base = text === undefined || text === '' ? '' : text.endsWith('\n') ? text : `${text}\n`;
  return `${base}${missing.join('\n')}\n`;
}

/** sources.list without the lines equal to any of `lines` (remove); everything else untouched. */
export function removeLines(text: string | undefined, lines: readonly string[]): string | undefined {
  if (text === undefined) return undefined;
  checkControl(lines);
  const drop = new Set(lines.map(normalize));
  const kept = text.split('\n').filter((l) => l.trim() === '' || !drop.has(normalize(l)));
  // Only lines go; the file's own spacing and final newline stay as they were.
  return kept.length === text.split('\n').length ? text : kept.join('\n');
}
