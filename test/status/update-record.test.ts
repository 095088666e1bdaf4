import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readUpdateRecord, updateRecordPath, writeUpdateRecord } from '../../src/status/update-record.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inbm-update-record-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('update record', () => {
  it('is one JSON line with exactly the reference keys, in its order, the time in UTC to the second', async () => {
    const now = new Date('2026-03-04T05:06:07.890Z');
    await writeUpdateRecord(dir, { status: 'PENDING', type: 'pota', metadata: '{"requestId":"r1"}' }, now);
    const text = await readFile(join(dir, 'update-status.json'), 'utf8');
    assert.equal(
      text,
      '{"Status":"PENDING","Type":"pota","Time":"2026-03-04 05:06:07","Metadata":"{\\"requestId\\":\\"r1\\"}","Error":"","Version":"v1"}\n',
    );
    assert.deepEqual(Object.keys(JSON.parse(text)), ['Status', 'Type', 'Time', 'Metadata', 'Error', 'Version']);
  });

  it('a later write replaces the record whole: the error of a failure, nothing of the earlier one, no temp file', async () => {
    await writeUpdateRecord(dir, { status: 'PENDING', type: 'sota', metadata: 'm1' }, new Date('2026-01-01T00:00:00Z'));
    await writeUpdateRecord(
      dir,
      { status: 'FAIL', type: 'sota', metadata: 'm2', error: 'apt failed' },
      new Date('2026-12-31T23:59:59.999Z'),
    );
    assert.deepEqual(await readUpdateRecord(dir), {
      Status: 'FAIL',
      Type: 'sota',
      Time: '2026-12-31 23:59:59',
      Metadata: 'm2',
      Error: 'apt failed',
      Version: 'v1',
    });
    assert.deepEqual(await readdir(dir), ['update-status.json']);
  });

  it('lives at <state>/update-status.json and reads back as nothing when absent', async () => {
    assert.equal(updateRecordPath('/var/lib/inbm'), '/var/lib/inbm/update-status.json');
    assert.equal(await readUpdateRecord(join(dir, 'missing')), undefined);
  });

  it('every status and type the agent writes round-trips unchanged', async () => {
    for (const type of ['aota', 'fota', 'sota', 'pota'] as const)
      for (const status of ['SUCCESS', 'FAIL', 'PENDING', 'NO_UPDATE_AVAILABLE'] as const) {
        await writeUpdateRecord(dir, { status, type, metadata: '' }, new Date(0));
        assert.deepEqual(await readUpdateRecord(dir), {
          Status: status,
          Type: type,
          Time: '1970-01-01 00:00:00',
          Metadata: '',
          Error: '',
          Version: 'v1',
        });
      }
  });
});
