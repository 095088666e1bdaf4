import { z } from 'zod';
import { Artifact, documentOf, RequestId } from './common.js';

export const ApplicationPackage = documentOf(
  'ApplicationPackage',
  z
    .object({
      requestId: RequestId,
      source: Artifact,
      reboot: z.boolean().default(false).describe('Reboot after installing (AOTA deviceReboot)'),
    })
    .strict(),
  'A .deb package fetched and installed once (AOTA application update)',
);

export const PackageSource = documentOf(
  'PackageSource',
  z
    .object({
      target: z.enum(['os', 'application']).describe('os = /etc/apt/sources.list, application = a file in sources.list.d'),
      ensure: z.enum(['present', 'absent', 'exact']).default('present').describe('exact (os only) = these lines and no others'),
      lines: z.array(z.string().min(1).max(1500)).max(25).default([]),
      filename: z.string().max(200).optional().describe('application: the file name in /etc/apt/sources.list.d'),
      gpgKey: z
        .object({ url: z.string().max(1500).optional(), name: z.string().min(1).max(200) })
        .strict()
        .optional()
        .describe('application: signing key fetched from a trusted url into the keyring as name'),
    })
    .strict(),
  'APT package sources (type=source manifests)',
);
