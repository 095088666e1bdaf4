/** The shipped `inbm` (one bundled module made by `npm run build`, which `npm test` runs first). */
import { resolve } from 'node:path';

export const BIN = resolve(import.meta.dirname, '..', 'dist', 'inbm.mjs');
