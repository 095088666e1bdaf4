import { loadSettings } from '../settings.js';
import { type ResourceStatus, readAllStatus } from '../status/files.js';

/** Reads the state files; needs no running agent. With watch, prints again whenever they change. */
export async function showStatus(root: string | undefined, which: string | undefined, json: boolean, watch = false): Promise<number> {
  const { paths } = await loadSettings(root);
  let last: string | undefined;
  for (;;) {
    const { text, code } = await renderStatus(paths.stateDir, which, json);
    if (!watch) {
      (code === 0 ? process.stdout : process.stderr).write(text);
      return code;
    }
    if (text !== last) {
      process.stdout.write(`${last === undefined ? '' : '\n'}${new Date().toISOString()}\n${text}`);
      last = text;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function renderStatus(stateDir: string, which: string | undefined, json: boolean): Promise<{ text: string; code: number }> {
  const { resources, files } = await readAllStatus(stateDir);
  const selected = which ? resources.filter((r) => `${r.kind}/${r.name}` === which) : resources;
  if (which && selected.length === 0) return { text: `inbm: no status for ${which}\n`, code: 1 };
  if (json) return { text: `${JSON.stringify(which ? selected[0] : { resources: selected, files }, null, 2)}\n`, code: 0 };
  const rows = selected.map((r: ResourceStatus) => [
    `${r.kind}/${r.name}`,
    r.phase,
    `${r.observedGeneration}/${r.generation}`,
    r.history.at(-1)?.message ?? '',
  ]);
  for (const f of files) rows.push([`file ${f.file}`, f.result?.status === 200 ? 'Answered' : 'Refused', '-', f.result?.message ?? '']);
  const header = ['RESOURCE', 'PHASE', 'GEN', 'MESSAGE'];
  const widths = [0, 1, 2].map((i) => Math.max(...[header, ...rows].map((r) => r[i]!.length)));
  const text = [header, ...rows]
    .map(
      (r) =>
        `${r
          .slice(0, 3)
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')}  ${r[3]}\n`,
    )
    .join('');
  return { text, code: 0 };
}
