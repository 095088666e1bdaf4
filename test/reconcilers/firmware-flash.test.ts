/**
 * The flash executor on real files: a bash tool that logs its argv, a capsule destination, a tar
 * package, a provisioned signature key. Downloads are local `file:` URLs in a trusted directory.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { constants, createHash, generateKeyPairSync, sign } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createLogger } from '../../src/core/log.js';
import { InbmError } from '../../src/core/result.js';
import type { FirmwareProduct } from '../../src/platform/firmware-db.js';
import type { Target } from '../../src/reconcilers/firmware/eligibility.js';
import { flashFirmware, toolArgv } from '../../src/reconcilers/firmware/flash.js';
import { readFlashState } from '../../src/reconcilers/firmware/state.js';

let dir: string;
let repo: string;
let cache: string;
let toolLog: string;
let tool: string;
const log = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
const before0 = { biosVersion: 'A.01', biosReleaseDate: '2025-01-15' };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inbm-flash-'));
  repo = join(dir, 'repo');
  cache = join(dir, 'cache');
  await mkdir(repo);
  toolLog = join(dir, 'tool.log');
  tool = join(dir, 'tool.sh');
  await writeFile(
    tool,
    `#!/bin/bash\nprintf '%s\\n' "$*" >> ${toolLog}\n[ "$1" = "--check" ] && exit 0\nfor a in "$@"; do [ -f "$a" ] && cp "$a" ${dir}/flashed; done\n[ -e ${dir}/fail ] && { echo rejected >&2; exit 7; }\nexit 0\n`,
  );
  await chmod(tool, 0o755);
  await writeFile(join(repo, 'bios.bin'), 'firmware v2\n');
  await mkdir(join(dir, 'pkg'));
  await writeFile(join(dir, 'pkg', 'BIOS_X041.cap'), 'capsule in a tar\n');
  await writeFile(join(dir, 'pkg', 'cert.pem'), 'not used\n');
  const t = spawnSync('tar', ['-cf', join(repo, 'bios.tar'), '-C', join(dir, 'pkg'), 'BIOS_X041.cap', 'cert.pem']);
  assert.equal(t.status, 0);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const product = (p: Partial<FirmwareProduct> = {}): FirmwareProduct => ({
  name: 'Test Board',
  guid: false,
  toolOptions: false,
  operatingSystem: 'linux',
  fileType: 'bin',
  tool,
  toolArgs: '--apply -q',
  toolCheckArgs: '--check',
  ...p,
});
const target = (file: string, t: Partial<Target> = {}): Target => ({
  platform: { vendor: 'V', manufacturer: 'M', product: 'Test Board', biosVersion: 'B', releaseDate: '2026-01-01' },
  source: { url: pathToFileURL(join(repo, file)).href },
  reboot: true,
  ...t,
});
let n = 0;
async function run(t: Target, p: FirmwareProduct, extra: { guid?: string; otaCertFile?: string } = {}) {
  const statePath = join(dir, `state-${++n}.json`);
  const state = { requestId: `r${n}`, before: before0 };
  const deps = {
    cacheDir: cache,
    trusted: async () => [pathToFileURL(repo).href],
    credentials: async () => ({ username: '', password: '' }),
    ...(extra.otaCertFile ? { otaCertFile: extra.otaCertFile } : {}),
  };
  const error = await flashFirmware(deps, {
    target: t,
    product: p,
    ...(extra.guid ? { guid: extra.guid } : {}),
    statePath,
    state,
    bootId: 'boot-1',
    log,
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, state: await readFlashState(statePath, state.requestId) };
}
const toolRuns = async () => (await readFile(toolLog, 'utf8').catch(() => '')).split('\n').filter(Boolean);
const leftInCache = async () => readdir(cache).catch(() => [] as string[]);

describe('flashFirmware', () => {
  it('argv: tool, its args, the GUID, the file, the tool options (split, never a shell)', () => {
    assert.deepEqual(toolArgv(product(), '/c/bios.bin', 'g-1', '/p /b'), [tool, '--apply', '-q', 'g-1', '/c/bios.bin', '/p', '/b']);
    assert.deepEqual(toolArgv(product({ toolArgs: undefined }), '/c/x.bin', undefined, undefined), [tool, '/c/x.bin']);
  });

  it('tool flow: check first, then the flash with the downloaded file; marked invoked; download removed', async () => {
    await rm(toolLog, { force: true });
    const { error, state } = await run(target('bios.bin', { toolOptions: '; rm -rf /' }), product(), { guid: 'abc' });
    assert.equal(error, undefined);
    assert.deepEqual(await toolRuns(), ['--check', `--apply -q abc ${join(cache, 'bios.bin')} ; rm -rf /`]);
    assert.equal(await readFile(join(dir, 'flashed'), 'utf8'), 'firmware v2\n');
    assert.equal(state?.invokedBootId, 'boot-1');
    assert.deepEqual(await leftInCache(), []);
  });

  it('a local path (repo=local) is flashed in place and left where it was', async () => {
    await rm(toolLog, { force: true });
    const local = join(repo, 'bios.bin');
    const { error } = await run(target('bios.bin', { source: { path: local } }), product({ toolCheckArgs: undefined }));
    assert.equal(error, undefined);
    assert.deepEqual(await toolRuns(), [`--apply -q ${local}`]);
    assert.equal(await readFile(local, 'utf8'), 'firmware v2\n');
    const missing = await run(target('x', { source: { path: join(repo, 'absent.bin') } }), product());
    assert.ok(missing.error instanceof InbmError);
    assert.equal(missing.error.status, 404);
  });

  it('a tar package: the firmware member is flashed, everything extracted is removed', async () => {
    await rm(toolLog, { force: true });
    const { error } = await run(target('bios.tar'), product({ toolCheckArgs: undefined }));
    assert.equal(error, undefined);
    const runs = await toolRuns();
    assert.equal(runs.length, 1);
    assert.match(runs[0]!, /^--apply -q \S+\/\.fota-\w+\/BIOS_X041\.cap$/);
    assert.equal(await readFile(join(dir, 'flashed'), 'utf8'), 'capsule in a tar\n');
    assert.deepEqual(await leftInCache(), []);
  });

  it('capsule platforms: the file is copied to firmware_dest_path, no tool runs', async () => {
    await rm(toolLog, { force: true });
    const efi = join(dir, 'boot', 'efi');
    await mkdir(efi, { recursive: true });
    const { error, state } = await run(target('bios.bin'), product({ tool: undefined, toolCheckArgs: undefined, destPath: `${efi}/` }));
    assert.equal(error, undefined);
    assert.equal(await readFile(join(efi, 'bios.bin'), 'utf8'), 'firmware v2\n');
    assert.deepEqual(await readdir(efi), ['bios.bin']);
    assert.deepEqual(await toolRuns(), []);
    assert.ok(state?.invokedAt);
    assert.deepEqual(await leftInCache(), []);
  });

  it('tool failure: 400 naming the tool and exit code, failure recorded, nothing left in the cache', async () => {
    await writeFile(join(dir, 'fail'), '');
    try {
      const { error, state } = await run(target('bios.bin'), product());
      assert.ok(error instanceof InbmError);
      assert.equal(error.status, 400);
      assert.match(error.reason, /^Firmware Update Aborted: Error: .*tool\.sh failed: exit 7$/);
      assert.equal(state?.failed?.status, 400);
      assert.deepEqual(await leftInCache(), []);
    } finally {
      await rm(join(dir, 'fail'));
    }
  });

  it('a failing check command stops before anything is downloaded or flashed', async () => {
    await rm(toolLog, { force: true });
    const { error, state } = await run(target('bios.bin'), product({ toolCheckArgs: '--nope', tool: '/bin/false' }));
    assert.ok(error instanceof InbmError);
    assert.match(error.reason, /Firmware tool check failed/);
    assert.equal(state?.invokedAt, undefined);
    assert.ok(state?.failed);
    assert.deepEqual(await leftInCache(), []);
  });

  describe('with an OTA certificate provisioned', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 3072,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const signature = (data: string) =>
      sign('sha384', Buffer.from(createHash('sha384').update(data).digest('hex')), {
        key: privateKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN,
      }).toString('hex');
    let cert: string;
    before(async () => {
      cert = join(dir, 'ota_signature_cert.pem');
      await writeFile(cert, publicKey);
    });

    it('a valid signature flashes', async () => {
      await rm(toolLog, { force: true });
      const t = target('bios.bin');
      const { error } = await run({ ...t, source: { ...t.source, signature: signature('firmware v2\n') } }, product(), {
        otaCertFile: cert,
      });
      assert.equal(error, undefined);
      assert.equal((await toolRuns()).length, 2);
    });
    it('a wrong signature refuses: never invoked, file removed', async () => {
      await rm(toolLog, { force: true });
      const t = target('bios.bin');
      const { error, state } = await run({ ...t, source: { ...t.source, signature: signature('other content') } }, product(), {
        otaCertFile: cert,
      });
      assert.ok(error instanceof InbmError);
      assert.match(error.reason, /signature check failed: the signature does not match the file/);
      assert.deepEqual(await toolRuns(), ['--check']);
      assert.equal(state?.invokedAt, undefined);
      assert.deepEqual(await leftInCache(), []);
    });
  });
});
