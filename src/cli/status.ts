import { loadSettings } from '../settings.js';
import { type ResourceStatus, readAllStatus } from '../status/files.js';

/** Reads the state files; needs no running agent. */
export async function showStatus(root: string | undefined, which: string | undefined, json: boolean): Promise<number> {
  const { paths } = await loadSettings(root);
  const { resources, files } = await readAllStatus(paths.stateDir);
  const selected = which ? resources.filter((r) => `${r.kind}/${r.name}` === which) : resources;
  if (which && selected.length === 0) {
    process.stderr.write(`inbm: no status for ${which}\n`);
    return 1;
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(which ? selected[0] : { resources: selected, files }, null, 2)}\n`);
    return 0;
  }
  const rows = selected.map((r: ResourceStatus) => [
    `${r.kind}/${r.name}`,
    r.phase,
    `${r.observedGeneration}/${r.generation}`,
    r.history.at(-1)?.message ?? '',
  ]);
  for (const f of files) rows.push([`file ${f.file}`, 'Refused', '-', f.result.message]);
  const widths = [0, 1, 2].map((i) => Math.max(...[['RESOURCE', 'PHASE', 'GEN'], ...rows].map((r) => r[i]!.length)));
  for (const r of [['RESOURCE', 'PHASE', 'GEN', 'MESSAGE'], ...rows]) {
    process.stdout.write(
      `${r
        .slice(0, 3)
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')}  ${r[3]}\n`,
    );
  }
  return 0;
}
