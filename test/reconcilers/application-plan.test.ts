/** planApplication is pure: the document, the journal's view and the commands in, steps out. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DocumentOf } from '../../src/desired/kinds/index.js';
import { planApplication } from '../../src/reconcilers/application/index.js';

const doc = (reboot: boolean): DocumentOf<'ApplicationPackage'> => ({
  apiVersion: 'inbm.dev/v1alpha1',
  kind: 'ApplicationPackage',
  metadata: { name: 'app-hello' },
  spec: { requestId: 'f-1', source: { url: 'https://repo.example/hello.deb' }, reboot },
});
const commands = { install: ['dpkg', '-i', '{file}'], reboot: ['reboot'] };
const ids = (p: { steps: Array<{ id: string }> }) => p.steps.map((s) => s.id);

describe('planApplication', () => {
  it('install, then the reboot asked for, once per request', () => {
    const p = planApplication(doc(true), {}, commands);
    assert.deepEqual(ids(p), ['install', 'reboot']);
    assert.equal(p.runId, 'f-1');
    assert.equal(p.complete?.result.status, 200);
  });

  it('no reboot unless asked', () => {
    assert.deepEqual(ids(planApplication(doc(false), {}, commands)), ['install']);
  });

  it('the reboot began in an earlier boot (the agent died as the device went down): not issued again, the request completes', () => {
    const p = planApplication(doc(true), { rebooted: true }, commands);
    assert.deepEqual(ids(p), ['install']);
    assert.deepEqual(p.complete?.result, { status: 200, message: 'AOTA application update COMMAND SUCCESSFUL', job_id: '' });
  });

  it('finished: nothing to do, the outcome from the journal', () => {
    const p = planApplication(doc(true), { completed: { status: 200, message: 'ok' } }, commands);
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Ready');
  });
});
