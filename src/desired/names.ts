import { createHash } from 'node:crypto';

export const shortHash = (text: string, length = 8): string => createHash('sha256').update(text).digest('hex').slice(0, length);

/** A valid object name from free text (image names, file names, config keys), stable for the same input. */
export function toName(...parts: string[]): string {
  const raw = parts.join('-');
  let name = raw
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (name.length > 63 || name === '') name = `${name.slice(0, 54).replace(/-+$/, '')}-${shortHash(raw)}`.replace(/^-/, '');
  return name;
}
