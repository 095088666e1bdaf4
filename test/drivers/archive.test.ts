/** Extraction refuses anything that could write outside its target; archives are crafted with python's tarfile. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InbmError } from '../../src/core/result.js';
import { extract } from '../../src/drivers/download/archive.js';

/** entries: [name, kind, data-or-link]; kind f=file, d=dir, s=symlink, h=hardlink, c=char device, p=fifo */
function craft(path: string, entries: Array<[string, 'f' | 'd' | 's' | 'h' | 'c' | 'p', string?]>, gzip = false): void {
  const script = `
import io, sys, tarfile, json
entries = json.loads(sys.argv[2])
types = {'f': tarfile.REGTYPE, 'd': tarfile.DIRTYPE, 's': tarfile.SYMTYPE, 'h': tarfile.LNKTYPE, 'c': tarfile.CHRTYPE, 'p': tarfile.FIFOTYPE}
with tarfile.open(sys.argv[1], 'w:gz' if sys.argv[3] == '1' else 'w') as t:
    for name, kind, extra in entries:
        ti = tarfile.TarInfo(name)
        ti.type = types[kind]
        data = None
        if kind == 'f':
            data = (extra or '').encode()
            ti.size = len(data)
        elif kind in 'sh':
            ti.linkname = extra
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
`;
  const r = spawnSync('python3', ['-c', script, path, JSON.stringify(entries.map(([n, k, e]) => [n, k, e ?? null])), gzip ? '1' : '0'], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
}

async function refusedArchive(entries: Parameters<typeof craft>[1], reason: RegExp): Promise<void> {
  const d = await mkdtemp(join(tmpdir(), 'inbm-tar-'));
  craft(join(d, 'a.tar'), entries);
  const target = join(d, 'out');
  await assert.rejects(
    extract(join(d, 'a.tar'), target),
    (e: unknown) => e instanceof InbmError && e.status === 400 && reason.test(e.reason),
  );
  assert.deepEqual((await readdir(d)).sort(), ['a.tar'], 'nothing extracted is left, and nothing outside');
}

describe('archive extraction', () => {
  it('extracts files, directories and links that stay inside (gzip too)', async () => {
    const d = await mkdtemp(join(tmpdir(), 'inbm-tar-'));
    craft(
      join(d, 'ok.tar.gz'),
      [
        ['stack', 'd'],
        ['stack/docker-compose.yml', 'f', 'services: {}\n'],
        ['stack/current.yml', 's', 'docker-compose.yml'],
      ],
      true,
    );
    const files = await extract(join(d, 'ok.tar.gz'), join(d, 'out'));
    assert.deepEqual(files.sort(), ['stack/current.yml', 'stack/docker-compose.yml']);
    assert.equal(await readFile(join(d, 'out', 'stack', 'current.yml'), 'utf8'), 'services: {}\n');
  });
  it('refuses ".." paths', () => refusedArchive([['../evil.txt', 'f', 'x']], /leaves the target/));
  it('refuses absolute paths', async () => {
    await refusedArchive([['/tmp/inbm-evil-abs.txt', 'f', 'x']], /leaves the target/);
    const { access } = await import('node:fs/promises');
    await assert.rejects(access('/tmp/inbm-evil-abs.txt'));
  });
  it('refuses a symlink out of the target', () => refusedArchive([['passwd', 's', '/etc/passwd']], /points outside/));
  it('refuses a relative symlink climbing out', () => refusedArchive([['a/up', 's', '../../etc']], /points outside/));
  it('refuses a hard link to a file outside', () => refusedArchive([['h', 'h', '../outside']], /points outside/));
  it('refuses device files and FIFOs', async () => {
    await refusedArchive([['null', 'c']], /CharacterDevice/);
    await refusedArchive([['pipe', 'p']], /FIFO/);
  });
  it('a corrupt archive is refused', async () => {
    const d = await mkdtemp(join(tmpdir(), 'inbm-tar-'));
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(d, 'bad.tar.gz'), Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]));
    await assert.rejects(extract(join(d, 'bad.tar.gz'), join(d, 'out')), (e: unknown) => e instanceof InbmError && e.status === 400);
  });
});
