import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { btrfsSnapshot, detectSnapper, findSnapper, SnapshotDriver, snapperCreate, snapperRollback } from '../../src/drivers/snapshot.js';
import { type AptRoot, makeAptRoot, run, sotaMount } from './apt-root.js';

describe('snapshot argument arrays', () => {
  it('plain btrfs: read-only before the update, writable for a rollback', () => {
    assert.deepEqual(btrfsSnapshot('/', '/.snapshots/x', true), ['btrfs', 'subvolume', 'snapshot', '-r', '/', '/.snapshots/x']);
    assert.deepEqual(btrfsSnapshot('/a', '/b', false), ['btrfs', 'subvolume', 'snapshot', '/a', '/b']);
  });

  it('snapper: create prints the number; rollback by number; found again by description', () => {
    assert.deepEqual(snapperCreate(['snapper', '-c', 'root'], 'inbm-sota-1'), [
      'snapper',
      '-c',
      'root',
      'create',
      '--print-number',
      '--description',
      'inbm-sota-1',
    ]);
    assert.deepEqual(snapperRollback(['snapper'], 7), ['snapper', 'rollback', '7']);
    assert.equal(findSnapper('number,description\n0,current\n7,inbm-sota-1\n8,other\n', 'inbm-sota-1'), 7);
    assert.equal(findSnapper('number,description\n0,current\n', 'inbm-sota-1'), undefined);
  });

  it('snapper is used only when an executable of that name is on the PATH', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inbm-path-'));
    assert.equal(await detectSnapper(dir), undefined);
    await writeFile(join(dir, 'snapper'), '#!/bin/sh\n');
    await chmod(join(dir, 'snapper'), 0o755);
    assert.deepEqual(await detectSnapper(`/nonexistent:${dir}`), ['snapper', '-c', 'root']);
    await rm(dir, { recursive: true });
  });
});

describe('snapshots of a real btrfs root', () => {
  const mnt = sotaMount();
  let r: AptRoot;
  before(async () => {
    if (mnt) r = await makeAptRoot(mnt, 'snapshot-driver');
  });
  after(() => r?.remove());

  it('takes a read-only snapshot once, rolls back through the command, deletes it', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const bootFile = join(r.snapshots, 'next-boot');
    const script = join(r.snapshots, 'boot-from.sh');
    await writeFile(script, `#!/bin/sh\necho "$1 $2" > ${bootFile}\n`);
    await chmod(script, 0o755);
    const d = new SnapshotDriver({ subvolume: r.root, snapshotDir: r.snapshots, rollback: [script, '{snapshot}', '{subvolume}'] });
    assert.equal(await d.unsupported(), undefined);
    const s = await d.take('inbm-sota-a');
    assert.deepEqual(s, { tool: 'btrfs', path: join(r.snapshots, 'inbm-sota-a'), subvolume: r.root });
    assert.match(run(['btrfs', 'property', 'get', s.tool === 'btrfs' ? s.path : '', 'ro']), /ro=true/);
    // A second take (an interrupted step run again) finds the same snapshot.
    assert.deepEqual(await d.take('inbm-sota-a'), s);
    await writeFile(join(r.root, 'changed-after'), 'x');
    assert.ok(await d.exists(s));
    await readFile(join(r.snapshots, 'inbm-sota-a', 'changed-after')).then(
      () => assert.fail('the snapshot must not see later changes'),
      () => {},
    );
    await d.rollback(s);
    assert.equal((await readFile(bootFile, 'utf8')).trim(), `${join(r.snapshots, 'inbm-sota-a')} ${r.root}`);
    await d.remove(s);
    assert.equal(await d.exists(s), false);
    await d.remove(s); // already gone: fine
  });

  it('without a rollback command: a writable copy of the snapshot becomes the default subvolume', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    const d = new SnapshotDriver({ subvolume: r.root, snapshotDir: r.snapshots });
    const s = await d.take('inbm-sota-c');
    try {
      await d.rollback(s);
      assert.match(run(['btrfs', 'subvolume', 'get-default', mnt]), / path work\/[^ ]+\.snapshots\/inbm-sota-c-rollback$/m);
      assert.match(run(['btrfs', 'property', 'get', join(r.snapshots, 'inbm-sota-c-rollback'), 'ro']), /ro=false/);
    } finally {
      // The shared test filesystem keeps its top level as the default.
      run(['btrfs', 'subvolume', 'set-default', '5', mnt]);
    }
    await d.remove(s);
  });

  it('a folder that is not a subvolume cannot be snapshotted, and says why', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    assert.match((await new SnapshotDriver({ subvolume: join(r.root, 'etc') }).unsupported()) ?? '', /is not a btrfs subvolume/);
    assert.equal(await new SnapshotDriver({}).unsupported(), 'no btrfs root subvolume is set');
  });

  it('snapper, when set, is the tool: a real script speaking its CLI', async (t) => {
    if (!mnt) return t.skip('needs root and the cached Debian root');
    // Keeps snapshots as lines "number,description" in a file, as `snapper --csvout list` prints them.
    const db = join(r.snapshots, 'snapper.db');
    const script = join(r.snapshots, 'snapper');
    await writeFile(db, '0,current\n');
    await writeFile(
      script,
      `#!/bin/sh
db=${db}
shift 2 # -c root
case "$1" in
  --csvout) echo number,description; cat $db ;;
  create) n=$(($(wc -l < $db))); echo "$n,$4" >> $db; echo $n ;;
  rollback) echo "rollback $2" >> ${db}.log ;;
  delete) grep -v "^$2," $db > $db.new; mv $db.new $db ;;
  *) exit 2 ;;
esac
`,
    );
    await chmod(script, 0o755);
    const d = new SnapshotDriver({ snapper: [script, '-c', 'root'] });
    assert.equal(await d.unsupported(), undefined);
    const s = await d.take('inbm-sota-b');
    assert.deepEqual(s, { tool: 'snapper', number: 1, description: 'inbm-sota-b' });
    assert.deepEqual(await d.take('inbm-sota-b'), s);
    await d.rollback(s);
    assert.equal(await readFile(`${db}.log`, 'utf8'), 'rollback 1\n');
    await d.remove(s);
    assert.equal(await readFile(db, 'utf8'), '0,current\n');
  });
});
