/**
 * The agent is SIGKILLed at every journalled step of a config change and of a restart, then
 * started again: it converges, the reboot command ran exactly once, and a reader looping over
 * the status files meanwhile never sees a partial file.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { until } from '../until.js';
import { drop, makeRoot, type Root, startAgent, stopAgent } from './harness.js';

/** Reads every status file in a loop, as `inbm status` would; any JSON parse failure is a partial file. */
function statusReader(roots: Root[]) {
  let reads = 0;
  let stop = false;
  const partial: string[] = [];
  const loop = (async () => {
    while (!stop) {
      for (const root of roots) {
        const base = join(root.state, 'status');
        for (const dir of await readdir(base).catch(() => [] as string[])) {
          for (const f of await readdir(join(base, dir)).catch(() => [] as string[])) {
            if (!f.endsWith('.json')) continue; // temp files are the writer's, never read (as inbm status does)
            const text = await readFile(join(base, dir, f), 'utf8').catch(() => undefined);
            if (text === undefined) continue;
            reads++;
            try {
              JSON.parse(text);
            } catch {
              partial.push(`${dir}/${f}: ${text.slice(0, 80)}`);
            }
          }
        }
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  return {
    roots,
    async end() {
      stop = true;
      await loop;
      return { reads, partial };
    },
  };
}

/** Temp files of atomic writes anywhere the agent writes state. */
async function leftovers(root: Root): Promise<string[]> {
  const dirs = [root.state, join(root.state, 'journal'), join(root.dir, 'etc')];
  for (const d of await readdir(join(root.state, 'status')).catch(() => [] as string[])) dirs.push(join(root.state, 'status', d));
  const found: string[] = [];
  for (const d of dirs)
    for (const f of await readdir(d).catch(() => [] as string[])) if (/^\.\d+\.\d+\.tmp$/.test(f)) found.push(join(d, f));
  return found;
}

const roots: Root[] = [];
const reader = statusReader(roots);
after(async () => {
  const { reads, partial } = await reader.end();
  assert.deepEqual(partial, [], 'a status file was read half-written');
  assert.ok(reads > 50, `the reader only managed ${reads} reads`);
});

const CONFIG = 'apiVersion: inbm.dev/v1alpha1\nkind: Configuration\nmetadata: {name: config-cache}\nspec:\n  set: {maxCacheSize: "177"}\n';
const statusOf = async (root: Root, kind: string, name: string) =>
  JSON.parse(await readFile(join(root.state, 'status', kind, `${name}.json`), 'utf8'));

describe('SIGKILL at every journalled step of a config change', () => {
  for (const point of ['write:before', 'write:started', 'write:ran', 'write:done']) {
    it(`killed at ${point}, restarted: converges`, async () => {
      const root = await makeRoot();
      roots.push(root);
      const doomed = await startAgent(root, { INBM_CRASH_AT: `Configuration/config-cache:${point}` });
      await drop(root, 'cache.yaml', CONFIG);
      assert.equal((await doomed.exited).signal, 'SIGKILL', 'the crash hook fired');
      const agent = await startAgent(root);
      const status = await until('ready', async () => {
        const s = await statusOf(root, 'Configuration', 'config-cache');
        return s.phase === 'Ready' ? s : undefined;
      });
      assert.equal(status.observedGeneration, 1);
      const conf = await readFile(join(root.dir, 'etc', 'intel_manageability.conf'), 'utf8');
      assert.match(conf, /<maxCacheSize>177<\/maxCacheSize>/);
      assert.equal(await stopAgent(agent), 0);
      assert.deepEqual(await leftovers(root), [], 'no temp file of the interrupted write is left');
    });
  }
});

describe('SIGKILL at every journalled step of a restart request', () => {
  for (const point of ['power:before', 'power:started', 'power:ran', 'power:done', 'complete']) {
    it(`killed at ${point}, restarted (and rebooted): the reboot command ran exactly once`, async () => {
      const root = await makeRoot('rebootGraceSeconds: 1\n');
      roots.push(root);
      const doomed = await startAgent(root, { INBM_CRASH_AT: `PowerAction/power:${point}` });
      await drop(root, 'restart.xml', '<manifest><type>cmd</type><cmd>restart</cmd></manifest>');
      const rebootedBy = async () => (await readFile(root.rebootLog, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).length;
      if (point === 'complete') {
        // This point is reached only after the reboot: let the command run, then "reboot".
        await until('reboot command', async () => ((await rebootedBy()) === 1 ? true : undefined));
        doomed.proc.kill('SIGKILL');
        await doomed.exited;
        const after = await startAgent(root, { INBM_CRASH_AT: 'PowerAction/power:complete' }, { ready: false });
        assert.equal((await after.exited).signal, 'SIGKILL');
      } else {
        assert.equal((await doomed.exited).signal, 'SIGKILL', 'the crash hook fired');
      }
      // Until the command has run, a restarted agent on the same boot runs it (after the grace).
      if ((await rebootedBy()) === 0) {
        const same = await startAgent(root);
        await until('reboot command', async () => ((await rebootedBy()) === 1 ? true : undefined));
        same.proc.kill('SIGKILL'); // the machine goes down
        await same.exited;
      }
      const agent = await startAgent(root);
      const status = await until('verdict', async () => {
        const s = await statusOf(root, 'PowerAction', 'power');
        return s.phase === 'Ready' ? s : undefined;
      });
      assert.equal(status.history.at(-1).message, 'Reboot SUCCESSFUL.');
      assert.equal(await stopAgent(agent), 0);
      assert.equal(await rebootedBy(), 1, 'the reboot command ran exactly once');
    });
  }
});
