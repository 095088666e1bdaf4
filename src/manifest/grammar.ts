/**
 * A small validating walker with the XSD semantics the INBM schemas use: sequence, all and
 * choice content models, occurrence bounds, simple types with facets, declared attributes.
 * It turns a preserveOrder XML tree into plain objects in the same pass.
 */
import { badManifest } from '../core/result.js';
import { ATTRS, TEXT, tagOf, type XmlNode } from './xml.js';

export type SimpleType =
  | { kind: 'string'; max?: number }
  | { kind: 'enum'; values: readonly string[] }
  /** xs:decimal, minInclusive 0, optionally restricted to an enumeration of values. */
  | { kind: 'decimal'; oneOf?: readonly number[] }
  | { kind: 'date' }
  | { kind: 'dateTime' }
  | { kind: 'duration' }
  | { kind: 'uri'; max: number }
  | { kind: 'pattern'; re: RegExp; what: string; max?: number };

export interface Particle {
  name: string;
  el: ElementDef;
  min?: number;
  max?: number;
}

export interface ElementDef {
  /** Simple content: the element holds only text of this type. */
  text?: SimpleType;
  attrs?: Record<string, { type: SimpleType; required?: boolean }>;
  model?: 'sequence' | 'all' | 'choice';
  children?: Particle[];
  /** For `choice`: how many children the group admits in total. */
  choiceMin?: number;
  choiceMax?: number;
}

/** Output: leaf → string, element → object; a child with max > 1 → array; attribute `a` of child `c` → key `c@a`. */
export type Tree = { [key: string]: string | Tree | Array<string | Tree> };

export function validateRoot(nodes: XmlNode[], roots: Record<string, ElementDef>): { root: string; tree: Tree } {
  let rootNode: XmlNode | undefined;
  for (const node of nodes) {
    const tag = tagOf(node);
    if (tag === TEXT) {
      if (!isBlank(node[TEXT])) throw badManifest('text is not allowed outside the root element');
      continue;
    }
    if (rootNode) throw badManifest('more than one root element');
    rootNode = node;
  }
  if (!rootNode) throw badManifest('no root element');
  const root = tagOf(rootNode);
  const def = roots[root];
  if (!def) throw badManifest(`unknown root element <${root}>, expected <${Object.keys(roots).join('> or <')}>`);
  const tree = walkComplex(rootNode, root, def, root);
  return { root, tree };
}

function walkElement(node: XmlNode, name: string, def: ElementDef, path: string, out: Tree): string | Tree {
  const attrs = node[ATTRS] as Record<string, string> | undefined;
  if (def.text) {
    if (attrs || def.attrs) checkAttrs(attrs, def, path, out, name);
    return checkSimple(textOf(node, name, path), def.text, path);
  }
  return walkComplex(node, name, def, path);
}

function walkComplex(node: XmlNode, name: string, def: ElementDef, path: string): Tree {
  const out: Tree = {};
  const attrs = node[ATTRS] as Record<string, string> | undefined;
  if (attrs || def.attrs) checkAttrs(attrs, def, path, out, '');
  const kids = node[name] as XmlNode[];
  const particles = def.children ?? [];
  const counts = new Map<string, number>();
  let cursor = 0; // sequence position
  let total = 0;
  for (const kid of kids) {
    const tag = tagOf(kid);
    if (tag === TEXT) {
      if (!isBlank(kid[TEXT])) throw badManifest(`<${path}>: text is not allowed here, only elements`);
      continue;
    }
    let p: Particle | undefined;
    if (def.model === 'sequence') {
      while (cursor < particles.length && particles[cursor]!.name !== tag) {
        const skipped = particles[cursor]!;
        if ((counts.get(skipped.name) ?? 0) < (skipped.min ?? 1)) {
          throw particles.slice(cursor).some((q) => q.name === tag)
            ? badManifest(`<${path}>: missing required element <${skipped.name}> before <${tag}>`)
            : unexpected(path, tag, particles);
        }
        cursor++;
      }
      p = particles[cursor];
    } else {
      p = particles.find((q) => q.name === tag);
    }
    if (!p) throw unexpected(path, tag, particles);
    const count = (counts.get(tag) ?? 0) + 1;
    const max = p.max ?? 1;
    if (count > max) {
      throw badManifest(`<${path}>: element <${tag}> may appear at most ${max === 1 ? 'once' : `${max} times`}`);
    }
    counts.set(tag, count);
    total++;
    const value = walkElement(kid, tag, p.el, `${path}/${tag}`, out);
    if (max > 1) ((out[tag] ??= []) as Array<string | Tree>).push(value);
    else out[tag] = value;
  }
  if (def.model === 'choice') {
    const min = def.choiceMin ?? 1;
    const max = def.choiceMax ?? 1;
    if (total < min) {
      throw badManifest(`<${path}>: expected ${min === 1 ? 'one' : `at least ${min}`} of <${particles.map((q) => q.name).join('>, <')}>`);
    }
    if (total > max) throw badManifest(`<${path}>: at most ${max} of <${particles.map((q) => q.name).join('>, <')}> allowed`);
  } else {
    for (const q of particles) {
      if ((counts.get(q.name) ?? 0) < (q.min ?? 1)) throw badManifest(`<${path}>: missing required element <${q.name}>`);
    }
  }
  return out;
}

function unexpected(path: string, tag: string, particles: Particle[]) {
  if (particles.some((q) => q.name === tag)) {
    return badManifest(`<${path}>: element <${tag}> is out of order (expected order: ${particles.map((q) => q.name).join(', ')})`);
  }
  return badManifest(`<${path}>: unexpected element <${tag}>`);
}

function checkAttrs(attrs: Record<string, string> | undefined, def: ElementDef, path: string, out: Tree, prefix: string): void {
  const declared = def.attrs ?? {};
  for (const key in attrs) {
    const spec = declared[key];
    if (!spec) throw badManifest(`<${path}>: attribute "${key}" is not allowed`);
    out[prefix ? `${prefix}@${key}` : `@${key}`] = checkSimple(attrs[key]!, spec.type, `${path}@${key}`);
  }
  for (const key in declared) {
    if (declared[key]!.required && !(attrs && key in attrs)) throw badManifest(`<${path}>: attribute "${key}" is required`);
  }
}

function textOf(node: XmlNode, name: string, path: string): string {
  const kids = node[name] as XmlNode[];
  if (kids.length === 0) return '';
  let text = '';
  for (const kid of kids) {
    if (!(TEXT in kid)) throw badManifest(`<${path}>: must hold text only, found element <${tagOf(kid)}>`);
    text += kid[TEXT] as string;
  }
  return text;
}

const isBlank = (s: unknown): boolean => typeof s === 'string' && /^[ \t\r\n]*$/.test(s);
/** XSD whitespace "collapse", used by decimal, date and anyURI. */
const collapse = (s: string): string => s.replace(/[ \t\r\n]+/g, ' ').trim();
const codePoints = (s: string): number => {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) n--;
  }
  return n;
};

const DECIMAL = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;
const DATE = /^(-?[0-9]{4,})-([0-9]{2})-([0-9]{2})(Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))?$/;
const DATETIME =
  /^(-?[0-9]{4,})-([0-9]{2})-([0-9]{2})T(?:([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?|24:00:00(?:\.0+)?)(Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))?$/;
const DURATION =
  /^-?P(?=[0-9]|T[0-9])(?:[0-9]+Y)?(?:[0-9]+M)?(?:[0-9]+D)?(?:T(?=[0-9])(?:[0-9]+H)?(?:[0-9]+M)?(?:[0-9]+(?:\.[0-9]+)?S)?)?$/;

function validDay(year: string, month: string, day: string): boolean {
  const m = Number(month);
  const d = Number(day);
  if (m < 1 || m > 12 || d < 1) return false;
  const y = Number(year);
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]!;
  return d <= days && !/^-?0000$/.test(year);
}

export function checkSimple(raw: string, type: SimpleType, path: string): string {
  switch (type.kind) {
    case 'string':
      if (type.max !== undefined && raw.length > type.max && codePoints(raw) > type.max) {
        throw badManifest(`<${path}>: longer than ${type.max} characters`);
      }
      return raw;
    case 'enum':
      if (!type.values.includes(raw)) {
        throw badManifest(`<${path}>: value ${JSON.stringify(raw)} is not one of ${type.values.join(', ')}`);
      }
      return raw;
    case 'decimal': {
      const v = collapse(raw);
      if (!DECIMAL.test(v)) throw badManifest(`<${path}>: ${JSON.stringify(raw)} is not a decimal number`);
      const num = Number(v);
      if (num < 0) throw badManifest(`<${path}>: must be >= 0`);
      if (type.oneOf && !type.oneOf.includes(num)) throw badManifest(`<${path}>: must be one of ${type.oneOf.join(', ')}`);
      return v;
    }
    case 'date': {
      const v = collapse(raw);
      const m = DATE.exec(v);
      if (!m || !validDay(m[1]!, m[2]!, m[3]!)) throw badManifest(`<${path}>: ${JSON.stringify(raw)} is not a date (YYYY-MM-DD)`);
      return v;
    }
    case 'dateTime': {
      const v = collapse(raw);
      const m = DATETIME.exec(v);
      if (!m || !validDay(m[1]!, m[2]!, m[3]!)) {
        throw badManifest(`<${path}>: ${JSON.stringify(raw)} is not a date-time (YYYY-MM-DDThh:mm:ss)`);
      }
      return v;
    }
    case 'duration': {
      const v = collapse(raw);
      if (!DURATION.test(v)) throw badManifest(`<${path}>: ${JSON.stringify(raw)} is not an ISO 8601 duration`);
      return v;
    }
    case 'uri': {
      const v = collapse(raw);
      if (codePoints(v) > type.max) throw badManifest(`<${path}>: longer than ${type.max} characters`);
      return v;
    }
    case 'pattern':
      if ((type.max !== undefined && codePoints(raw) > type.max) || !type.re.test(raw)) {
        throw badManifest(`<${path}>: ${JSON.stringify(raw.slice(0, 80))} is not ${type.what}`);
      }
      return raw;
  }
}
