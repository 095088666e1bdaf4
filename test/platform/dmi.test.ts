/** Platform observation from real files: a DMI tree and a device tree under a temp root. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { matchForm, normalise, parseBiosDate, readDeviceTree, readDmi, readPlatform } from '../../src/platform/dmi.js';

describe('normalise', () => {
  for (const placeholder of [
    'Default string',
    'To be filled by O.E.M.',
    'Not Specified',
    '',
    '   ',
    'not specified\n',
    'Default string\0junk',
  ])
    it(`${JSON.stringify(placeholder)} is unknown`, () => assert.equal(normalise(placeholder), undefined));
  it('real values are kept, trimmed, up to a NUL', () => {
    assert.equal(normalise('  Intel Corporation \n'), 'Intel Corporation');
    assert.equal(normalise('NUC7i5DNKPC\0\0'), 'NUC7i5DNKPC');
    assert.equal(normalise(undefined), undefined);
  });
  it('the reference\'s comparison form keeps "Default string" (a product key in firmware_tool_info.conf)', () => {
    assert.equal(matchForm('Default string'), 'Default string');
    assert.equal(matchForm('To be filled by O.E.M.'), '');
    assert.equal(matchForm(undefined), '');
  });
});

describe('parseBiosDate', () => {
  const cases: Array<[string | undefined, string | undefined]> = [
    ['01/15/2025', '2025-01-15'],
    ['1/5/2025', '2025-01-05'],
    ['12/31/1999\n', '1999-12-31'],
    ['Jun 09 2021', '2021-06-09'],
    ['Jun 9 2021 10:11:12', '2021-06-09'],
    ['2024-02-29', '2024-02-29'],
    ['02/30/2024', undefined],
    ['13/01/2024', undefined],
    ['2023-02-29', undefined],
    ['15/01/2025', undefined],
    ['yesterday', undefined],
    ['Not Specified', undefined],
    ['', undefined],
    [undefined, undefined],
  ];
  for (const [raw, want] of cases) it(`${JSON.stringify(raw)} → ${want ?? 'unknown'}`, () => assert.equal(parseBiosDate(raw), want));
});

describe('reading the platform', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'inbm-dmi-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const write = async (dir: string, files: Record<string, string>) => {
    for (const [name, value] of Object.entries(files)) {
      await mkdir(join(dir, name, '..'), { recursive: true });
      await writeFile(join(dir, name), value);
    }
  };

  it('DMI: the five files, placeholders unknown, the raw product kept for matching', async () => {
    const dmi = join(root, 'dmi1');
    await write(dmi, {
      bios_vendor: 'American Megatrends Inc.\n',
      bios_version: '5.12\n',
      bios_date: '11/20/2017\n',
      sys_vendor: 'Default string\n',
      product_name: 'Default string\n',
    });
    assert.deepEqual(await readDmi(dmi), {
      source: 'dmi',
      biosVendor: 'American Megatrends Inc.',
      biosVersion: '5.12',
      biosReleaseDate: '2017-11-20',
      match: { manufacturer: 'Default string', product: 'Default string' },
    });
  });

  it('DMI: missing files are unknown, O.E.M. placeholders match as empty', async () => {
    const dmi = join(root, 'dmi2');
    await write(dmi, { bios_vendor: 'Intel Corp.\n', sys_vendor: 'To be filled by O.E.M.\n' });
    assert.deepEqual(await readDmi(dmi), { source: 'dmi', biosVendor: 'Intel Corp.', match: { manufacturer: '', product: '' } });
  });

  it('device tree: the firmware/bios node when present', async () => {
    const dt = join(root, 'dt1');
    await write(dt, {
      'firmware/bios/bios-vendor': 'Intel\0',
      'firmware/bios/bios-version': 'KMB-1.2\0',
      'firmware/bios/bios-release-date': 'Mar 04 2021 08:00:00\0',
      'firmware/bios/system-manufacturer': 'Intel Corporation\0',
      'firmware/bios/system-product-name': 'kmb-evm\0',
      model: 'Some Model\0',
    });
    const p = await readDeviceTree(dt);
    assert.equal(p.source, 'device-tree');
    assert.equal(p.biosReleaseDate, '2021-03-04');
    assert.equal(p.product, 'kmb-evm');
    assert.deepEqual(p.match, { manufacturer: 'Intel Corporation', product: 'kmb-evm' });
  });

  it('device tree: model names the product and compatible the manufacturer when the bios node is missing', async () => {
    const dt = join(root, 'dt2');
    await write(dt, { model: 'Raspberry Pi 4 Model B Rev 1.4\0', compatible: 'raspberrypi,4-model-b\0brcm,bcm2711\0' });
    const p = await readDeviceTree(dt);
    assert.equal(p.product, 'Raspberry Pi 4 Model B Rev 1.4');
    assert.equal(p.manufacturer, 'raspberrypi');
    assert.equal(p.biosVersion, undefined);
  });

  it('readPlatform: DMI first, then each device-tree root in order, else undefined', async () => {
    const none = join(root, 'absent');
    assert.equal((await readPlatform({ dmiDir: join(root, 'dmi1'), deviceTreeDirs: [join(root, 'dt1')] }))?.source, 'dmi');
    assert.equal(
      (await readPlatform({ dmiDir: none, deviceTreeDirs: [none, join(root, 'dt2')] }))?.product,
      'Raspberry Pi 4 Model B Rev 1.4',
    );
    assert.equal(await readPlatform({ dmiDir: none, deviceTreeDirs: [none] }), undefined);
  });
});
