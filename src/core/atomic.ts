import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

let counter = 0;

/**
 * Write-temp-fsync-rename, then fsync the directory: a reader sees the old file or the new one,
 * never a part, and after power loss the rename is on disk.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = `${dir}/.${process.pid}.${++counter}.tmp`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

const OUR_TEMP = /^\.\d+\.\d+\.tmp$/;

/**
 * Removes temp files writeFileAtomic left behind when a process died between write and rename.
 * Run at start by the only writer of these directories, so none of them is in use.
 */
export async function sweepTempFiles(dirs: readonly string[]): Promise<number> {
  let removed = 0;
  for (const dir of dirs) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!OUR_TEMP.test(name)) continue;
      await unlink(`${dir}/${name}`).catch(() => {});
      removed++;
    }
  }
  return removed;
}
