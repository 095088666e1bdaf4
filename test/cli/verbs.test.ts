/** INBC-style verbs of the built `inbm` against a real agent process on a temp root. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, makeRoot, type Root, type Running, startAgent, stopAgent } from '../integration/harness.js';
import { until } from '../until.js';

let harness: Root;
let root: string;
let agent: Running;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI without blocking this process, so the agent's output pipes keep draining. */
function inbm(...args: string[]): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, '--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', fail);
    child.once('close', (status) => done({ status, stdout, stderr }));
  });
}

/** The one result line a verb prints. */
function result(r: Run): { status: number; message: string; job_id: string } {
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line of output: ${r.stdout}${r.stderr}`);
  return JSON.parse(lines[0]!);
}

const conf = () => readFile(join(root, 'etc', 'intel_manageability.conf'), 'utf8');
const desiredDir = () => join(root, 'var', 'lib', 'inbm', 'desired-state');
/** Manifests the verbs dropped: still pending in the desired-state directory, or archived once settled. */
const dropped = async () =>
  [...(await readdir(desiredDir())), ...(await readdir(join(desiredDir(), '..', 'applied')).catch(() => [] as string[]))]
    .filter((f) => f.startsWith('inbc-'))
    .sort();

before(async () => {
  harness = await makeRoot('logLevel: debug\n');
  root = harness.dir;
  agent = await startAgent(harness);
});

after(async () => {
  assert.equal(await stopAgent(agent), 0, 'agent exits 0 on SIGTERM');
  await rm(root, { recursive: true, force: true });
});

describe('inbm INBC-style verbs against a running agent', () => {
  it('get answers from the configuration file: the default maxCacheSize is 100', async () => {
    const r = await inbm('get', 'maxCacheSize');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.deepEqual(result(r), { status: 200, message: 'maxCacheSize:100', job_id: '' });
    const two = await inbm('get', '-p', 'maxCacheSize;dbs');
    assert.equal(result(two).message, 'maxCacheSize:100;dbs:WARN');
  });

  it('get of an unknown key is a 400 naming it', async () => {
    const r = await inbm('get', 'maxCacheSize;noSuchKey');
    assert.equal(r.status, 1);
    const res = result(r);
    assert.equal(res.status, 400);
    assert.match(res.message, /noSuchKey/);
  });

  it('set maxCacheSize:120 is applied by the agent, then get reads 120 and the file holds it', async () => {
    const r = await inbm('set', 'maxCacheSize:120');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.deepEqual(result(r), { status: 200, message: 'Configuration set_element command: SUCCESSFUL', job_id: '' });
    assert.match(await conf(), /<maxCacheSize>120<\/maxCacheSize>/);
    assert.equal(result(await inbm('get', 'maxCacheSize')).message, 'maxCacheSize:120');
    const files = await dropped();
    assert.equal(files.length, 1);
    // A settled manifest is a finished request: archived, no longer managed.
    await until('archived', async () => ((await readdir(desiredDir())).some((f) => f.startsWith('inbc-')) ? undefined : true));
    assert.match(files[0]!, /^inbc-set-\d+-\d+\.xml$/);
  });

  it('set of an invalid value exits non-zero with a 400 naming the key; the file is unchanged', async () => {
    const before = await conf();
    const r = await inbm('set', 'maxCacheSize:lots');
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const res = result(r);
    assert.equal(res.status, 400);
    assert.match(res.message, /maxCacheSize/);
    assert.equal(await conf(), before);
  });

  it('append then remove of trustedRepositories round-trips', async () => {
    const repo = 'https://repo.example.test/path?a=1&b=2';
    const added = await inbm('append', `trustedRepositories:${repo}`);
    assert.equal(added.status, 0, added.stdout + added.stderr);
    assert.deepEqual(result(added), { status: 200, message: 'Configuration append command: SUCCESSFUL', job_id: '' });
    assert.ok((await conf()).includes(repo.replace(/&/g, '&amp;')), 'the conf file lists the repository');
    assert.equal(result(await inbm('get', 'trustedRepositories')).message, `trustedRepositories:${repo}`);

    const removed = await inbm('remove', `trustedRepositories:${repo}`);
    assert.equal(removed.status, 0, removed.stdout + removed.stderr);
    assert.deepEqual(result(removed), { status: 200, message: 'Configuration remove command: SUCCESSFUL', job_id: '' });
    assert.ok(!(await conf()).includes('repo.example.test'));
    assert.equal(result(await inbm('get', 'trustedRepositories')).message, 'trustedRepositories:');
  });

  it('bad input is refused with a 400 before any file is dropped', async () => {
    const before = await dropped();
    for (const [args, pattern] of [
      [['set', 'maxCacheSize:1"20'], /double quotes/],
      [['set', 'maxCacheSize'], /not KEY:VALUE/],
      [['set', 'noSuchKey:1'], /noSuchKey/],
      [['append', 'maxCacheSize:1'], /maxCacheSize: append is only allowed/],
      [['remove', 'trustedRepositories:"x"'], /double quotes/],
      [['load', '/var/cache/manageability/new.conf', '--signature', 'not-hex'], /hexadecimal/],
    ] as Array<[string[], RegExp]>) {
      const r = await inbm(...args);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      const res = result(r);
      assert.equal(res.status, 400, args.join(' '));
      assert.match(res.message, pattern, args.join(' '));
    }
    assert.deepEqual(await dropped(), before, 'nothing was dropped');
  });

  it('query prints the inventory the agent wrote, a section of it, or a 400 while there is none', async () => {
    const all = await inbm('query');
    assert.equal(all.status, 0, all.stdout + all.stderr);
    const inventory = JSON.parse(all.stdout);
    for (const section of ['firmware', 'os', 'hardware', 'agent']) assert.ok(section in inventory, section);
    for (const [option, section] of [
      ['hw', 'hardware'],
      ['fw', 'firmware'],
      ['os', 'os'],
      ['version', 'agent'],
    ]) {
      const r = await inbm('query', '--option', option!);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { [section!]: inventory[section!] });
    }
    const unknown = await inbm('query', '-o', 'everything');
    assert.equal(unknown.status, 1);
    assert.equal(result(unknown).status, 400);
    const file = join(root, 'var', 'lib', 'inbm', 'inventory.json');
    const saved = await readFile(file, 'utf8');
    await rm(file);
    try {
      const none = await inbm('query');
      assert.equal(none.status, 1);
      assert.match(result(none).message, /has not written an inventory/);
    } finally {
      await writeFile(file, saved);
    }
  });

  it('restart runs the fake reboot script once and prints the reference result', async () => {
    const r = await inbm('restart');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.deepEqual(result(r), { status: 200, message: 'Restart Command Success', job_id: '' });
    assert.equal((await readFile(harness.rebootLog, 'utf8')).trim(), 'reboot');
  });
});
