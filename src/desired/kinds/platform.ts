import { z } from 'zod';
import { Artifact, documentOf, IsoDate, RequestId } from './common.js';

export const FirmwareTarget = z
  .object({
    platform: z
      .object({
        vendor: z.string().max(50).describe('Must equal the BIOS vendor'),
        manufacturer: z.string().max(50).describe('Must equal the system manufacturer'),
        product: z.string().max(50).describe('Must equal the system product name; key into firmware_tool_info.conf'),
        biosVersion: z.string().max(50),
        releaseDate: IsoDate.describe('Must be newer than the running BIOS date'),
        productVersion: z.string().max(50).optional(),
      })
      .strict(),
    source: Artifact,
    guid: z
      .string()
      .regex(/^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$/)
      .optional(),
    toolOptions: z.string().max(50).optional(),
    reboot: z.boolean().default(true),
  })
  .strict();

export const OSTarget = z
  .object({
    mode: z.enum(['full', 'download-only', 'no-download', 'cancel']).default('full'),
    packages: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9.+-]*$/, 'a lowercase Debian package name'))
      .default([])
      .describe('Empty = upgrade everything'),
    source: Artifact.optional().describe('Image or Mender artifact (not used by apt updates)'),
    releaseDate: IsoDate.optional(),
    reboot: z.boolean().default(true),
    logToFile: z.boolean().default(false),
  })
  .strict();

export const Firmware = documentOf(
  'Firmware',
  FirmwareTarget.extend({ requestId: RequestId }).strict(),
  'A firmware (BIOS/capsule) update, run once and verified after the reboot (FOTA)',
);

export const OSUpdate = documentOf(
  'OSUpdate',
  OSTarget.extend({ requestId: RequestId }).strict(),
  'An operating-system update through apt, with snapshot and rollback (SOTA)',
);

export const PlatformUpdate = documentOf(
  'PlatformUpdate',
  z.object({ requestId: RequestId, firmware: FirmwareTarget, os: OSTarget }).strict(),
  'Firmware then OS with a single reboot (POTA)',
);
