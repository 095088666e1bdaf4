import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseDocuments } from '../desired/document.js';
import { writeSecret } from '../desired/secrets.js';
import { type Translation, translate } from '../desired/translate/index.js';
import { parseManifest } from '../manifest/parse.js';
import type { Input } from './input.js';

export interface ConvertOptions {
  source: string;
  requestId?: string;
  /** Where to keep the credentials a manifest carries; without it they are dropped with a note. */
  secretsDir?: string;
}

/** The YAML a manifest becomes: a multi-document stream, or the query / custom / schedule object. */
export async function convertInput(input: Input, options: ConvertOptions, note: (line: string) => void): Promise<string> {
  if (input.format === 'yaml') return toYamlStream(parseDocuments(input.text, input.origin));
  const t = translate(parseManifest(input.text), {
    source: options.source,
    ...(options.requestId ? { requestId: options.requestId } : {}),
  });
  for (const secret of secretsOf(t)) {
    if (options.secretsDir) {
      await writeSecret(options.secretsDir, secret);
      note(`secret ${secret.name} written to ${join(options.secretsDir, `${secret.name}.json`)}`);
    } else {
      note(`secret ${secret.name} not kept (pass --secrets-dir to keep it)`);
    }
  }
  return render(t);
}

function render(t: Translation): string {
  switch (t.type) {
    case 'documents':
      return toYamlStream(t.documents);
    case 'query':
      return stringify({ query: t.query });
    case 'custom':
      return stringify({ custom: { data: t.data } });
    case 'schedule':
      return stringify({
        schedule: {
          requestId: t.requestId,
          jobs: t.jobs.map((j) => ({ schedules: j.schedules, requests: j.requests.map(plain) })),
        },
      });
  }
}

/** Schedules embed translations; secrets are left out of the printed form. */
function plain(t: Translation): unknown {
  switch (t.type) {
    case 'documents':
      return { documents: t.documents };
    case 'query':
      return { query: t.query };
    case 'custom':
      return { custom: { data: t.data } };
    case 'schedule':
      return { schedule: t.requestId };
  }
}

function secretsOf(
  t: Translation,
): Translation extends never ? never : Array<{ name: string; data: { username: string; password: string } }> {
  if (t.type === 'documents') return t.secrets;
  if (t.type === 'schedule') return t.jobs.flatMap((j) => j.requests.flatMap(secretsOf));
  return [];
}

const toYamlStream = (docs: unknown[]): string => docs.map((d) => stringify(d)).join('---\n');
