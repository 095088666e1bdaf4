import assert from 'node:assert/strict';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { formatResult } from '../../src/cloud/inbm-topics.js';
import { matches } from '../../src/cloud/mqtt-link.js';
import { Outbox, type OutboxMessage } from '../../src/cloud/outbox.js';

const msg = (box: Outbox, text: string, seq = box.nextSeq()): OutboxMessage => ({
  seq,
  topic: 't',
  payload: Buffer.from(text),
  qos: 1,
  retain: false,
});

async function drain(box: Outbox): Promise<string[]> {
  const out: string[] = [];
  for (let m = await box.peek(); m; m = await box.peek()) {
    out.push(m.payload.toString());
    await box.remove(m.seq);
  }
  return out;
}

it('keeps messages in publish order across a reopen (a restart of the agent)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'inbm-outbox-'));
  const box = await Outbox.open(dir, () => 100);
  for (const t of ['a', 'b', 'c']) await box.put(msg(box, t));
  const again = await Outbox.open(dir, () => 100);
  assert.equal(again.size, 3);
  // Numbers continue after the ones on disk, so new messages queue behind the old.
  await again.put(msg(again, 'd'));
  assert.deepEqual(await drain(again), ['a', 'b', 'c', 'd']);
  assert.deepEqual(await readdir(dir), []);
});

it('a message that failed in flight goes back before later ones, and only once', async () => {
  const box = await Outbox.open(await mkdtemp(join(tmpdir(), 'inbm-outbox-')), () => 100);
  const early = msg(box, 'early');
  await box.put(msg(box, 'later'));
  await box.put(early);
  await box.put(early);
  assert.deepEqual(await drain(box), ['early', 'later']);
});

it('holds at most the limit, dropping the oldest', async () => {
  let limit = 3;
  let dropped = 0;
  const box = await Outbox.open(
    await mkdtemp(join(tmpdir(), 'inbm-outbox-')),
    () => limit,
    (n) => (dropped += n),
  );
  for (const t of ['1', '2', '3', '4', '5']) await box.put(msg(box, t));
  assert.equal(dropped, 2);
  limit = 1;
  await box.put(msg(box, '6'));
  assert.deepEqual(await drain(box), ['6']);
});

it('a write cut short by a crash leaves no message behind', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'inbm-outbox-'));
  // What writeFileAtomic leaves when the process dies before its rename.
  await writeFile(join(dir, '.4242.1.tmp'), '{"topic":');
  await writeFile(join(dir, '0000000000000007.json'), JSON.stringify({ topic: 'x', payload: 'aGk=', qos: 1, retain: true }));
  const box = await Outbox.open(dir, () => 100);
  const m = await box.peek();
  assert.deepEqual({ ...m, payload: m?.payload.toString() }, { seq: 7, topic: 'x', payload: 'hi', qos: 1, retain: true });
  assert.deepEqual((await readdir(dir)).sort(), ['0000000000000007.json']);
});

it('formats results as the reference json.dumps does', () => {
  assert.equal(
    formatResult({ status: 200, message: 'maxCacheSize:100', job_id: '' }),
    '{"status": 200, "message": "maxCacheSize:100", "job_id": ""}',
  );
  assert.equal(
    formatResult({ status: 400, message: 'naïve "quoted"\n', job_id: 'j-1' }),
    '{"status": 400, "message": "na\\u00efve \\"quoted\\"\\n", "job_id": "j-1"}',
  );
});

it('matches MQTT topic filters', () => {
  assert.ok(matches('manageability/request/#', 'manageability/request/install'));
  assert.ok(matches('manageability/request/#', 'manageability/request/schedule/abc'));
  assert.ok(matches('v1/devices/me/rpc/request/+', 'v1/devices/me/rpc/request/7'));
  assert.ok(!matches('v1/devices/me/rpc/request/+', 'v1/devices/me/rpc/request/7/x'));
  assert.ok(!matches('manageability/response', 'manageability/response/1'));
  assert.ok(matches('a/+/c', 'a/b/c'));
  assert.ok(!matches('a/+/c', 'a/b/d'));
});
