/** Pieces every desired-state kind shares. The zod definitions here are the single source. */
import { z } from 'zod';

export const GROUP = 'inbm.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Kubernetes object-name rules (DNS subdomain), so documents can live in a cluster as CRs too. */
export const Name = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'lowercase letters, digits, "-" and "."');

export const Metadata = z
  .object({
    name: Name,
    generation: z.number().int().min(1).optional().describe('Set by the store: bumped whenever the spec changes'),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z
      .record(z.string(), z.string())
      .optional()
      .describe('inbm.dev/source, inbm.dev/manifest-id, inbm.dev/manifest-name, inbm.dev/manifest-type, inbm.dev/request-id'),
  })
  .strict();

export const SecretRef = z
  .object({
    secretRef: Name.describe('Secret kept apart from documents: <stateDir>/secrets/<name>.json, mode 0600, {"username","password"}'),
  })
  .strict();

/** Identity of a one-shot operation: a new value runs it again, the same value never twice. */
export const RequestId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'letters, digits and "._:-"')
  .describe('Identity of this one-shot operation: it runs once per distinct value');

export const HashAlgorithm = z.enum(['sha256', 'sha384', 'sha512']);

export const Artifact = z
  .object({
    url: z.string().max(700).optional().describe('http, https, file or ftp URL; must be under a trusted repository'),
    path: z.string().max(1500).optional().describe('A file already on the device (instead of url)'),
    signature: z.string().max(1000).optional().describe('Hex RSA-PSS signature over the hex digest of the file'),
    hashAlgorithm: HashAlgorithm.optional().describe('Digest signed by `signature` (default sha384)'),
    credentials: SecretRef.optional().describe('Download credentials (https only)'),
  })
  .strict()
  .describe('Where an artifact comes from: exactly one of url or path');

export const IsoDate = z.string().regex(/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/, 'a date YYYY-MM-DD');

/** Builds the envelope of a kind around its spec. */
export function documentOf<K extends string, S extends z.ZodType>(kind: K, spec: S, description: string) {
  return z
    .object({
      apiVersion: z.literal(API_VERSION),
      kind: z.literal(kind),
      metadata: Metadata,
      spec,
    })
    .strict()
    .describe(description);
}
