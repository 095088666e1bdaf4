/** The source-file editor, the key naming rules and the list JSON are pure: text in, text out. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keyFormat, keyNames, keyTarget } from '../../src/reconcilers/package-source/keyring.js';
import { pyJson } from '../../src/reconcilers/package-source/list.js';
import {
  addLines,
  LineError,
  listDeb822,
  listOneLine,
  parseOneLine,
  removeLines,
  renderDeb822,
  renderOneLine,
} from '../../src/reconcilers/package-source/sources-file.js';

const CHROME = 'deb [arch=amd64] http://dl.google.com/linux/chrome/deb/ stable main';
const SEC = 'deb http://archive.ubuntu.com/ubuntu/ jammy-security main restricted';
const UNI = 'deb http://archive.ubuntu.com/ubuntu/ jammy-security universe';

describe('parseOneLine', () => {
  it('reads type, options, uri, suite and components', () => {
    assert.deepEqual(parseOneLine(`  ${CHROME}  `), {
      type: 'deb',
      options: [{ name: 'arch', op: '=', value: 'amd64' }],
      uri: 'http://dl.google.com/linux/chrome/deb/',
      suite: 'stable',
      components: ['main'],
    });
    assert.equal((parseOneLine('deb-src [trusted=yes] file:/srv/repo ./') as { suite: string }).suite, './');
  });
  it('says what apt would refuse', () => {
    assert.match(parseOneLine('rpm http://x/ stable main') as string, /not a source line/);
    assert.match(parseOneLine('deb [bogus=1] http://x/ stable main') as string, /unknown option "bogus"/);
    assert.match(parseOneLine('deb [arch] http://x/ stable main') as string, /not name=value/);
    assert.match(parseOneLine('deb notauri stable main') as string, /not a URI/);
    assert.match(parseOneLine('deb http://x/ stable') as string, /needs at least one component/);
    assert.match(parseOneLine('deb file:/r ./ main') as string, /exact path and takes no components/);
  });
});

describe('sources.list edits', () => {
  it('add appends only the missing lines, trimmed, keeping what was there', () => {
    const before = `# mine\n${SEC}`;
    assert.equal(addLines(before, [`${SEC}  `, UNI]), `# mine\n${SEC}\n${UNI}\n`);
    assert.equal(addLines(undefined, [SEC]), `${SEC}\n`);
  });
  it('add of lines already there (spacing aside) is no change at all', () => {
    const before = `${SEC}\n${UNI}\n`;
    assert.equal(addLines(before, [`deb  http://archive.ubuntu.com/ubuntu/   jammy-security universe`]), before);
  });
  it('remove deletes exactly the matching lines and leaves comments, blanks and others', () => {
    const before = `# keep\n${SEC}\n\n${UNI}\n# ${UNI}\n${CHROME}\n`;
    assert.equal(removeLines(before, [`${SEC}  `, UNI]), `# keep\n\n# ${UNI}\n${CHROME}\n`);
    assert.equal(removeLines(before, ['deb http://other/ x main']), before);
    assert.equal(removeLines(undefined, [SEC]), undefined);
  });
  it('a line break inside a line is refused, naming the line', () => {
    assert.throws(
      () => addLines('', [SEC, `${UNI}\ndeb http://evil/ x main`]),
      (e: unknown) => e instanceof LineError && e.message === 'lines[1]: contains a line break or control character',
    );
    assert.throws(() => removeLines(SEC, [`${SEC}\r`]), LineError);
  });
  it('a malformed entry is refused before it can break apt for every source', () => {
    assert.throws(
      () => renderOneLine([SEC, 'deb http://x/']),
      (e: unknown) => e instanceof LineError && e.index === 1,
    );
  });
});

describe('deb822 .sources files', () => {
  it('one-line entries become one stanza each, options as fields', () => {
    assert.equal(
      renderDeb822([
        CHROME,
        'deb-src [signed-by=/usr/share/keyrings/k.gpg arch=amd64,arm64] https://r.example/debian bookworm main contrib',
      ]),
      [
        'Types: deb',
        'URIs: http://dl.google.com/linux/chrome/deb/',
        'Suites: stable',
        'Components: main',
        'Architectures: amd64',
        '',
        'Types: deb-src',
        'URIs: https://r.example/debian',
        'Suites: bookworm',
        'Components: main contrib',
        'Signed-By: /usr/share/keyrings/k.gpg',
        'Architectures: amd64 arm64',
        '',
      ].join('\n'),
    );
  });
  it('field lines are kept as given; each Types: starts a stanza', () => {
    const lines = ['Types: deb', 'URIs: file:/srv/a', 'Suites: ./', 'Types: deb', 'URIs: http://b/', 'Suites: s', 'Components: main'];
    assert.equal(
      renderDeb822(lines),
      'Types: deb\nURIs: file:/srv/a\nSuites: ./\n\nTypes: deb\nURIs: http://b/\nSuites: s\nComponents: main\n',
    );
  });
  it('incomplete stanzas and mixed formats are refused', () => {
    assert.throws(() => renderDeb822(['Types: deb', 'URIs: http://b/']), /lines\[0\]: a stanza needs Suites/);
    assert.throws(() => renderDeb822(['Types: rpm', 'URIs: http://b/', 'Suites: s', 'Components: c']), /neither deb nor deb-src/);
    assert.throws(() => renderDeb822(['Types: deb', 'URIs: http://b/', 'Suites: s']), /needs Components/);
    assert.throws(() => renderDeb822([SEC, 'URIs: http://b/']), /lines\[1\]: deb822 fields and one-line entries cannot be mixed/);
    assert.throws(() => renderDeb822(['deb [arch+=i386] http://b/ s main']), /has no deb822 form/);
  });
  it('lists enabled stanzas as one-line entries (an inline key has no one-line form)', () => {
    const text = [
      '# comment',
      'Types: deb deb-src',
      'URIs: https://r.example/debian',
      'Suites: bookworm bookworm-updates',
      'Components: main',
      'Signed-By: /usr/share/keyrings/r.gpg',
      '',
      'Enabled: no',
      'Types: deb',
      'URIs: http://off/',
      'Suites: s',
      'Components: c',
      '',
      'Types: deb',
      'URIs: file:/srv/a',
      'Suites: ./',
      'Signed-By:',
      ' -----BEGIN PGP PUBLIC KEY BLOCK-----',
      ' .',
      ' abc',
    ].join('\n');
    assert.deepEqual(listDeb822(text), [
      'deb [signed-by=/usr/share/keyrings/r.gpg] https://r.example/debian bookworm main',
      'deb [signed-by=/usr/share/keyrings/r.gpg] https://r.example/debian bookworm-updates main',
      'deb-src [signed-by=/usr/share/keyrings/r.gpg] https://r.example/debian bookworm main',
      'deb-src [signed-by=/usr/share/keyrings/r.gpg] https://r.example/debian bookworm-updates main',
      'deb file:/srv/a ./',
    ]);
  });
  it('one-line files list their deb and deb-src lines only', () => {
    assert.deepEqual(listOneLine(`# deb http://c/ s main\n\n  ${SEC}  \ndeb-src http://s/ s main\nfoo\n`), [
      SEC,
      'deb-src http://s/ s main',
    ]);
  });
});

describe('list JSON', () => {
  it('is spaced as the reference json.dumps writes it', () => {
    assert.equal(pyJson(['source1', 'source2']), '["source1", "source2"]');
    assert.equal(
      pyJson([{ name: 'source_name', sources: ['line1', 'line2'] }]),
      '[{"name": "source_name", "sources": ["line1", "line2"]}]',
    );
    assert.equal(pyJson(['é "q"']), '["\\u00e9 \\"q\\""]');
    assert.equal(pyJson([]), '[]');
  });
});

describe('key files', () => {
  const armored = Buffer.from('\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ...\n');
  it('recognises armored and binary public keys, and nothing else', () => {
    assert.equal(keyFormat(armored), 'armored');
    assert.equal(keyFormat(Buffer.from([0x98, 0x33, 0x04])), 'binary'); // old format, tag 6
    assert.equal(keyFormat(Buffer.from([0xc6, 0x33, 0x04])), 'binary'); // new format, tag 6
    assert.equal(keyFormat(Buffer.from([0x88, 0x33])), undefined); // a signature packet
    assert.equal(keyFormat(Buffer.from('<html>not found</html>')), undefined);
    assert.equal(keyFormat(Buffer.from('-----BEGIN CERTIFICATE-----')), undefined);
  });
  it('stores a key where apt reads it: armored never as .gpg, binary never as .asc', () => {
    assert.deepEqual(keyTarget('chrome.gpg', 'armored', true), { file: 'chrome.gpg', dearmor: true });
    assert.deepEqual(keyTarget('chrome.gpg', 'armored', false), { file: 'chrome.asc', dearmor: false });
    assert.deepEqual(keyTarget('chrome.asc', 'armored', true), { file: 'chrome.asc', dearmor: false });
    assert.deepEqual(keyTarget('chrome', 'armored', false), { file: 'chrome', dearmor: false });
    assert.deepEqual(keyTarget('chrome.gpg', 'binary', false), { file: 'chrome.gpg', dearmor: false });
    assert.deepEqual(keyTarget('chrome.asc', 'binary', true), { file: 'chrome.gpg', dearmor: false });
  });
  it('a key name covers its .gpg/.asc twin', () => {
    assert.deepEqual(keyNames('k.gpg'), ['k.gpg', 'k.asc']);
    assert.deepEqual(keyNames('k.asc'), ['k.asc', 'k.gpg']);
    assert.deepEqual(keyNames('k'), ['k']);
  });
});
