import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import {
  batteryGate,
  type Gate,
  type GateResult,
  gateError,
  healthSettleMs,
  memoryGate,
  networkGate,
  preInstallGates,
  runGates,
  servicesGate,
  soak,
  storageGate,
} from '../../src/controller/gates/index.js';

const ctx = {};
let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'inbm-gates-'));
});

async function put(path: string, text: string, mode?: number): Promise<string> {
  const full = join(root, path);
  await mkdir(join(full, '..'), { recursive: true });
  await writeFile(full, text);
  if (mode !== undefined) await chmod(full, mode);
  return full;
}

const meminfo = (availKb: number) => `MemTotal:       16000000 kB\nMemFree:          100000 kB\nMemAvailable:   ${availKb} kB\n`;
const ROUTE_HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';
const route = (...rows: string[]) => ROUTE_HEADER + rows.map((r) => `${r}\n`).join('');

async function powerSupply(dir: string, supplies: Record<string, Record<string, string>>): Promise<string> {
  for (const [name, files] of Object.entries(supplies)) {
    for (const [f, v] of Object.entries(files)) await put(join(dir, name, f), `${v}\n`);
  }
  return join(root, dir);
}

describe('storage gate', () => {
  it('passes at threshold 0 with a positive measured MiB, fails at 10^12', async () => {
    const low = await storageGate({ dir: root, minMB: 0 }).check(ctx);
    assert.equal(low.ok, true);
    assert.equal(low.unit, 'MiB');
    assert.ok(typeof low.measured === 'number' && low.measured > 0);
    const high = await storageGate({ dir: root, minMB: 1e12 }).check(ctx);
    assert.equal(high.ok, false);
    assert.equal(high.threshold, 1e12);
    assert.match(high.message, /^\d+ MiB free < 1000000000000 MiB required$/);
  });
  it('measures a cache dir not created yet on its nearest existing ancestor', async () => {
    const r = await storageGate({ dir: join(root, 'no', 'such', 'cache'), minMB: 0 }).check(ctx);
    assert.equal(r.ok, true);
    assert.ok(typeof r.measured === 'number' && r.measured > 0);
  });
});

describe('memory gate', () => {
  it('compares MemAvailable in MiB', async () => {
    const path = await put('mem1/meminfo', meminfo(51200));
    const pass = await memoryGate({ meminfoPath: path, minMB: 10 }).check(ctx);
    assert.deepEqual([pass.ok, pass.measured, pass.threshold, pass.unit], [true, 50, 10, 'MiB']);
    const fail = await memoryGate({ meminfoPath: path, minMB: 300 }).check(ctx);
    assert.equal(fail.ok, false);
    assert.equal(fail.message, '50 MiB available < 300 MiB required');
  });
  it('throws (cannot evaluate) without a MemAvailable line', async () => {
    const path = await put('mem2/meminfo', 'MemTotal: 100 kB\n');
    await assert.rejects(memoryGate({ meminfoPath: path, minMB: 10 }).check(ctx), /no MemAvailable/);
  });
});

describe('battery gate', () => {
  it('fails only when a battery is discharging below the threshold', async () => {
    const dir = await powerSupply('ps-low', {
      AC: { type: 'Mains', online: '0' },
      BAT0: { type: 'Battery', capacity: '12', status: 'Discharging' },
    });
    const r = await batteryGate({ powerSupplyDir: dir, minPercent: 20 }).check(ctx);
    assert.deepEqual([r.ok, r.measured, r.threshold, r.unit], [false, 12, 20, '%']);
    assert.match(r.message, /BAT0 discharging at 12% < 20%/);
  });
  it('passes a low battery that is charging, and says why', async () => {
    const dir = await powerSupply('ps-charging', { BAT0: { type: 'Battery', capacity: '5', status: 'Charging' } });
    const r = await batteryGate({ powerSupplyDir: dir, minPercent: 20 }).check(ctx);
    assert.deepEqual([r.ok, r.measured], [true, 5]);
    assert.match(r.message, /Charging \(not on battery power\)/);
  });
  it('passes a discharging battery above the threshold', async () => {
    const dir = await powerSupply('ps-high', { BAT1: { type: 'Battery', capacity: '80', status: 'Discharging' } });
    const r = await batteryGate({ powerSupplyDir: dir, minPercent: 20 }).check(ctx);
    assert.deepEqual([r.ok, r.measured], [true, 80]);
  });
  it('passes with measured null when there is no battery or no power_supply dir', async () => {
    const dir = await powerSupply('ps-mains', { AC: { type: 'Mains', online: '1' } });
    for (const d of [dir, join(root, 'ps-missing')]) {
      const r = await batteryGate({ powerSupplyDir: d, minPercent: 20 }).check(ctx);
      assert.deepEqual([r.ok, r.measured, r.threshold], [true, null, 20]);
      assert.match(r.message, /no battery/);
    }
  });
});

describe('network gate', () => {
  it('finds an up default route', async () => {
    const path = await put(
      'route-ok',
      route('eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0', 'eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0'),
    );
    const r = await networkGate({ routePath: path, enabled: true }).check(ctx);
    assert.deepEqual([r.ok, r.measured, r.threshold], [true, 'eth0', 'default route']);
  });
  it('fails with only subnet routes or a default route that is not up', async () => {
    const path = await put(
      'route-none',
      route('eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0', 'wlan0\t00000000\t0102A8C0\t0002\t0\t0\t100\t00000000\t0\t0\t0'),
    );
    const r = await networkGate({ routePath: path, enabled: true }).check(ctx);
    assert.deepEqual([r.ok, r.measured, r.message], [false, null, 'no default route']);
  });
  it('is skipped when networkCheck is off, without reading the file', async () => {
    const r = await networkGate({ routePath: join(root, 'absent'), enabled: false }).check(ctx);
    assert.deepEqual([r.ok, r.skipped], [true, true]);
  });
});

describe('services gate', () => {
  let check: string;
  let sleeper: string;
  before(async () => {
    check = await put('bin/check', '#!/bin/sh\ncase "$1" in docker|trtl) exit 0 ;; *) exit 3 ;; esac\n', 0o755);
    sleeper = await put('bin/sleeper', '#!/bin/sh\nsleep 5\n', 0o755);
  });
  it('reports every inactive service; exit 0 means active', async () => {
    const gate = servicesGate({ services: ['docker', 'inbm-telemetry', 'trtl', 'mosquitto'], command: [check, '{service}'] });
    const r = await gate.check(ctx);
    assert.deepEqual([r.ok, r.measured, r.threshold], [false, 2, 4]);
    assert.equal(r.message, 'inactive: inbm-telemetry, mosquitto');
    const ok = await servicesGate({ services: ['docker', 'trtl'], command: [check, '{service}'] }).check(ctx);
    assert.deepEqual([ok.ok, ok.measured, ok.threshold], [true, 2, 2]);
  });
  it('passes each template element as one argument, never through a shell', async () => {
    const literal = await put('bin/literal', '#!/bin/sh\n[ "$#" = 1 ] && [ "$1" = \'--unit=docker $HOME;\' ]\n', 0o755);
    const r = await servicesGate({ services: ['docker'], command: [literal, '--unit={service} $HOME;'] }).check(ctx);
    assert.equal(r.ok, true, r.message);
  });
  it('refuses names that are not unit names, so none can pose as an option', async () => {
    const r = await servicesGate({ services: ['--help', 'docker;true', 'docker'], command: [check, '{service}'] }).check(ctx);
    assert.deepEqual([r.ok, r.measured, r.threshold], [false, 1, 3]);
    assert.match(r.message, /--help \(not a valid service name\), docker;true \(not a valid service name\)/);
  });
  it('is skipped when no command is set', async () => {
    for (const command of [undefined, []]) {
      const r = await servicesGate({ services: ['docker'], command }).check(ctx);
      assert.deepEqual([r.ok, r.skipped], [true, true]);
    }
  });
  it('counts a command that outlives its timeout as inactive', async () => {
    const r = await servicesGate({ services: ['docker'], command: [sleeper, '{service}'], timeoutMs: 100 }).check(ctx);
    assert.equal(r.ok, false);
    assert.match(r.message, /docker \(check timed out after 100 ms\)/);
  });
  it('throws (cannot evaluate) when the command does not exist', async () => {
    await assert.rejects(servicesGate({ services: ['docker'], command: [join(root, 'bin/none'), '{service}'] }).check(ctx), /ENOENT/);
  });
});

describe('runGates and preInstallGates', () => {
  const fixed = (name: string, ok: boolean): Gate => ({
    name,
    check: async () => ({ gate: name, ok, measured: 1, threshold: 1, message: ok ? 'fine' : 'bad' }),
  });
  it('reports all results in order, not just the first failure', async () => {
    const run = await runGates([fixed('a', false), fixed('b', true), fixed('c', false)]);
    assert.equal(run.ok, false);
    assert.deepEqual(
      run.results.map((r) => [r.gate, r.ok]),
      [
        ['a', false],
        ['b', true],
        ['c', false],
      ],
    );
    assert.equal(gateError(run)?.status, 400);
    assert.match(gateError(run)!.message, /Pre OTA check failed: a: bad; c: bad/);
  });
  it('turns a gate that throws into an error result answered with 301', async () => {
    const boom: Gate = { name: 'x', check: () => Promise.reject(new Error('EACCES')) };
    const run = await runGates([boom, fixed('b', true)]);
    assert.equal(run.ok, false);
    assert.deepEqual([run.results[0]!.error, run.results[0]!.ok, run.results[1]!.ok], [true, false, true]);
    assert.match(run.results[0]!.message, /EACCES/);
    assert.equal(gateError(run)?.status, 301);
    assert.equal(gateError(await runGates([fixed('b', true)])), undefined);
  });
  it('builds the install_check list in reference order against a fake machine root', async () => {
    const options = {
      cacheDir: join(root, 'var/cache/manageability'),
      meminfoPath: await put('m/proc/meminfo', meminfo(1024 * 1024)),
      powerSupplyDir: join(root, 'm/sys/class/power_supply'),
      routePath: await put('m/proc/net/route', route('eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0')),
      minStorageMB: 0,
      minMemoryMB: 10,
      minPowerPercent: 20,
      networkCheck: true,
      services: ['docker'],
      serviceCheckCommand: undefined,
    };
    const gates = preInstallGates(options);
    assert.deepEqual(
      gates.map((g) => g.name),
      ['network', 'storage', 'memory', 'battery', 'services'],
    );
    const run = await runGates(gates);
    assert.equal(run.ok, true, JSON.stringify(run.results));
    assert.deepEqual(
      run.results.map((r) => r.measured),
      ['eth0', run.results[1]!.measured, 1024, null, null],
    );
    const tight = await runGates(preInstallGates({ ...options, minMemoryMB: 2048, networkCheck: false }));
    assert.deepEqual(
      tight.results.filter((r) => !r.ok).map((r) => r.gate),
      ['memory'],
    );
  });
  it('rejects when the caller aborts', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(runGates([fixed('a', true)], { signal: ac.signal }), { name: 'AbortError' });
  });
});

describe('soak', () => {
  const healthy = async (): Promise<GateResult> => ({
    gate: 'svc',
    ok: true,
    measured: 'running',
    threshold: 'running',
    message: 'running',
  });
  it('passes a probe that stays healthy for the whole duration', async () => {
    let calls = 0;
    const r = await soak({
      durationMs: 200,
      intervalMs: 40,
      probe: () => {
        calls++;
        return healthy();
      },
    });
    assert.equal(r.ok, true);
    assert.equal(r.threshold, 200);
    assert.ok(typeof r.measured === 'number' && r.measured >= 200);
    assert.ok(calls >= 3, `probed ${calls} times`);
  });
  it('fails fast on the first unhealthy probe', async () => {
    let calls = 0;
    const probe = async (): Promise<GateResult> =>
      ++calls < 3 ? healthy() : { gate: 'svc', ok: false, measured: 'exited', threshold: 'running', message: 'exited' };
    const r = await soak({ durationMs: 5000, intervalMs: 20, probe });
    assert.equal(r.ok, false);
    assert.equal(calls, 3);
    assert.ok(typeof r.measured === 'number' && r.measured < 2500, `stayed healthy ${r.measured} ms`);
    assert.match(r.message, /unhealthy after \d+ ms: exited/);
  });
  it('goes on past the duration while the probe is pending, and passes once it settles', async () => {
    let calls = 0;
    const probe = async () => ({ ...(await healthy()), ...(++calls < 8 ? { pending: true } : {}) });
    const r = await soak({ durationMs: 60, intervalMs: 20, settleMs: 1000, probe });
    assert.equal(r.ok, true);
    assert.equal(calls, 8);
    assert.ok(typeof r.measured === 'number' && r.measured >= 140, `soaked ${r.measured} ms`);
  });
  it('fails a probe still pending when the settle time is over, marked pending', async () => {
    const probe = async () => ({ ...(await healthy()), pending: true, message: 'app is starting' });
    const r = await soak({ durationMs: 60, intervalMs: 20, settleMs: 100, probe });
    assert.deepEqual([r.ok, r.pending], [false, true]);
    assert.ok(typeof r.measured === 'number' && r.measured >= 160 && r.measured < 1000, `soaked ${r.measured} ms`);
    assert.match(r.message, /^not healthy after \d+ ms: app is starting$/);
  });
  it('a pending probe turning unhealthy fails at once', async () => {
    let calls = 0;
    const probe = async () =>
      ++calls < 3 ? { ...(await healthy()), pending: true } : { gate: 'svc', ok: false, measured: null, threshold: null, message: 'sick' };
    const r = await soak({ durationMs: 5000, intervalMs: 20, settleMs: 5000, probe });
    assert.equal(r.ok, false);
    assert.equal(calls, 3);
    assert.match(r.message, /unhealthy after \d+ ms: sick/);
  });
  it('the settle time for a health check: the soak time again, at least 30 s', () => {
    assert.equal(healthSettleMs(0), 30_000);
    assert.equal(healthSettleMs(120_000), 120_000);
  });
  it('treats a throwing probe as an error result', async () => {
    const r = await soak({ durationMs: 200, intervalMs: 20, probe: () => Promise.reject(new Error('engine gone')) });
    assert.deepEqual([r.ok, r.error], [false, true]);
    assert.match(r.message, /engine gone/);
  });
  it('rejects when aborted mid-soak', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(soak({ durationMs: 5000, intervalMs: 20, probe: healthy, signal: ac.signal }), { name: 'AbortError' });
  });
});
