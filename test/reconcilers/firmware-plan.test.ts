/** planFirmware is pure: journal records, state file and platform in; steps and verdicts out. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PlatformInfo } from '../../src/platform/dmi.js';
import type { FirmwareProduct } from '../../src/platform/firmware-db.js';
import { type FirmwareObserved, planFirmware } from '../../src/reconcilers/firmware/index.js';

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
const doc = (reboot = true) => ({
  apiVersion: 'inbm.dev/v1alpha1' as const,
  kind: 'Firmware' as const,
  metadata: { name: 'firmware' },
  spec: {
    requestId: 'r1',
    platform: { vendor: 'Acme BIOS', manufacturer: 'Acme', product: 'Test Board', biosVersion: 'B.02', releaseDate: '2026-06-15' },
    source: { url: 'http://127.0.0.1/fw/bios.bin' },
    reboot,
  },
});
const fresh = (o: Partial<FirmwareObserved> = {}): FirmwareObserved => ({
  bootId: 'b1',
  platform,
  eligibility: { platform, db: { products: [product] }, signatureRequired: false, toolFound: true },
  ...o,
});
const opts = { reboot: ['/sbin/reboot'], graceMs: 60_000 };
const now = Date.parse('2026-12-03T12:00:00Z');
const at = (msAgo: number) => new Date(now - msAgo).toISOString();
const invoked = {
  requestId: 'r1',
  before: { biosVersion: 'A.01', biosReleaseDate: '2025-01-15' },
  invokedAt: at(5000),
  invokedBootId: 'b1',
};
const flashed: PlatformInfo = { ...platform, biosVersion: 'B.02', biosReleaseDate: '2026-06-15' };

describe('planFirmware', () => {
  it('eligible: snapshot, flash, reboot; accepted with COMMAND SUCCESSFUL, gated, not completed yet', () => {
    const p = planFirmware(doc(), fresh(), now, opts);
    assert.deepEqual(
      p.steps.map((s) => s.id),
      ['snapshot', 'flash', 'reboot'],
    );
    assert.deepEqual(p.steps[0], {
      id: 'snapshot',
      type: 'snapshot',
      before: { biosVersion: 'A.01', biosReleaseDate: '2025-01-15' },
      description: p.steps[0]!.description,
    });
    assert.equal(p.runId, 'r1');
    assert.equal(p.gated, true);
    assert.equal(p.complete, undefined, 'the request ends with the post-reboot verdict');
    assert.equal(p.outcome.phase, 'Waiting');
    assert.deepEqual(p.outcome.result, { status: 200, message: 'COMMAND SUCCESSFUL', job_id: '' });
  });
  it('deviceReboot no: no reboot step', () => {
    assert.deepEqual(
      planFirmware(doc(false), fresh(), now, opts).steps.map((s) => s.id),
      ['snapshot', 'flash'],
    );
  });
  it('ineligible: completed at once with 400 and the reason, no step', () => {
    const p = planFirmware(doc(), fresh({ eligibility: { ...fresh().eligibility!, db: { products: [] } } }), now, opts);
    assert.deepEqual(p.steps, []);
    assert.equal(p.complete?.result.status, 400);
    assert.equal(p.complete?.result.message, 'FAILED TO INSTALL: The current platform is unsupported - Test Board');
    assert.equal(p.outcome.phase, 'Stalled');
  });
  it('a reboot is asked for but no reboot command is set: refused before anything runs', () => {
    const p = planFirmware(doc(), fresh(), now, { graceMs: 1000 });
    assert.deepEqual(p.steps, []);
    assert.match(p.complete!.result.message, /no reboot command is set/);
  });
  it('flash began but never touched the firmware (no invoked mark): planned again', () => {
    const p = planFirmware(doc(), fresh({ state: { requestId: 'r1', before: invoked.before } }), now, opts);
    assert.deepEqual(
      p.steps.map((s) => s.id),
      ['snapshot', 'flash', 'reboot'],
    );
  });
  it('flashed in this boot, reboot not yet run: only the reboot, never the flash again', () => {
    const p = planFirmware(doc(), { bootId: 'b1', platform: flashed, state: invoked }, now, opts);
    assert.deepEqual(
      p.steps.map((s) => s.id),
      ['reboot'],
    );
    assert.equal(p.outcome.phase, 'Waiting');
    assert.equal(p.outcome.result, undefined, 'the acceptance was reported once already');
  });
  it('reboot issued in this boot, within the grace: wait', () => {
    const p = planFirmware(
      doc(),
      { bootId: 'b1', platform: flashed, state: invoked, reboot: { state: 'started', at: at(1000), bootId: 'b1' } },
      now,
      opts,
    );
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Waiting');
    assert.equal(p.outcome.requeueAfterMs, 59_000);
  });
  it('reboot started but did not take the machine down within the grace: run it again', () => {
    const p = planFirmware(
      doc(),
      { bootId: 'b1', platform: flashed, state: invoked, reboot: { state: 'started', at: at(61_000), bootId: 'b1' } },
      now,
      opts,
    );
    assert.deepEqual(
      p.steps.map((s) => s.id),
      ['reboot'],
    );
  });
  it('reboot ran, grace over, same boot: keep waiting, say so, never reboot twice', () => {
    const p = planFirmware(
      doc(),
      { bootId: 'b1', platform: flashed, state: invoked, reboot: { state: 'done', at: at(61_000), bootId: 'b1' } },
      now,
      opts,
    );
    assert.deepEqual(p.steps, []);
    assert.match(p.outcome.message, /did not go down/);
  });
  it('flashed without a reboot asked for: wait for the next boot', () => {
    const p = planFirmware(doc(false), { bootId: 'b1', platform: flashed, state: invoked }, now, opts);
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Waiting');
    assert.equal(p.outcome.requeueAfterMs, undefined);
  });
  it('new boot, version and date changed: verdict step, completed 200 SUCCESSFUL INSTALL', () => {
    const p = planFirmware(doc(), { bootId: 'b2', platform: flashed, state: invoked }, now, opts);
    assert.deepEqual(
      p.steps.map((s) => s.id),
      ['verdict'],
    );
    assert.equal(p.complete?.result.status, 200);
    assert.match(p.complete!.result.message, /^SUCCESSFUL INSTALL: Overall FOTA update successful/);
    assert.equal(p.outcome.phase, 'Ready');
  });
  it('new boot, BIOS unchanged: completed 400 FAILED INSTALL', () => {
    const p = planFirmware(doc(), { bootId: 'b2', platform, state: invoked }, now, opts);
    assert.deepEqual(p.complete?.result, {
      status: 400,
      message: 'FAILED INSTALL: Overall FOTA update failed. Firmware not updated.',
      job_id: '',
    });
    assert.equal(p.outcome.phase, 'Failed');
  });
  it('a flash that failed for good ends the request with that failure', () => {
    const failed = { status: 400, message: 'FAILED TO INSTALL: Firmware Update Aborted: Error: tool failed: exit 3' };
    const p = planFirmware(doc(), fresh({ state: { requestId: 'r1', before: invoked.before, failed } }), now, opts);
    assert.deepEqual(p.steps, []);
    assert.deepEqual(p.complete?.result, { ...failed, job_id: '' });
  });
  it('a completed request is never planned again', () => {
    const p = planFirmware(doc(), { bootId: 'b3', completed: { status: 200, message: 'SUCCESSFUL INSTALL: …' } }, now, opts);
    assert.deepEqual(p.steps, []);
    assert.equal(p.complete, undefined);
    assert.equal(p.outcome.phase, 'Ready');
  });
  it('a removed document changes nothing', () => {
    assert.deepEqual(planFirmware(undefined, { bootId: 'b1' }, now, opts).steps, []);
  });
});
