/** The controller and journal with a fake reconciler: no machine involved. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Controller, MAX_BOOTS_PER_RUN } from '../../src/controller/controller.js';
import { Journal } from '../../src/controller/journal.js';
import type { Plan, Reconciler, Step } from '../../src/controller/types.js';
import { createLogger } from '../../src/core/log.js';
import { InbmError, ok, Status } from '../../src/core/result.js';
import type { Document } from '../../src/desired/kinds/index.js';
import { StatusWriter } from '../../src/status/files.js';

const doc = (requestId: string) =>
  ({ apiVersion: 'inbm.dev/v1alpha1', kind: 'PowerAction', metadata: { name: 'p' }, spec: { requestId, action: 'restart' } }) as Document;

async function setup(reconciler: Reconciler, bootId = 'b1', dir?: string) {
  const state = dir ?? (await mkdtemp(join(tmpdir(), 'inbm-ctl-')));
  const journal = new Journal(join(state, 'journal'), bootId);
  const entries = new Map([['PowerAction/p', { doc: doc('r1'), generation: 1, source: 'test' }]]);
  const controller = new Controller({
    reconcilers: new Map([['PowerAction', reconciler]]),
    desired: { get: (k) => entries.get(k), keys: () => [...entries.keys()] },
    status: new StatusWriter(state),
    journal,
    log: createLogger('silent'),
    gates: async () => ({ ok: true, results: [] }),
    resyncMs: 60_000,
  });
  return { state, journal, controller };
}

const status = async (state: string) => JSON.parse(await readFile(join(state, 'status', 'PowerAction', 'p.json'), 'utf8'));

/** A reconciler that plans its steps until each has run once, counting executions. */
function fake(steps: string[], opts: { gated?: boolean; fail?: InbmError } = {}) {
  const ran: string[] = [];
  const r: Reconciler = {
    kind: 'PowerAction',
    observe: async () => ran.length,
    plan: (_d, n): Plan => ({
      steps: (n as number) < steps.length ? steps.map((id) => ({ id, description: id })) : [],
      runId: 'r1',
      ...(opts.gated ? { gated: true } : {}),
      outcome: { phase: 'Ready', reason: 'Done', message: 'done', result: ok('done') },
    }),
    execute: async (s: Step) => {
      if (opts.fail) throw opts.fail;
      ran.push(s.id);
    },
  };
  return { r, ran };
}

describe('controller', () => {
  it('runs each planned step once through the journal and writes the status', async () => {
    const { r, ran } = fake(['a', 'b']);
    const { state, controller } = await setup(r);
    controller.start();
    await controller.idle();
    await controller.stop();
    assert.deepEqual(ran, ['a', 'b']);
    const s = await status(state);
    assert.equal(s.phase, 'Ready');
    assert.equal(s.observedGeneration, 1);
    assert.deepEqual(s.lastResult, ok('done'));
  });

  it('steps the journal says are done are not run again by a new process', async () => {
    const { r, ran } = fake(['a', 'b']);
    const { state, journal } = await setup(r);
    await journal.step('PowerAction/p', 'r1', 'a', async () => {});
    const again = await setup(r, 'b1', state);
    again.controller.start();
    await again.controller.idle();
    await again.controller.stop();
    assert.deepEqual(ran, ['b']);
  });

  it('a non-retryable error stalls with its result code', async () => {
    const { r } = fake(['a'], { fail: new InbmError(Status.INSTALL_FAILED, 'tool exploded') });
    const { state, controller } = await setup(r);
    controller.start();
    await controller.idle();
    await controller.stop();
    const s = await status(state);
    assert.equal(s.phase, 'Stalled');
    assert.equal(s.lastResult.status, 400);
    assert.equal(s.conditions.find((c: { type: string }) => c.type === 'Stalled').status, 'True');
  });

  it('a one-shot finished by its failure takes the phase its reconciler gives it at once (Failed: RolledBack), with the error as result', async () => {
    let finished = false;
    const r: Reconciler = {
      kind: 'PowerAction',
      observe: async (_d, { journal }) => journal.completed('r1') !== undefined,
      plan: (_d, done): Plan =>
        done
          ? { steps: [], outcome: { phase: 'Failed', reason: 'RolledBack', message: 'rolled back' } }
          : {
              steps: [{ id: 'a', description: 'a' }],
              runId: 'r1',
              complete: { requestId: 'r1', result: ok('done') },
              outcome: { phase: 'Ready', reason: 'Done', message: 'done' },
            },
      execute: async () => {
        finished = true;
        throw new InbmError(Status.INSTALL_FAILED, 'did not stay up; rolled back to 1');
      },
    };
    const { state, controller } = await setup(r);
    controller.start();
    await controller.idle();
    await controller.stop();
    assert.ok(finished);
    const s = await status(state);
    assert.equal(s.phase, 'Failed');
    assert.ok(
      s.conditions.some((c: { reason: string }) => c.reason === 'RolledBack'),
      JSON.stringify(s.conditions),
    );
    assert.deepEqual(s.lastResult, { status: 400, message: 'FAILED TO INSTALL: did not stay up; rolled back to 1', job_id: '' });
    const history = JSON.parse(await readFile(join(state, 'results.json'), 'utf8')) as unknown[];
    assert.equal(history.length, 1, 'recorded once');
  });

  it('a retryable error waits with backoff instead of failing', async () => {
    const { r } = fake(['a'], { fail: new InbmError(Status.INSTALL_FAILED, 'network down', true) });
    const { state, controller } = await setup(r);
    controller.start();
    await controller.idle();
    await controller.stop();
    const s = await status(state);
    assert.equal(s.phase, 'Waiting');
    assert.equal(s.conditions.find((c: { type: string }) => c.type === 'Reconciling').status, 'True');
  });

  it('a failing gate blocks a gated plan before any step', async () => {
    const { r, ran } = fake(['a'], { gated: true });
    const { state, controller } = await setup(r);
    (controller as unknown as { deps: { gates: () => Promise<unknown> } }).deps.gates = async () => ({
      ok: false,
      results: [{ gate: 'storage', ok: false, measured: 5, threshold: 100, unit: 'MiB', message: '5 MiB free < 100 MiB required' }],
    });
    controller.start();
    await controller.idle();
    await controller.stop();
    assert.deepEqual(ran, []);
    const s = await status(state);
    assert.match(s.lastResult.message, /Pre OTA check failed: storage: 5 MiB free < 100 MiB required/);
  });

  it(`a run that sees more than ${MAX_BOOTS_PER_RUN} boots is stopped as a reboot loop`, async () => {
    const { r, ran } = fake(['a', 'b']);
    const { state, journal } = await setup(r, 'b1');
    await journal.step('PowerAction/p', 'r1', 'a', async () => {});
    for (const boot of ['b2', 'b3', 'b4']) await new Journal(join(state, 'journal'), boot).noteBoot();
    const looped = await setup(r, 'b4', state);
    looped.controller.start();
    await looped.controller.idle();
    await looped.controller.stop();
    assert.deepEqual(ran, [], 'nothing more runs');
    const s = await status(state);
    assert.equal(s.phase, 'Failed');
    assert.match(s.lastResult.message, /reboot loop: 4 boots/);
  });
});
