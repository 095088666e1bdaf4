/** planImage is pure: documents and what the engine showed in, typed steps and outcomes out. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DocumentOf } from '../../src/desired/kinds/index.js';
import type { ContainerState } from '../../src/drivers/docker.js';
import { type ImageObserved, planImage, pullReference, runIdOf } from '../../src/reconcilers/container-image/index.js';

type Doc = DocumentOf<'ContainerImage'>;
type Spec = Doc['spec'];

const image = (spec: Partial<Spec> = {}, requestId?: string): Doc => ({
  apiVersion: 'inbm.dev/v1alpha1',
  kind: 'ContainerImage',
  metadata: { name: 'image-app', generation: 3, ...(requestId ? { annotations: { 'inbm.dev/request-id': requestId } } : {}) },
  spec: {
    image: 'acme/app',
    tag: '2',
    ensure: 'present',
    source: { method: 'import', artifact: { url: 'https://repo.example/app.tgz' } },
    soakSeconds: 5,
    ...spec,
  },
});
const run = { run: true, restartPolicy: 'no' as const, command: 'sleep 3600' };
const container = (version: string, running = true): ContainerState => ({
  id: `id-${version}`,
  name: `inbm-image-app-${version}`,
  version,
  running,
  exitCode: 0,
});
const seen = (o: Partial<ImageObserved> = {}): ImageObserved => ({ tags: [], containers: [], ...o });
const types = (p: { steps: Array<{ type: string }> }) => p.steps.map((s) => s.type);

describe('planImage: import', () => {
  it('a new import of an absent image: fetch, gated, the success completes the request', () => {
    const doc = image();
    const p = planImage(doc, seen());
    assert.deepEqual(types(p), ['fetch']);
    assert.equal(p.gated, true);
    assert.equal(p.runId, runIdOf(doc));
    assert.deepEqual(p.complete, { requestId: runIdOf(doc), result: p.outcome.result });
    assert.equal(p.outcome.result?.status, 200);
    assert.equal(p.outcome.result?.message, 'AOTA docker import COMMAND SUCCESSFUL');
  });

  it('a new import of an image already present: 401 IMAGE ALREADY PRESENT, recorded once, no step', () => {
    const doc = image();
    const p = planImage(doc, seen({ tags: ['2'] }));
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Failed');
    assert.equal(p.outcome.reason, 'ImagePresent');
    assert.equal(p.outcome.result?.status, 401);
    assert.match(p.outcome.result!.message, /FAILED IMAGE IMPORT, IMAGE ALREADY PRESENT$/);
    assert.deepEqual(p.complete, { requestId: runIdOf(doc), result: p.outcome.result });
    // The next pass sees the completed request: still Failed, but no second result.
    const again = planImage(doc, seen({ tags: ['2'], rollout: { status: 401, message: p.outcome.message }, inFlight: true }));
    assert.deepEqual(again.steps, []);
    assert.equal(again.outcome.phase, 'Failed');
    assert.equal(again.outcome.reason, 'ImagePresent');
    assert.equal(again.outcome.result, undefined);
    assert.equal(again.complete, undefined);
  });

  it('already present with a container to run: still 401, nothing started', () => {
    const p = planImage(image({ container: run }), seen({ tags: ['2'] }));
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.result?.status, 401);
  });

  it('our own import interrupted after the engine had it: resumed, not refused', () => {
    const doc = image();
    const p = planImage(doc, seen({ tags: ['2'], inFlight: true }));
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Ready');
    assert.equal(p.outcome.result?.status, 200);
    assert.deepEqual(p.complete, { requestId: runIdOf(doc), result: p.outcome.result });
  });

  it('an interrupted import with a container: the rollout goes on (start, soak, commit)', () => {
    const p = planImage(image({ container: run }), seen({ tags: ['1', '2'], containers: [container('1', false)], inFlight: true }));
    assert.deepEqual(types(p), ['start', 'soak', 'commit']);
    assert.equal(p.gated, false);
    assert.equal(p.outcome.result?.status, 200);
  });

  it('an import that finished earlier: Ready without a new result', () => {
    const p = planImage(image(), seen({ tags: ['2'], rollout: { status: 200, message: 'ok' }, inFlight: true }));
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Ready');
    assert.equal(p.outcome.result, undefined);
    assert.equal(p.complete, undefined);
  });

  it('an import whose fetch answered 404: Failed NotFound afterwards, never fetched again', () => {
    const p = planImage(image(), seen({ rollout: { status: 404, message: 'not found: https://repo.example/app.tgz' } }));
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Failed');
    assert.equal(p.outcome.reason, 'NotFound');
  });

  it('load and pull never refuse a present image', () => {
    for (const method of ['load', 'pull'] as const) {
      const p = planImage(image({ source: { method } }), seen({ tags: ['2'] }));
      assert.deepEqual(p.steps, []);
      assert.equal(p.outcome.phase, 'Ready', method);
      assert.equal(p.outcome.reason, 'Present', method);
    }
  });
});

describe('planImage: request identity', () => {
  it('each dropped manifest (request id) is a rollout of its own; a plain document rolls out per generation', () => {
    assert.equal(runIdOf(image()), 'rollout-2-g3');
    assert.equal(runIdOf(image({}, 'f-abc')), 'rollout-2-f-abc');
    assert.notEqual(runIdOf(image({}, 'f-abc')), runIdOf(image({}, 'f-def')));
  });
});

describe('planImage: rollout with a container', () => {
  const load = { method: 'load' as const, artifact: { url: 'https://repo.example/app-2.tar' } };

  it('from v1 running: fetch, stop-old, start, soak, commit (pruning v1)', () => {
    const p = planImage(image({ source: load, container: run }), seen({ tags: ['1'], containers: [container('1')] }));
    assert.deepEqual(types(p), ['fetch', 'stop-old', 'start', 'soak', 'commit']);
    const commit = p.steps.at(-1)!;
    assert.deepEqual(commit.ids, ['id-1']);
    assert.deepEqual(commit.refs, ['acme/app:1']);
    assert.equal(p.outcome.reason, 'Committed');
  });

  it('killed during the soak of a first version (nothing old): soaked again, not taken as done', () => {
    const doc = image({ source: load, container: run });
    const p = planImage(doc, seen({ tags: ['2'], containers: [container('2')], inFlight: true }));
    assert.deepEqual(types(p), ['start', 'soak']);
    assert.deepEqual(p.complete?.result.status, 200);
  });

  it('killed after commit removed v1: finishes with its result', () => {
    const p = planImage(image({ source: load, container: run }), seen({ tags: ['2'], containers: [container('2')], inFlight: true }));
    assert.equal(p.outcome.result?.status, 200);
    assert.ok(p.complete);
  });

  it('killed after stop-old: the old one is not stopped again', () => {
    const p = planImage(
      image({ source: load, container: run }),
      seen({ tags: ['1', '2'], containers: [container('1', false)], inFlight: true }),
    );
    assert.deepEqual(types(p), ['start', 'soak', 'commit']);
  });

  it('converged: nothing to do; stopped by hand: started again (no rollout)', () => {
    const doc = image({ source: load, container: run });
    const ready = planImage(doc, seen({ tags: ['2'], containers: [container('2')], rollout: { status: 200, message: 'ok' } }));
    assert.deepEqual(ready.steps, []);
    assert.equal(ready.outcome.reason, 'Running');
    const drift = planImage(doc, seen({ tags: ['2'], containers: [container('2', false)], rollout: { status: 200, message: 'ok' } }));
    assert.deepEqual(types(drift), ['start']);
    assert.equal(drift.runId, undefined);
  });

  it('a rollout that was rolled back stays Failed', () => {
    const p = planImage(
      image({ source: load, container: run }),
      seen({ tags: ['1'], rollout: { status: 400, message: 'AOTA docker: app:2 did not stay up (exited 1); rolled back to 1' } }),
    );
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Failed');
    assert.equal(p.outcome.reason, 'RolledBack');
    // Failed before changing anything (a refused pull): failed, not rolled back.
    const refused = planImage(
      image({ source: load, container: run }),
      seen({ tags: ['1'], rollout: { status: 400, message: 'AOTA docker pull: unauthorized' } }),
    );
    assert.equal(refused.outcome.reason, 'RolloutFailed');
  });
});

describe('planImage: a rollout resumed after a kill', () => {
  const load = { method: 'load' as const, artifact: { url: 'https://repo.example/app-2.tar' } };

  it('killed once its fetch began: the image present now is still its own, and a rollback removes it', () => {
    const doc = image({ source: load, container: run });
    const resumed = planImage(doc, seen({ tags: ['1', '2'], containers: [container('1')], inFlight: true, fetched: true }));
    assert.deepEqual(types(resumed), ['stop-old', 'start', 'soak', 'commit']);
    assert.deepEqual(resumed.steps.find((s) => s.type === 'soak')!.refs, ['acme/app:2']);
    // An image that was there before the rollout began is left to the rollback.
    const present = planImage(doc, seen({ tags: ['1', '2'], containers: [container('1')], inFlight: true }));
    assert.deepEqual(present.steps.find((s) => s.type === 'soak')!.refs, []);
  });
});

describe('pullReference', () => {
  it('puts the registry host in front of a bare image name', () => {
    assert.equal(pullReference('acme/app', '127.0.0.1:5000'), '127.0.0.1:5000/acme/app');
    assert.equal(pullReference('app', 'https://registry.example:5000/'), 'registry.example:5000/app');
    assert.equal(pullReference('app', 'http://127.0.0.1:5000/v2/'), '127.0.0.1:5000/app');
  });
  it('leaves an image that names its registry, Docker Hub and no registry as they are', () => {
    assert.equal(pullReference('127.0.0.1:5000/acme/app', '127.0.0.1:5000'), '127.0.0.1:5000/acme/app');
    assert.equal(pullReference('other.example/app', '127.0.0.1:5000'), 'other.example/app');
    assert.equal(pullReference('localhost/app', '127.0.0.1:5000'), 'localhost/app');
    assert.equal(pullReference('library/nginx', 'https://index.docker.io/v1/'), 'library/nginx');
    assert.equal(pullReference('nginx', 'docker.io'), 'nginx');
    assert.equal(pullReference('nginx', undefined), 'nginx');
  });
});
