/** The FOTA eligibility table: each rule of the reference, each refusal naming what mismatched. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PlatformInfo } from '../../src/platform/dmi.js';
import type { FirmwareDb, FirmwareProduct } from '../../src/platform/firmware-db.js';
import {
  checkEligibility,
  type EligibilityInput,
  firmwareVerdict,
  parseGuids,
  type Target,
} from '../../src/reconcilers/firmware/eligibility.js';

const GUID = '6B29FC40-CA47-1067-B31D-00DD010662DA';
const platform: PlatformInfo = {
  source: 'dmi',
  biosVendor: 'Intel Corp.',
  biosVersion: 'BNKBL357.86A.0060',
  biosReleaseDate: '2019-01-10',
  manufacturer: 'Intel Corporation',
  product: 'NUC7i3DNKE',
  match: { manufacturer: 'Intel Corporation', product: 'NUC7i3DNKE' },
};
const tool: FirmwareProduct = {
  name: 'NUC7i3DNKE',
  guid: false,
  toolOptions: false,
  operatingSystem: 'linux',
  fileType: 'bio',
  tool: '/usr/bin/UpdateBIOS.sh',
};
const db = (...products: FirmwareProduct[]): FirmwareDb => ({ products });
const target = (t: Partial<Target> = {}, p: Partial<Target['platform']> = {}): Target => ({
  platform: {
    vendor: 'Intel Corp.',
    manufacturer: 'Intel Corporation',
    product: 'NUC7i3DNKE',
    biosVersion: 'BNKBL357.86A.0062',
    releaseDate: '2019-06-01',
    ...p,
  },
  source: { url: 'https://repo.example/fw/bios.bio' },
  reboot: true,
  ...t,
});
const input = (i: Partial<EligibilityInput> = {}): EligibilityInput => ({
  target: target(),
  platform,
  db: db(tool),
  signatureRequired: false,
  toolFound: true,
  ...i,
});
const refused = (i: Partial<EligibilityInput>) => {
  const e = checkEligibility(input(i));
  assert.equal(e.ok, false, 'expected a refusal');
  return (e as { reason: string }).reason;
};

describe('checkEligibility', () => {
  it('a matching platform with a newer date and a listed product is eligible', () => {
    assert.deepEqual(checkEligibility(input()), { ok: true, product: tool });
  });

  const table: Array<[string, Partial<EligibilityInput>, RegExp]> = [
    ['no DMI or device tree', { platform: undefined }, /Cannot get BIOS information/],
    ['an unknown BIOS date', { platform: { ...platform, biosReleaseDate: undefined } as PlatformInfo }, /biosReleaseDate unknown/],
    [
      'another manufacturer',
      { target: target({}, { manufacturer: 'Intel' }) },
      /manufacturer "Intel" does not match the platform's "Intel Corporation"/,
    ],
    ['another product', { target: target({}, { product: 'NUC6CAYS' }) }, /product "NUC6CAYS" does not match the platform's "NUC7i3DNKE"/],
    [
      'a product where the platform has none',
      { platform: { ...platform, match: { manufacturer: 'Intel Corporation', product: '' } } },
      /the platform's unknown/,
    ],
    [
      'another BIOS vendor',
      { target: target({}, { vendor: 'Intel Corporation' }) },
      /vendor "Intel Corporation" does not match the platform BIOS vendor "Intel Corp\."/,
    ],
    ['vendor case differs (exact match)', { target: target({}, { vendor: 'intel corp.' }) }, /vendor "intel corp\." does not match/],
    [
      'an older release date',
      { target: target({}, { releaseDate: '2018-12-31' }) },
      /release date 2018-12-31 is older than the platform's 2019-01-10/,
    ],
    ['the same release date', { target: target({}, { releaseDate: '2019-01-10' }) }, /already been applied/],
    ['a product not in the database', { db: db({ ...tool, name: 'NUC6CAYS' }) }, /The current platform is unsupported - NUC7i3DNKE/],
    [
      'an unreadable database',
      { db: { error: 'firmware_tool_info.conf: not well-formed XML at line 3: x' } },
      /firmware_tool_info\.conf: not well-formed/,
    ],
    ['a windows-only product', { db: db({ ...tool, operatingSystem: 'windows' }) }, /configured for windows, not linux/],
    [
      'a product with neither tool nor destination',
      { db: db({ ...tool, tool: undefined }) as FirmwareDb },
      /neither firmware_tool nor firmware_dest_path/,
    ],
    ['no signature when a certificate is provisioned', { signatureRequired: true }, /Cannot proceed without signature/],
    ['tool options the product forbids', { target: target({ toolOptions: '/p /b' }) }, /Tool options are not supported by the platform/],
    ['no tool options where the product requires them', { db: db({ ...tool, toolOptions: true }) }, /Tool options are mandatory/],
    ['a tool path that does not exist', { toolFound: false }, /Firmware tool does not exist at \/usr\/bin\/UpdateBIOS\.sh/],
    [
      'a GUID listing that failed',
      { db: db({ ...tool, guid: true }), guids: { error: 'fwupdate failed: exit 1' } },
      /failed to list GUIDs: fwupdate failed/,
    ],
    ['no system-firmware GUID listed', { db: db({ ...tool, guid: true }), guids: [] }, /No System Firmware type GUID found/],
    [
      'a GUID that is not listed',
      { db: db({ ...tool, guid: true }), guids: ['11111111-2222-3333-4444-555555555555'], target: target({ guid: GUID }) },
      new RegExp(`GUID ${GUID} is not a system firmware GUID`),
    ],
  ];
  for (const [what, i, reason] of table) it(`refuses ${what}`, () => assert.match(refused(i), reason));

  it('manufacturer and product mismatches are both named', () => {
    const r = refused({ target: target({}, { manufacturer: 'Acme', product: 'Board' }) });
    assert.match(r, /manufacturer "Acme"/);
    assert.match(r, /product "Board"/);
  });
  it('"Default string" products match (the shipped AMI entry)', () => {
    const ami: PlatformInfo = {
      ...platform,
      biosVendor: 'American Megatrends Inc.',
      match: { manufacturer: 'Default string', product: 'Default string' },
    };
    const entry = { ...tool, name: 'Default string', toolOptions: true };
    const e = checkEligibility({
      ...input({ platform: ami, db: db(entry) }),
      target: target(
        { toolOptions: '/p /b' },
        { vendor: 'American Megatrends Inc.', manufacturer: 'Default string', product: 'Default string' },
      ),
    });
    assert.equal(e.ok, true);
  });
  it('a capsule product needs no tool, so tool checks do not apply', () => {
    const capsule = { ...tool, tool: undefined, destPath: '/boot/efi/' };
    assert.deepEqual(checkEligibility(input({ db: db(capsule), toolFound: false })), { ok: true, product: capsule });
  });
  it('with a certificate, a signature is enough to pass', () => {
    assert.equal(
      checkEligibility(input({ signatureRequired: true, target: target({ source: { url: 'https://r/x.bio', signature: 'ab' } }) })).ok,
      true,
    );
  });
  it('GUIDs: the manifest one if listed (any case), else the first listed', () => {
    const g = db({ ...tool, guid: true });
    const listed = ['aaaaaaaa-0000-0000-0000-000000000000', GUID.toLowerCase()];
    assert.deepEqual(checkEligibility(input({ db: g, guids: listed, target: target({ guid: GUID }) })), {
      ok: true,
      product: g.products[0],
      guid: GUID.toLowerCase(),
    });
    assert.deepEqual(checkEligibility(input({ db: g, guids: listed })), { ok: true, product: g.products[0], guid: listed[0] });
  });
  it('a GUID is ignored for a product without the guid flag, as the reference does', () => {
    assert.deepEqual(checkEligibility(input({ target: target({ guid: GUID }) })), { ok: true, product: tool });
  });
});

describe('parseGuids', () => {
  it('takes the GUID after the comma on system-firmware lines only', () => {
    const out = [
      'Listing resources',
      `system-firmware type, {${GUID}} version 60 can be updated to any version above 59`,
      'device-firmware type, {11111111-2222-3333-4444-555555555555} version 1',
      'System Firmware type, {aaaaaaaa-0000-0000-0000-000000000000} version 2',
      'System Firmware type, {not-a-guid} version 2',
      'System Firmware type without a comma',
    ].join('\n');
    assert.deepEqual(parseGuids(out), [GUID, 'aaaaaaaa-0000-0000-0000-000000000000']);
  });
});

describe('firmwareVerdict', () => {
  const before = { biosVersion: 'A.01', biosReleaseDate: '2025-01-15' };
  const after = (biosVersion: string | undefined, biosReleaseDate: string | undefined) =>
    ({ ...platform, biosVersion, biosReleaseDate }) as PlatformInfo;
  it('both version and date changed: success', () => {
    const v = firmwareVerdict(before, after('B.02', '2026-06-15'));
    assert.equal(v.success, true);
    assert.match(v.message, /^SUCCESSFUL INSTALL: Overall FOTA update successful/);
  });
  for (const [what, a] of [
    ['only the version changed', after('B.02', '2025-01-15')],
    ['only the date changed', after('A.01', '2026-06-15')],
    ['nothing changed', after('A.01', '2025-01-15')],
    ['the BIOS is now unreadable', after(undefined, undefined)],
    ['the platform is gone', undefined],
  ] as const) {
    it(`${what}: failure`, () =>
      assert.deepEqual(firmwareVerdict(before, a), {
        success: false,
        message: 'FAILED INSTALL: Overall FOTA update failed. Firmware not updated.',
      }));
  }
});
