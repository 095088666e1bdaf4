/** collectGarbage: a full collection without --expose-gc on the command line. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { collectGarbage } from '../../src/core/trim.js';

it('frees what nothing references any more, also when called again', () => {
  for (let round = 0; round < 2; round++) {
    let garbage: number[][] | undefined = Array.from({ length: 200 }, () => Array.from({ length: 20_000 }, (_, i) => i + 0.5));
    const held = process.memoryUsage().heapUsed;
    assert.ok(garbage.length === 200);
    garbage = undefined;
    collectGarbage();
    const freed = held - process.memoryUsage().heapUsed;
    // 200 × 20,000 doubles is ~30 MiB of heap.
    assert.ok(freed > 20 * 1024 ** 2, `freed ${(freed / 1024 ** 2).toFixed(1)} MiB in round ${round}`);
  }
});
