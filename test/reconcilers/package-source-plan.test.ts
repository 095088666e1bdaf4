/** planPackageSource is pure: a document and the files' text in, typed steps and the answer out. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DocumentOf } from '../../src/desired/kinds/index.js';
import { planPackageSource, prunePackageSource, type SourceObserved } from '../../src/reconcilers/package-source/plan.js';

type Doc = DocumentOf<'PackageSource'>;
type Spec = Doc['spec'];

const paths = { sourcesList: '/r/etc/apt/sources.list', sourcesDir: '/r/etc/apt/sources.list.d', keyringDir: '/r/usr/share/keyrings' };
const doc = (spec: Partial<Spec>, requestId: string | null = 'req-1'): Doc => ({
  apiVersion: 'inbm.dev/v1alpha1',
  kind: 'PackageSource',
  metadata: { name: 'src', generation: 1, ...(requestId ? { annotations: { 'inbm.dev/request-id': requestId } } : {}) },
  spec: { target: 'application', ensure: 'present', lines: [], ...spec },
});
const seen = (o: Partial<SourceObserved> = {}): SourceObserved => ({ keys: [], ...o });
const SEC = 'deb http://archive.ubuntu.com/ubuntu/ jammy-security main restricted';
const UNI = 'deb http://archive.ubuntu.com/ubuntu/ jammy-security universe';
const CHROME = 'deb [arch=amd64] http://dl.google.com/linux/chrome/deb/ stable main';
const types = (p: { steps: Array<{ type: string }> }) => p.steps.map((s) => s.type);

describe('planPackageSource: os', () => {
  it('add writes sources.list with the new lines and answers SUCCESS once', () => {
    const p = planPackageSource(doc({ target: 'os', lines: [SEC, UNI] }), seen({ text: `${SEC}\n` }), paths);
    assert.deepEqual(p.steps, [
      { id: 'write', type: 'write', path: paths.sourcesList, text: `${SEC}\n${UNI}\n`, description: `add lines to ${paths.sourcesList}` },
    ]);
    assert.deepEqual(p.complete, { requestId: 'req-1', result: { status: 200, message: 'SUCCESS', job_id: '' } });
    assert.equal(p.outcome.phase, 'Ready');
  });
  it('a manifest asking for what is there is answered without a step', () => {
    const p = planPackageSource(doc({ target: 'os', lines: [SEC] }), seen({ text: `${SEC}\n` }), paths);
    assert.deepEqual(p.steps, []);
    assert.equal(p.complete?.result.message, 'SUCCESS');
  });
  it('a standing document that holds is quiet: no step, no result', () => {
    const p = planPackageSource(doc({ target: 'os', lines: [SEC] }, null), seen({ text: `${SEC}\n` }), paths);
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.result, undefined);
    assert.equal(p.outcome.reason, 'UpToDate');
  });
  it('remove takes out the matching lines only', () => {
    const p = planPackageSource(doc({ target: 'os', ensure: 'absent', lines: [UNI] }), seen({ text: `# c\n${SEC}\n${UNI}\n` }), paths);
    assert.deepEqual(
      p.steps.map((s) => (s.type === 'write' ? s.text : '')),
      [`# c\n${SEC}\n`],
    );
  });
  it('update (exact) makes the file these lines and no others', () => {
    const p = planPackageSource(doc({ target: 'os', ensure: 'exact', lines: [UNI] }), seen({ text: `# c\n${SEC}\n${UNI}\n` }), paths);
    assert.deepEqual(
      p.steps.map((s) => (s.type === 'write' ? s.text : '')),
      [`${UNI}\n`],
    );
    assert.deepEqual(types(planPackageSource(doc({ target: 'os', ensure: 'exact', lines: [UNI] }), seen({ text: `${UNI}\n` }), paths)), []);
  });
  it('a malformed line is refused with 400 naming it, and nothing is written', () => {
    const p = planPackageSource(doc({ target: 'os', lines: [SEC, 'deb http://x/ stable'] }), seen({ text: '' }), paths);
    assert.deepEqual(p.steps, []);
    assert.equal(p.outcome.phase, 'Stalled');
    assert.equal(p.complete?.result.status, 400);
    assert.match(p.complete!.result.message, /Error changing sources files: lines\[1\]: suite "stable" needs at least one component/);
  });
  it('a key or file name on an os source is refused', () => {
    assert.match(
      planPackageSource(doc({ target: 'os', lines: [SEC], gpgKey: { name: 'k.gpg' } }), seen(), paths).outcome.message,
      /gpgKey: only application sources/,
    );
  });
  it('an answered request is not planned again', () => {
    const p = planPackageSource(
      doc({ target: 'os', lines: [SEC] }),
      seen({ text: '', completed: { status: 200, message: 'SUCCESS' } }),
      paths,
    );
    assert.deepEqual(p.steps, []);
    assert.equal(p.complete, undefined);
    assert.equal(p.outcome.phase, 'Ready');
  });
});

describe('planPackageSource: application', () => {
  const chrome = (spec: Partial<Spec> = {}, requestId: string | null = 'req-1') =>
    doc(
      { filename: 'google-chrome.list', lines: [CHROME], gpgKey: { url: 'http://127.0.0.1/k.pub', name: 'google-chrome.gpg' }, ...spec },
      requestId,
    );
  it('add: the key first, then the file', () => {
    const p = planPackageSource(chrome(), seen(), paths);
    assert.deepEqual(types(p), ['fetch-key', 'write']);
    assert.deepEqual(p.steps[1], {
      id: 'write',
      type: 'write',
      path: `${paths.sourcesDir}/google-chrome.list`,
      text: `${CHROME}\n`,
      description: `write ${paths.sourcesDir}/google-chrome.list`,
    });
  });
  it('a new manifest fetches its key again (it may have changed); a standing document only when it is missing', () => {
    assert.deepEqual(types(planPackageSource(chrome({}, 'req-2'), seen({ text: `${CHROME}\n`, keys: ['google-chrome.gpg'] }), paths)), [
      'fetch-key',
    ]);
    assert.deepEqual(types(planPackageSource(chrome({}, null), seen({ text: `${CHROME}\n`, keys: ['google-chrome.gpg'] }), paths)), []);
    assert.deepEqual(types(planPackageSource(chrome({}, null), seen({ text: `${CHROME}\n` }), paths)), ['fetch-key']);
  });
  it('a key named without a url must already be there', () => {
    const p = planPackageSource(chrome({ gpgKey: { name: 'google-chrome.gpg' } }), seen(), paths);
    assert.match(p.outcome.message, /gpgKey.url is needed: key google-chrome.gpg is not in/);
  });
  it('a .sources file is written in deb822', () => {
    const p = planPackageSource(chrome({ filename: 'chrome.sources', gpgKey: undefined }), seen(), paths);
    assert.deepEqual(
      p.steps.map((s) => (s.type === 'write' ? s.text : '')),
      ['Types: deb\nURIs: http://dl.google.com/linux/chrome/deb/\nSuites: stable\nComponents: main\nArchitectures: amd64\n'],
    );
  });
  for (const [field, spec, rule] of [
    ['filename', { filename: '../evil.list' }, 'must not contain a path separator'],
    ['filename', { filename: '..list' }, 'must not contain ".."'],
    ['filename', { filename: 'a\\b.list' }, 'must not contain a path separator'],
    ['filename', { filename: '.hidden.list' }, 'must not start with "."'],
    ['filename', { filename: undefined }, 'is required'],
    ['filename', { filename: 'notes.txt' }, 'must end in .list or .sources'],
    ['gpgKey.name', { gpgKey: { url: 'http://127.0.0.1/k', name: '../../etc/shadow' } }, 'must not contain a path separator'],
  ] as const) {
    it(`${field} ${JSON.stringify(spec)} is refused with 400 naming the field`, () => {
      const p = planPackageSource(chrome(spec as Partial<Spec>, 'r'), seen(), paths);
      assert.deepEqual(p.steps, []);
      assert.equal(p.complete?.result.status, 400);
      assert.match(p.complete!.result.message, new RegExp(`Error changing sources files: ${field.replace('.', '\\.')} .*${rule}`));
    });
  }
  it('remove deletes the file and the key (either twin that is there)', () => {
    const p = planPackageSource(
      doc({ ensure: 'absent', filename: 'google-chrome.list', gpgKey: { name: 'google-chrome.gpg' } }),
      seen({ text: `${CHROME}\n`, keys: ['google-chrome.asc'] }),
      paths,
    );
    assert.deepEqual(
      p.steps.map((s) => [s.type, 'path' in s ? s.path : '']),
      [
        ['remove', `${paths.sourcesDir}/google-chrome.list`],
        ['remove-key', `${paths.keyringDir}/google-chrome.asc`],
      ],
    );
    assert.equal(p.complete?.result.message, 'SUCCESS');
  });
  it('remove of what is not there changes nothing and still answers', () => {
    const p = planPackageSource(doc({ ensure: 'absent', filename: 'google-chrome.list' }), seen(), paths);
    assert.deepEqual(p.steps, []);
    assert.equal(p.complete?.result.status, 200);
  });
  it('prune of an added source removes its file and key; of a removal, nothing', () => {
    const added = chrome({}, null);
    assert.deepEqual(types(prunePackageSource(added, seen({ text: `${CHROME}\n`, keys: ['google-chrome.gpg'] }), paths)), [
      'remove',
      'remove-key',
    ]);
    const removal = doc({ ensure: 'absent', filename: 'google-chrome.list' }, null);
    assert.deepEqual(types(prunePackageSource(removal, seen(), paths)), []);
  });
  it('a removed document changes nothing', () => {
    assert.deepEqual(planPackageSource(undefined, seen(), paths).steps, []);
  });
});
