import { readFile } from 'node:fs/promises';
import { badManifest } from '../core/result.js';

export interface Input {
  text: string;
  origin: string;
  format: 'xml' | 'yaml';
}

const MAX_INPUT = 1024 * 1024;

/** Reads FILE or stdin ("-"), and tells an INBM XML manifest from a YAML/JSON document by its first character. */
export async function readInput(file: string): Promise<Input> {
  const text =
    file === '-'
      ? await readStdin()
      : await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
          throw badManifest(`cannot read ${file}: ${err.code ?? err.message}`);
        });
  const body = text.replace(/^\uFEFF/, '');
  return { text: body, origin: file === '-' ? 'stdin' : file, format: body.trimStart().startsWith('<') ? 'xml' : 'yaml' };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    // Read one byte past the cap so the parser reports the size error, not a truncated document.
    if (size > MAX_INPUT + 1) break;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
