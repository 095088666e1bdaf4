/**
 * drop-to-applied: the real agent (built CLI) on a temp root. Each round drops a Configuration
 * document changing maxCacheSize (temp file renamed into the desired-state directory) and times
 * the rename until the resource's status file shows the new generation Ready.
 * Prints {"bench":"drop-to-applied","value":<p50 ms>,"unit":"ms",...}.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../test/bin.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);
const WARMUP = 5;
const ROUND_TIMEOUT_MS = 10_000;
const NAME = 'bench-drop';
/**
 * Least time from one round's Ready to the next rename of the same file (not timed). chokidar
 * (v5) drops, without a trailing event, a second 'change' of a path within 50 ms of the previous
 * one, so a faster re-drop of the same file is never loaded until something touches it again.
 * Counting from Ready (which comes after the previous 'change' was emitted) clears that window.
 */
const GAP_MS = Number(process.env.BENCH_DROP_GAP_MS ?? 60);

const root = await mkdtemp(join(tmpdir(), 'inbm-bench-drop-'));
const desiredDir = join(root, 'var', 'lib', 'inbm', 'desired-state');
const statusDir = join(root, 'var', 'lib', 'inbm', 'status', 'Configuration');
const statusFile = join(statusDir, `${NAME}.json`);
const confFile = join(root, 'etc', 'intel_manageability.conf');

let agent: ChildProcess | undefined;
let logTail = '';
let warnings = 0;
const fail = (message: string): never => {
  throw new Error(`${message}\n--- agent log tail ---\n${logTail.slice(-4000)}`);
};

try {
  const started = performance.now();
  agent = spawn(process.execPath, [BIN, '--root', root, 'agent'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((r) => agent!.once('exit', (code) => r(code)));
  let readyAt: number | undefined;
  const ready = new Promise<void>((resolveReady, rejectReady) => {
    agent!.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      logTail = (logTail + text).slice(-16_000);
      warnings += text.match(/"level":(40|50|60)/g)?.length ?? 0;
      if (readyAt === undefined && logTail.includes('agent ready')) {
        readyAt = performance.now();
        resolveReady();
      }
    });
    void exited.then((code) => rejectReady(new Error(`agent exited (${code}) before ready\n${logTail}`)));
  });
  await ready;
  await mkdir(statusDir, { recursive: true });

  // Wakes on every change in the status directory (the writer renames into it), with a slow poll as a safety net.
  let pending: { generation: number; resolve: (at: number) => void } | undefined;
  const check = async (): Promise<void> => {
    const want = pending;
    if (!want) return;
    let s: { generation?: number; observedGeneration?: number; phase?: string };
    try {
      s = JSON.parse(await readFile(statusFile, 'utf8'));
    } catch {
      return;
    }
    if (pending === want && s.generation === want.generation && s.observedGeneration === want.generation && s.phase === 'Ready') {
      pending = undefined;
      want.resolve(performance.now());
    }
  };
  const watcher = watch(statusDir, () => void check());
  const poll = setInterval(() => void check(), 20);

  const value = (round: number) => 50 + ((round * 37) % 151); // 50..200, never the same twice in a row
  const document = (v: number) =>
    `apiVersion: inbm.dev/v1alpha1\nkind: Configuration\nmetadata: {name: ${NAME}}\nspec:\n  set: {maxCacheSize: "${v}"}\n`;
  const latencies: number[] = [];
  let timeouts = 0;
  let generation = 0;
  let last = 0;
  let lastApplied = Number.NEGATIVE_INFINITY;
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    last = value(round);
    generation += 1;
    await writeFile(join(desiredDir, `.${NAME}.yaml.tmp`), document(last));
    const done = new Promise<number>((r) => {
      pending = { generation, resolve: r };
    });
    const wait = lastApplied + GAP_MS - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t0 = performance.now();
    await rename(join(desiredDir, `.${NAME}.yaml.tmp`), join(desiredDir, `${NAME}.yaml`));
    void check();
    let timer: NodeJS.Timeout | undefined;
    const at = await Promise.race([done, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ROUND_TIMEOUT_MS)))]);
    clearTimeout(timer);
    if (at === undefined) {
      if (agent.exitCode !== null) fail(`agent exited (${agent.exitCode}) during round ${round}`);
      timeouts += 1;
      pending = undefined;
      // Resynchronise on whatever generation the status file reached, so one miss does not fail every later round.
      const s = JSON.parse(await readFile(statusFile, 'utf8').catch(() => '{}')) as { generation?: number };
      generation = s.generation ?? generation;
      if (timeouts > 5) fail(`more than 5 rounds timed out (round ${round}, generation ${generation})`);
      continue;
    }
    lastApplied = at;
    if (round >= WARMUP) latencies.push(at - t0);
  }
  watcher.close();
  clearInterval(poll);
  const conf = await readFile(confFile, 'utf8');
  const confHoldsLast = conf.includes(`<maxCacheSize>${last}</maxCacheSize>`);

  agent.kill('SIGTERM');
  const code = await exited;
  agent = undefined;

  const sorted = [...latencies].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
  const round2 = (x: number) => Number(x.toFixed(2));
  console.log(
    JSON.stringify({
      bench: 'drop-to-applied',
      value: round2(pct(50)),
      unit: 'ms',
      p50_ms: round2(pct(50)),
      p90_ms: round2(pct(90)),
      p99_ms: round2(pct(99)),
      max_ms: round2(sorted.at(-1) ?? Number.NaN),
      mean_ms: round2(latencies.reduce((a, b) => a + b, 0) / latencies.length),
      rounds: latencies.length,
      warmup_rounds: WARMUP,
      timeouts,
      gap_after_ready_ms: GAP_MS,
      agent_ready_ms: Math.round((readyAt ?? Number.NaN) - started),
      conf_holds_last_value: confHoldsLast,
      agent_warnings: warnings,
      agent_exit_code: code,
      goal: 'p50 <= 50 ms, p99 <= 250 ms',
    }),
  );
} finally {
  if (agent) {
    agent.kill('SIGTERM');
    await new Promise((r) => {
      agent!.once('exit', r);
      setTimeout(r, 5000).unref();
    });
  }
  await rm(root, { recursive: true, force: true });
}
