import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { collectInventory, writeInventory } from '../../src/status/inventory.js';

it('inventory reads DMI and os-release from the given root, normalising placeholders', async () => {
  const root = await mkdtemp(join(tmpdir(), 'inbm-inv-'));
  const dmiDir = join(root, 'sys', 'devices', 'virtual', 'dmi', 'id');
  await mkdir(dmiDir, { recursive: true });
  const files = {
    bios_vendor: 'Intel Corp.',
    bios_version: 'ADLSFWI1.R00',
    bios_date: '11/01/2026',
    sys_vendor: 'To be filled by O.E.M.',
    product_name: 'NUC12',
  };
  for (const [f, v] of Object.entries(files)) await writeFile(join(dmiDir, f), `${v}\n`);
  await writeFile(join(root, 'os-release'), 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\n');
  await writeFile(join(root, 'meminfo'), 'MemTotal:        2048 kB\nMemAvailable: 1024 kB\n');
  const inv = await collectInventory({ dmiDir, meminfo: join(root, 'meminfo'), osRelease: join(root, 'os-release') }, '9.9.9');
  assert.deepEqual(inv.firmware, {
    biosVendor: 'Intel Corp.',
    biosVersion: 'ADLSFWI1.R00',
    biosReleaseDate: '11/01/2026',
    systemManufacturer: '',
    systemProductName: 'NUC12',
  });
  assert.equal(inv.os.name, 'Debian GNU/Linux');
  assert.equal(inv.os.version, '12');
  assert.equal(inv.hardware.totalPhysicalMemory, 2048 * 1024);
  assert.equal(inv.agent.version, '9.9.9');

  await writeInventory(root, inv);
  const first = await stat(join(root, 'inventory.json'));
  await writeInventory(root, inv);
  assert.equal((await stat(join(root, 'inventory.json'))).mtimeMs, first.mtimeMs, 'unchanged inventory is not rewritten');
  assert.deepEqual(JSON.parse(await readFile(join(root, 'inventory.json'), 'utf8')), inv);
});
