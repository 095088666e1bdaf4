/** The built `inbm` binary (dist/inbm.mjs, made by `npm run build`, which `npm test` runs first). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { BIN } from '../bin.js';
import { FIXTURES } from '../fixtures.js';
import { until } from '../until.js';

const inbm = (args: string[], input?: string) => spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8' });
const fixture = (p: string) => join(FIXTURES, p);

describe('inbm validate', () => {
  it('prints exactly one line of result JSON and exits 0 on 200', () => {
    const r = inbm(['validate', fixture('valid/cmd-restart.xml')]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 1);
    const result = JSON.parse(lines[0]!);
    assert.deepEqual(Object.keys(result), ['status', 'message', 'job_id']);
    assert.equal(result.status, 200);
  });
  it('exits non-zero with a 300 naming the element, and no stack trace', () => {
    const r = inbm(['validate', fixture('invalid/header-missing-repo.xml')]);
    assert.equal(r.status, 1);
    const result = JSON.parse(r.stdout);
    assert.equal(result.status, 300);
    assert.match(result.message, /<manifest\/ota\/header>: missing required element <repo>/);
    assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at /);
  });
  it('reads stdin with -, and accepts desired-state YAML', () => {
    const xml = inbm(['validate', '-'], '<manifest><type>cmd</type><cmd>shutdown</cmd></manifest>');
    assert.equal(JSON.parse(xml.stdout).status, 200);
    const yaml = inbm(
      ['validate', '-'],
      'apiVersion: inbm.dev/v1alpha1\nkind: PowerAction\nmetadata: {name: power}\nspec: {requestId: a, action: halt}\n',
    );
    assert.equal(yaml.status, 1);
    assert.match(JSON.parse(yaml.stdout).message, /spec\.action/);
  });
  it('a missing file is a clear 300, not a crash', () => {
    const r = inbm(['validate', '/nonexistent/x.xml']);
    assert.equal(r.status, 1);
    assert.match(JSON.parse(r.stdout).message, /cannot read \/nonexistent\/x\.xml: ENOENT/);
  });
});

describe('inbm convert', () => {
  it('prints the YAML documents a manifest becomes', () => {
    const r = inbm(['convert', fixture('valid/pota-docs.xml'), '--request-id', 'pota-1']);
    assert.equal(r.status, 0, r.stderr);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS());
    assert.equal(docs.length, 1);
    assert.equal(docs[0].kind, 'PlatformUpdate');
    assert.equal(docs[0].spec.requestId, 'pota-1');
  });
  it('prints the query for a query manifest', () => {
    const r = inbm(['convert', fixture('valid/cmd-query-swbom.xml')]);
    assert.match(r.stdout, /query:\n {2}target: device\n {2}option: swbom/);
  });
  it('keeps credentials only in --secrets-dir, mode 0600, never on stdout', async () => {
    const dir = join(await mkdtemp(join(tmpdir(), 'inbm-cli-')), 'secrets');
    const r = inbm(['convert', fixture('valid/aota-compose-up-private-registry.xml'), '--secrets-dir', dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /testpass/);
    assert.match(r.stdout, /secretRef: stack-simple-compose-registry/);
    assert.deepEqual(await readdir(dir), ['stack-simple-compose-registry.json']);
    assert.equal((await stat(join(dir, 'stack-simple-compose-registry.json'))).mode & 0o777, 0o600);
  });
  it('an invalid manifest prints the result on stderr and exits non-zero', () => {
    const r = inbm(['convert', fixture('invalid/cmd-unknown.xml')]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.equal(JSON.parse(r.stderr).status, 300);
  });
  it('--debug shows the stack', () => {
    const r = inbm(['--debug', 'convert', fixture('invalid/cmd-unknown.xml')]);
    assert.match(r.stderr, /\n\s+at /);
  });
});

describe('help', () => {
  it('inbm --help and inbm help validate', () => {
    const top = inbm(['--help']);
    assert.equal(top.status, 0);
    assert.match(top.stdout, /validate/);
    assert.match(top.stdout, /convert/);
    const sub = inbm(['help', 'validate']);
    assert.equal(sub.status, 0);
    assert.match(sub.stdout, /Usage: inbm validate/);
  });
  it('an unknown command fails with help', () => {
    const r = inbm(['frobnicate']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /unknown command/);
  });
});

describe('inbm status', () => {
  it('reads state files without an agent, and --watch prints again when they change', async () => {
    const { spawn } = await import('node:child_process');
    const { mkdir, writeFile } = await import('node:fs/promises');
    const root = await mkdtemp(join(tmpdir(), 'inbm-status-'));
    const dir = join(root, 'var', 'lib', 'inbm', 'status', 'PowerAction');
    await mkdir(dir, { recursive: true });
    const write = (phase: string, message: string) =>
      writeFile(
        join(dir, 'power.json'),
        JSON.stringify({
          kind: 'PowerAction',
          name: 'power',
          generation: 1,
          observedGeneration: 1,
          phase,
          conditions: [],
          history: [{ time: '', phase, message }],
          updatedAt: '',
        }),
      );
    await write('Waiting', 'Restart Command Success');
    const once = inbm(['--root', root, 'status']);
    assert.equal(once.status, 0);
    assert.match(once.stdout, /PowerAction\/power\s+Waiting\s+1\/1\s+Restart Command Success/);
    const watch = spawn(process.execPath, [BIN, '--root', root, 'status', '--watch'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    watch.stdout.on('data', (d) => (out += d));
    const seen = (re: RegExp) => until(`${re}`, async () => (re.test(out) ? true : undefined), 5000);
    await seen(/Waiting/);
    await write('Ready', 'Reboot SUCCESSFUL.');
    await seen(/Ready\s+1\/1\s+Reboot SUCCESSFUL\./);
    watch.kill();
  });
});
