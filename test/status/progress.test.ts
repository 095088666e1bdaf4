/** Progress files: throttled writes, the last one always written, gone once cleared; the CLI's line and bar. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { progressBar, progressLine } from '../../src/cli/progress-bar.js';
import { ProgressWriter, readProgress } from '../../src/status/progress.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const settle = () => new Promise((r) => setTimeout(r, 50));

describe('ProgressWriter', () => {
  it('writes the first update, drops those within 250 ms, always writes the finishing one; clear removes the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inbm-progress-'));
    dirs.push(dir);
    const w = new ProgressWriter(dir);
    w.report('ContainerImage/web', 'fetch', { bytes: 10, total: 100, rate: 5 });
    await settle();
    w.report('ContainerImage/web', 'fetch', { bytes: 20, total: 100, rate: 5 });
    await settle();
    assert.equal((await readProgress(dir, 'ContainerImage/web'))?.bytes, 10, 'the second came too soon');
    w.report('ContainerImage/web', 'fetch', { bytes: 100, total: 100, rate: 5 });
    await settle();
    const last = await readProgress(dir, 'ContainerImage/web');
    assert.deepEqual(
      { ...last, updatedAt: undefined },
      { key: 'ContainerImage/web', step: 'fetch', bytes: 100, total: 100, rate: 5, updatedAt: undefined },
    );
    await w.clear('ContainerImage/web');
    assert.equal(await readProgress(dir, 'ContainerImage/web'), undefined);
    assert.deepEqual(await readdir(join(dir, 'status', 'progress')), [], 'no temp file left');
  });

  it('reset at start removes what a stopped agent left', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inbm-progress-'));
    dirs.push(dir);
    const w = new ProgressWriter(dir);
    w.report('ComposeStack/s', 'fetch', { bytes: 1, rate: 1 });
    await settle();
    assert.ok(await readProgress(dir, 'ComposeStack/s'));
    await new ProgressWriter(dir).reset();
    assert.equal(await readProgress(dir, 'ComposeStack/s'), undefined);
  });
});

describe('progress line and bar', () => {
  const p = (bytes: number, total?: number) => ({
    key: 'ContainerImage/web',
    step: 'fetch',
    bytes,
    rate: 2 * 1024 ** 2,
    updatedAt: '',
    ...(total ? { total } : {}),
  });
  it('with a total: bar, percentage, sizes and rate; without: bytes and rate', () => {
    assert.equal(progressLine(p(1024 ** 2, 4 * 1024 ** 2), 8), 'ContainerImage/web fetch [##......] 25% 1.0 MiB of 4.0 MiB 2.0 MiB/s');
    assert.equal(progressLine(p(3 * 1024 ** 2)), 'ContainerImage/web fetch: 3.0 MiB 2.0 MiB/s');
  });
  it('not a terminal: one line per tenth; a terminal: redrawn in place and wiped at the end', () => {
    const log: string[] = [];
    const plain = progressBar({ write: (s) => log.push(s) });
    for (const b of [1, 5, 12, 15, 31, 100]) plain.show(p(b, 100));
    plain.end();
    assert.deepEqual(
      log.map((l) => /(\d+)%/.exec(l)?.[1]),
      ['1', '12', '31', '100'],
    );
    assert.ok(log.every((l) => l.startsWith('inbm: ') && l.endsWith('\n')));
    const tty: string[] = [];
    const bar = progressBar({ isTTY: true, columns: 60, write: (s) => tty.push(s) });
    bar.show(p(10, 100));
    bar.show(p(20, 100));
    bar.end();
    assert.equal(tty.length, 3);
    assert.ok(tty.slice(0, 2).every((l) => l.startsWith('\r') && l.endsWith('\x1b[K') && l.length <= 60 + 4));
    assert.equal(tty[2], '\r\x1b[K');
  });
});
