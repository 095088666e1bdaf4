/**
 * Telemetry through a real agent and a real Mosquitto (TLS client certificates, the ACL of
 * `inbm provision`): bundles arrive on manageability/telemetry at the configured publish
 * interval, and a config set_element manifest that changes the interval takes effect in the
 * running agent. The agent runs with `telemetryTimeScale: 0.01`, so the conf's 120 s and 480 s
 * are 1.2 s and 4.8 s; the assertions tell which interval is in force, not how exact the clock is.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { connectAsync } from 'mqtt';
import { until } from '../until.js';
import { makeRoot, startAgent, stopAgent } from './harness.js';
import { CLIENTS, provisionBroker, publish } from './mosquitto.js';

const REQUEST = 'manageability/request/install';
const RESPONSE = 'manageability/response';
const TELEMETRY = 'manageability/telemetry';

const setManifest = (path: string) =>
  '<?xml version="1.0" encoding="UTF-8"?><manifest><type>config</type><config><cmd>set_element</cmd>' +
  `<configtype><set><path>${path}</path></set></configtype></config></manifest>`;

interface Bundle {
  at: number;
  timestamp: number;
}

/** Consecutive arrivals closer than this belong to one publish (one drain of the cache). */
const SAME_PUBLISH_MS = 150;

/** Arrivals grouped into publishes: a publish sends every bundle collected since the last one, back to back. */
function publishes(bundles: Bundle[]): Bundle[][] {
  const out: Bundle[][] = [];
  for (const b of bundles) {
    const last = out.at(-1);
    if (last && b.at - last.at(-1)!.at < SAME_PUBLISH_MS) last.push(b);
    else out.push([b]);
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const gaps = (ps: Bundle[][]) => ps.slice(1).map((p, i) => (p[0]!.at - ps[i]![0]!.at) / 1000);

describe('telemetry over Mosquitto (TLS, client certificates, ACL)', () => {
  it('arrives at the configured publish interval, and a config manifest changes it without a restart', async () => {
    const root = await makeRoot('telemetryTimeScale: 0.01\n');
    const broker = await provisionBroker(root);
    await broker.start();
    // No engine: container stats would otherwise ask the shared Docker engine every collection.
    const agent = await startAgent(root, { DOCKER_HOST: `unix://${join(root.dir, 'no-docker.sock')}` });
    await until('agent subscribed', async () => (agent.output().includes('mqtt subscribed') ? true : undefined));

    // The cloud adapter's certificate may read telemetry and results (the ACL).
    const dir = broker.dir;
    const cloud = await connectAsync(`mqtts://127.0.0.1:${broker.port}`, {
      clientId: 'it-telemetry-reader',
      ca: await readFile(join(dir, 'ca.crt')),
      cert: await readFile(join(dir, `${CLIENTS.cloud}.crt`)),
      key: await readFile(join(dir, `${CLIENTS.cloud}.key`)),
      reconnectPeriod: 0,
    });
    const bundles: Bundle[] = [];
    const results: Array<{ at: number; status: number; message: string }> = [];
    let statics = 0;
    cloud.on('message', (topic, payload) => {
      const at = Date.now();
      if (topic === RESPONSE) {
        results.push({ at, ...(JSON.parse(payload.toString()) as { status: number; message: string }) });
        return;
      }
      const e = JSON.parse(payload.toString()) as { type: string; timestamp: number; values: Record<string, unknown> };
      if (e.type === 'static_telemetry') statics++;
      // The software BOM goes out on its own schedule (swBomIntervalHours), not the publish interval.
      else if (!('softwareBOM' in e.values)) bundles.push({ at, timestamp: e.timestamp });
    });
    await cloud.subscribeAsync([TELEMETRY, RESPONSE], { qos: 1 });

    const set = async (path: string) => {
      const file = join(root.dir, 'set.xml');
      await writeFile(file, setManifest(path));
      const seen = results.length;
      assert.equal(await publish(broker.as(CLIENTS.cli), REQUEST, { file }), 0);
      const r = await until('set result', async () => results[seen]);
      assert.equal(r.status, 200, r.message);
      return r.at;
    };

    // Collect every 30 s (0.3 s), publish every 120 s (1.2 s): publishes of 4 bundles, 1.2 s apart.
    const fastFrom = await set('collectionIntervalSeconds:30;publishIntervalSeconds:120');
    // A publish is complete once the next one has begun. The first two after the change may be
    // short: the cadence carries over what the old intervals had counted since the last publish.
    await until(
      'publishes at 120 s',
      async () => (publishes(bundles.filter((b) => b.at > fastFrom)).length >= 7 ? true : undefined),
      20_000,
    );
    const fast = publishes(bundles.filter((b) => b.at > fastFrom)).slice(2, 6);

    // Publish every 480 s (4.8 s), same agent process: publishes of 16 bundles, 4.8 s apart.
    const slowFrom = await set('publishIntervalSeconds:480');
    await until(
      'three publishes at 480 s',
      async () => (publishes(bundles.filter((b) => b.at > slowFrom)).length >= 4 ? true : undefined),
      40_000,
    );
    const slow = publishes(bundles.filter((b) => b.at > slowFrom)).slice(0, 3);

    const fastGaps = gaps(fast);
    const slowGaps = gaps(slow);
    process.stderr.write(`# publish gaps at 120 s ×0.01: ${fastGaps.join(', ')} s; at 480 s ×0.01: ${slowGaps.join(', ')} s\n`);
    // Which interval is in force: the cadence counts collections, so a publish carries interval/collection bundles.
    assert.deepEqual(
      fast.slice(1).map((p) => p.length),
      [4, 4, 4],
      'publishIntervalSeconds 120 / collectionIntervalSeconds 30',
    );
    assert.deepEqual(
      slow.slice(1).map((p) => p.length),
      [16, 16],
      'publishIntervalSeconds 480 / collectionIntervalSeconds 30',
    );
    // And the clock agrees, with room for a loaded machine: 1.2 s is well under 3 s, 4.8 s well over.
    assert.ok(median(fastGaps) < 3, `gaps at 120 s: ${fastGaps}`);
    assert.ok(median(slowGaps) > 3, `gaps at 480 s: ${slowGaps}`);
    assert.ok(median(slowGaps) > 2.5 * median(fastGaps), `${slowGaps} vs ${fastGaps}`);
    // Bundles inside a publish were collected 0.3 s apart (their own timestamps).
    const collected = slow[1]!.slice(1).map((b, i) => b.timestamp - slow[1]![i]!.timestamp);
    assert.ok(median(collected) > 0.2 && median(collected) < 1, `collection gaps ${collected}`);

    // No restart: the same process, started once, sent the static set once.
    assert.equal(agent.proc.exitCode, null);
    assert.equal(agent.output().split('agent ready').length - 1, 1);
    assert.ok(statics <= 1, 'the static set goes out once, at start');
    assert.match(await readFile(join(root.dir, 'etc', 'intel_manageability.conf'), 'utf8'), /<publishIntervalSeconds>480</);

    await cloud.endAsync();
    assert.equal(await stopAgent(agent), 0);
    await broker.stop();
  });
});
