// The bounds on filling a container's new volumes from its image (Docker's
// copy-up). An image's VOLUME paths are its author's: through links several
// can name the whole rootfs, or the same directory, and each copy would then
// fill the disk once more for every replica. What may be copied is checked,
// then measured against one allowance per container, before anything is copied.
import { lstat, opendir } from 'node:fs/promises';
import { join, posix, resolve } from 'node:path';
import { TsswarmError } from '../../lib/errors.js';

/** Bytes (file sizes) copied into one container's new volumes, all of them together. */
export const MAX_VOLUME_FILL_BYTES = 4 * 1024 ** 3;
/** Files, links and directories copied into one container's new volumes, all of them together. */
export const MAX_VOLUME_FILL_ENTRIES = 500_000;
/** One volume's `cp`: minutes for a large but allowed copy, not an exec's usual 30 s. */
export const VOLUME_FILL_TIMEOUT_MS = 10 * 60_000;

/** One new volume to fill: its mount target, the image's directory there (a host path inside the rootfs), the volume's directory. */
export interface VolumeFill {
  target: string;
  source: string;
  volume: string;
}

const within = (p: string, dir: string): boolean => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
const clean = (t: string): string => posix.normalize(t).replace(/(.)\/+$/, '$1');

/**
 * Refuses a fill whose image directory is the rootfs itself (a VOLUME that
 * is, or links to, `/`), and two fills whose image directories are the same
 * or one inside the other while their targets are not nested the same way
 * (an alias made with a link). Nested targets (`/var/lib`, `/var/lib/mysql`)
 * whose directories nest the same way are Docker's and allowed: the inner one
 * is copied twice, within the allowance.
 */
export function checkVolumeFills(rootfs: string, fills: readonly VolumeFill[]): void {
  const root = resolve(rootfs);
  for (const f of fills)
    if (resolve(f.source) === root)
      throw new TsswarmError(
        'INVALID_ARGUMENT',
        `volume at ${f.target}: the image's ${f.target} is its root directory (through a link), and a volume is never filled with the whole image: fix the image's VOLUME, or mount a volume there with volume-nocopy`,
      );
  for (const a of fills)
    for (const b of fills) {
      if (a === b || !within(resolve(b.source), resolve(a.source))) continue;
      // Nested as the targets are, and no link in between: the inner one's directory is where the outer's copy has it.
      const ta = clean(a.target);
      const tb = clean(b.target);
      if (tb !== ta && within(tb, ta) && resolve(b.source) === resolve(a.source) + tb.slice(ta === '/' ? 0 : ta.length)) continue;
      throw new TsswarmError(
        'INVALID_ARGUMENT',
        `volumes at ${a.target} and ${b.target}: the image's ${b.target} is ${resolve(b.source) === resolve(a.source) ? 'the same directory as' : 'inside'} its ${a.target} through a link, so one copy would hold the other: fix the image's VOLUME paths, or mount a volume at one of them with volume-nocopy`,
      );
    }
}

/** What is left to copy: decreased by measureFill. */
export interface FillAllowance {
  bytes: number;
  entries: number;
}

/** Walks `dir` (links not followed) and takes its size from `left`; throws naming `target` once the allowance is passed. */
export async function measureFill(dir: string, target: string, left: FillAllowance): Promise<void> {
  const over = (): TsswarmError =>
    new TsswarmError(
      'RESOURCE_EXHAUSTED',
      `volume at ${target}: the image's content for this container's new volumes passes ${MAX_VOLUME_FILL_BYTES / 1024 ** 3} GiB or ${MAX_VOLUME_FILL_ENTRIES} files, all volumes together: mount a volume there with volume-nocopy, or make the image's VOLUME directories smaller`,
    );
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    for await (const e of await opendir(d)) {
      const p = join(d, e.name);
      if (--left.entries < 0) throw over();
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        left.bytes -= (await lstat(p)).size;
        if (left.bytes < 0) throw over();
      }
    }
  }
}
