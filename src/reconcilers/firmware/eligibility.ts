/**
 * Whether a firmware update may run on this platform, decided before anything is downloaded,
 * with the reference's rules (upgrade_checker.py, installer.py): manufacturer and product exact,
 * BIOS vendor exact and release date strictly newer, the product listed in
 * firmware_tool_info.conf, a signature when a certificate is provisioned, tool options and GUID
 * as the product's flags say. Pure: every input was observed beforehand.
 */
import type { z } from 'zod';
import type { FirmwareTarget } from '../../desired/kinds/platform.js';
import { type PlatformInfo, shown } from '../../platform/dmi.js';
import { type FirmwareDb, type FirmwareProduct, findProduct } from '../../platform/firmware-db.js';

export type Target = z.infer<typeof FirmwareTarget>;

export interface EligibilityInput {
  target: Target;
  /** undefined: the platform has neither DMI nor a device tree */
  platform: PlatformInfo | undefined;
  /** The parsed database, or why it could not be read. */
  db: FirmwareDb | { error: string };
  /** An OTA signature certificate is provisioned: a signature is then mandatory. */
  signatureRequired: boolean;
  /** For a product with a tool named by absolute path: whether that file exists. */
  toolFound?: boolean;
  /** For a product with guid='true': the system-firmware GUIDs the tool lists, or why listing failed. */
  guids?: string[] | { error: string };
}

export type Eligibility =
  | { ok: true; product: FirmwareProduct; guid?: string }
  | { ok: false; reason: string /** the reference's "already applied" case */; applied?: true };

const no = (reason: string): Eligibility => ({ ok: false, reason });
const NOT_UPGRADABLE = 'BIOS is not upgradable. Reason:';

export function checkEligibility(input: EligibilityInput): Eligibility {
  const { target, platform } = input;
  const want = target.platform;
  if (!platform) return no(`${NOT_UPGRADABLE} Cannot get BIOS information: no DMI or device tree on this platform`);
  const missing = (['biosVendor', 'biosVersion', 'biosReleaseDate'] as const).filter((k) => platform[k] === undefined);
  if (missing.length > 0) return no(`${NOT_UPGRADABLE} Error gathering BIOS information: ${missing.join(', ')} unknown`);

  const mismatch: string[] = [];
  if (want.manufacturer !== platform.match.manufacturer)
    mismatch.push(`manufacturer ${shown(want.manufacturer)} does not match the platform's ${shown(platform.match.manufacturer)}`);
  if (want.product !== platform.match.product)
    mismatch.push(`product ${shown(want.product)} does not match the platform's ${shown(platform.match.product)}`);
  if (mismatch.length > 0) return no(`${NOT_UPGRADABLE} manufacturer/product check failed: ${mismatch.join('; ')}`);

  if (want.vendor !== platform.biosVendor)
    return no(
      `Firmware Update Aborted: vendor ${shown(want.vendor)} does not match the platform BIOS vendor ${shown(platform.biosVendor)}`,
    );
  if (want.releaseDate === platform.biosReleaseDate)
    return {
      ok: false,
      applied: true,
      reason: `Firmware Update Aborted as this package has already been applied: release date ${want.releaseDate} equals the platform's`,
    };
  if (want.releaseDate < platform.biosReleaseDate!)
    return no(`Firmware Update Aborted: release date ${want.releaseDate} is older than the platform's ${platform.biosReleaseDate}`);

  if ('error' in input.db) return no(`Firmware Update Aborted: ${input.db.error}`);
  const product = findProduct(input.db, platform.match.product);
  if (!product) return no(`The current platform is unsupported - ${platform.match.product}`);
  if (product.operatingSystem.toLowerCase() !== 'linux')
    return no(`Firmware Update Aborted: product "${product.name}" is configured for ${product.operatingSystem}, not linux`);
  if (!product.destPath && !product.tool)
    return no(`Firmware Update Aborted: product "${product.name}" has neither firmware_tool nor firmware_dest_path`);

  if (input.signatureRequired && !target.source.signature)
    return no('Device is provisioned with OTA package check certificate. Cannot proceed without signature.');

  if (product.toolOptions && !target.toolOptions)
    return no(
      "Tool options are mandatory for the platform's firmware update tool, please check firmware documentation for the parameters.",
    );
  if (!product.toolOptions && target.toolOptions)
    return no('Tool options are not supported by the platform. Please check the firmware configuration.');

  if (product.destPath) return { ok: true, product };
  if (input.toolFound === false) return no(`Firmware Update Aborted: Firmware tool does not exist at ${product.tool}`);
  if (!product.guid) return { ok: true, product };
  const guids = input.guids ?? { error: 'GUIDs were not listed' };
  if ('error' in guids) return no(`Firmware Update Aborted: failed to list GUIDs: ${guids.error}`);
  if (guids.length === 0) return no('Firmware Update Aborted: No System Firmware type GUID found');
  if (!target.guid) return { ok: true, product, guid: guids[0]! };
  const found = guids.find((g) => g.toLowerCase() === target.guid!.toLowerCase());
  if (!found)
    return no(`Firmware Update Aborted: GUID ${target.guid} is not a system firmware GUID of this platform (${guids.join(', ')})`);
  return { ok: true, product, guid: found };
}

/** The reference's GUID listing parse: lines naming a system-firmware type, GUID after the comma. */
export function parseGuids(output: string): string[] {
  const guids: string[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes('System Firmware type') && !line.includes('system-firmware type')) continue;
    const token = line.split(',')[1]?.trim().split(/\s+/)[0]?.replace(/^\{/, '').replace(/\}$/, '');
    if (token && /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(token)) guids.push(token);
  }
  return guids;
}

export const SUCCESS_MESSAGE = 'SUCCESSFUL INSTALL: Overall FOTA update successful. System has been updated with new Firmware version...';
export const FAILURE_MESSAGE = 'FAILED INSTALL: Overall FOTA update failed. Firmware not updated.';

export interface BiosSnapshot {
  biosVersion?: string;
  biosReleaseDate?: string;
}

/** After the reboot: the update took only if both the BIOS version and its date changed. */
export function firmwareVerdict(before: BiosSnapshot, after: PlatformInfo | undefined): { success: boolean; message: string } {
  const success =
    after !== undefined &&
    after.biosVersion !== undefined &&
    after.biosReleaseDate !== undefined &&
    after.biosVersion !== before.biosVersion &&
    after.biosReleaseDate !== before.biosReleaseDate;
  return { success, message: success ? SUCCESS_MESSAGE : FAILURE_MESSAGE };
}
