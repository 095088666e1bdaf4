/**
 * `/etc/intel_manageability.conf` as pure functions: text ⇄ typed Conf, and the reference's
 * leaf-key get/set/append/remove. Callers do the file I/O; every error is InbmError(400), so a
 * refused change leaves the caller holding the old file.
 */
import type { z } from 'zod';
import { InbmError, installFailed } from '../../core/result.js';
import { ATTRS, parseXml, TEXT, tagOf, type XmlNode } from '../../manifest/xml.js';
import { APPENDABLE_KEYS, type Conf, confSchema, keySection, SECTION_ATTRS, SECTION_KEYS, SECTIONS, type Section } from './schema.js';

export { APPENDABLE_KEYS, type Conf, confSchema, keySection, SECTIONS, type Section } from './schema.js';

const ROOT = 'configurations';
type Loose = Partial<Record<Section, Record<string, string>>>;

export const DEFAULT_CONF = `<configurations>
    <all>
        <dbs>WARN</dbs>
    </all>
    <telemetry>
        <collectionIntervalSeconds>60</collectionIntervalSeconds>
        <publishIntervalSeconds>300</publishIntervalSeconds>
        <maxCacheSize>100</maxCacheSize>
        <containerHealthIntervalSeconds>600</containerHealthIntervalSeconds>
        <enableSwBom>true</enableSwBom>
        <swBomIntervalHours>24</swBomIntervalHours>
    </telemetry>
    <diagnostic>
        <minStorageMB>100</minStorageMB>
        <minMemoryMB>10</minMemoryMB>
        <minPowerPercent>20</minPowerPercent>
        <sotaSW>
            docker
            trtl
            inbm-telemetry
        </sotaSW>
        <dockerBenchSecurityIntervalSeconds>900</dockerBenchSecurityIntervalSeconds>
        <networkCheck>true</networkCheck>
    </diagnostic>
    <dispatcher>
        <dbsRemoveImageOnFailedContainer>false</dbsRemoveImageOnFailedContainer>
        <trustedRepositories></trustedRepositories>
    </dispatcher>
    <orchestrator name="csl-agent">
        <orchestratorResponse>true</orchestratorResponse>
        <ip>/etc/opt/csl/csl-node/csl-manager</ip>
        <token>/etc/opt/csl/csl-node/long-lived-token</token>
        <certFile>/etc/ssl/certs/csl-ca-cert.pem</certFile>
    </orchestrator>
    <sota>
        <proceedWithoutRollback>true</proceedWithoutRollback>
    </sota>
</configurations>
`;

/** Parses and validates the whole file against the XSD-equivalent rules. */
export function parseConf(xml: string): Conf {
  let nodes: XmlNode[];
  try {
    nodes = parseXml(xml);
  } catch (err) {
    // The shared XML layer speaks manifest (300); a configuration file failing is a failed change.
    throw err instanceof InbmError ? installFailed(err.reason) : err;
  }
  const [root, ...extra] = elements(nodes, 'document');
  if (!root || extra.length > 0 || tagOf(root) !== ROOT) throw installFailed(`the document must have one <${ROOT}> element`);
  noAttributes(root, ROOT, []);
  const raw: Loose = {};
  let previous = -1;
  for (const node of elements(root[ROOT], ROOT)) {
    const tag = tagOf(node);
    const at = SECTIONS.indexOf(tag as Section);
    if (at === -1) throw installFailed(`unknown section <${tag}>`);
    if (at <= previous) throw installFailed(`section <${tag}> is repeated or out of order (order is ${SECTIONS.join(', ')})`);
    previous = at;
    raw[tag as Section] = readSection(node, tag as Section);
  }
  return validate(raw);
}

/** Deterministic text that parseConf reads back to an equal Conf; refuses an invalid Conf. */
export function serializeConf(conf: Conf): string {
  return render(validate(toRaw(conf)));
}

/** True when both would be written as the same file, i.e. applying one over the other changes nothing. */
export function sameConf(a: Conf, b: Conf): boolean {
  return render(a) === render(b);
}

/** Values by leaf key; lists come one entry per line, an absent optional key as "". */
export function getValues(conf: Conf, keys: readonly string[]): Record<string, string> {
  const raw = toRaw(conf);
  const out: Record<string, string> = {};
  for (const key of keys) out[key] = raw[sectionOf(key)]?.[key] ?? '';
  return out;
}

export interface ConfChanges {
  set?: Record<string, string>;
  append?: Record<string, readonly string[]>;
  remove?: Record<string, readonly string[]>;
}

/**
 * Applies set, then append, then remove, and validates the whole result; the input is untouched.
 * Unlike the reference, which fails removing an entry that is not there, remove is declarative
 * (the entry must end up absent), so replaying a change is a no-op, like append of a present entry.
 */
export function applyChanges(conf: Conf, changes: ConfChanges): Conf {
  const raw = toRaw(conf);
  const sectionFor = (key: string): Record<string, string> => {
    const section = sectionOf(key);
    const values = raw[section];
    if (!values) throw installFailed(`${key}: section <${section}> is absent`);
    return values;
  };
  for (const [key, value] of Object.entries(changes.set ?? {})) {
    noQuote(key, value);
    sectionFor(key)[key] = value;
  }
  const edit = (key: string, entries: readonly string[], change: (list: string[], entry: string) => string[]) => {
    const values = sectionFor(key);
    if (!APPENDABLE_KEYS.includes(key)) throw installFailed(`${key}: append/remove is only allowed for ${APPENDABLE_KEYS.join(', ')}`);
    let list = splitList(values[key] ?? '');
    for (const entry of entries.map((e) => checkEntry(key, e))) list = change(list, entry);
    values[key] = list.join('\n');
  };
  for (const [key, entries] of Object.entries(changes.append ?? {})) {
    edit(key, entries, (list, entry) => (list.includes(entry) ? list : [...list, entry]));
  }
  for (const [key, entries] of Object.entries(changes.remove ?? {})) {
    edit(key, entries, (list, entry) => list.filter((e) => e !== entry));
  }
  return validate(raw);
}

function sectionOf(key: string): Section {
  const section = keySection(key);
  if (!section) throw installFailed(`unknown configuration key ${JSON.stringify(key)}`);
  return section;
}

// The reference refuses quotes in values (they end up inside its quoted command strings).
function noQuote(key: string, value: string): void {
  if (value.includes('"')) throw installFailed(`${key}: value must not contain '"'`);
}

function checkEntry(key: string, entry: string): string {
  noQuote(key, entry);
  const trimmed = entry.trim();
  // One entry is one list item; whitespace inside would silently become several.
  if (!trimmed || /\s/.test(trimmed)) throw installFailed(`${key}: a list entry must be one non-empty word, got ${JSON.stringify(entry)}`);
  return trimmed;
}

const splitList = (text: string): string[] => text.split(/\s+/).filter(Boolean);

function validate(raw: Loose): Conf {
  const result = confSchema.safeParse(raw);
  if (result.success) return result.data;
  throw installFailed(result.error.issues.map((issue) => describe(issue, raw)).join('; '));
}

function describe(issue: z.core.$ZodIssue, raw: Loose): string {
  const [section, key] = issue.path.map(String) as [Section, string | undefined];
  const values = raw[section];
  if (issue.code === 'unrecognized_keys') return `unknown key(s) ${issue.keys.join(', ')}${section ? ` in <${section}>` : ''}`;
  if (!values) return `missing section <${section}>`;
  if (key === undefined) return `<${section}>: ${issue.message}`;
  if (SECTION_ATTRS[section].includes(key)) return `<${section}>: attribute ${key} is required`;
  if (values[key] === undefined) return `${key}: is required in <${section}>`;
  return `${key}: ${issue.message}`;
}

/** Child elements; whitespace between them is formatting, any other text is an error. */
function elements(children: unknown, parent: string): XmlNode[] {
  const out: XmlNode[] = [];
  for (const node of children as XmlNode[]) {
    if (tagOf(node) !== TEXT) out.push(node);
    else if (String(node[TEXT]).trim()) throw installFailed(`unexpected text in <${parent}>`);
  }
  return out;
}

function noAttributes(node: XmlNode, tag: string, allowed: readonly string[]): void {
  for (const name of Object.keys((node[ATTRS] as Record<string, string> | undefined) ?? {})) {
    if (!allowed.includes(name)) throw installFailed(`<${tag}> has no attribute ${name}`);
  }
}

function readSection(node: XmlNode, section: Section): Record<string, string> {
  noAttributes(node, section, SECTION_ATTRS[section]);
  const values: Record<string, string> = { ...(node[ATTRS] as Record<string, string> | undefined) };
  for (const child of elements(node[section], section)) {
    const key = tagOf(child);
    if (!SECTION_KEYS[section].includes(key)) throw installFailed(`unknown key <${key}> in <${section}>`);
    if (key in values) throw installFailed(`${key}: may appear at most once`);
    const parts = child[key] as XmlNode[];
    if (parts.some((p) => tagOf(p) !== TEXT)) throw installFailed(`${key}: must contain text only`);
    values[key] = parts.map((p) => String(p[TEXT])).join('');
  }
  return values;
}

/** Every value back to its element text (lists one entry per line); absent keys stay absent. */
function toRaw(conf: Conf): Loose {
  const raw: Loose = {};
  const typed = conf as unknown as Record<string, Record<string, unknown> | undefined>;
  for (const section of SECTIONS) {
    const values = typed[section];
    if (!values) continue;
    const out: Record<string, string> = {};
    for (const key of [...SECTION_ATTRS[section], ...SECTION_KEYS[section]]) {
      const value = values[key];
      if (value !== undefined) out[key] = Array.isArray(value) ? value.join('\n') : String(value);
    }
    raw[section] = out;
  }
  return raw;
}

const I = '    ';
const escapeText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escapeAttr = (s: string) => escapeText(s).replace(/"/g, '&quot;');

function render(conf: Conf): string {
  const typed = conf as unknown as Record<string, Record<string, unknown> | undefined>;
  const lines = [`<${ROOT}>`];
  for (const section of SECTIONS) {
    const values = typed[section];
    if (!values) continue;
    const attrs = SECTION_ATTRS[section].map((a) => (values[a] === undefined ? '' : ` ${a}="${escapeAttr(String(values[a]))}"`)).join('');
    lines.push(`${I}<${section}${attrs}>`);
    for (const key of SECTION_KEYS[section]) {
      const value = values[key];
      if (value === undefined) continue;
      if (!Array.isArray(value)) lines.push(`${I}${I}<${key}>${escapeText(String(value))}</${key}>`);
      else if (value.length === 0) lines.push(`${I}${I}<${key}></${key}>`);
      else lines.push(`${I}${I}<${key}>`, ...value.map((e) => `${I}${I}${I}${escapeText(String(e))}`), `${I}${I}</${key}>`);
    }
    lines.push(`${I}</${section}>`);
  }
  lines.push(`</${ROOT}>`, '');
  return lines.join('\n');
}
