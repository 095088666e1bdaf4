/** planOsUpdate is pure: the request, the journal, the recorded state and the health in, steps out. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StepRecord } from '../../src/controller/journal.js';
import { type OsObserved, type OsState, planOsUpdate, verdictDue } from '../../src/reconcilers/os-update/plan.js';

type Mode = 'full' | 'download-only' | 'no-download' | 'cancel';
const doc = (mode: Mode = 'full', o: { packages?: string[]; reboot?: boolean } = {}) => ({
  apiVersion: 'inbm.dev/v1alpha1' as const,
  kind: 'OSUpdate' as const,
  metadata: { name: 'os-update' },
  spec: { requestId: 'r1', mode, packages: o.packages ?? [], reboot: o.reboot ?? mode !== 'download-only', logToFile: false },
});
const opts = { apt: true, mender: false, reboot: true, graceMs: 60_000 };
const now = Date.parse('2026-12-03T12:00:00Z');
const rec = (bootId: string, msAgo = 1000, state: 'started' | 'done' = 'done'): StepRecord => ({
  state,
  at: new Date(now - msAgo).toISOString(),
  bootId,
});
const snapshot = { tool: 'btrfs' as const, path: '/s/inbm-sota-r1', subvolume: '/' };
const installed = (changed: Record<string, string> = { 'inbm-demo': '2' }): OsState => ({
  requestId: 'r1',
  snapshot,
  before: { 'inbm-demo': '1' },
  installed: { changed, noUpdate: Object.keys(changed).length === 0 },
});
const obs = (o: Partial<OsObserved> = {}): OsObserved => ({ bootId: 'b1', steps: {}, family: 'debian', ...o });
const ids = (p: ReturnType<typeof planOsUpdate>) => p.steps.map((s) => s.id);

describe('planOsUpdate: before the change', () => {
  it('full: snapshot, apt-get update, the change; gated; then look again at once', () => {
    const p = planOsUpdate(doc(), obs(), now, opts);
    assert.deepEqual(ids(p), ['snapshot', 'apt-update', 'apt-install']);
    assert.equal(p.gated, true);
    assert.equal(p.runId, 'r1');
    assert.equal(p.complete, undefined);
    assert.equal(p.outcome.phase, 'Waiting');
    assert.equal(p.outcome.requeueAfterMs, 0);
  });

  it('download-only takes no snapshot; no-download fetches no indexes', () => {
    assert.deepEqual(ids(planOsUpdate(doc('download-only'), obs(), now, opts)), ['apt-update', 'apt-install']);
    assert.deepEqual(ids(planOsUpdate(doc('no-download'), obs(), now, opts)), ['snapshot', 'apt-install']);
  });

  it('the step description names the packages and the mode', () => {
    const p = planOsUpdate(doc('no-download', { packages: ['curl', 'vim'] }), obs(), now, opts);
    assert.equal(p.steps.at(-1)!.description, 'apt-get --no-download install curl vim');
  });

  it('refuses without an apt root, or a reboot it would need, before anything changes', () => {
    const noApt = planOsUpdate(doc(), obs(), now, { ...opts, apt: false });
    assert.deepEqual(noApt.steps, []);
    assert.equal(noApt.complete?.result.status, 400);
    assert.match(noApt.complete!.result.message, /no apt root is set/);
    const noReboot = planOsUpdate(doc(), obs(), now, { ...opts, reboot: false });
    assert.match(noReboot.complete!.result.message, /no reboot command is set/);
    // No reboot asked, none needed.
    assert.deepEqual(ids(planOsUpdate(doc('full', { reboot: false }), obs(), now, { ...opts, reboot: false })), [
      'snapshot',
      'apt-update',
      'apt-install',
    ]);
  });

  it('an operating system that is neither Debian nor Yocto is refused', () => {
    const p = planOsUpdate(doc(), obs({ family: 'other' }), now, opts);
    assert.match(p.complete!.result.message, /unsupported operating system/);
  });
});

describe('planOsUpdate: after the change', () => {
  it('full: record pending, reboot, wait with the reference’s interim result', () => {
    const p = planOsUpdate(doc(), obs({ state: installed() }), now, opts);
    assert.deepEqual(ids(p), ['record-pending', 'reboot']);
    assert.equal(p.outcome.phase, 'Waiting');
    assert.deepEqual(p.outcome.result, { status: 200, message: 'SOTA command status: SUCCESSFUL', job_id: '' });
    assert.equal(p.outcome.requeueAfterMs, 60_000);
  });

  it('download-only: record and finish, never a reboot', () => {
    const st = { requestId: 'r1', installed: { changed: {}, noUpdate: false } };
    const p = planOsUpdate(doc('download-only', { reboot: true }), obs({ state: st }), now, opts);
    assert.deepEqual(ids(p), ['record']);
    assert.equal(p.complete?.result.message, 'SOTA command status: SUCCESSFUL');
    assert.equal(p.outcome.phase, 'Ready');
  });

  it('nothing changed: drop the snapshot, no reboot', () => {
    const p = planOsUpdate(doc(), obs({ state: installed({}) }), now, opts);
    assert.deepEqual(ids(p), ['commit']);
    assert.equal(p.outcome.reason, 'NoUpdate');
    assert.equal(p.complete?.result.status, 200);
  });

  it('reboot issued in this boot: wait out the grace, re-issue if the agent died before the command', () => {
    const waiting = planOsUpdate(doc(), obs({ state: installed(), steps: { reboot: rec('b1', 10_000) } }), now, opts);
    assert.deepEqual(waiting.steps, []);
    assert.equal(waiting.outcome.phase, 'Waiting');
    assert.equal(waiting.outcome.requeueAfterMs, 50_000);
    const died = planOsUpdate(doc(), obs({ state: installed(), steps: { reboot: rec('b1', 70_000, 'started') } }), now, opts);
    assert.deepEqual(ids(died), ['record-pending', 'reboot']);
  });

  it('the reboot command ran and the device never went down: revert without another reboot', () => {
    const p = planOsUpdate(doc(), obs({ state: installed(), steps: { reboot: rec('b1', 70_000) } }), now, opts);
    assert.deepEqual(ids(p), ['verdict', 'revert']);
    assert.match(p.complete!.result.message, /did not go down/);
  });
});

describe('planOsUpdate: the verdict after the boot', () => {
  const booted = { reboot: rec('b0', 30_000) };

  it('healthy: record the verdict, commit, the reference’s success text', () => {
    const p = planOsUpdate(doc(), obs({ state: installed(), steps: booted, health: { ok: true, reason: 'healthy' } }), now, opts);
    assert.deepEqual(ids(p), ['verdict', 'commit']);
    assert.deepEqual(p.complete?.result, {
      status: 200,
      message: 'SUCCESSFUL INSTALL: Overall SOTA update successful.  System has been properly updated.',
      job_id: '',
    });
    assert.equal(p.outcome.phase, 'Ready');
  });

  it('unhealthy: revert to the snapshot and reboot into it; 400 with the reason', () => {
    const health = { ok: false, reason: 'services: inactive: docker' };
    const p = planOsUpdate(doc(), obs({ state: installed(), steps: booted, health }), now, opts);
    assert.deepEqual(ids(p), ['verdict', 'revert', 'revert-reboot']);
    assert.equal(p.steps[0]!.verdict, health);
    assert.deepEqual(p.complete?.result, {
      status: 400,
      message: 'FAILED INSTALL: System has not been properly updated; reverting. services: inactive: docker',
      job_id: '',
    });
    assert.equal(p.outcome.phase, 'Failed');
  });

  it('a recorded verdict wins over a new measurement, and a revert reboot is issued once per boot it needs', () => {
    const st = { ...installed(), verdict: { ok: false, reason: 'packages: inbm-demo 1 != 2' } };
    const health = { ok: true, reason: 'healthy' };
    const plan = (rr: StepRecord) =>
      planOsUpdate(doc(), obs({ bootId: 'b2', state: st, steps: { ...booted, 'revert-reboot': rr }, health }), now, opts);
    // Issued in an earlier boot: the device went down and came back in the snapshot.
    const after = plan(rec('b1', 1000, 'started'));
    assert.deepEqual(ids(after), ['verdict', 'revert']);
    assert.match(after.complete!.result.message, /inbm-demo 1 != 2/);
    // Issued in this boot and within the grace: wait for the device to go down, answer nothing yet.
    const going = plan(rec('b2', 1000, 'done'));
    assert.deepEqual(ids(going), []);
    assert.equal(going.complete, undefined);
    assert.equal(going.outcome.phase, 'Waiting');
    assert.equal(going.outcome.requeueAfterMs, 59_000);
    // Started, never done, grace over, same boot: the agent died before the command ran: issue it.
    assert.deepEqual(ids(plan(rec('b2', 61_000, 'started'))), ['verdict', 'revert', 'revert-reboot']);
    // Done, grace over, same boot: it did not take; answer the failure, never loop on reboots.
    const stuck = plan(rec('b2', 61_000, 'done'));
    assert.deepEqual(ids(stuck), ['verdict', 'revert']);
    assert.equal(stuck.complete!.result.status, 400);
  });

  it('without a snapshot there is nothing to reboot into', () => {
    const st = { ...installed(), snapshot: null };
    const p = planOsUpdate(doc(), obs({ state: st, steps: booted, health: { ok: false, reason: 'x' } }), now, opts);
    assert.deepEqual(ids(p), ['verdict', 'revert']);
  });

  it('deviceReboot no: the verdict comes without a reboot', () => {
    const p = planOsUpdate(doc('full', { reboot: false }), obs({ state: installed(), health: { ok: true, reason: 'healthy' } }), now, opts);
    assert.deepEqual(ids(p), ['verdict', 'commit']);
  });

  it('health is measured only when the verdict is due', () => {
    assert.equal(verdictDue(doc(), obs({ state: installed() })), false, 'not rebooted yet');
    assert.equal(verdictDue(doc(), obs({ state: installed(), steps: { reboot: rec('b1') } })), false, 'same boot');
    assert.equal(verdictDue(doc(), obs({ state: installed(), steps: booted })), true);
    assert.equal(verdictDue(doc('full', { reboot: false }), obs({ state: installed() })), true);
    assert.equal(verdictDue(doc(), obs({ state: { ...installed(), verdict: { ok: true, reason: '' } }, steps: booted })), false);
    assert.equal(verdictDue(doc('download-only'), obs({ state: installed() })), false);
  });
});

describe('planOsUpdate: failures, cancel, finished requests', () => {
  it('apt failed before the reboot and the agent died mid-rollback: finish the rollback and its reboot', () => {
    const st: OsState = { requestId: 'r1', snapshot, failure: { reason: 'SOTA: apt-get -yq failed (100)', changed: true } };
    const p = planOsUpdate(doc(), obs({ state: st }), now, opts);
    assert.deepEqual(ids(p), ['revert', 'revert-reboot']);
    assert.match(p.complete!.result.message, /apt-get -yq failed \(100\); reverting to the snapshot/);
    const unchanged = planOsUpdate(doc(), obs({ state: { ...st, failure: { reason: 'x', changed: false } } }), now, opts);
    assert.deepEqual(ids(unchanged), ['discard']);
  });

  it('cancel: 200 "Request complete." when it stopped a download, else 400 as the reference', () => {
    const stopped = planOsUpdate(doc('cancel'), obs({ cancelled: 'r0' }), now, opts);
    assert.deepEqual(stopped.complete?.result, { status: 200, message: 'Request complete.', job_id: '' });
    const none = planOsUpdate(doc('cancel'), obs(), now, opts);
    assert.equal(none.complete?.result.status, 400);
    assert.match(none.complete!.result.message, /Running thread manifest not found\./);
  });

  it('a finished request plans nothing and keeps its verdict', () => {
    const p = planOsUpdate(doc(), obs({ completed: { status: 400, message: 'FAILED INSTALL: …' } }), now, opts);
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Failed');
    assert.equal(p.complete, undefined);
  });

  it('Yocto: mender install instead of apt and a snapshot; revert is a reboot without commit', () => {
    const y = { ...opts, mender: true };
    assert.deepEqual(ids(planOsUpdate(doc(), obs({ family: 'yocto' }), now, y)), ['mender-install']);
    const st: OsState = { requestId: 'r1', artifact: 'Release-20200101', installed: { changed: {}, noUpdate: false } };
    const bad = planOsUpdate(
      doc(),
      obs({ family: 'yocto', state: st, steps: { reboot: rec('b0') }, health: { ok: false, reason: 'x' } }),
      now,
      y,
    );
    assert.deepEqual(ids(bad), ['verdict', 'revert', 'revert-reboot']);
    assert.match(planOsUpdate(doc(), obs({ family: 'yocto' }), now, opts).complete!.result.message, /needs mender/);
  });
});
