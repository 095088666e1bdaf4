/** planPlatform is pure: the two halves' observations in, one run with a single reboot out. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StepRecord } from '../../src/controller/journal.js';
import type { PlatformInfo } from '../../src/platform/dmi.js';
import type { FirmwareProduct } from '../../src/platform/firmware-db.js';
import type { FirmwareObserved } from '../../src/reconcilers/firmware/index.js';
import type { OsObserved, OsState } from '../../src/reconcilers/os-update/plan.js';
import { type PlatformObserved, type PlatformUpdate, POTA_SUCCESS, planPlatform } from '../../src/reconcilers/platform-update/plan.js';

const product: FirmwareProduct = {
  name: 'Test Board',
  guid: false,
  toolOptions: false,
  operatingSystem: 'linux',
  fileType: 'bin',
  tool: '/opt/fw/tool',
};
const platform: PlatformInfo = {
  source: 'dmi',
  biosVendor: 'Acme BIOS',
  biosVersion: 'A.01',
  biosReleaseDate: '2025-01-15',
  manufacturer: 'Acme',
  product: 'Test Board',
  match: { manufacturer: 'Acme', product: 'Test Board' },
};
const flashedPlatform: PlatformInfo = { ...platform, biosVersion: 'B.02', biosReleaseDate: '2026-06-15' };
const doc = (o: { vendor?: string; mode?: 'full' | 'download-only' } = {}): PlatformUpdate => ({
  apiVersion: 'inbm.dev/v1alpha1',
  kind: 'PlatformUpdate',
  metadata: { name: 'platform-update' },
  spec: {
    requestId: 'r1',
    firmware: {
      platform: {
        vendor: o.vendor ?? 'Acme BIOS',
        manufacturer: 'Acme',
        product: 'Test Board',
        biosVersion: 'B.02',
        releaseDate: '2026-06-15',
      },
      source: { url: 'http://127.0.0.1/fw/bios.bin' },
      reboot: true,
    },
    os: { mode: o.mode ?? 'full', packages: [], reboot: true, logToFile: false },
  },
});
const opts = { apt: true, mender: false, reboot: ['/sbin/reboot'], graceMs: 60_000 };
const now = Date.parse('2026-12-03T12:00:00Z');
const rec = (bootId: string, msAgo = 1000): StepRecord => ({ state: 'done', at: new Date(now - msAgo).toISOString(), bootId });
const fwFresh: FirmwareObserved = {
  bootId: 'b1',
  platform,
  eligibility: { platform, db: { products: [product] }, signatureRequired: false, toolFound: true },
};
const fwState = {
  requestId: 'r1',
  before: { biosVersion: 'A.01', biosReleaseDate: '2025-01-15' },
  invokedAt: new Date(now - 9000).toISOString(),
  invokedBootId: 'b1',
};
const snapshot = { tool: 'btrfs' as const, path: '/s/inbm-sota-r1', subvolume: '/' };
const installed = (changed: Record<string, string> = { 'inbm-demo': '2' }): OsState => ({
  requestId: 'r1',
  snapshot,
  before: { 'inbm-demo': '1' },
  installed: { changed, noUpdate: Object.keys(changed).length === 0 },
});
const osObs = (o: Partial<OsObserved> = {}): OsObserved => ({ bootId: 'b1', steps: {}, family: 'debian', ...o });
const fresh = (o: Partial<PlatformObserved> = {}): PlatformObserved => ({
  bootId: 'b1',
  firmware: fwFresh,
  os: osObs(),
  rollback: { proceedWithoutRollback: false },
  ...o,
});
/** Pre-reboot: flashed in boot b1, OS change done. */
const applied = (st = installed()): PlatformObserved => ({
  bootId: 'b1',
  firmware: { bootId: 'b1', platform: flashedPlatform, state: fwState },
  os: osObs({ state: st }),
});
/** After the boot into b2: the firmware as the DMI now reads, the OS health as measured. */
const booted = (bios: PlatformInfo, health?: { ok: boolean; reason: string }, st = installed()): PlatformObserved => ({
  bootId: 'b2',
  firmware: { bootId: 'b2', platform: bios, state: fwState },
  os: osObs({ bootId: 'b2', state: st, steps: { reboot: rec('b1') }, ...(health ? { health } : {}) }),
});
const ids = (p: ReturnType<typeof planPlatform>) => p.steps.map((s) => s.id);

describe('planPlatform: both halves checked before either starts', () => {
  it('both eligible: BIOS recorded, flash, snapshot, apt; gated, accepted, no reboot yet', () => {
    const p = planPlatform(doc(), fresh(), now, opts);
    assert.deepEqual(ids(p), ['bios', 'flash', 'snapshot', 'apt-update', 'apt-install']);
    assert.equal(p.gated, true);
    assert.equal(p.runId, 'r1');
    assert.equal(p.complete, undefined);
    assert.deepEqual(p.outcome.result, { status: 200, message: 'COMMAND SUCCESSFUL', job_id: '' });
  });

  it('firmware ineligible: 400 with the reason, no step at all', () => {
    const p = planPlatform(doc({ vendor: 'Other' }), fresh(), now, opts);
    assert.deepEqual(p.steps, []);
    assert.equal(p.complete?.result.status, 400);
    assert.match(p.complete!.result.message, /vendor "Other" does not match/);
  });

  it('no apt: 400 before the firmware is touched', () => {
    const p = planPlatform(doc(), fresh(), now, { ...opts, apt: false });
    assert.deepEqual(p.steps, []);
    assert.match(p.complete!.result.message, /no apt root is set/);
  });

  it('no reboot command: refused (the firmware needs the boot)', () => {
    const p = planPlatform(doc(), fresh(), now, { apt: true, mender: false, graceMs: 60_000 });
    assert.deepEqual(p.steps, []);
    assert.equal(p.complete?.result.status, 400);
  });

  it('no snapshot possible and proceedWithoutRollback=false: refused; with it true: goes on', () => {
    const no = planPlatform(doc(), fresh({ rollback: { unsupported: 'not btrfs', proceedWithoutRollback: false } }), now, opts);
    assert.deepEqual(no.steps, []);
    assert.match(no.complete!.result.message, /SOTA will not proceed without snapshot\/rollback support \(not btrfs\)/);
    const yes = planPlatform(doc(), fresh({ rollback: { unsupported: 'not btrfs', proceedWithoutRollback: true } }), now, opts);
    assert.deepEqual(ids(yes), ['bios', 'flash', 'snapshot', 'apt-update', 'apt-install']);
  });

  it('download-only is refused: the OS part must install for the one reboot to serve both', () => {
    const p = planPlatform(doc({ mode: 'download-only' }), fresh(), now, opts);
    assert.deepEqual(p.steps, []);
    assert.equal(p.complete?.result.status, 400);
  });
});

describe('planPlatform: resuming and the single reboot', () => {
  it('flashed, OS not yet changed (a crash after the flash): the OS steps only, never a second flash', () => {
    const p = planPlatform(doc(), { ...applied(), os: osObs() }, now, opts);
    assert.deepEqual(ids(p), ['snapshot', 'apt-update', 'apt-install']);
  });

  it('both applied: pending record, then the one reboot', () => {
    const p = planPlatform(doc(), applied(), now, opts);
    assert.deepEqual(ids(p), ['record-pending', 'reboot']);
    assert.equal(p.outcome.phase, 'Waiting');
  });

  it('nothing for apt to upgrade: still the reboot the firmware needs', () => {
    const p = planPlatform(doc(), applied(installed({})), now, opts);
    assert.deepEqual(ids(p), ['record-pending', 'reboot']);
  });

  it('reboot issued in this boot, within the grace period: wait, no step', () => {
    const o = applied();
    o.os.steps = { reboot: rec('b1', 1000) };
    const p = planPlatform(doc(), o, now, opts);
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.reason, 'WaitingForReboot');
  });

  it('a flash that failed: 400, the OS part never starts', () => {
    const o = applied();
    o.firmware.state = { ...fwState, failed: { status: 400, message: 'Firmware Update Aborted: Error: exit 3' } };
    o.os = osObs();
    const p = planPlatform(doc(), o, now, opts);
    assert.deepEqual(ids(p), ['record']);
    assert.equal(p.complete?.result.status, 400);
  });
});

describe('planPlatform: after the boot', () => {
  it('BIOS changed and OS healthy: both verdicts, commit, pota record; 200', () => {
    const p = planPlatform(doc(), booted(flashedPlatform, { ok: true, reason: 'healthy' }), now, opts);
    assert.deepEqual(ids(p), ['firmware-verdict', 'os-verdict', 'commit', 'record']);
    assert.deepEqual(p.complete?.result, { status: 200, message: POTA_SUCCESS, job_id: '' });
    assert.equal(p.outcome.phase, 'Ready');
  });

  it('OS unhealthy: rolled back, record written before the reboot into the snapshot; 400', () => {
    const p = planPlatform(doc(), booted(flashedPlatform, { ok: false, reason: 'services: inactive: docker' }), now, opts);
    assert.deepEqual(ids(p), ['firmware-verdict', 'os-verdict', 'revert', 'record', 'revert-reboot']);
    assert.equal(p.complete?.result.status, 400);
    assert.match(p.complete!.result.message, /^FAILED INSTALL: System has not been properly updated; reverting\. services/);
  });

  it('firmware not updated, OS healthy: 400 with the FOTA text; the OS judged on its own and kept', () => {
    const p = planPlatform(doc(), booted(platform, { ok: true, reason: 'healthy' }), now, opts);
    assert.deepEqual(ids(p), ['firmware-verdict', 'os-verdict', 'commit', 'record']);
    assert.equal(p.complete?.result.status, 400);
    assert.match(p.complete!.result.message, /^FAILED INSTALL: Overall FOTA update failed\. Firmware not updated\./);
    const r = p.steps.at(-1)!;
    assert.ok(r.part === 'record' && r.status === 'FAIL');
  });

  it('health not measured: stalled, nothing done', () => {
    const p = planPlatform(doc(), booted(flashedPlatform), now, opts);
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Stalled');
  });

  it('completed: nothing more', () => {
    const p = planPlatform(doc(), { ...fresh(), completed: { status: 200, message: POTA_SUCCESS } }, now, opts);
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Ready');
  });
});
