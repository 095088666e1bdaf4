/**
 * reconcile-noop: one controller pass over N Configuration resources that already hold in the
 * conf file (the steady-state resync), for N = 100, 1,000 and 10,000. Real reconcilers, real conf
 * file, journal and status writer on a temp root; an in-memory DesiredView. The status cache is
 * warmed by a first pass (as in a running agent), then each measured pass enqueues N keys and
 * awaits controller.idle(). Prints {"bench":"reconcile-noop","value":<ms for 1000>,"unit":"ms",...}.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { buildReconcilers } from '../src/agent.js';
import { Controller, type DesiredView } from '../src/controller/controller.js';
import { Journal } from '../src/controller/journal.js';
import { createLogger } from '../src/core/log.js';
import { validateDocument } from '../src/desired/document.js';
import type { Document } from '../src/desired/kinds/index.js';
import { ensureConfFile } from '../src/reconcilers/configuration/index.js';
import { loadSettings } from '../src/settings.js';
import { StatusWriter } from '../src/status/files.js';

const SIZES = [100, 1000, 10_000] as const;
const REPEATS: Record<number, number> = { 100: 21, 1000: 7, 10000: 3 };

// Specs that already hold in the default conf file: sets of current values, removes of absent entries.
const SPECS: Array<Record<string, unknown>> = [
  { set: { maxCacheSize: '100' } },
  { set: { collectionIntervalSeconds: '60', publishIntervalSeconds: '300' } },
  { set: { minStorageMB: '100', minMemoryMB: '10' } },
  { set: { networkCheck: 'true' } },
  { remove: { trustedRepositories: ['https://absent.test'] } },
  { set: { dbs: 'WARN' }, remove: { sotaSW: ['not-a-service'] } },
];

const root = await mkdtemp(join(tmpdir(), 'inbm-bench-noop-'));
try {
  const settings = await loadSettings(root);
  const { paths } = settings;
  await ensureConfFile(paths.confFile);

  const entries = new Map<string, { doc: Document; generation: number; source: string }>();
  const max = SIZES[SIZES.length - 1]!;
  for (let i = 0; i < max; i++) {
    const doc = validateDocument({
      apiVersion: 'inbm.dev/v1alpha1',
      kind: 'Configuration',
      metadata: { name: `noop-${i}` },
      spec: SPECS[i % SPECS.length],
    });
    entries.set(`Configuration/noop-${i}`, { doc, generation: 1, source: 'file' });
  }
  const allKeys = [...entries.keys()];
  const desired: DesiredView = { get: (key) => entries.get(key), keys: () => allKeys };

  const sink = new Writable({ write: (_chunk, _enc, cb) => cb() });
  const log = createLogger('info', sink);
  const status = new StatusWriter(paths.stateDir);
  const controller = new Controller({
    reconcilers: buildReconcilers(settings),
    desired,
    status,
    journal: new Journal(join(paths.stateDir, 'journal'), 'bench-boot'),
    log,
    gates: () => Promise.reject(new Error('a converged pass must not run the gates')),
    resyncMs: 3_600_000,
  });

  // Warm-up pass: writes every status file once (Ready/UpToDate) and fills the status cache.
  const warmStart = performance.now();
  controller.start();
  await controller.idle();
  const warmMs = performance.now() - warmStart;
  const notReady = (await Promise.all(allKeys.map((k) => status.get('Configuration', k.split('/')[1]!)))).filter(
    (s) => s?.phase !== 'Ready' || s.conditions[0]?.reason !== 'UpToDate',
  ).length;

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const timings: Record<number, number> = {};
  for (const n of SIZES) {
    const keys = allKeys.slice(0, n);
    const runs: number[] = [];
    for (let r = 0; r < REPEATS[n]!; r++) {
      const started = performance.now();
      for (const key of keys) controller.enqueue(key);
      await controller.idle();
      runs.push(performance.now() - started);
    }
    timings[n] = median(runs);
  }
  await controller.stop();

  const round = (x: number, d = 2) => Number(x.toFixed(d));
  console.log(
    JSON.stringify({
      bench: 'reconcile-noop',
      value: round(timings[1000]!),
      unit: 'ms',
      ms_100: round(timings[100]!),
      ms_1000: round(timings[1000]!),
      ms_10000: round(timings[10_000]!),
      ms_per_resource_100: round(timings[100]! / 100, 4),
      ms_per_resource_1000: round(timings[1000]! / 1000, 4),
      ms_per_resource_10000: round(timings[10_000]! / 10_000, 4),
      statistic: 'median of passes',
      warmup_ms_10000: Math.round(warmMs),
      not_converged: notReady,
      peak_rss_mib: round(process.resourceUsage().maxRSS / 1024, 1),
      goal: '<= 20 ms for 1000, linear',
    }),
  );
} finally {
  await rm(root, { recursive: true, force: true });
}
