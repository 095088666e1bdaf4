import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { sweepTempFiles, writeFileAtomic } from '../../src/core/atomic.js';

it('writeFileAtomic replaces the whole file, with the given mode, and leaves no temp file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'inbm-atomic-'));
  const path = join(dir, 'sub', 'state.json');
  await writeFileAtomic(path, 'first');
  await writeFileAtomic(path, 'second', 0o600);
  assert.equal(await readFile(path, 'utf8'), 'second');
  assert.deepEqual(await readdir(join(dir, 'sub')), ['state.json']);
  // rename keeps the new inode's mode: the file is the temp file that was written 0600
  assert.equal((await stat(path)).mode & 0o777, 0o600);
});

it('sweepTempFiles removes only the temp files an interrupted write left', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'inbm-sweep-'));
  await writeFile(join(dir, '.4242.7.tmp'), 'half');
  await writeFile(join(dir, '.keep.tmp'), 'someone else');
  await writeFile(join(dir, 'status.json'), '{}');
  assert.equal(await sweepTempFiles([dir, join(dir, 'missing')]), 1);
  assert.deepEqual((await readdir(dir)).sort(), ['.keep.tmp', 'status.json']);
});
