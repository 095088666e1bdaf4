import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InbmError } from '../../../src/core/result.js';
import {
  applyChanges,
  type Conf,
  DEFAULT_CONF,
  getValues,
  keySection,
  parseConf,
  sameConf,
  serializeConf,
} from '../../../src/reconcilers/configuration/conffile.js';

/** Asserts a 400 InbmError whose reason matches. */
function refused(fn: () => unknown, reason: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InbmError, `not an InbmError: ${e}`);
    assert.equal(e.status, 400);
    assert.match(e.reason, reason);
    return true;
  });
}

/** The default file with one leaf element's text replaced. */
const withValue = (key: string, value: string): string => {
  const re = new RegExp(`<${key}>[^<]*</${key}>`);
  assert.match(DEFAULT_CONF, re, `${key} is not in the default file`);
  return DEFAULT_CONF.replace(re, `<${key}>${value}</${key}>`);
};
const defaults = (): Conf => parseConf(DEFAULT_CONF);

describe('parseConf', () => {
  it('reads the shipped default with typed values', () => {
    const conf = defaults();
    assert.equal(conf.all.dbs, 'WARN');
    assert.deepEqual(conf.telemetry, {
      collectionIntervalSeconds: 60,
      publishIntervalSeconds: 300,
      maxCacheSize: 100,
      containerHealthIntervalSeconds: 600,
      enableSwBom: true,
      swBomIntervalHours: 24,
    });
    assert.deepEqual(conf.diagnostic.sotaSW, ['docker', 'trtl', 'inbm-telemetry']);
    assert.equal(conf.diagnostic.minStorageMB, 100);
    assert.equal(conf.diagnostic.minMemoryMB, 10);
    assert.equal(conf.diagnostic.minPowerPercent, 20);
    assert.equal(conf.diagnostic.dockerBenchSecurityIntervalSeconds, 900);
    assert.equal(conf.diagnostic.networkCheck, true);
    assert.deepEqual(conf.dispatcher, { dbsRemoveImageOnFailedContainer: false, trustedRepositories: [] });
    assert.equal(conf.orchestrator?.name, 'csl-agent');
    assert.deepEqual(conf.sota, { proceedWithoutRollback: true });
  });

  it('reads a reference-style file: declaration, tabs, any key order in a section, lists with blank lines', () => {
    const xml = `<?xml version="1.0" encoding="utf-8"?>
<configurations>
\t<all><dbs>off</dbs></all>
\t<telemetry>
\t\t<maxCacheSize>50</maxCacheSize><collectionIntervalSeconds> 30 </collectionIntervalSeconds>
\t\t<publishIntervalSeconds>120</publishIntervalSeconds><containerHealthIntervalSeconds>300</containerHealthIntervalSeconds>
\t</telemetry>
\t<diagnostic>
\t\t<sotaSW>

\t\t\tdocker

\t\t\ttrtl   inbm-telemetry
\t\t</sotaSW>
\t\t<minStorageMB>0</minStorageMB><minMemoryMB>1000000000000</minMemoryMB><minPowerPercent>20</minPowerPercent>
\t</diagnostic>
\t<dispatcher>
\t\t<trustedRepositories>
\t\t\thttps://example.com/a/

\t\t\thttp://mirror.local:8080/b
\t\t</trustedRepositories>
\t\t<dbsRemoveImageOnFailedContainer>true</dbsRemoveImageOnFailedContainer>
\t</dispatcher>
\t<sota><ubuntuAptSource>https://mirror.enzu.com/ubuntu/</ubuntuAptSource><proceedWithoutRollback>false</proceedWithoutRollback></sota>
</configurations>`;
    const conf = parseConf(xml);
    assert.equal(conf.all.dbs, 'off');
    assert.equal(conf.telemetry.collectionIntervalSeconds, 30);
    assert.equal(conf.telemetry.enableSwBom, undefined);
    assert.deepEqual(conf.diagnostic.sotaSW, ['docker', 'trtl', 'inbm-telemetry']);
    assert.equal(conf.diagnostic.minMemoryMB, 1e12);
    assert.deepEqual(conf.dispatcher.trustedRepositories, ['https://example.com/a/', 'http://mirror.local:8080/b']);
    assert.equal(conf.orchestrator, undefined);
    assert.deepEqual(conf.sota.ubuntuAptSource, ['https://mirror.enzu.com/ubuntu/']);
  });

  const RANGES: Array<[string, number, number]> = [
    ['collectionIntervalSeconds', 30, 120],
    ['publishIntervalSeconds', 120, 480],
    ['maxCacheSize', 50, 200],
    ['containerHealthIntervalSeconds', 300, 1800],
    ['swBomIntervalHours', 1, 168],
    ['minStorageMB', 0, 1e12],
    ['minMemoryMB', 0, 1e12],
    ['minPowerPercent', 0, 1e12],
    ['dockerBenchSecurityIntervalSeconds', 0, 1e12],
  ];
  for (const [key, min, max] of RANGES) {
    it(`${key}: accepts ${min} and ${max}, refuses ${min - 1} and ${max + 1}`, () => {
      for (const n of [min, max]) {
        const conf = parseConf(withValue(key, String(n))) as unknown as Record<string, Record<string, unknown>>;
        assert.equal(conf[keySection(key)!]![key], n);
      }
      for (const n of [min - 1, max + 1])
        refused(() => parseConf(withValue(key, String(n))), new RegExp(`^${key}: must be an integer between ${min} and ${max}`));
    });
  }

  it('integers are plain decimal digits; the message names the key and the value', () => {
    refused(() => parseConf(withValue('maxCacheSize', 'a')), /^maxCacheSize: must be an integer between 50 and 200, got "a"$/);
    for (const bad of ['1.5', '1e2', '+60', '0x40', '', '6 0']) refused(() => parseConf(withValue('maxCacheSize', bad)), /^maxCacheSize: /);
    refused(() => parseConf(withValue('minStorageMB', '-1')), /^minStorageMB: must be an integer between 0 and 1000000000000/);
  });

  it('booleans are true/false; dbs is one of the six spellings exactly', () => {
    assert.equal(parseConf(withValue('networkCheck', 'false')).diagnostic.networkCheck, false);
    for (const bad of ['True', 'yes', '1', ''])
      refused(() => parseConf(withValue('networkCheck', bad)), /^networkCheck: must be true or false/);
    for (const ok of ['ON', 'OFF', 'WARN', 'on', 'off', 'warn']) assert.equal(parseConf(withValue('dbs', ok)).all.dbs, ok);
    for (const bad of ['Warn', ' WARN', 'x']) refused(() => parseConf(withValue('dbs', bad)), /^dbs: must be one of ON, OFF, WARN/);
  });

  it('list entries are at most 700 characters; trusted repositories must be URLs', () => {
    const long = `https://e.com/${'a'.repeat(700 - 14)}`;
    assert.deepEqual(parseConf(withValue('sotaSW', long)).diagnostic.sotaSW, [long]);
    refused(() => parseConf(withValue('sotaSW', `${long}a`)), /^sotaSW: entries must be at most 700 characters/);
    refused(() => parseConf(withValue('trustedRepositories', 'not-a-url')), /^trustedRepositories: entries must be URLs, got "not-a-url"/);
    refused(() => parseConf(withValue('ip', 'x'.repeat(1501))), /^ip: must be at most 1500 characters/);
  });

  it('refuses DOCTYPE and entity declarations before parsing', () => {
    refused(() => parseConf(`<!DOCTYPE configurations [<!ENTITY x "y">]>${DEFAULT_CONF}`), /DOCTYPE/);
  });

  it('refuses malformed XML, a wrong root, and text where elements belong', () => {
    refused(() => parseConf('<configurations><all>'), /not well-formed XML/);
    refused(() => parseConf(DEFAULT_CONF.replaceAll('configurations', 'config')), /<configurations>/);
    refused(() => parseConf(DEFAULT_CONF.replace('<all>', '<all>stray')), /unexpected text in <all>/);
    refused(() => parseConf(withValue('dbs', '<x>WARN</x>')), /^dbs: must contain text only/);
  });

  it('refuses unknown, repeated and missing sections and keys, and out-of-order sections', () => {
    refused(() => parseConf(DEFAULT_CONF.replace('</configurations>', '<extra/></configurations>')), /unknown section <extra>/);
    refused(() => parseConf(DEFAULT_CONF.replace('<dbs>', '<colour>x</colour><dbs>')), /unknown key <colour> in <all>/);
    refused(() => parseConf(DEFAULT_CONF.replace('<dbs>WARN</dbs>', '<dbs>WARN</dbs><dbs>ON</dbs>')), /^dbs: may appear at most once/);
    refused(() => parseConf(DEFAULT_CONF.replace('<maxCacheSize>100</maxCacheSize>', '')), /^maxCacheSize: is required in <telemetry>/);
    refused(() => parseConf(DEFAULT_CONF.replace(/<all>[\s\S]*?<\/all>/, '')), /missing section <all>/);
    const swapped = DEFAULT_CONF.replace(/(<all>[\s\S]*?<\/all>)([\s\S]*?<\/telemetry>)/, '$2$1');
    refused(() => parseConf(swapped), /section <all> is repeated or out of order/);
  });

  it('attributes: orchestrator needs name; nothing else takes attributes', () => {
    refused(() => parseConf(DEFAULT_CONF.replace(' name="csl-agent"', '')), /<orchestrator>: attribute name is required/);
    refused(() => parseConf(DEFAULT_CONF.replace('<all>', '<all id="1">')), /<all> has no attribute id/);
  });
});

describe('serializeConf', () => {
  it('writes the default back byte for byte and round-trips', () => {
    assert.equal(serializeConf(defaults()), DEFAULT_CONF);
    const conf = applyChanges(defaults(), {
      set: { certFile: '/a&b/<c>.pem', swBomIntervalHours: '168' },
      append: { trustedRepositories: ['https://x.example/p?a=1&b=2'] },
    });
    const text = serializeConf(conf);
    assert.match(text, /<certFile>\/a&amp;b\/&lt;c&gt;\.pem<\/certFile>/);
    assert.deepEqual(parseConf(text), conf);
    assert.equal(serializeConf(parseConf(text)), text);
  });

  it('writes one list entry per line and omits absent optional keys and sections', () => {
    const conf = defaults();
    const { orchestrator: _dropped, ...rest } = conf;
    const text = serializeConf({ ...rest, telemetry: { ...conf.telemetry, enableSwBom: undefined } });
    assert.match(text, /<sotaSW>\n {12}docker\n {12}trtl\n {12}inbm-telemetry\n {8}<\/sotaSW>/);
    assert.doesNotMatch(text, /orchestrator|enableSwBom/);
  });

  it('refuses to write a Conf the parser would refuse', () => {
    const conf = defaults();
    refused(() => serializeConf({ ...conf, telemetry: { ...conf.telemetry, maxCacheSize: 500 } }), /^maxCacheSize: /);
  });
});

describe('leaf-key operations', () => {
  it('keySection finds the section of a leaf key, case-sensitively', () => {
    assert.equal(keySection('maxCacheSize'), 'telemetry');
    assert.equal(keySection('trustedRepositories'), 'dispatcher');
    assert.equal(keySection('certFile'), 'orchestrator');
    assert.equal(keySection('MaxCacheSize'), undefined);
    assert.equal(keySection('name'), undefined);
    assert.equal(keySection('toString'), undefined);
  });

  it('getValues returns element text; absent optional keys are ""; unknown keys are named', () => {
    const conf = defaults();
    assert.deepEqual(getValues(conf, ['maxCacheSize', 'dbs', 'networkCheck', 'sotaSW', 'trustedRepositories', 'ubuntuAptSource']), {
      maxCacheSize: '100',
      dbs: 'WARN',
      networkCheck: 'true',
      sotaSW: 'docker\ntrtl\ninbm-telemetry',
      trustedRepositories: '',
      ubuntuAptSource: '',
    });
    refused(() => getValues(conf, ['dbs', 'nosuch']), /"nosuch"/);
  });

  it('set returns a new validated Conf and leaves the input untouched', () => {
    const conf = defaults();
    const next = applyChanges(conf, { set: { maxCacheSize: '150', dbs: 'ON', sotaSW: 'docker\n\n  trtl', enableSwBom: 'false' } });
    assert.equal(next.telemetry.maxCacheSize, 150);
    assert.equal(next.all.dbs, 'ON');
    assert.equal(next.telemetry.enableSwBom, false);
    assert.deepEqual(next.diagnostic.sotaSW, ['docker', 'trtl']);
    assert.deepEqual(conf, defaults());
    assert.equal(sameConf(conf, next), false);
    assert.equal(sameConf(conf, applyChanges(conf, { set: { maxCacheSize: '100' } })), true);
  });

  it('set can add an absent optional key but not one of an absent section', () => {
    const { orchestrator: _dropped, ...noOrchestrator } = defaults();
    assert.equal(
      applyChanges(noOrchestrator, { set: { proceedWithoutCslmStatusResponse: 'true' } }).dispatcher.proceedWithoutCslmStatusResponse,
      true,
    );
    refused(() => applyChanges(noOrchestrator, { set: { ip: '/x' } }), /^ip: section <orchestrator> is absent/);
  });

  it('set refuses unknown keys, quotes and invalid values, naming the key', () => {
    const conf = defaults();
    refused(() => applyChanges(conf, { set: { nosuch: '1' } }), /unknown configuration key "nosuch"/);
    refused(() => applyChanges(conf, { set: { name: 'x' } }), /unknown configuration key "name"/);
    refused(() => applyChanges(conf, { set: { certFile: '/a"b' } }), /^certFile: value must not contain '"'/);
    refused(() => applyChanges(conf, { set: { maxCacheSize: 'a' } }), /^maxCacheSize: must be an integer between 50 and 200, got "a"/);
    refused(() => applyChanges(conf, { set: { maxCacheSize: '201' } }), /^maxCacheSize: /);
  });

  it('append adds missing entries once and is idempotent', () => {
    const conf = defaults();
    const once = applyChanges(conf, {
      append: { trustedRepositories: ['https://a.example/', ' https://b.example/ ', 'https://a.example/'] },
    });
    assert.deepEqual(once.dispatcher.trustedRepositories, ['https://a.example/', 'https://b.example/']);
    const twice = applyChanges(once, { append: { trustedRepositories: ['https://b.example/'], sotaSW: ['docker'] } });
    assert.equal(sameConf(once, twice), true);
    assert.deepEqual(applyChanges(conf, { append: { sotaSW: ['ntp'] } }).diagnostic.sotaSW, ['docker', 'trtl', 'inbm-telemetry', 'ntp']);
    assert.deepEqual(conf.dispatcher.trustedRepositories, []);
  });

  it('remove deletes exact entries; removing an absent entry is a no-op', () => {
    const conf = defaults();
    const removed = applyChanges(conf, { remove: { sotaSW: ['trtl'] } });
    assert.deepEqual(removed.diagnostic.sotaSW, ['docker', 'inbm-telemetry']);
    assert.equal(sameConf(removed, applyChanges(removed, { remove: { sotaSW: ['trtl', 'trt'] } })), true);
    assert.equal(sameConf(conf, applyChanges(conf, { remove: { trustedRepositories: ['https://never.example/'] } })), true);
  });

  it('append/remove only for sotaSW and trustedRepositories; entries are single words without quotes', () => {
    const conf = defaults();
    refused(
      () => applyChanges(conf, { append: { maxCacheSize: ['60'] } }),
      /^maxCacheSize: append\/remove is only allowed for sotaSW, trustedRepositories/,
    );
    refused(() => applyChanges(conf, { remove: { ubuntuAptSource: ['x'] } }), /^ubuntuAptSource: append\/remove is only allowed/);
    refused(() => applyChanges(conf, { append: { nosuch: ['x'] } }), /"nosuch"/);
    refused(() => applyChanges(conf, { append: { sotaSW: ['a"b'] } }), /^sotaSW: value must not contain '"'/);
    refused(() => applyChanges(conf, { append: { sotaSW: ['a b'] } }), /^sotaSW: a list entry must be one non-empty word/);
    refused(() => applyChanges(conf, { append: { sotaSW: ['  '] } }), /^sotaSW: a list entry must be one non-empty word/);
    refused(() => applyChanges(conf, { append: { trustedRepositories: ['nope'] } }), /^trustedRepositories: entries must be URLs/);
  });
});
