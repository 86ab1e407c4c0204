// Where the tsswarm package is on disk, from any module: the source tree runs
// modules from cli/, deploy/sandbox/..., a build from dist/ and dist/chunks/,
// so a path relative to one module's own file is wrong in the other.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The directory holding tsswarm's package.json. */
export function packageRoot(): string {
  if (root) return root;
  for (let d = dirname(fileURLToPath(import.meta.url)); ; d = dirname(d)) {
    const p = join(d, 'package.json');
    if (existsSync(p) && (JSON.parse(readFileSync(p, 'utf8')) as { name?: string }).name === 'tsswarm') return (root = d);
    if (dirname(d) === d) throw new Error(`no tsswarm package.json above ${fileURLToPath(import.meta.url)}`);
  }
}
