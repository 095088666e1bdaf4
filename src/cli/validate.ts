import { InbmError, ok, type Result, resultOf, Status } from '../core/result.js';
import { parseDocuments } from '../desired/document.js';
import { translate } from '../desired/translate/index.js';
import { parseManifest } from '../manifest/parse.js';
import type { Input } from './input.js';

/**
 * The reference's parse stage: 200 when the manifest (or document) is accepted, 300 naming the
 * element otherwise. A manifest the reference accepts but would refuse when installing (400)
 * still validates, and the message says what the install will answer.
 */
export function validateInput(input: Input): Result {
  try {
    if (input.format === 'yaml') {
      const docs = parseDocuments(input.text, input.origin);
      return ok(`DOCUMENTS VALID: ${docs.map((d) => `${d.kind}/${d.metadata.name}`).join(', ')}`);
    }
    const parsed = parseManifest(input.text);
    try {
      const t = translate(parsed, { source: 'cli' });
      return ok(`MANIFEST VALID: ${describe(t)}`);
    } catch (err) {
      if (err instanceof InbmError && err.status !== Status.BAD_MANIFEST) return ok(`MANIFEST VALID; install would fail: ${err.message}`);
      throw err;
    }
  } catch (err) {
    return resultOf(err);
  }
}

function describe(t: ReturnType<typeof translate>): string {
  switch (t.type) {
    case 'documents':
      return t.documents.map((d) => `${d.kind}/${d.metadata.name}`).join(', ');
    case 'query':
      return `query ${t.query.target}`;
    case 'custom':
      return 'custom command';
    case 'schedule':
      return `schedule ${t.requestId} (${t.jobs.length} job${t.jobs.length === 1 ? '' : 's'})`;
  }
}
