/** A hand edit of the conf file between plan and write is never overwritten by a stale plan. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, it } from 'node:test';
import { createLogger } from '../../../src/core/log.js';
import { InbmError } from '../../../src/core/result.js';
import { validateDocument } from '../../../src/desired/document.js';
import type { DocumentOf } from '../../../src/desired/kinds/index.js';
import { configurationReconciler, ensureConfFile } from '../../../src/reconcilers/configuration/index.js';

const dir = await mkdtemp(join(tmpdir(), 'inbm-conf-edit-'));
after(() => rm(dir, { recursive: true, force: true }));
const log = createLogger('fatal', new Writable({ write: (_c, _e, cb) => cb() }));
const journal = { bootId: 'b', record: undefined, completed: () => undefined, step: () => undefined, boots: 0 };

it('refuses (retryably) to write a plan computed from a file that changed since', async () => {
  const confFile = join(dir, 'intel_manageability.conf');
  await ensureConfFile(confFile);
  const r = configurationReconciler({ confFile, cacheDir: dir });
  const doc = validateDocument({
    apiVersion: 'inbm.dev/v1alpha1',
    kind: 'Configuration',
    metadata: { name: 'c' },
    spec: { set: { maxCacheSize: '150' } },
  }) as DocumentOf<'Configuration'>;
  const plan = r.plan(doc, await r.observe(doc, { log, journal }), Date.now());
  assert.equal(plan.steps.length, 1);

  const edited = (await readFile(confFile, 'utf8')).replace('<dbs>WARN</dbs>', '<dbs>OFF</dbs>');
  await writeFile(confFile, edited);
  await assert.rejects(
    r.execute(plan.steps[0]!, doc, { log, signal: new AbortController().signal }),
    (e: unknown) => e instanceof InbmError && e.retryable && /changed/.test(e.reason),
  );
  assert.equal(await readFile(confFile, 'utf8'), edited, 'the hand edit is still there');

  // Planned again from the edited file, the write keeps the edit and adds the change.
  const again = r.plan(doc, await r.observe(doc, { log, journal }), Date.now());
  await r.execute(again.steps[0]!, doc, { log, signal: new AbortController().signal });
  const text = await readFile(confFile, 'utf8');
  assert.match(text, /<dbs>OFF<\/dbs>/);
  assert.match(text, /<maxCacheSize>150<\/maxCacheSize>/);
});
