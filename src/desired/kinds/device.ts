import { z } from 'zod';
import { Artifact, documentOf, RequestId } from './common.js';

const Key = z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'a configuration key (leaf tag name)');

export const Configuration = documentOf(
  'Configuration',
  z
    .object({
      set: z.record(Key, z.string().max(1500)).optional().describe('Leaf key → value'),
      append: z
        .record(Key, z.array(z.string().max(700)).min(1))
        .optional()
        .describe('List key → values that must be present'),
      remove: z
        .record(Key, z.array(z.string().max(700)).min(1))
        .optional()
        .describe('List key → values that must be absent'),
      load: z.object({ requestId: RequestId, source: Artifact }).strict().optional().describe('Replace the whole file once per requestId'),
    })
    .strict(),
  'Keys of /etc/intel_manageability.conf (config set_element/append/remove/load)',
);

export const PowerAction = documentOf(
  'PowerAction',
  z
    .object({
      requestId: RequestId,
      action: z.enum(['restart', 'shutdown', 'decommission']),
    })
    .strict(),
  'Restart, shut down or decommission the device, exactly once per requestId',
);
