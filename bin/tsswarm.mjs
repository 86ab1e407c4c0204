#!/usr/bin/env node
// The `tsswarm` executable: runs the built bundle in dist/ (`npm run build`).
// In a git checkout whose sources changed after the last build, or that has no
// build, it runs the TypeScript source through tsx instead (a development
// dependency), so a developer never runs stale code.
import { existsSync, readdirSync, statSync } from 'node:fs';
import module from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Node 22.1 and later keep compiled code between runs (less to compile at each start); on Node 20 this is a no-op.
module.enableCompileCache?.();

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'tsswarm.mjs');

/** The newest modification time of the sources the bundle is made of (0 outside a checkout). */
function newestSource() {
  if (!existsSync(join(root, '.git'))) return 0;
  let newest = 0;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|json|proto)$/.test(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of ['agent', 'ca', 'cli', 'deploy', 'lib', 'manager', 'native', 'node', 'proto', 'spec'])
    if (existsSync(join(root, d))) walk(join(root, d));
  return newest;
}

let main;
if (existsSync(built) && statSync(built).mtimeMs >= newestSource()) {
  ({ main } = await import(built));
} else {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write(`tsswarm: no usable build at ${built}: run \`npm run build\` in ${root}\n`);
    process.exit(1);
  }
  register();
  ({ main } = await import('../cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
