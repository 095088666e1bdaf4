import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildReconcilers, measureGates } from '../agent.js';
import { Controller } from '../controller/controller.js';
import { Journal } from '../controller/journal.js';
import { createLogger } from '../core/log.js';
import { resultOf } from '../core/result.js';
import { readDesiredDir } from '../desired/store.js';
import { loadSettings } from '../settings.js';
import { StatusWriter } from '../status/files.js';

/** What the controller would do for each document, and which gate blocks it; acts on nothing. */
export async function showPlan(root: string | undefined, json: boolean): Promise<number> {
  const settings = await loadSettings(root);
  const { paths } = settings;
  const { entries, refused } = await readDesiredDir(paths.desiredDir);
  const controller = new Controller({
    reconcilers: buildReconcilers(settings),
    desired: { get: (k) => entries.get(k), keys: () => [...entries.keys()] },
    status: new StatusWriter(paths.stateDir),
    journal: new Journal(join(paths.stateDir, 'journal'), await bootId(paths.bootIdFile)),
    log: createLogger('silent'),
    gates: () => measureGates(settings),
    resyncMs: 60_000,
  });
  const out = [];
  for (const key of entries.keys()) {
    const preview = await controller.preview(key).catch((err: unknown) => resultOf(err));
    if ('status' in preview) {
      out.push({ resource: key, steps: [], outcome: `cannot observe: ${preview.message}` });
      continue;
    }
    const { plan, gates } = preview;
    out.push({
      resource: key,
      steps: plan.steps.map((s) => ({ id: s.id, description: s.description })),
      outcome: plan.steps.length > 0 ? undefined : `${plan.outcome.phase}: ${plan.outcome.message}`,
      ...(gates ? { gates: gates.results, blocked: !gates.ok } : {}),
    });
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ resources: out, refused }, null, 2)}\n`);
    return 0;
  }
  for (const r of out) {
    process.stdout.write(`${r.resource}\n`);
    if (r.outcome) process.stdout.write(`  nothing to do (${r.outcome})\n`);
    for (const s of r.steps) process.stdout.write(`  step ${s.id}: ${s.description}\n`);
    for (const g of r.gates ?? []) process.stdout.write(`  gate ${g.gate}: ${g.ok ? 'ok' : 'BLOCKS'} (${g.message})\n`);
  }
  for (const f of refused) process.stdout.write(`refused ${f}\n`);
  return 0;
}

async function bootId(path: string): Promise<string> {
  return (await readFile(path, 'utf8').catch(() => 'unknown')).trim();
}
