/** Container create options (devices, ports) and the plans that read container state, without an engine. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InbmError } from '../../src/core/result.js';
import type { DocumentOf } from '../../src/desired/kinds/index.js';
import { createOptions, parseDevice, parsePort, type RunSpec } from '../../src/drivers/docker.js';
import { planImage } from '../../src/reconcilers/container-image/index.js';

const spec = (extra: Partial<RunSpec> = {}): RunSpec => ({
  name: 'inbm-image-app-1',
  image: 'acme/app:1',
  resource: 'image-app',
  version: '1',
  restartPolicy: 'unless-stopped',
  ...extra,
});
const refused = (f: () => unknown, reason: RegExp) =>
  assert.throws(f, (e: unknown) => e instanceof InbmError && e.status === 400 && reason.test(e.reason));

describe('createOptions', () => {
  it('without devices or ports: labelled, init, no network, no device or port keys', () => {
    assert.deepEqual(createOptions(spec({ command: 'sleep 1' })), {
      name: 'inbm-image-app-1',
      Image: 'acme/app:1',
      Cmd: ['/bin/sh', '-c', 'sleep 1'],
      Labels: { 'inbm.dev/resource': 'image-app', 'inbm.dev/version': '1' },
      HostConfig: { Init: true, NetworkMode: 'none', RestartPolicy: { Name: 'unless-stopped' } },
    });
  });

  it('devices become HostConfig.Devices; ports become ExposedPorts and PortBindings (one key, several bindings)', () => {
    const o = createOptions(spec({ devices: ['/dev/ttyUSB0', '/dev/sda:/dev/xvdc:r'], ports: ['8080:80', '127.0.0.1:8081:80', '53/udp'] }));
    assert.deepEqual(o.HostConfig?.Devices, [
      { PathOnHost: '/dev/ttyUSB0', PathInContainer: '/dev/ttyUSB0', CgroupPermissions: 'rwm' },
      { PathOnHost: '/dev/sda', PathInContainer: '/dev/xvdc', CgroupPermissions: 'r' },
    ]);
    assert.deepEqual(o.ExposedPorts, { '80/tcp': {}, '53/udp': {} });
    assert.deepEqual(o.HostConfig?.PortBindings, {
      '80/tcp': [
        { HostIp: '', HostPort: '8080' },
        { HostIp: '127.0.0.1', HostPort: '8081' },
      ],
      '53/udp': [{ HostIp: '', HostPort: '' }],
    });
  });
});

describe('parseDevice and parsePort read what docker run reads', () => {
  it('a device: HOST, HOST:CONTAINER, HOST:PERMS, HOST:CONTAINER:PERMS', () => {
    assert.deepEqual(parseDevice('/dev/video0:rw'), { PathOnHost: '/dev/video0', PathInContainer: '/dev/video0', CgroupPermissions: 'rw' });
    assert.deepEqual(parseDevice('/dev/video0:/dev/cam'), {
      PathOnHost: '/dev/video0',
      PathInContainer: '/dev/cam',
      CgroupPermissions: 'rwm',
    });
    for (const bad of ['', 'ttyUSB0', '/dev/a:cam', '/dev/a:/dev/b:rx', '/dev/a:/dev/b:rr', '/dev/a:/b:r:x'])
      refused(() => parseDevice(bad), /device ".*" is not HOST/);
  });

  it('a port: CONTAINER, HOST:CONTAINER, IP:HOST:CONTAINER, IP::CONTAINER, a protocol; no ranges', () => {
    assert.deepEqual(parsePort('80'), { key: '80/tcp', binding: { HostIp: '', HostPort: '' } });
    assert.deepEqual(parsePort('127.0.0.1::80/sctp'), { key: '80/sctp', binding: { HostIp: '127.0.0.1', HostPort: '' } });
    assert.deepEqual(parsePort('[::1]:8080:80'), { key: '80/tcp', binding: { HostIp: '::1', HostPort: '8080' } });
    for (const bad of ['', 'http', '8080-8090:80', '0:80', '80:70000', '80/icmp', 'host:80:80'])
      refused(() => parsePort(bad), /port ".*" is not/);
  });
});

describe('planImage with a container docker could not create', () => {
  const doc = (ports: string[]): DocumentOf<'ContainerImage'> => ({
    apiVersion: 'inbm.dev/v1alpha1',
    kind: 'ContainerImage',
    metadata: { name: 'image-app', generation: 1 },
    spec: {
      image: 'acme/app',
      tag: '2',
      ensure: 'present',
      source: { method: 'load', artifact: { url: 'https://repo.example/app.tar' } },
      container: { run: true, restartPolicy: 'no', ports },
      soakSeconds: 5,
    },
  });
  const running = { id: 'id-1', name: 'inbm-image-app-1', version: '1', running: true, exitCode: 0 };

  it('a bad port: Failed with 400 before any step, so the running version is never stopped', () => {
    const p = planImage(doc(['80-90']), { tags: ['1'], containers: [running] });
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Failed');
    assert.equal(p.outcome.result?.status, 400);
    assert.match(p.outcome.result!.message, /port "80-90" is not/);
    assert.equal(p.complete?.result.status, 400);
  });

  it('good ports: the usual rollout', () => {
    const p = planImage(doc(['8080:80']), { tags: ['1'], containers: [running] });
    assert.deepEqual(
      p.steps.map((s) => s.type),
      ['fetch', 'stop-old', 'start', 'soak', 'commit'],
    );
  });
});

describe('planImage with a container its restart policy is restarting', () => {
  const doc: DocumentOf<'ContainerImage'> = {
    apiVersion: 'inbm.dev/v1alpha1',
    kind: 'ContainerImage',
    metadata: { name: 'image-app', generation: 1 },
    spec: { image: 'acme/app', tag: '2', ensure: 'present', container: { run: true, restartPolicy: 'always' }, soakSeconds: 5 },
  };
  const state = (version: string, restarting: boolean) => ({
    id: `id-${version}`,
    name: `inbm-image-app-${version}`,
    version,
    running: false,
    exitCode: 1,
    ...(restarting ? { restarting: true } : {}),
  });

  it('the current version: left to the engine, not started by hand', () => {
    const p = planImage(doc, { tags: ['2'], containers: [state('2', true)] });
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.reason, 'Restarting');
  });

  it('stopped (no restart pending): started again', () => {
    const p = planImage(doc, { tags: ['2'], containers: [state('2', false)] });
    assert.deepEqual(
      p.steps.map((s) => s.type),
      ['start'],
    );
  });

  it('an old version being restarted is stopped before the new one starts', () => {
    const p = planImage(doc, { tags: ['1', '2'], containers: [state('1', true)] });
    assert.deepEqual(
      p.steps.map((s) => s.type),
      ['stop-old', 'start', 'soak', 'commit'],
    );
  });
});
