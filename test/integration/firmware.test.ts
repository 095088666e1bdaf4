/**
 * FOTA end to end on a temp root: a fake DMI tree, a firmware_tool_info.conf naming a real bash
 * "flash tool" that logs its argv and rewrites bios_version/bios_date in the DMI tree (as the
 * firmware would read after the reboot), the firmware served on 127.0.0.1, and the harness's
 * reboot script changing the boot id. Eligible → flashed once → verdict after the reboot;
 * every ineligible case refused before anything is downloaded; SIGKILL at every journalled step.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { until } from '../until.js';
import { BIN, drop, makeRoot, type Root, type Running, serveFiles, startAgent, stopAgent, trustRepository } from './harness.js';

const GUID = '6b29fc40-ca47-1067-b31d-00dd010662da';
const OTHER_GUID = '11111111-2222-3333-4444-555555555555';
const BASE_BIOS = { vendor: 'Acme BIOS Inc.', version: 'A.01', date: '01/15/2025' };

let server: Server;
let filesDir: string;
let base: string;
let requests: string[] = [];
const files = new Map<string, string>();

before(async () => {
  filesDir = await mkdtemp(join(tmpdir(), 'inbm-fw-files-'));
  const dir = filesDir;
  // The "firmware": line 1 the version, line 2 the date the flash leaves in the DMI tree.
  const firmware: Array<[string, string]> = [
    ['bios-b02.bin', 'B.02\n06/15/2026\n'],
    ['bios-c03.bin', 'C.03\n07/01/2026\n'],
  ];
  for (const [name, content] of firmware) {
    await writeFile(join(dir, name), content);
    files.set(`/fw/${name}`, join(dir, name));
  }
  const served = await serveFiles(files);
  server = served.server;
  base = served.base;
  server.on('request', (req) => requests.push(req.url ?? ''));
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(filesDir, { recursive: true, force: true });
});

interface Fixture {
  root: Root;
  dmi: string;
  toolLog: string;
  cache: string;
}

async function fixture(settings = ''): Promise<Fixture> {
  const root = await makeRoot(settings);
  const dmi = join(root.dir, 'sys', 'devices', 'virtual', 'dmi', 'id');
  await mkdir(dmi, { recursive: true });
  const toolLog = join(root.dir, 'fwtool.log');
  const tool = join(root.dir, 'fwtool.sh');
  await writeFile(
    tool,
    `#!/bin/bash
printf '%s\\n' "$*" >> ${toolLog}
case "$1" in
  -l) echo "Listing firmware resources"; echo "System Firmware type, {${GUID}} version 1 can be updated"; echo "Device Firmware type, {${OTHER_GUID}} version 9"; exit 0 ;;
  --check) exit 0 ;;
esac
[ -e ${root.dir}/fwtool.fail ] && { echo "flash failed: capsule rejected" >&2; exit 3; }
[ -e ${root.dir}/fwtool.nochange ] && exit 0
for f in "$@"; do [ -f "$f" ] && fw="$f"; done
sed -n 1p "$fw" > ${dmi}/bios_version
sed -n 2p "$fw" > ${dmi}/bios_date
`,
  );
  await chmod(tool, 0o755);
  await writeFile(
    join(root.dir, 'etc', 'firmware_tool_info.conf'),
    `<?xml version="1.0" encoding="utf-8"?>
<firmware_component>
  <firmware_product name='Test Board' guid='true'>
    <bios_vendor>Acme BIOS Inc.</bios_vendor>
    <operating_system>linux</operating_system>
    <firmware_tool>${tool}</firmware_tool>
    <firmware_tool_args>--apply</firmware_tool_args>
    <firmware_tool_check_args>--check</firmware_tool_check_args>
    <firmware_file_type>bin</firmware_file_type>
  </firmware_product>
  <firmware_product name='Options Board' tool_options='true'>
    <operating_system>linux</operating_system>
    <firmware_tool>${tool}</firmware_tool>
    <firmware_file_type>bin</firmware_file_type>
  </firmware_product>
</firmware_component>
`,
  );
  const f = { root, dmi, toolLog, cache: join(root.dir, 'var', 'cache', 'manageability') };
  await platform(f, { product: 'Test Board' });
  return f;
}

async function platform(f: Fixture, o: { product?: string; version?: string; date?: string } = {}): Promise<void> {
  const values: Record<string, string | undefined> = {
    bios_vendor: BASE_BIOS.vendor,
    bios_version: o.version ?? BASE_BIOS.version,
    bios_date: o.date ?? BASE_BIOS.date,
    sys_vendor: 'Acme Corp',
    product_name: o.product,
  };
  for (const [k, v] of Object.entries(values)) if (v !== undefined) await writeFile(join(f.dmi, k), `${v}\n`);
}

function manifest(o: Record<string, string | undefined> = {}): string {
  const v = {
    fetch: `${base}/fw/bios-b02.bin`,
    vendor: 'Acme BIOS Inc.',
    manufacturer: 'Acme Corp',
    product: 'Test Board',
    releasedate: '2026-06-15',
    deviceReboot: 'yes',
    ...o,
  };
  const tags = Object.entries(v)
    .filter(([, x]) => x !== undefined)
    .map(([k, x]) => `<${k}>${x}</${k}>`)
    .join('');
  return `<?xml version="1.0" encoding="utf-8"?><manifest><type>ota</type><ota><header><type>fota</type><repo>remote</repo></header><type><fota name="bios"><biosversion>B.02</biosversion>${tags}</fota></type></ota></manifest>`;
}

interface ResultLine {
  kind: string;
  result: { status: number; message: string };
}
const results = async (root: Root): Promise<ResultLine[]> =>
  (JSON.parse(await readFile(join(root.state, 'results.json'), 'utf8').catch(() => '[]')) as ResultLine[]).filter(
    (r) => r.kind === 'Firmware',
  );
/** Waits for the Firmware result after the first `seen`. */
const resultAfter = (root: Root, seen: number, ms = 15_000) =>
  until('a firmware result', async () => (await results(root))[seen]?.result, ms);
const lines = async (path: string) => (await readFile(path, 'utf8').catch(() => '')).split('\n').filter(Boolean);
const flashes = async (f: Fixture) => (await lines(f.toolLog)).filter((l) => l.startsWith('--apply'));
const reboots = async (f: Fixture) => (await lines(f.root.rebootLog)).length;
const cached = async (f: Fixture) => (await readdir(f.cache).catch(() => [] as string[])).filter((n) => n !== 'repository-tool');
const updateRecord = async (f: Fixture) => JSON.parse(await readFile(join(f.root.state, 'update-status.json'), 'utf8'));

/** The resource's status file: its phase and the message of its last outcome. */
async function statusOf(root: Root): Promise<{ phase: string; message: string } | undefined> {
  const text = await readFile(join(root.state, 'status', 'Firmware', 'firmware.json'), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  const s = JSON.parse(text) as { phase: string; history: Array<{ message: string }> };
  return { phase: s.phase, message: s.history.at(-1)?.message ?? '' };
}

/** An agent expected to crash on its way up, perhaps before it logs that it is ready. */
function bootDoomed(root: Root, env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const proc = spawn(process.execPath, [BIN, '--root', root.dir, 'agent'], { stdio: 'ignore', env: { ...process.env, ...env } });
  return new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
}

let n = 0;
/**
 * Drops a manifest once the previous one has been archived: the store retires a request by its
 * resource key, so a second request for the same key landing before the first is retired would be
 * retired with it (a store race, reported; not what these tests are about).
 */
async function dropFota(f: Fixture, xml: string): Promise<void> {
  await until('previous request archived', async () =>
    (await readdir(f.root.desired)).some((name) => name.endsWith('.xml')) ? undefined : true,
  );
  await drop(f.root, `fota-${++n}.xml`, xml);
}

describe('FOTA on a matching platform', () => {
  let f: Fixture;
  let agent: Running;
  before(async () => {
    f = await fixture();
    agent = await startAgent(f.root);
    await trustRepository(f.root, `${base}/fw`);
  });
  after(async () => {
    assert.equal(await stopAgent(agent), 0);
  });

  const refusals: Array<[string, () => Promise<void>, Record<string, string | undefined>, RegExp]> = [
    [
      'vendor',
      async () => {},
      { vendor: 'Other BIOS Ltd.' },
      /vendor "Other BIOS Ltd\." does not match the platform BIOS vendor "Acme BIOS Inc\."/,
    ],
    [
      'manufacturer',
      async () => {},
      { manufacturer: 'Globex' },
      /manufacturer\/product check failed: manufacturer "Globex" does not match the platform's "Acme Corp"/,
    ],
    ['product', async () => {}, { product: 'Other Board' }, /product "Other Board" does not match the platform's "Test Board"/],
    [
      'an older release date',
      async () => {},
      { releasedate: '2024-12-31' },
      /release date 2024-12-31 is older than the platform's 2025-01-15/,
    ],
    ['an equal release date', async () => {}, { releasedate: '2025-01-15' }, /already been applied/],
    [
      'a product missing from firmware_tool_info.conf',
      () => platform(f, { product: 'Unlisted Board' }),
      { product: 'Unlisted Board' },
      /The current platform is unsupported - Unlisted Board/,
    ],
    ['tool options the product forbids', async () => {}, { tooloptions: '/p /b' }, /Tool options are not supported by the platform/],
    [
      'no tool options where the product requires them',
      () => platform(f, { product: 'Options Board' }),
      { product: 'Options Board' },
      /Tool options are mandatory/,
    ],
    [
      'a GUID that is not a system-firmware GUID',
      async () => {},
      { guid: OTHER_GUID },
      new RegExp(`GUID ${OTHER_GUID} is not a system firmware GUID of this platform`),
    ],
  ];
  for (const [what, arrange, change, reason] of refusals) {
    it(`refuses ${what} before downloading anything`, async () => {
      await platform(f, { product: 'Test Board' });
      await arrange();
      requests = [];
      const seen = (await results(f.root)).length;
      await dropFota(f, manifest(change));
      const r = await resultAfter(f.root, seen);
      assert.equal(r.status, 400);
      assert.match(r.message, /^FAILED TO INSTALL: /);
      assert.match(r.message, reason);
      assert.deepEqual(requests, [], 'nothing was downloaded');
      assert.deepEqual(await flashes(f), []);
      assert.equal(await reboots(f), 0);
    });
  }

  it('a tool failure is a 400, the download is removed and nothing reboots', async () => {
    await platform(f, { product: 'Test Board' });
    await writeFile(join(f.root.dir, 'fwtool.fail'), '');
    const seen = (await results(f.root)).length;
    await dropFota(f, manifest());
    const r = await resultAfter(f.root, seen);
    await rm(join(f.root.dir, 'fwtool.fail'));
    assert.equal(r.status, 400);
    assert.match(r.message, /Firmware Update Aborted: Error: .*fwtool\.sh failed: exit 3/);
    assert.equal((await flashes(f)).length, 1, 'the tool ran once');
    assert.deepEqual(await cached(f), [], 'the downloaded file is gone');
    assert.equal(await reboots(f), 0);
    assert.equal((await updateRecord(f)).Status, 'FAIL');
    const dmi = await readFile(join(f.dmi, 'bios_version'), 'utf8');
    assert.equal(dmi.trim(), 'A.01');
  });
});

describe('FOTA across the reboot', () => {
  it('eligible: flashed once with the argv of the conf, rebooted, then SUCCESSFUL INSTALL', async () => {
    const f = await fixture();
    const agent = await startAgent(f.root);
    await trustRepository(f.root, `${base}/fw`);
    await dropFota(f, manifest({ guid: GUID.toUpperCase() }));
    const accepted = await resultAfter(f.root, 0);
    assert.deepEqual(accepted, { status: 200, message: 'COMMAND SUCCESSFUL', job_id: '' });
    await until('reboot', async () => ((await reboots(f)) === 1 ? true : undefined));
    assert.deepEqual(await flashes(f), [`--apply ${GUID} ${join(f.cache, 'bios-b02.bin')}`]);
    assert.ok((await lines(f.toolLog)).includes('--check'), 'the check command ran first');
    assert.deepEqual(await cached(f), []);
    assert.equal((await updateRecord(f)).Status, 'PENDING');
    assert.equal(await stopAgent(agent), 0);

    const rebooted = await startAgent(f.root);
    const verdict = await resultAfter(f.root, 1);
    assert.deepEqual(verdict, {
      status: 200,
      message: 'SUCCESSFUL INSTALL: Overall FOTA update successful. System has been updated with new Firmware version...',
      job_id: '',
    });
    assert.equal((await updateRecord(f)).Status, 'SUCCESS');
    assert.equal(await stopAgent(rebooted), 0);
    assert.equal((await flashes(f)).length, 1);
    assert.equal(await reboots(f), 1);
  });

  it('version unchanged after the reboot: FAILED INSTALL', async () => {
    const f = await fixture();
    await writeFile(join(f.root.dir, 'fwtool.nochange'), '');
    const agent = await startAgent(f.root);
    await trustRepository(f.root, `${base}/fw`);
    await dropFota(f, manifest({ fetch: `${base}/fw/bios-c03.bin`, releasedate: '2026-07-01' }));
    assert.equal((await resultAfter(f.root, 0)).status, 200);
    await until('reboot', async () => ((await reboots(f)) === 1 ? true : undefined));
    assert.equal(await stopAgent(agent), 0);
    const rebooted = await startAgent(f.root);
    const verdict = await resultAfter(f.root, 1);
    assert.deepEqual(verdict, { status: 400, message: 'FAILED INSTALL: Overall FOTA update failed. Firmware not updated.', job_id: '' });
    assert.equal((await updateRecord(f)).Status, 'FAIL');
    assert.equal(await stopAgent(rebooted), 0);
    assert.equal((await flashes(f)).length, 1);
  });
});

describe('SIGKILL at every journalled FOTA step', () => {
  const points = [
    ...['snapshot', 'flash', 'reboot', 'verdict'].flatMap((s) => ['before', 'started', 'ran', 'done'].map((p) => `${s}:${p}`)),
    'complete',
  ];
  for (const point of points) {
    it(`killed at ${point}: converges to SUCCESSFUL INSTALL, flashed and rebooted once`, async () => {
      const f = await fixture('rebootGraceSeconds: 1\n');
      const crashAt = { INBM_CRASH_AT: `Firmware/firmware:${point}` };
      const doomed = await startAgent(f.root, crashAt);
      await trustRepository(f.root, `${base}/fw`);
      await dropFota(f, manifest());
      let crashed = doomed.exited;
      if (point.startsWith('verdict') || point === 'complete') {
        // These points come after the reboot: let this boot finish, "power off", boot again.
        await until('reboot', async () => ((await reboots(f)) === 1 ? true : undefined));
        doomed.proc.kill('SIGKILL');
        await doomed.exited;
        crashed = bootDoomed(f.root, crashAt);
      }
      assert.equal((await crashed).signal, 'SIGKILL', 'the crash hook fired');
      // Boot on until the verdict: an agent that saw the reboot command run is "powered off".
      let verdict: { phase: string; message: string } | undefined;
      for (let boot = 0; boot < 3 && !verdict; boot++) {
        const rebootsBefore = await reboots(f);
        const agent = await startAgent(f.root);
        verdict = await until('verdict or reboot', async () => {
          const s = await statusOf(f.root);
          if (s && s.phase !== 'Waiting' && s.message.includes('INSTALL')) return s;
          return (await reboots(f)) > rebootsBefore ? null : undefined;
        }).then((v) => v ?? undefined);
        if (verdict) assert.equal(await stopAgent(agent), 0);
        else {
          agent.proc.kill('SIGKILL');
          await agent.exited;
        }
      }
      assert.equal(verdict?.phase, 'Ready');
      assert.equal(
        verdict?.message,
        'SUCCESSFUL INSTALL: Overall FOTA update successful. System has been updated with new Firmware version...',
      );
      assert.equal((await flashes(f)).length, 1, 'flashed exactly once');
      assert.equal(await reboots(f), 1, 'rebooted exactly once');
      assert.deepEqual(await cached(f), []);
    });
  }
});
