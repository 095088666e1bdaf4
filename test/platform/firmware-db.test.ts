/** firmware_tool_info.conf: the shipped shape parses; anything else is refused with the field named. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InbmError } from '../../src/core/result.js';
import { findProduct, parseFirmwareDb, readFirmwareDb } from '../../src/platform/firmware-db.js';

const product = (attrs: string, body: string) => `<firmware_product ${attrs}>${body}</firmware_product>`;
const conf = (...products: string[]) =>
  `<?xml version="1.0" encoding="utf-8"?>\n<firmware_component>\n${products.join('\n')}\n</firmware_component>\n`;
const BASIC = '<operating_system>linux</operating_system><firmware_file_type>xx</firmware_file_type>';

/** The shape of the shipped file: tool, tool with args and check args, dest path, flags, windows. */
const SHIPPED = conf(
  product(
    "name='NUC6CAYS'",
    '<bios_vendor>Intel Corp.</bios_vendor><operating_system>linux</operating_system><firmware_tool>UpdateBIOS.sh</firmware_tool><firmware_file_type>bio</firmware_file_type>',
  ),
  product(
    "name='Broxton P'",
    '<bios_vendor>Intel Corp.</bios_vendor><operating_system>linux</operating_system><firmware_dest_path>/boot/efi/</firmware_dest_path><firmware_file_type>xx</firmware_file_type>',
  ),
  product(
    "name='Default string' tool_options='true'",
    `<bios_vendor>American Megatrends Inc.</bios_vendor>${BASIC}<firmware_tool>/opt/afulnx/afulnx_64</firmware_tool>`,
  ),
  product(
    "name='Elkhart Lake Embedded Platform' guid='true'",
    `\n  <bios_vendor>Intel Corporation</bios_vendor>\n  ${BASIC}\n  <firmware_tool>fwupdate</firmware_tool>\n  <firmware_tool_args>--apply</firmware_tool_args>\n  <firmware_tool_check_args>-s</firmware_tool_check_args>\n`,
  ),
  product("name='NUC7i5DNKPC'", '<operating_system>windows</operating_system><firmware_file_type>msi</firmware_file_type>'),
);

function refusal(xml: string): string {
  try {
    parseFirmwareDb(xml);
  } catch (err) {
    assert.ok(err instanceof InbmError, String(err));
    assert.equal(err.status, 400);
    return err.reason;
  }
  assert.fail('accepted');
}

describe('parseFirmwareDb', () => {
  it('reads the shipped entries with their flags and fields', () => {
    const db = parseFirmwareDb(SHIPPED);
    assert.deepEqual(
      db.products.map((p) => p.name),
      ['NUC6CAYS', 'Broxton P', 'Default string', 'Elkhart Lake Embedded Platform', 'NUC7i5DNKPC'],
    );
    assert.deepEqual(findProduct(db, 'Elkhart Lake Embedded Platform'), {
      name: 'Elkhart Lake Embedded Platform',
      guid: true,
      toolOptions: false,
      biosVendor: 'Intel Corporation',
      operatingSystem: 'linux',
      fileType: 'xx',
      tool: 'fwupdate',
      toolArgs: '--apply',
      toolCheckArgs: '-s',
    });
    assert.equal(findProduct(db, 'Default string')?.toolOptions, true);
    assert.equal(findProduct(db, 'Broxton P')?.destPath, '/boot/efi/');
    assert.equal(findProduct(db, 'broxton p'), undefined, 'names match exactly');
  });

  it('xs:boolean flags: 1 and 0 too', () => {
    const db = parseFirmwareDb(conf(product('name="a" guid="1" tool_options="0"', BASIC)));
    assert.equal(db.products[0]!.guid, true);
    assert.equal(db.products[0]!.toolOptions, false);
  });

  const refused: Array<[string, string, RegExp]> = [
    [
      'a DOCTYPE (entity expansion)',
      `<!DOCTYPE x [<!ENTITY a "${'b'.repeat(10)}">]>${conf(product('name="a"', BASIC))}`,
      /DOCTYPE and entity declarations are not allowed/,
    ],
    [
      'an external entity reference',
      conf(product('name="a"', '<operating_system>&xxe;</operating_system><firmware_file_type>x</firmware_file_type>')),
      /only the predefined XML entities/,
    ],
    ['nesting deeper than the limit', conf(product('name="a"', `${'<x>'.repeat(20)}${'</x>'.repeat(20)}`)), /nested deeper than 12 levels/],
    ['a file over the size limit', conf(product('name="a"', `${BASIC}<!--${'x'.repeat(300 * 1024)}-->`)), /larger than 262144 bytes/],
    ['malformed XML', '<firmware_component><firmware_product name="a">', /not well-formed XML at line 1/],
    ['another root element', '<firmware_components/>', /root element must be one <firmware_component>, found <firmware_components>/],
    [
      'an unknown child of the component',
      '<firmware_component><product/></firmware_component>',
      /<firmware_component>: unexpected <product>/,
    ],
    ['no product at all', '<firmware_component></firmware_component>', /needs at least one <firmware_product>/],
    [
      'more than 50 products',
      conf(...Array.from({ length: 51 }, (_, i) => product(`name="p${i}"`, BASIC))),
      /more than 50 <firmware_product>/,
    ],
    ['a product listed twice', conf(product('name="a"', BASIC), product('name="a"', BASIC)), /product "a" is listed twice/],
    ['a product without name', conf(product('guid="true"', BASIC)), /firmware_product\[1\]: attribute name: is required/],
    [
      'a missing operating_system',
      conf(product('name="a"', '<firmware_file_type>x</firmware_file_type>')),
      /\(name "a"\): <operating_system>: is required/,
    ],
    [
      'a missing firmware_file_type',
      conf(product('name="b"', '<operating_system>linux</operating_system>')),
      /\(name "b"\): <firmware_file_type>: is required/,
    ],
    [
      'a repeated element',
      conf(product('name="a"', `${BASIC}<firmware_tool>x</firmware_tool><firmware_tool>y</firmware_tool>`)),
      /<firmware_tool> appears 2 times/,
    ],
    [
      'an unknown element',
      conf(product('name="a"', `${BASIC}<firmware_shell>sh</firmware_shell>`)),
      /\(name "a"\): unexpected element <firmware_shell>/,
    ],
    ['an unknown attribute', conf(product('name="a" shell="yes"', BASIC)), /unexpected attribute shell/],
    ['a flag that is not xs:boolean', conf(product('name="a" guid="yes"', BASIC)), /attribute guid: Invalid option/],
    [
      'a tool name with a space',
      conf(product('name="a"', `${BASIC}<firmware_tool>rm -rf /</firmware_tool>`)),
      /<firmware_tool>: a tool name without spaces/,
    ],
    [
      'a tool name over 50 characters',
      conf(product('name="a"', `${BASIC}<firmware_tool>/${'t'.repeat(50)}</firmware_tool>`)),
      /<firmware_tool>: at most 50 characters/,
    ],
    [
      'a relative destination path',
      conf(product('name="a"', `${BASIC}<firmware_dest_path>boot/efi</firmware_dest_path>`)),
      /<firmware_dest_path>: an absolute path/,
    ],
    [
      'an element holding elements',
      conf(product('name="a"', '<operating_system><linux/></operating_system><firmware_file_type>x</firmware_file_type>')),
      /<operating_system> must hold text only/,
    ],
  ];
  for (const [what, xml, reason] of refused) {
    it(`refuses ${what}`, () => {
      const r = refusal(xml);
      assert.match(r, /^firmware_tool_info\.conf: /);
      assert.match(r, reason);
    });
  }
});

describe('readFirmwareDb', () => {
  it('a missing file lists no product; a present one is parsed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inbm-fwdb-'));
    try {
      assert.deepEqual(await readFirmwareDb(join(dir, 'absent.conf')), { products: [] });
      await writeFile(join(dir, 'firmware_tool_info.conf'), SHIPPED);
      assert.equal((await readFirmwareDb(join(dir, 'firmware_tool_info.conf'))).products.length, 5);
      await writeFile(join(dir, 'huge.conf'), Buffer.alloc(300 * 1024, 0x20));
      await assert.rejects(readFirmwareDb(join(dir, 'huge.conf')), /larger than 262144 bytes/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
