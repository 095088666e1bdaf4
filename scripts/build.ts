/**
 * `npm run build`: the shipped `inbm` is one minified ES module, dist/inbm.mjs (bin of the
 * package, run by systemd/inbm.service, the tests and the benches). One file instead of ~600
 * modules because the agent's footprint is mostly module source and compiled code: the bundle
 * leaves out what is never reached (zod's 60-odd locales among it) and cuts the idle agent's
 * RSS by ~5 MiB (bench agent-footprint). `npm run typecheck` checks the types; nothing else is
 * emitted. esbuild is the one tsx already brings.
 */
import { chmod } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..');
const OUTFILE = join(ROOT, 'dist', 'inbm.mjs');
const STUB = join(ROOT, 'scripts', 'stubs', 'unsupported.cjs');

await build({
  entryPoints: [join(ROOT, 'src', 'cli', 'main.ts')],
  outfile: OUTFILE,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  // Class names stay readable in logs (pino prints err.constructor.name as the error type).
  keepNames: true,
  sourcemap: true,
  // dockerode is bundled too (CommonJS in the bundle is evaluated at first require, so it still
  // loads only once the engine is used), minus what the agent never reaches: see the stub.
  plugins: [
    {
      name: 'unsupported',
      setup(b) {
        b.onResolve({ filter: /^(ssh2|@grpc\/grpc-js|@grpc\/proto-loader|protobufjs)$/ }, () => ({ path: STUB }));
      },
    },
  ],
  // Bundled CommonJS dependencies (pino, mqtt, aedes) call require for Node's built-ins.
  banner: { js: "import { createRequire as __inbmRequire } from 'node:module'; const require = __inbmRequire(import.meta.url);" },
  logLevel: 'warning',
});
await chmod(OUTFILE, 0o755);
