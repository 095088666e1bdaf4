/**
 * Robustness: whatever arrives, the parser answers with our error type or a manifest — never
 * another exception, never a hang. Inputs are mutations of the real fixtures plus raw noise.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { validateInput } from '../../src/cli/validate.js';
import { InbmError } from '../../src/core/result.js';
import { translate } from '../../src/desired/translate/index.js';
import { parseManifest } from '../../src/manifest/parse.js';
import { loadFixtures } from '../fixtures.js';

const seeds = loadFixtures().map((f) => f.text);
const RUNS = Number(process.env.INBM_PROPERTY_RUNS ?? 20_000);
const SLOW_MS = 1000;

const TOKENS = [
  '<',
  '>',
  '</',
  '/>',
  '<![CDATA[',
  ']]>',
  '<!--',
  '-->',
  '<!DOCTYPE x>',
  '&amp;',
  '&',
  '&#x41;',
  '"',
  "'",
  '=',
  ' ',
  '\n',
  'ota',
  'aota',
  'fota',
  'sota',
  'pota',
  'manifest',
  'type',
  'cmd',
  'header',
  'repo',
  'remote',
  'local',
  'config',
  'path',
  'fetch',
  'https://',
  '1.0',
  '2024-01-01',
  '\u0000',
  '\uD800',
  'é',
];

/** A mutation: replace a slice of a fixture by tokens, delete a slice, duplicate one, or swap case. */
const mutated = fc
  .tuple(
    fc.constantFrom(...seeds),
    fc.array(
      fc.record({
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        len: fc.nat(40),
        op: fc.constantFrom('replace', 'delete', 'duplicate', 'upper'),
        insert: fc.array(fc.constantFrom(...TOKENS), { maxLength: 4 }).map((a) => a.join('')),
      }),
      { minLength: 1, maxLength: 4 },
    ),
  )
  .map(([seed, edits]) => {
    let s = seed;
    for (const e of edits) {
      const i = Math.floor(e.at * s.length);
      const cut = s.slice(i, i + e.len);
      const rest = s.slice(i + e.len);
      s =
        s.slice(0, i) +
        (e.op === 'replace' ? e.insert : e.op === 'delete' ? '' : e.op === 'duplicate' ? cut + cut : cut.toUpperCase()) +
        rest;
    }
    return s;
  });

const noise = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.array(fc.constantFrom(...TOKENS), { maxLength: 60 }).map((a) => a.join('')),
);

function check(xml: string): void {
  const started = performance.now();
  try {
    const parsed = parseManifest(xml);
    // What parses must also translate to documents or refuse with a result code of ours.
    try {
      translate(parsed, { source: 'property' });
    } catch (err) {
      if (!(err instanceof InbmError)) throw err;
    }
  } catch (err) {
    if (!(err instanceof InbmError)) throw new Error(`non-InbmError thrown: ${String(err)}`);
  }
  const status = validateInput({ text: xml, origin: 'p', format: 'xml' }).status;
  assert.ok(status === 200 || status === 300, `status ${status}`);
  const took = performance.now() - started;
  assert.ok(took < SLOW_MS, `one input took ${took.toFixed(0)} ms`);
}

describe('parser robustness (fast-check)', () => {
  it(`${RUNS} mutated fixtures: only InbmError, only 200/300, none over ${SLOW_MS} ms`, () => {
    fc.assert(fc.property(mutated, check), { numRuns: RUNS, seed: Number(process.env.INBM_PROPERTY_SEED ?? Date.now() % 2 ** 31) });
  });
  it(`${Math.ceil(RUNS / 4)} noise inputs behave the same`, () => {
    fc.assert(fc.property(noise, check), { numRuns: Math.ceil(RUNS / 4) });
  });
  it('mutations do reach both outcomes (the generator is not trivially all-valid or all-invalid)', () => {
    let valid = 0;
    let invalid = 0;
    for (const xml of fc.sample(mutated, { numRuns: 500, seed: 42 })) {
      if (validateInput({ text: xml, origin: 'p', format: 'xml' }).status === 200) valid++;
      else invalid++;
    }
    assert.ok(valid > 10 && invalid > 10, `valid ${valid}, invalid ${invalid}`);
  });
});
