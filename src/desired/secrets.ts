/**
 * Credentials never sit in a document: translation hands them out separately and the document
 * holds `{secretRef: name}`. The store keeps each as `<dir>/<name>.json`, mode 0600, in a 0700 dir.
 */
import { chmod, mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';

export interface Credentials {
  username: string;
  password: string;
}
export interface Secret {
  name: string;
  data: Credentials;
}

export async function writeSecret(dir: string, secret: Secret): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const target = join(dir, `${secret.name}.json`);
  const tmp = `${target}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify(secret.data));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, target);
}

export async function readSecret(dir: string, name: string): Promise<Credentials> {
  return JSON.parse(await readFile(join(dir, `${name}.json`), 'utf8')) as Credentials;
}
