import type { Manifest } from '../../manifest/types.js';
import { API_VERSION, type DocumentInput, type KindName } from '../kinds/index.js';
import { shortHash } from '../names.js';
import type { Query } from '../query.js';
import type { Secret } from '../secrets.js';

export interface TranslateOptions {
  /** Which source of intent sent it: cloud, file, cli, … */
  source: string;
  /** Identity for one-shot operations; defaults to a digest of the manifest (without secrets). */
  requestId?: string;
}

export type Translation =
  | { type: 'documents'; documents: DocumentInput[]; secrets: Secret[] }
  | { type: 'query'; query: Query }
  | { type: 'custom'; data: string }
  | { type: 'schedule'; requestId: string; jobs: ScheduledJob[] };

export interface ScheduledJob {
  schedules: {
    single: Array<{ jobId: string; start?: string; end?: string }>;
    repeated: Array<{ jobId: string; duration: string; cron: string }>;
  };
  requests: Translation[];
}

/** What every per-type translator gets: the manifest, the identity, and helpers to build documents. */
export class Context {
  readonly requestId: string;
  readonly secrets: Secret[] = [];

  constructor(
    readonly manifest: Manifest,
    readonly options: TranslateOptions,
    readonly manifestType: string,
  ) {
    this.requestId = options.requestId ?? `m-${shortHash(JSON.stringify(manifest, withoutSecrets), 16)}`;
  }

  document<K extends KindName>(kind: K, name: string, spec: Extract<DocumentInput, { kind: K }>['spec']): DocumentInput {
    const header = this.manifest.ota?.header;
    const annotations: Record<string, string> = {
      'inbm.dev/source': this.options.source,
      'inbm.dev/manifest-type': this.manifestType,
      'inbm.dev/request-id': this.requestId,
    };
    if (header?.id) annotations['inbm.dev/manifest-id'] = header.id;
    const title = header?.name ?? this.manifest.ota?.type.aota?.['@name'] ?? this.manifest.ota?.type.fota?.['@name'];
    if (title) annotations['inbm.dev/manifest-name'] = title;
    return { apiVersion: API_VERSION, kind, metadata: { name, annotations }, spec } as DocumentInput;
  }

  /** Keeps credentials out of the document: stores them as a secret and returns the reference. */
  credentials(name: string, username: string | undefined, password: string | undefined): { secretRef: string } | undefined {
    if (username === undefined || password === undefined) return undefined;
    this.secrets.push({ name, data: { username, password } });
    return { secretRef: name };
  }

  documents(...documents: DocumentInput[]): Translation {
    return { type: 'documents', documents, secrets: this.secrets };
  }
}

function withoutSecrets(key: string, value: unknown): unknown {
  return /password/i.test(key) ? undefined : value;
}

const YES = new Set(['Yes', 'Y', 'y', 'yes', 'YES']);
const NO = new Set(['No', 'N', 'n', 'no', 'NO']);
/** The reference's two opposite deviceReboot readings: FOTA/AOTA reboot only on yes, SOTA unless no. */
export const rebootOnlyIfYes = (v: string | undefined, fallback: boolean): boolean => (v === undefined ? fallback : YES.has(v));
export const rebootUnlessNo = (v: string | undefined): boolean => v === undefined || !NO.has(v);
export const isYes = (v: string | undefined): boolean => v !== undefined && YES.has(v);

export const hashAlgorithm = (sigversion: string | undefined): 'sha256' | 'sha384' | undefined =>
  sigversion === undefined ? undefined : Number(sigversion) === 256 ? 'sha256' : 'sha384';

/** The reference treats the literal "None" (and empty) as absent. */
export const present = (v: string | undefined): string | undefined => (v === undefined || v === '' || v === 'None' ? undefined : v);

export function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [P in K]: V });
}
