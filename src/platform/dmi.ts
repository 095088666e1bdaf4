/**
 * What the platform says about its firmware: BIOS vendor, version and release date, system
 * manufacturer and product, from the DMI sysfs files, or from the device tree where there is no
 * DMI (ARM boards). Placeholders firmware vendors leave in these fields read as unknown.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface PlatformInfo {
  source: 'dmi' | 'device-tree';
  /** undefined = unknown (missing, empty or a placeholder) */
  biosVendor?: string;
  biosVersion?: string;
  /** YYYY-MM-DD */
  biosReleaseDate?: string;
  manufacturer?: string;
  product?: string;
  /**
   * Manufacturer and product as the reference compares them: only empty and "To be filled by
   * O.E.M." become "". "Default string" stays, because firmware_tool_info.conf ships it as the
   * product key of AMI boards and manifests name it.
   */
  match: { manufacturer: string; product: string };
}

const PLACEHOLDERS = new Set(['default string', 'to be filled by o.e.m.', 'not specified', 'not applicable', 'none', 'unknown', 'n/a']);

/** A DMI/device-tree value, or undefined when it carries no information. */
export function normalise(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const v = raw.split('\0')[0]!.trim();
  return v === '' || PLACEHOLDERS.has(v.toLowerCase()) ? undefined : v;
}

/** The reference's manufacturer/product comparison form. */
export function matchForm(raw: string | undefined): string {
  const v = (raw ?? '').split('\0')[0]!.trim();
  return v === 'To be filled by O.E.M.' ? '' : v;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/**
 * BIOS dates as firmware writes them: MM/DD/YYYY (DMI), "Mon DD YYYY" with an optional time
 * (device tree), or already ISO. Anything else, or an impossible day, is unknown.
 */
export function parseBiosDate(raw: string | undefined): string | undefined {
  const v = normalise(raw);
  if (!v) return undefined;
  let y: number;
  let m: number;
  let d: number;
  let match = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(v);
  if (match) [m, d, y] = [Number(match[1]), Number(match[2]), Number(match[3])];
  else if ((match = /^([A-Za-z]{3})\s+(\d{1,2})\s+(\d{4})(?:\s+\d{1,2}:\d{2}:\d{2})?$/.exec(v))) {
    m = MONTHS.indexOf(match[1]!.toLowerCase()) + 1;
    [d, y] = [Number(match[2]), Number(match[3])];
  } else if ((match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v))) [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  else return undefined;
  const date = new Date(Date.UTC(y, m - 1, d));
  if (m < 1 || date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return undefined;
  return date.toISOString().slice(0, 10);
}

const readValue = (path: string) =>
  readFile(path, 'utf8').then(
    (t) => t.split('\n')[0],
    () => undefined,
  );
const isDir = (path: string) =>
  stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );

function build(
  source: PlatformInfo['source'],
  raw: Record<'vendor' | 'version' | 'date' | 'manufacturer' | 'product', string | undefined>,
): PlatformInfo {
  const info: PlatformInfo = { source, match: { manufacturer: matchForm(raw.manufacturer), product: matchForm(raw.product) } };
  const set = <K extends 'biosVendor' | 'biosVersion' | 'biosReleaseDate' | 'manufacturer' | 'product'>(k: K, v: string | undefined) => {
    if (v !== undefined) info[k] = v;
  };
  set('biosVendor', normalise(raw.vendor));
  set('biosVersion', normalise(raw.version));
  set('biosReleaseDate', parseBiosDate(raw.date));
  set('manufacturer', normalise(raw.manufacturer));
  set('product', normalise(raw.product));
  return info;
}

export async function readDmi(dir: string): Promise<PlatformInfo> {
  const [vendor, version, date, manufacturer, product] = await Promise.all(
    ['bios_vendor', 'bios_version', 'bios_date', 'sys_vendor', 'product_name'].map((f) => readValue(join(dir, f))),
  );
  return build('dmi', { vendor, version, date, manufacturer, product });
}

/**
 * Device tree: the firmware/bios node when the bootloader fills it; otherwise `model` names the
 * product and the vendor prefix of the first `compatible` string the manufacturer.
 */
export async function readDeviceTree(dir: string): Promise<PlatformInfo> {
  const bios = join(dir, 'firmware', 'bios');
  const [vendor, version, date, manufacturer, product, model, compatible] = await Promise.all(
    [
      join(bios, 'bios-vendor'),
      join(bios, 'bios-version'),
      join(bios, 'bios-release-date'),
      join(bios, 'system-manufacturer'),
      join(bios, 'system-product-name'),
      join(dir, 'model'),
      join(dir, 'compatible'),
    ].map((p) => readFile(p, 'utf8').catch(() => undefined)),
  );
  const first = (v: string | undefined) => v?.split('\0')[0]?.split('\n')[0];
  const compatVendor = first(compatible)?.split(',')[0];
  return build('device-tree', {
    vendor: first(vendor),
    version: first(version),
    date: first(date),
    manufacturer: normalise(first(manufacturer)) ? first(manufacturer) : compatVendor,
    product: normalise(first(product)) ? first(product) : first(model),
  });
}

/** DMI when its directory exists, else the device tree; undefined when the platform has neither. */
export async function readPlatform(paths: { dmiDir: string; deviceTreeDirs: readonly string[] }): Promise<PlatformInfo | undefined> {
  if (await isDir(paths.dmiDir)) return readDmi(paths.dmiDir);
  for (const dir of paths.deviceTreeDirs) if (await isDir(dir)) return readDeviceTree(dir);
  return undefined;
}

/** How a value reads in a reason: quoted, or the word unknown. */
export const shown = (v: string | undefined) => (v === undefined || v === '' ? 'unknown' : `"${v}"`);
