/** planComposeStack is pure: plain objects in, typed steps out, no engine and no docker-compose. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StackContainer } from '../../src/drivers/compose-state.js';
import { planComposeStack, registryOf, type StackObserved, stackHealth } from '../../src/reconcilers/compose-stack/index.js';

type Spec = {
  project?: string;
  ensure?: 'running' | 'stopped' | 'absent';
  source?: { url: string };
  file?: string;
  pullPolicy?: 'missing' | 'always';
  registry?: { server: string; credentials: { secretRef: string } };
  soakSeconds?: number;
};
const doc = (spec: Spec = {}, generation = 1) => ({
  apiVersion: 'inbm.dev/v1alpha1' as const,
  kind: 'ComposeStack' as const,
  metadata: { name: 'stack-web', generation },
  spec: {
    project: 'web',
    ensure: 'running' as const,
    source: { url: 'http://127.0.0.1/web.tar.gz' },
    pullPolicy: 'missing' as const,
    soakSeconds: 10,
    ...spec,
  },
});
const container = (service: string, extra: Partial<StackContainer> = {}): StackContainer => ({
  id: `id-${service}`,
  name: `web_${service}_1`,
  service,
  image: 'inbm-test/busybox:1',
  running: true,
  exitCode: 0,
  configHash: 'abc',
  ...extra,
});
const observed = (o: Partial<StackObserved> = {}): StackObserved => ({ containers: [], versions: [], ...o });
const kinds = (p: { steps: Array<{ type: string; version?: number }> }) =>
  p.steps.map((s) => (s.version === undefined ? s.type : `${s.type}:${s.version}`));

describe('planComposeStack: running', () => {
  it('a new stack: fetch, up, soak, once per generation, gated, with the AOTA result', () => {
    const p = planComposeStack(doc(), observed());
    assert.deepEqual(kinds(p), ['fetch:1', 'up:1', 'soak:1']);
    assert.equal(p.runId, 'rollout-g1');
    assert.equal(p.gated, true);
    assert.deepEqual(p.complete, {
      requestId: 'rollout-g1',
      result: { status: 200, message: 'AOTA compose up COMMAND SUCCESSFUL', job_id: '' },
    });
    // Nothing to go back to: a failed first version just goes down, and its files with it.
    assert.deepEqual(p.steps[1]!.rollback, { restore: false, discard: true });
  });

  it('a new version over a running one: the old directory goes only at commit, and is the rollback target', () => {
    const p = planComposeStack(doc({}, 2), observed({ versions: [1], containers: [container('web')] }));
    assert.deepEqual(kinds(p), ['fetch:2', 'up:2', 'soak:2', 'commit']);
    assert.deepEqual(p.steps[3]!.versions, [1]);
    assert.deepEqual(p.steps[2]!.rollback, { previous: 1, restore: true, discard: true });
    assert.equal(p.runId, 'rollout-g2');
  });

  it('a new version over a stopped stack: a failure leaves it down rather than starting the old one', () => {
    const p = planComposeStack(doc({}, 3), observed({ versions: [1] }));
    assert.deepEqual(p.steps.find((s) => s.type === 'soak')!.rollback, { previous: 1, restore: false, discard: true });
  });

  it('the directory of this version already there (a resumed rollout): no fetch, not gated', () => {
    const p = planComposeStack(doc({}, 2), observed({ versions: [1, 2], containers: [container('web')] }));
    assert.deepEqual(kinds(p), ['up:2', 'soak:2', 'commit']);
    assert.equal(p.gated, false);
    assert.equal(p.steps[1]!.rollback?.discard, false);
  });

  it('resumed with a rollback recorded before its up: that rollback, not what the engine shows now (a rollback cut short)', () => {
    const recorded = { previous: 1, restore: true, discard: true };
    // v2 taken down by the rollback, v1 not up yet: the engine shows nothing running.
    const p = planComposeStack(doc({}, 2), observed({ versions: [1, 2], fetched: true, rollback: recorded }));
    assert.deepEqual(p.steps.find((s) => s.type === 'soak')!.rollback, recorded);
    const unrecorded = planComposeStack(doc({}, 2), observed({ versions: [1, 2], fetched: true }));
    assert.equal(unrecorded.steps.find((s) => s.type === 'soak')!.rollback?.restore, false, 'what it would have guessed');
  });

  it('resumed after a kill once its fetch began: the directory there now is still its own, and a rollback discards it', () => {
    const p = planComposeStack(doc({}, 2), observed({ versions: [1, 2], containers: [container('web')], fetched: true }));
    assert.deepEqual(kinds(p), ['up:2', 'soak:2', 'commit']);
    assert.deepEqual(p.steps[1]!.rollback, { previous: 1, restore: true, discard: true });
  });

  it('rolled out and running: nothing to do', () => {
    const p = planComposeStack(
      doc(),
      observed({ versions: [1], containers: [container('web'), container('db')], rollout: { status: 200, message: 'ok' } }),
    );
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.reason, 'Running');
  });

  it('drift: a container stopped by hand is brought up again, outside the rollout run', () => {
    const p = planComposeStack(
      doc(),
      observed({
        versions: [1],
        containers: [container('web'), container('db', { running: false, exitCode: 137 })],
        rollout: { status: 200, message: 'ok' },
      }),
    );
    assert.deepEqual(kinds(p), ['up:1']);
    assert.equal(p.runId, undefined);
    assert.equal(p.complete, undefined);
    assert.equal(p.steps[0]!.rollback, undefined);
    assert.match(p.outcome.message, /db exited with code 137/);
  });

  it('drift: the stack files were removed: fetched again, then up', () => {
    const p = planComposeStack(doc(), observed({ containers: [container('web')], rollout: { status: 200, message: 'ok' } }));
    assert.deepEqual(kinds(p), ['fetch:1', 'up:1']);
    assert.equal(p.gated, true);
  });

  it('a failed rollout is not tried again until the document changes', () => {
    const p = planComposeStack(doc(), observed({ versions: [], rollout: { status: 400, message: 'rolled back' } }));
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Failed');
    assert.equal(p.outcome.message, 'rolled back');
  });

  it('no source: the newest version present runs; none present stalls', () => {
    const none = planComposeStack(doc({ source: undefined }, 4), observed());
    assert.equal(none.outcome.phase, 'Stalled');
    assert.deepEqual(none.steps, []);
    const p = planComposeStack(doc({ source: undefined }, 4), observed({ versions: [1, 3] }));
    assert.deepEqual(kinds(p), ['up:3', 'soak:3', 'commit']);
    assert.deepEqual(p.steps[2]!.versions, [1]);
  });

  it('pullPolicy always and registry logins add a pull step; AOTA compose pull answers as pull', () => {
    const always = planComposeStack(doc({ pullPolicy: 'always' }), observed());
    assert.deepEqual(kinds(always), ['fetch:1', 'pull:1', 'up:1', 'soak:1']);
    assert.equal(always.outcome.result?.message, 'AOTA compose pull COMMAND SUCCESSFUL');
    const login = planComposeStack(doc({ registry: { server: 'reg.example:5000', credentials: { secretRef: 's' } } }), observed());
    assert.deepEqual(kinds(login), ['fetch:1', 'pull:1', 'up:1', 'soak:1']);
    assert.match(login.steps[1]!.description, /logged in to reg\.example:5000/);
  });
});

describe('planComposeStack: stopped and absent', () => {
  it('stopped: down with the newest version, images kept', () => {
    const p = planComposeStack(
      doc({ ensure: 'stopped', source: undefined }),
      observed({ versions: [1, 2], containers: [container('web')] }),
    );
    assert.deepEqual(kinds(p), ['down:2']);
    assert.equal(p.outcome.result?.message, 'AOTA compose down COMMAND SUCCESSFUL');
  });
  it('stopped and already down: nothing to do', () => {
    const p = planComposeStack(doc({ ensure: 'stopped' }), observed({ versions: [1] }));
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.reason, 'Stopped');
  });
  it('absent: down with images removed, then the files', () => {
    const p = planComposeStack(doc({ ensure: 'absent' }), observed({ versions: [1, 2], containers: [container('web')] }));
    assert.deepEqual(kinds(p), ['remove:2', 'purge']);
    assert.deepEqual(p.steps[1]!.versions, [1, 2]);
    assert.equal(p.outcome.result?.message, 'AOTA compose remove COMMAND SUCCESSFUL');
  });
  it('absent without files: the engine removes what carries the project label', () => {
    const p = planComposeStack(doc({ ensure: 'absent' }), observed({ containers: [container('web')] }));
    assert.deepEqual(kinds(p), ['remove']);
  });
  it('absent and gone: nothing to do', () => {
    assert.deepEqual(planComposeStack(doc({ ensure: 'absent' }), observed()).steps, []);
  });
  it('a removed document changes nothing', () => {
    const p = planComposeStack(undefined, observed({ containers: [container('web')] }));
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.reason, 'NotManaged');
  });
  it('the project is named as docker-compose v1 names it', () => {
    const p = planComposeStack(doc({ ensure: 'absent', project: 'simple.compose' }), observed());
    assert.equal(p.outcome.message, 'simplecompose is absent');
  });
});

describe('stackHealth and registryOf', () => {
  it('running means every container running and none unhealthy; a health check still starting is pending, not a pass', () => {
    assert.equal(stackHealth([]).ok, false);
    assert.deepEqual(stackHealth([container('a'), container('b', { health: 'starting' })]), {
      ok: true,
      pending: true,
      message: 'health of b is starting',
    });
    assert.deepEqual(stackHealth([container('a', { health: 'healthy' }), container('b')]), { ok: true, message: '2 container(s) running' });
    assert.deepEqual(stackHealth([container('a', { health: 'starting' }), container('b', { health: 'unhealthy' })]), {
      ok: false,
      message: 'b is unhealthy',
    });
    assert.deepEqual(stackHealth([container('a', { health: 'unhealthy' })]), { ok: false, message: 'a is unhealthy' });
    assert.deepEqual(stackHealth([container('a', { running: false, exitCode: 3 })]), { ok: false, message: 'a exited with code 3' });
  });
  it('the registry of an image reference', () => {
    assert.equal(registryOf('registry:5000/app:1'), 'registry:5000');
    assert.equal(registryOf('reg.example.com/team/app'), 'reg.example.com');
    assert.equal(registryOf('localhost/app'), 'localhost');
    assert.equal(registryOf('team/app:1'), 'docker.io');
    assert.equal(registryOf('busybox'), 'docker.io');
  });
});
