import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateInput } from '../../src/cli/validate.js';
import { InbmError } from '../../src/core/result.js';
import { translate } from '../../src/desired/translate/index.js';
import { parseManifest } from '../../src/manifest/parse.js';
import { expectedValidateStatus, loadFixtures } from '../fixtures.js';

const fixtures = loadFixtures();

describe('every shared INBM fixture gets the outcome its README gives', () => {
  it('finds the fixtures', () => assert.ok(fixtures.length >= 80, `only ${fixtures.length} fixtures`));
  for (const f of fixtures) {
    const expected = expectedValidateStatus(f);
    it(`${f.dir}/${f.file} → ${expected}`, () => {
      const result = validateInput({ text: f.text, origin: f.file, format: 'xml' });
      assert.equal(result.status, expected, result.message);
      assert.equal(result.job_id, '');
      if (expected === 300) assert.match(result.message, /^FAILED TO PARSE\/VALIDATE MANIFEST: /);
    });
  }
});

describe('invalid fixtures the reference refuses only when installing (400)', () => {
  const later = fixtures.filter((f) => f.dir === 'invalid' && expectedValidateStatus(f) === 200);
  it('are exactly the README rows answered 400', () => {
    assert.deepEqual(
      later.map((f) => f.file),
      [
        'config-get-unknown-key.xml',
        'config-load-fetch-unreachable.xml',
        'config-set-bad-value.xml',
        'config-set-json-path.xml',
        'config-set-quoted.xml',
        'fota-nonmatching-product.xml',
      ],
    );
  });
  it('double quotes in a config path fail at translation with 400, naming the rule', () => {
    for (const file of ['config-set-quoted.xml', 'config-set-json-path.xml']) {
      const f = later.find((x) => x.file === file)!;
      assert.throws(
        () => translate(parseManifest(f.text), { source: 'test' }),
        (e: unknown) => e instanceof InbmError && e.status === 400 && /double quotes/.test(e.reason),
      );
    }
  });
  it('the rest need the device (config file, platform, network) and so translate to documents', () => {
    for (const file of ['config-set-bad-value.xml', 'fota-nonmatching-product.xml', 'config-load-fetch-unreachable.xml']) {
      const t = translate(parseManifest(later.find((x) => x.file === file)!.text), { source: 'test' });
      assert.equal(t.type, 'documents', file);
    }
    const get = translate(parseManifest(later.find((x) => x.file === 'config-get-unknown-key.xml')!.text), { source: 'test' });
    assert.equal(get.type, 'query');
  });
});

describe('the reference accepts but cannot install', () => {
  it('aota-cloudadapter-generated validates (200) and says the install will fail', () => {
    const f = fixtures.find((x) => x.file === 'aota-cloudadapter-generated.xml')!;
    const result = validateInput({ text: f.text, origin: f.file, format: 'xml' });
    assert.equal(result.status, 200);
    assert.match(result.message, /install would fail: FAILED TO INSTALL: AOTA docker up: unsupported/);
  });
});

describe('messages never echo what a DOCTYPE would pull in', () => {
  it('xxe-doctype is refused as Forbidden without file contents', () => {
    const f = fixtures.find((x) => x.file === 'xxe-doctype.xml')!;
    const result = validateInput({ text: f.text, origin: f.file, format: 'xml' });
    assert.equal(result.status, 300);
    assert.match(result.message, /Forbidden/);
    assert.doesNotMatch(result.message, /passwd|root:/);
  });
});
