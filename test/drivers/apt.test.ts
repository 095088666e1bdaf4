import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InbmError } from '../../src/core/result.js';
import { aptChange, aptCommands, changedPackages, dpkgQuery, nothingToDo, parseDpkgQuery, runApt } from '../../src/drivers/apt.js';
import { type AptRoot, makeAptRoot, sotaMount } from './apt-root.js';

const CONF = ['-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold'];

describe('apt argument arrays', () => {
  it('full: update, repair, then upgrade with new packages', () => {
    assert.deepEqual(aptCommands('full', []), [
      ['apt-get', '-yq', 'update'],
      ['dpkg', '--configure', '-a', '--force-confdef', '--force-confold'],
      ['apt-get', '-yq', ...CONF, '-f', 'install'],
      ['apt-get', '-yq', ...CONF, '--with-new-pkgs', 'upgrade'],
    ]);
  });

  it('full with a package list installs exactly those', () => {
    assert.deepEqual(aptChange('full', ['curl', 'vim']), ['apt-get', '-yq', ...CONF, 'install', 'curl', 'vim']);
  });

  it('download-only: update and --download-only, nothing that configures packages', () => {
    assert.deepEqual(aptCommands('download-only', []), [
      ['apt-get', '-yq', 'update'],
      ['apt-get', '-yq', ...CONF, '--download-only', '--with-new-pkgs', 'upgrade'],
    ]);
  });

  it('no-download: never fetches indexes or packages', () => {
    const cmds = aptCommands('no-download', ['curl']);
    assert.ok(!cmds.some((c) => c.includes('update')));
    assert.deepEqual(cmds.at(-1), ['apt-get', '-yq', ...CONF, '--no-download', '--fix-missing', 'install', 'curl']);
    assert.deepEqual(cmds[1], ['apt-get', '-yq', '--no-download', ...CONF, '-f', 'install']);
  });

  it('dpkg-query lists name, version and status; only installed packages count', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a template
    assert.deepEqual(dpkgQuery(['a']), ['dpkg-query', '-W', '-f=${Package}\\t${Version}\\t${db:Status-Abbrev}\\n', 'a']);
    assert.deepEqual(parseDpkgQuery('a\t1.0\tii \nb\t2\trc \nc\t3\tiU \n'), { a: '1.0' });
  });

  it('changed packages: upgraded, new and removed', () => {
    assert.deepEqual(changedPackages({ a: '1', b: '1', c: '1' }, { a: '2', b: '1', d: '1' }), { a: '2', d: '1', c: '' });
  });

  it('recognises apt saying there is nothing to do', () => {
    assert.ok(nothingToDo('Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n'));
    assert.ok(!nothingToDo('1 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n'));
  });
});

describe('apt in a real Debian root', () => {
  const mnt = sotaMount();
  let r: AptRoot;
  before(async () => {
    if (mnt) r = await makeAptRoot(mnt, 'apt-driver');
  });
  after(() => r?.remove());

  it('upgrades inbm-demo from 1 to 2 through the chroot prefix; a failing package names its error', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const prefix = ['chroot', r.root];
    assert.equal(r.version(), '1');
    await r.publish('2');
    const lines: string[] = [];
    for (const argv of aptCommands('full', [])) await runApt(argv, { prefix, onLine: (l) => lines.push(l) });
    assert.equal(r.version(), '2');
    assert.ok(lines.some((l) => /1 upgraded/.test(l)));
    assert.equal(parseDpkgQuery(await runApt(dpkgQuery(['inbm-demo']), { prefix }))['inbm-demo'], '2');
    // Nothing left to do now.
    assert.ok(nothingToDo(await runApt(aptChange('full', []), { prefix })));

    await r.publish('3', true);
    await runApt(['apt-get', '-yq', 'update'], { prefix });
    await assert.rejects(runApt(aptChange('full', ['inbm-demo']), { prefix }), (err: unknown) => {
      assert.ok(err instanceof InbmError);
      assert.equal(err.status, 400);
      assert.match(err.reason, /^SOTA: apt-get -yq failed \(100\)/);
      return true;
    });
    await assert.rejects(runApt(['apt-get', '-yq', 'install', 'no-such-package'], { prefix }), /Unable to locate package no-such-package/);
  });

  it('an abort kills the command and says cancelled', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const ac = new AbortController();
    const p = runApt(['sleep', '30'], { prefix: ['chroot', r.root], signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(p, /SOTA: sleep 30 cancelled/);
  });
});
