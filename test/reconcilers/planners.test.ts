/** The planners are pure: plain objects in, typed steps out, no machine involved. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_CONF, parseConf } from '../../src/reconcilers/configuration/conffile.js';
import { planConfiguration } from '../../src/reconcilers/configuration/index.js';
import { planPower } from '../../src/reconcilers/power/index.js';

const power = (action: 'restart' | 'shutdown' | 'decommission' = 'restart') => ({
  apiVersion: 'inbm.dev/v1alpha1' as const,
  kind: 'PowerAction' as const,
  metadata: { name: 'power' },
  spec: { requestId: 'r1', action },
});
const opts = { reboot: ['/sbin/reboot'], shutdown: ['/sbin/poweroff'], secretsVolume: '/v/secret.img', graceMs: 60_000 };
const now = Date.parse('2026-12-03T12:00:00Z');
const at = (msAgo: number) => new Date(now - msAgo).toISOString();

describe('planPower', () => {
  it('a new request: one power step, then waiting for the reboot with the issued result', () => {
    const p = planPower(power(), { bootId: 'b1' }, now, opts);
    assert.deepEqual(
      p.steps.map((s) => [s.type, s.id]),
      [['power', 'power']],
    );
    assert.equal(p.runId, 'r1');
    assert.equal(p.outcome.phase, 'Waiting');
    assert.equal(p.outcome.result?.message, 'Restart Command Success');
  });
  it('decommission wipes the secrets volume before shutting down', () => {
    const p = planPower(power('decommission'), { bootId: 'b1' }, now, opts);
    assert.deepEqual(
      p.steps.map((s) => s.id),
      ['wipe-secrets', 'power'],
    );
  });
  it('issued in this boot and within grace: nothing to run, keep waiting', () => {
    const p = planPower(power(), { bootId: 'b1', issued: { state: 'done', at: at(1000), bootId: 'b1' } }, now, opts);
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Waiting');
  });
  it('issued in an earlier boot: the verdict, recorded once', () => {
    const p = planPower(power(), { bootId: 'b2', issued: { state: 'started', at: at(1000), bootId: 'b1' } }, now, opts);
    assert.deepEqual(p.steps, []);
    assert.equal(p.complete?.result.message, 'Reboot SUCCESSFUL.');
    assert.equal(p.outcome.phase, 'Ready');
  });
  it('ran, grace over, same boot: failed, not run again', () => {
    const p = planPower(power(), { bootId: 'b1', issued: { state: 'done', at: at(120_000), bootId: 'b1' } }, now, opts);
    assert.deepEqual(p.steps, []);
    assert.equal(p.complete?.result.status, 400);
  });
  it('completed requests are never planned again', () => {
    const p = planPower(power(), { bootId: 'b9', completed: { status: 200, message: 'Reboot SUCCESSFUL.' } }, now, opts);
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Ready');
    assert.equal(p.complete, undefined);
  });
  it('no command set: refused with 400, never run', () => {
    const p = planPower(power('shutdown'), { bootId: 'b1' }, now, { ...opts, shutdown: undefined });
    assert.deepEqual(p.steps, []);
    assert.match(p.outcome.message, /no shutdown command is set/);
    assert.equal(p.complete?.result.status, 400);
  });
});

describe('planConfiguration', () => {
  const conf = parseConf(DEFAULT_CONF);
  const doc = (spec: object) => ({
    apiVersion: 'inbm.dev/v1alpha1' as const,
    kind: 'Configuration' as const,
    metadata: { name: 'c' },
    spec,
  });
  it('a change: one write step holding the whole new file', () => {
    const p = planConfiguration(doc({ set: { maxCacheSize: '150' } }), { conf });
    assert.equal(p.steps.length, 1);
    assert.match(p.steps[0]!.text, /<maxCacheSize>150<\/maxCacheSize>/);
    assert.equal(p.outcome.result?.message, 'Configuration set_element command: SUCCESSFUL');
  });
  it('already holds it: no step', () => {
    const p = planConfiguration(doc({ set: { maxCacheSize: '100' } }), { conf });
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.reason, 'UpToDate');
  });
  it('an invalid value: stalled with 400 naming the key, no step', () => {
    const p = planConfiguration(doc({ set: { maxCacheSize: '500' } }), { conf });
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Stalled');
    assert.match(p.outcome.message, /maxCacheSize/);
  });
  it('a load: one write, once per requestId', () => {
    const spec = { load: { requestId: 'l1', source: { path: '/c/x.conf' } } };
    const first = planConfiguration(doc(spec), { conf, load: { done: false, text: DEFAULT_CONF } });
    assert.equal(first.steps[0]!.id, 'load');
    assert.equal(first.complete?.requestId, 'l1');
    assert.deepEqual(planConfiguration(doc(spec), { conf, load: { done: true } }).steps, []);
  });
});

describe('pruneConfiguration', () => {
  it('restores the defaults of the keys a removed document set and removes what it appended', async () => {
    const { applyChanges, DEFAULT_CONF, parseConf } = await import('../../src/reconcilers/configuration/conffile.js');
    const { pruneConfiguration } = await import('../../src/reconcilers/configuration/index.js');
    const changed = applyChanges(parseConf(DEFAULT_CONF), {
      set: { maxCacheSize: '150' },
      append: { trustedRepositories: ['https://a.test'] },
    });
    const doc = {
      apiVersion: 'inbm.dev/v1alpha1' as const,
      kind: 'Configuration' as const,
      metadata: { name: 'c' },
      spec: { set: { maxCacheSize: '150' }, append: { trustedRepositories: ['https://a.test'] } },
    };
    const p = pruneConfiguration(doc, { conf: changed });
    assert.equal(p.steps.length, 1);
    assert.match(p.steps[0]!.text, /<maxCacheSize>100<\/maxCacheSize>/);
    assert.doesNotMatch(p.steps[0]!.text, /a\.test/);
    assert.equal(p.outcome.reason, 'Pruned');
  });
});
