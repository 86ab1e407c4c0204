// `npm run build` (after `npm run gen`): bundles the CLI and the daemon from
// cli/main.ts into dist/ with esbuild, one chunk per lazily loaded command
// module, so a command loads only the code it runs. The JavaScript
// dependencies are bundled too (grpc-js alone is about a hundred CommonJS
// files to resolve and load: bundled, `node ls` starts about 20 ms sooner);
// ffi-rs stays in node_modules (a native addon), and so does grpc-js's
// @grpc/proto-loader, which grpc-js requires only to serve channelz or ORCA
// (tsswarm serves neither): bundled, its 260 KB of source (a second protobufjs
// among them) sat in every process's heap. Whitespace and comments are
// minified away, names kept: a daemon holds its chunks' source text in memory
// for as long as it runs (about 1 MB less per process; stack traces keep the
// function names, and the linked source maps give the lines). bin/tsswarm.mjs
// runs the result.
import { build } from 'esbuild';
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// --outdir DIR: build elsewhere (the build test); dist/ by default.
const i = process.argv.indexOf('--outdir');
const out = i > 0 ? process.argv[i + 1] : join(root, 'dist');
const t0 = performance.now();
// Chunks are named by content hash: old ones would pile up.
rmSync(out, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { tsswarm: 'cli/main.ts' },
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['ffi-rs', '@grpc/proto-loader'],
  minifyWhitespace: true,
  // Bundled CommonJS dependencies call require() for Node's own modules.
  banner: { js: "import { createRequire as __tssRequire } from 'node:module'; const require = __tssRequire(import.meta.url);" },
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  sourcemap: 'linked',
  logLevel: 'warning',
  metafile: true,
});
// Which sources and packages each chunk holds (the build test checks what a command loads).
writeFileSync(join(out, 'meta.json'), JSON.stringify(result.metafile));
console.error(`${out}/tsswarm.mjs built in ${Math.round(performance.now() - t0)} ms`);
