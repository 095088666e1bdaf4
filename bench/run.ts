/**
 * `npm run bench [-- NAME...]`: runs each benchmark (bench/<name>.ts other than this file) in its
 * own process, pinned to one core with taskset when the machine has it. Each prints one JSON line.
 * The agent is built first, so a benchmark never measures a stale dist/inbm.mjs.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; have: ${all.join(', ')}`);
  process.exit(2);
}
if (spawnSync('npm', ['run', 'build'], { cwd: join(here, '..'), stdio: ['ignore', 2, 2] }).status !== 0) {
  console.error('npm run build failed');
  process.exit(1);
}
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
let failed = false;
for (const name of wanted.length > 0 ? wanted : all) {
  const node = [process.execPath, '--import', 'tsx', join(here, `${name}.ts`)];
  const [cmd, ...args] = hasTaskset ? ['taskset', '-c', '0', ...node] : node;
  const run = spawnSync(cmd!, args, { stdio: 'inherit', cwd: join(here, '..') });
  if (run.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
