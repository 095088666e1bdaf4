/**
 * `/etc/firmware_tool_info.conf`: which products can take a firmware update and how (a tool and
 * its arguments, or a destination path for the capsule). Read with the manifest's limits (size,
 * depth, no DOCTYPE), then checked as the reference's XSD does, with errors naming the field.
 */
import { readFile, stat } from 'node:fs/promises';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { z } from 'zod';
import { InbmError, Status } from '../core/result.js';
import { checkLimits } from '../manifest/limits.js';

const Max50 = z.string().max(50, 'at most 50 characters');
const XsBoolean = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

export const FirmwareProduct = z
  .object({
    name: z.string().min(1, 'a product name is required'),
    guid: XsBoolean.default(false).describe('the tool lists system-firmware GUIDs (`<tool> -l`) and takes one'),
    toolOptions: XsBoolean.default(false).describe('the manifest must give tooloptions (forbidden otherwise)'),
    operatingSystem: Max50.describe('linux or windows'),
    fileType: Max50.describe('informational'),
    destPath: z.string().max(500, 'at most 500 characters').regex(/^\//, 'an absolute path').optional(),
    tool: Max50.regex(/^[^\s]+$/, 'a tool name without spaces').optional(),
    toolArgs: Max50.optional(),
    toolCheckArgs: Max50.optional(),
    biosVendor: Max50.optional(),
    manufacturer: Max50.optional(),
  })
  .strict();
export type FirmwareProduct = z.infer<typeof FirmwareProduct>;

export interface FirmwareDb {
  products: FirmwareProduct[];
}

/** Element name in the file → field; every element may appear at most once (xs:all). */
const ELEMENTS: Record<string, keyof FirmwareProduct> = {
  operating_system: 'operatingSystem',
  firmware_file_type: 'fileType',
  firmware_dest_path: 'destPath',
  firmware_tool: 'tool',
  firmware_tool_args: 'toolArgs',
  firmware_tool_check_args: 'toolCheckArgs',
  bios_vendor: 'biosVendor',
  manufacturer: 'manufacturer',
};
const ATTRIBUTES: Record<string, keyof FirmwareProduct> = { name: 'name', guid: 'guid', tool_options: 'toolOptions' };
export const MAX_PRODUCTS = 50;
const MAX_BYTES = 256 * 1024;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  htmlEntities: true,
  // Every element as an array, so a repeated element is seen instead of silently merged.
  isArray: (_name: string, _path: unknown, _leaf: boolean, isAttribute: boolean) => !isAttribute,
});

const refuse = (reason: string) => new InbmError(Status.INSTALL_FAILED, `firmware_tool_info.conf: ${reason}`);

type Node = Record<string, unknown>;

/** Parses and validates the text of the file. */
export function parseFirmwareDb(xml: string): FirmwareDb {
  if (Buffer.byteLength(xml, 'utf8') > MAX_BYTES) throw refuse(`larger than ${MAX_BYTES} bytes`);
  try {
    checkLimits(xml);
  } catch (err) {
    throw refuse(err instanceof InbmError ? err.reason : String(err));
  }
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw refuse(`not well-formed XML at line ${valid.err.line}: ${valid.err.msg}`);
  const doc = parser.parse(xml) as Node;
  const roots = Object.keys(doc);
  if (roots.length !== 1 || roots[0] !== 'firmware_component' || (doc.firmware_component as unknown[]).length !== 1)
    throw refuse(`the root element must be one <firmware_component>, found ${roots.map((r) => `<${r}>`).join(', ') || 'none'}`);
  const component = (doc.firmware_component as unknown[])[0];
  const children = typeof component === 'object' && component !== null ? (component as Node) : {};
  for (const key of Object.keys(children)) {
    if (key !== 'firmware_product')
      throw refuse(`<firmware_component>: unexpected ${key.startsWith('@') ? `attribute ${key.slice(1)}` : `<${key}>`}`);
  }
  const raw = (children.firmware_product as unknown[] | undefined) ?? [];
  if (raw.length === 0) throw refuse('<firmware_component> needs at least one <firmware_product>');
  if (raw.length > MAX_PRODUCTS) throw refuse(`more than ${MAX_PRODUCTS} <firmware_product> entries`);
  const products = raw.map((p, i) => product(p, i));
  const seen = new Set<string>();
  for (const p of products) {
    if (seen.has(p.name)) throw refuse(`product "${p.name}" is listed twice`);
    seen.add(p.name);
  }
  return { products };
}

function product(node: unknown, index: number): FirmwareProduct {
  const where = (name?: unknown) => `firmware_product[${index + 1}]${typeof name === 'string' ? ` (name "${name}")` : ''}`;
  if (typeof node !== 'object' || node === null) throw refuse(`${where()}: has no content`);
  const fields: Record<string, unknown> = {};
  const n = node as Node;
  for (const [key, value] of Object.entries(n)) {
    if (key.startsWith('@')) {
      const field = ATTRIBUTES[key.slice(1)];
      if (!field) throw refuse(`${where(n['@name'])}: unexpected attribute ${key.slice(1)}`);
      fields[field] = value;
      continue;
    }
    const field = ELEMENTS[key];
    if (!field) throw refuse(`${where(n['@name'])}: unexpected element <${key}>`);
    const values = value as unknown[];
    if (values.length > 1) throw refuse(`${where(n['@name'])}: <${key}> appears ${values.length} times`);
    if (typeof values[0] === 'object' && values[0] !== null) throw refuse(`${where(n['@name'])}: <${key}> must hold text only`);
    fields[field] = values[0] ?? '';
  }
  const result = FirmwareProduct.safeParse(fields);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = String(issue.path[0] ?? '');
    const tag = Object.entries(ELEMENTS).find(([, f]) => f === field)?.[0];
    const attr = Object.entries(ATTRIBUTES).find(([, f]) => f === field)?.[0];
    const what = tag ? `<${tag}>` : attr ? `attribute ${attr}` : field;
    const message = issue.code === 'invalid_type' && fields[field] === undefined ? 'is required' : issue.message;
    throw refuse(`${where(fields.name)}: ${what}: ${message}`);
  }
  return result.data;
}

/** Reads the file; a missing file means no product is supported. */
export async function readFirmwareDb(path: string): Promise<FirmwareDb> {
  let text: string;
  try {
    // Checked before reading, so a runaway file is never loaded whole.
    if ((await stat(path)).size > MAX_BYTES) throw refuse(`larger than ${MAX_BYTES} bytes`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof InbmError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { products: [] };
    throw refuse(`cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseFirmwareDb(text);
}

export const findProduct = (db: FirmwareDb, name: string) => db.products.find((p) => p.name === name);
