import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { InbmError } from '../../src/core/result.js';
import { parseDocuments, validateDocument } from '../../src/desired/document.js';
import type { DocumentInput } from '../../src/desired/kinds/index.js';
import { readSecret, writeSecret } from '../../src/desired/secrets.js';
import { manifestToDesired, type Translation } from '../../src/desired/translate/index.js';
import { loadFixtures } from '../fixtures.js';

const fixtures = loadFixtures();
const fixture = (file: string) => fixtures.find((f) => f.file === file)!.text;
const docs = (t: Translation) => {
  assert.equal(t.type, 'documents');
  return t.type === 'documents' ? t : assert.fail();
};

describe('manifest → desired-state documents', () => {
  it('every valid fixture the reference would install becomes documents that pass their kind', () => {
    let documents = 0;
    for (const f of fixtures.filter((x) => x.dir === 'valid')) {
      let t: Translation;
      try {
        t = manifestToDesired(f.text, { source: 'test' });
      } catch (err) {
        // Only the fixture the reference itself refuses at install time (400) may fail here.
        assert.ok(err instanceof InbmError && err.status === 400 && f.reference.includes('400'), `${f.file}: ${err}`);
        continue;
      }
      const all =
        t.type === 'documents'
          ? t.documents
          : t.type === 'schedule'
            ? t.jobs.flatMap((j) => j.requests.flatMap((r) => (r.type === 'documents' ? r.documents : [])))
            : [];
      for (const d of all) {
        validateDocument(JSON.parse(JSON.stringify(d)), `${f.file}`);
        documents++;
      }
    }
    assert.ok(documents >= 40, `only ${documents} documents`);
  });

  it('is deterministic: the same manifest gives the same documents', () => {
    for (const f of fixtures.filter((x) => x.dir === 'valid')) {
      const a = () => {
        try {
          return JSON.stringify(manifestToDesired(f.text, { source: 'cloud' }));
        } catch (err) {
          return String(err);
        }
      };
      assert.equal(a(), a(), f.file);
    }
  });

  it('records source, manifest id/name/type and the request identity in annotations', () => {
    const t = docs(manifestToDesired(fixture('aota-docker-load.xml'), { source: 'cloud', requestId: 'req-7' }));
    const d = t.documents[0]!;
    assert.equal(d.kind, 'ContainerImage');
    assert.deepEqual(d.metadata.annotations, {
      'inbm.dev/source': 'cloud',
      'inbm.dev/manifest-type': 'ota/aota/docker/load',
      'inbm.dev/request-id': 'req-7',
      'inbm.dev/manifest-id': 'sampleId',
      'inbm.dev/manifest-name': 'Sample AOTA',
    });
    assert.deepEqual(d.spec, {
      image: 'sample-container',
      tag: '1.0',
      ensure: 'present',
      source: { method: 'load', artifact: { url: 'http://127.0.0.1:80/sample-container-load.tgz' } },
      container: { run: true },
    });
  });

  it('one-shot operations carry an identity: given, or a digest that changes with the manifest', () => {
    const restart = docs(manifestToDesired(fixture('cmd-restart.xml'), { source: 'cli' })).documents[0]!;
    const shutdown = docs(manifestToDesired(fixture('cmd-shutdown.xml'), { source: 'cli' })).documents[0]!;
    assert.equal(restart.kind, 'PowerAction');
    const id = (d: DocumentInput) => (d.spec as { requestId: string }).requestId;
    assert.match(id(restart), /^m-[0-9a-f]{16}$/);
    assert.notEqual(id(restart), id(shutdown));
    assert.equal(id(docs(manifestToDesired(fixture('cmd-restart.xml'), { source: 'cli', requestId: 'abc' })).documents[0]!), 'abc');
  });

  it('credentials leave the document as a secret reference', () => {
    const t = docs(manifestToDesired(fixture('aota-compose-up-private-registry.xml'), { source: 'cloud' }));
    const text = stringify(t.documents);
    assert.doesNotMatch(text, /testpass/);
    assert.deepEqual((t.documents[0]!.spec as { registry: unknown }).registry, {
      server: 'localhost:5000',
      credentials: { secretRef: 'stack-simple-compose-registry' },
    });
    assert.deepEqual(t.secrets, [{ name: 'stack-simple-compose-registry', data: { username: 'testuser', password: 'testpass' } }]);
    const sota = docs(manifestToDesired(fixture('sota-inbc-mender-fetch.xml'), { source: 'cloud' }));
    assert.doesNotMatch(JSON.stringify(sota.documents), /123abc/);
    assert.equal(sota.secrets[0]!.data.password, '123abc');
  });

  it('the request identity does not depend on passwords', () => {
    const a = fixture('sota-inbc-mender-fetch.xml');
    const id = (xml: string) => (docs(manifestToDesired(xml, { source: 'x' })).documents[0]!.spec as { requestId: string }).requestId;
    assert.equal(id(a), id(a.replace('123abc', 'other')));
  });

  it('queries become query objects, not documents', () => {
    const q = (file: string) => manifestToDesired(fixture(file), { source: 'cli' });
    assert.deepEqual(q('cmd-query-hw.xml'), { type: 'query', query: { target: 'device', option: 'hw' } });
    assert.deepEqual(q('config-get-multi-docs.xml').type, 'query');
    assert.deepEqual(q('aota-docker-stats.xml'), { type: 'query', query: { target: 'containers', what: 'stats', app: 'docker' } });
    assert.deepEqual(q('aota-compose-list.xml'), {
      type: 'query',
      query: { target: 'containers', what: 'list', app: 'compose', name: 'simplecompose' },
    });
    assert.deepEqual(q('source-os-list.xml'), { type: 'query', query: { target: 'sources', source: 'os' } });
  });

  it('append and remove of the same value address the same resource', () => {
    const name = (xml: string) => docs(manifestToDesired(xml, { source: 'x' })).documents[0]!.metadata.name;
    const append = fixture('config-append-trusted-repo.xml');
    assert.equal(name(append), name(append.replaceAll('append', 'remove')));
    const remove = docs(manifestToDesired(append.replaceAll('append', 'remove'), { source: 'x' })).documents[0]!;
    assert.deepEqual(remove.spec, { remove: { trustedRepositories: ['htpps://dummyURL.com'] } });
  });

  it('FOTA, SOTA and POTA keep the reference reboot rules', () => {
    const spec = (file: string) => docs(manifestToDesired(fixture(file), { source: 'x' })).documents[0]!.spec as Record<string, unknown>;
    assert.equal(spec('fota-guid.xml').reboot, true); // FOTA: reboot unless told otherwise ("yes" default)
    assert.equal(spec('sota-download-only.xml').reboot, false);
    const pota = spec('pota-docs.xml') as { firmware: { platform: { product: string } }; os: { mode: string } };
    assert.equal(pota.firmware.platform.product, 'Alder Lake Client Platform');
    assert.equal(pota.os.mode, 'full');
    assert.deepEqual(spec('fota-local-repo.xml').source, { path: '/var/cache/manageability/repository-tool/BIOSUPDATE.tar' });
  });

  it('AOTA combinations the reference refuses at install time are 400 naming the command', () => {
    assert.throws(
      () => manifestToDesired(fixture('aota-docker-stats.xml').replace('<app>docker</app>', '<app>application</app>'), { source: 'x' }),
      (e: unknown) => e instanceof InbmError && e.status === 400 && /AOTA application stats: unsupported/.test(e.message),
    );
  });
});

describe('desired-state documents from YAML/JSON', () => {
  const base = {
    apiVersion: 'inbm.dev/v1alpha1',
    kind: 'PowerAction',
    metadata: { name: 'power' },
    spec: { requestId: 'r1', action: 'restart' },
  };
  it('accept multi-document YAML and JSON', () => {
    const two = `${stringify(base)}---\n${stringify({ ...base, metadata: { name: 'power2' } })}`;
    assert.deepEqual(
      parseDocuments(two).map((d) => d.metadata.name),
      ['power', 'power2'],
    );
    assert.equal(parseDocuments(JSON.stringify(base))[0]!.kind, 'PowerAction');
  });
  const refused = (value: unknown, reason: RegExp) =>
    assert.throws(
      () => parseDocuments(typeof value === 'string' ? value : JSON.stringify(value)),
      (e: unknown) => e instanceof InbmError && e.status === 300 && reason.test(e.reason),
    );
  it('name the field that is wrong', () => {
    refused({ ...base, spec: { ...base.spec, action: 'reboot' } }, /spec\.action: /);
    refused({ ...base, spec: { ...base.spec, password: 'x' } }, /spec: unknown field "password"/);
    refused({ ...base, metadata: { name: 'Power_1' } }, /metadata\.name: /);
    refused({ ...base, kind: 'Pod' }, /kind "Pod" is not one of/);
    refused({ ...base, apiVersion: 'v1' }, /apiVersion must be inbm\.dev\/v1alpha1/);
    refused('a: 1\na: 2\n', /not valid YAML/);
    refused('', /holds no document/);
  });
});

describe('secrets', () => {
  it('are written 0600 in a 0700 directory and read back', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'inbm-secrets-')), 'secrets');
    await writeSecret(dir, { name: 'stack-x-registry', data: { username: 'u', password: 'p@ss' } });
    assert.equal((await stat(join(dir, 'stack-x-registry.json'))).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.deepEqual(await readSecret(dir, 'stack-x-registry'), { username: 'u', password: 'p@ss' });
    assert.match(await readFile(join(dir, 'stack-x-registry.json'), 'utf8'), /p@ss/);
  });
});
