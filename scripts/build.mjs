// `npm run build` (after `npm run gen`): bundles the CLI and the daemon from
// cli/main.ts into dist/ with esbuild, one chunk per lazily loaded command
// module, so a command loads only the code it runs. Dependencies stay in
// node_modules (ffi-rs is native; grpc-js, pino and protobufjs load as packages).
// bin/tsswarm.mjs runs the result.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// --outdir DIR: build elsewhere (the build test); dist/ by default.
const i = process.argv.indexOf('--outdir');
const out = i > 0 ? process.argv[i + 1] : join(root, 'dist');
const t0 = performance.now();
// Chunks are named by content hash: old ones would pile up.
rmSync(out, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { tsswarm: 'cli/main.ts' },
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  sourcemap: 'linked',
  logLevel: 'warning',
});
console.error(`${out}/tsswarm.mjs built in ${Math.round(performance.now() - t0)} ms`);
