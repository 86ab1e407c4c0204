// What a test of secrets on disk looks for: the regular files under a
// directory that hold some bytes, without descending into other filesystems
// (a container's tmpfs, its overlay rootfs): what is on the host's disk.
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Regular files under `dir`, on `dir`'s own filesystem, whose bytes include `needle`. */
export function filesHolding(dir: string, needle: Buffer): string[] {
  const dev = statSync(dir).dev;
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) {
        if (st.dev === dev) walk(p);
      } else if (st.isFile() && st.dev === dev && readFileSync(p).includes(needle)) out.push(p);
    }
  };
  walk(dir);
  return out;
}
