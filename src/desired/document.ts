/** Desired-state documents from YAML or JSON text: parsed, checked against their kind, errors naming the field. */
import { parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { badManifest } from '../core/result.js';
import { API_VERSION, type Document, isKind, KINDS } from './kinds/index.js';

export const MAX_DOCUMENT_BYTES = 1024 * 1024;

export function parseDocuments(text: string, origin = 'document'): Document[] {
  if (Buffer.byteLength(text, 'utf8') > MAX_DOCUMENT_BYTES) throw badManifest(`${origin}: larger than ${MAX_DOCUMENT_BYTES} bytes`);
  // JSON is YAML 1.2, so one parser serves both; aliases are capped to stop alias bombs.
  const docs = parseAllDocuments(text, { prettyErrors: false, uniqueKeys: true });
  if (!Array.isArray(docs)) throw badManifest(`${origin}: not a YAML stream`);
  const out: Document[] = [];
  docs.forEach((doc, i) => {
    const where = docs.length > 1 ? `${origin}[${i}]` : origin;
    const err = doc.errors[0];
    if (err) throw badManifest(`${where}: not valid YAML/JSON: ${err.message.split('\n')[0]}`);
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return; // empty document between separators
    out.push(validateDocument(value, where));
  });
  if (out.length === 0) throw badManifest(`${origin}: holds no document`);
  return out;
}

export function validateDocument(value: unknown, where = 'document'): Document {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badManifest(`${where}: must be a mapping`);
  const { apiVersion, kind } = value as { apiVersion?: unknown; kind?: unknown };
  if (apiVersion !== API_VERSION) throw badManifest(`${where}: apiVersion must be ${API_VERSION}, got ${JSON.stringify(apiVersion)}`);
  if (!isKind(kind)) throw badManifest(`${where}: kind ${JSON.stringify(kind)} is not one of ${Object.keys(KINDS).join(', ')}`);
  const result = (KINDS[kind] as z.ZodType).safeParse(value);
  if (!result.success) throw badManifest(`${where} (${kind}): ${describeIssue(result.error.issues[0]!)}`);
  return result.data as Document;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
  if (issue.code === 'unrecognized_keys') return `${path ? `${path}: ` : ''}unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  return `${path || '(document)'}: ${issue.message}`;
}
