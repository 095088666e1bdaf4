/** The shared INBM fixtures and the outcome their README records for each. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** `../shared` beside the checkout (CI lays it there too); INBM_SHARED overrides. */
export const SHARED = process.env.INBM_SHARED ?? resolve(import.meta.dirname, '..', '..', 'shared');
export const FIXTURES = join(SHARED, 'fixtures', 'inbm-manifests');

export interface Fixture {
  file: string;
  dir: 'valid' | 'invalid';
  path: string;
  text: string;
  /** The "INBM result" column of the README row. */
  reference: string;
}

export function loadFixtures(): Fixture[] {
  if (!existsSync(FIXTURES)) throw new Error(`fixtures not found at ${FIXTURES} (set INBM_SHARED)`);
  const readme = readFileSync(join(FIXTURES, 'README.md'), 'utf8');
  const rows = new Map<string, string>();
  for (const line of readme.split('\n')) {
    const m = /^\| `([^`]+)` \|[^|]*\|[^|]*\| (.*) \|$/.exec(line);
    if (m) rows.set(m[1]!, m[2]!);
  }
  const out: Fixture[] = [];
  for (const dir of ['valid', 'invalid'] as const) {
    for (const file of readdirSync(join(FIXTURES, dir)).sort()) {
      const path = join(FIXTURES, dir, file);
      const reference = rows.get(file);
      if (reference === undefined) throw new Error(`${dir}/${file} has no row in the fixtures README`);
      out.push({ file, dir, path, text: readFileSync(path, 'utf8'), reference });
    }
  }
  return out;
}

/**
 * What `inbm validate` must answer: valid → 200; invalid → 300, except where the reference
 * answers 400 only after trying the operation (the README's result starts with "400").
 */
export function expectedValidateStatus(f: Fixture): 200 | 300 {
  if (f.dir === 'valid') return 200;
  return /^400\b/.test(f.reference) ? 200 : 300;
}
