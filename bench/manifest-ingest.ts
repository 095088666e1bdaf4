/**
 * manifest-ingest: parse + validate + translate every shared fixture in a loop on one core.
 * Prints {"bench":"manifest-ingest","value":<manifests/s>,"unit":"manifests/s",...}.
 */
import { InbmError } from '../src/core/result.js';
import { manifestToDesired } from '../src/desired/translate/index.js';
import { loadFixtures } from '../test/fixtures.js';

const texts = loadFixtures().map((f) => f.text);
const seconds = Number(process.env.BENCH_SECONDS ?? 3);

function ingest(xml: string): void {
  try {
    manifestToDesired(xml, { source: 'bench' });
  } catch (err) {
    if (!(err instanceof InbmError)) throw err;
  }
}

// Warm up the JIT, then measure whole passes over the fixture set.
for (let i = 0; i < 200; i++) for (const t of texts) ingest(t);
let count = 0;
const started = process.hrtime.bigint();
const deadline = started + BigInt(seconds * 1e9);
while (process.hrtime.bigint() < deadline) {
  for (const t of texts) ingest(t);
  count += texts.length;
}
const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);

console.log(
  JSON.stringify({
    bench: 'manifest-ingest',
    value: Math.round(count / elapsed),
    unit: 'manifests/s',
    manifests: count,
    fixtures: texts.length,
    mean_bytes: Math.round(bytes / texts.length),
    seconds: Number(elapsed.toFixed(2)),
    peak_rss_mib: Number((process.resourceUsage().maxRSS / 1024).toFixed(1)),
    goal: '>= 10000',
  }),
);
