// Unpacks one image layer (an uncompressed tar stream) into an empty directory
// that overlayfs then uses as a lower layer: OCI whiteouts become overlay
// whiteouts (`.wh.NAME` → a 0:0 character device NAME, `.wh..wh..opq` → the
// directory's trusted.overlay.opaque=y xattr). Owners, modes (setuid too),
// symlinks, hard links and mtimes are kept; device nodes and FIFOs are skipped
// (containers get their /dev from runc).
//
// The tar is hostile until proven otherwise. Every entry's parent is resolved
// inside the layer directory (agent/runtime/inroot.ts), so a symlink the layer
// made, absolute or relative, leads only to another place in the layer; the
// last component is never followed (files are created O_EXCL|O_NOFOLLOW after
// clearing what was there, owners and times set with lchown/lutimes or on the
// open descriptor). Names are normalized as Docker does: a leading `/` is
// dropped (absolute names are taken relative to the layer), `a/../b` is `b`,
// and a `..` that would climb above the layer fails the unpack. Whiteouts and
// opaque markers are applied as they come, in archive order, so a later entry
// cannot redirect them; directory mtimes are set at the end on paths resolved
// again. Only we write the directory while this runs, so the lstat walk has no
// race to lose; its cost is capped by RESOLVE_BUDGET, so deep trees and long
// symlink chains cannot hold the node's image lock for long.
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lutimesSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { TsswarmError } from '../../lib/errors.js';
import { lsetxattr, mknod, S_IFCHR } from '../../native/libc.js';
import { lstatOrUndefined, resolveInRoot, type StepBudget } from './inroot.js';
import { readTarStream, TarError, type TarLimits, type TarStreamEntry } from './tar.js';

export type LayerLimits = TarLimits & {
  /** Uncompressed bytes of the layer tar; the unpack stops as soon as the input passes it (zip bombs). */
  maxBytes?: number;
  /** Path-resolution steps (lstat and readlink calls) allowed; default RESOLVE_BUDGET. */
  resolveBudget?: { base: number; perEntry: number };
};

/**
 * The work an unpack may spend resolving paths: `base` lstat/readlink steps,
 * plus `perEntry` for every tar entry read so far. Each entry resolves its
 * parent component by component, and a symlink restarts the walk, so without
 * a cap one entry can cost 40 hops × 2,048 components, and a million of them
 * would hold the node's image lock (loads and pulls are serialized) for
 * hours. Ordinary layers spend 5 to 15 steps per entry (their directory
 * depth); 32 leaves room for deep trees such as nested node_modules. The
 * base lets a small layer have a few very deep paths, and is spent in about
 * 2 s of lstat calls (7 µs each on a busy 2-core machine), which is how long
 * a hostile layer of symlink chains can hold the lock. With 1,000,000
 * entries (ImageStore's maxLayerEntries) the most any layer can spend is
 * 32,250,000 steps.
 */
export const RESOLVE_BUDGET = { base: 250_000, perEntry: 32 } as const;

export interface UnpackResult {
  /** Directories, files, symlinks and hard links made. */
  files: number;
  /** Device nodes, FIFOs and aufs metadata left out. */
  skipped: number;
  whiteouts: number;
  opaqueDirs: number;
  /** Bytes of the input, to its end. */
  bytes: number;
  /** `sha256:<hex>` of every input byte to its end, padding included: the layer's diff id when it is intact. */
  digest: string;
}

const O_CLOEXEC = 0o2000000;
const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | O_CLOEXEC;

/** The entry's name as layer-relative components; refuses a `..` that would climb above the layer. */
function layerPath(name: string, what: string): string[] {
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0)
        throw new TsswarmError(
          'INVALID_ARGUMENT',
          `layer entry ${what} "${name}" climbs out of the layer with "..": the image is malformed or hostile, rebuild it without such names`,
        );
      out.pop();
    } else out.push(c);
  }
  return out;
}

/** Removes whatever is at `abs` (a real path inside the layer); a directory goes with its contents, a symlink alone. */
function clear(abs: string, st = lstatOrUndefined(abs)): void {
  if (!st) return;
  if (st.isDirectory()) rmSync(abs, { recursive: true, force: true });
  else unlinkSync(abs);
}

function writeAll(fd: number, chunk: Buffer): void {
  for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
}

export async function unpackLayer(
  input: AsyncIterable<Buffer> | Iterable<Buffer>,
  dest: string,
  limits: LayerLimits = {},
): Promise<UnpackResult> {
  const { maxBytes = Infinity, resolveBudget = RESOLVE_BUDGET, ...tarLimits } = limits;
  const hash = createHash('sha256');
  const res: UnpackResult = { files: 0, skipped: 0, whiteouts: 0, opaqueDirs: 0, bytes: 0, digest: '' };
  let overLimit: TsswarmError | undefined;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const c of input) {
      res.bytes += c.length;
      if (res.bytes > maxBytes) {
        throw (overLimit = new TsswarmError(
          'INVALID_ARGUMENT',
          `layer is over the limit of ${maxBytes} uncompressed bytes (passed it at ${res.bytes}): the image is too large for this node's layer limit, or a compression bomb`,
        ));
      }
      hash.update(c);
      yield c;
    }
  }

  let entries = 0;
  let steps = 0;
  const budget: StepBudget = {
    spend() {
      if (++steps <= resolveBudget.base + resolveBudget.perEntry * entries) return;
      throw new TsswarmError(
        'RESOURCE_EXHAUSTED',
        `the layer used up its path-resolution budget of ${resolveBudget.base} plus ${resolveBudget.perEntry} per entry (${steps - 1} lstat/readlink steps after ${entries} entries): it is built of very deep paths or long symlink chains, as a hostile image is; flatten its directory tree or shorten its symlink chains`,
      );
    },
  };

  /** The real directory that is (or now becomes) `rel`'s place in the layer, following symlinks inside it only. */
  const dirInLayer = (rel: string[]): string => {
    const abs = resolveInRoot(dest, rel.join('/'), { followFinal: true, budget });
    const st = lstatOrUndefined(abs);
    if (!st) mkdirSync(abs, { recursive: true, mode: 0o755 });
    else if (!st.isDirectory())
      throw new TsswarmError('INVALID_ARGUMENT', `"${rel.join('/')}" is a file in this layer, so nothing can be put under it`);
    return abs;
  };

  // Layer-relative real paths of the directories made, for their mtimes at the end.
  const dirTimes: { rel: string; mtime: number }[] = [];
  let rootTime: number | undefined;

  const apply = async (e: TarStreamEntry): Promise<void> => {
    const rel = layerPath(e.name, 'name');
    if (rel.length === 0) {
      if (e.type !== 'dir')
        throw new TsswarmError('INVALID_ARGUMENT', `layer entry "${e.name}" names the layer's root but is a ${e.type}, not a directory`);
      rootTime = e.mtime;
      return;
    }
    const base = rel[rel.length - 1]!;
    if (e.type === 'char' || e.type === 'block' || e.type === 'fifo') {
      res.skipped++;
      return;
    }
    const parent = dirInLayer(rel.slice(0, -1));
    if (base === '.wh..wh..opq') {
      lsetxattr(parent, 'trusted.overlay.opaque', 'y');
      res.opaqueDirs++;
      return;
    }
    if (base.startsWith('.wh..wh.')) {
      res.skipped++; // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): meaningless to overlayfs
      return;
    }
    if (base.startsWith('.wh.')) {
      const hidden = base.slice(4);
      if (hidden === '' || hidden === '.' || hidden === '..') {
        throw new TsswarmError(
          'INVALID_ARGUMENT',
          `layer entry "${e.name}" is a whiteout of "${hidden}", which names no file: the image is malformed or hostile`,
        );
      }
      const abs = join(parent, hidden);
      clear(abs);
      mknod(abs, S_IFCHR, 0);
      lutimesSync(abs, e.mtime, e.mtime);
      res.whiteouts++;
      return;
    }
    const abs = join(parent, base);
    const st = lstatOrUndefined(abs);
    switch (e.type) {
      case 'dir':
        if (!st?.isDirectory()) {
          clear(abs, st);
          mkdirSync(abs, { mode: 0o700 });
        }
        lchownSync(abs, e.uid, e.gid);
        chmodSync(abs, e.mode); // a real directory: lstat said so, and only we write here
        dirTimes.push({ rel: relative(dest, abs), mtime: e.mtime });
        break;
      case 'file': {
        clear(abs, st);
        const fd = openSync(abs, CREATE, 0o600);
        try {
          for await (const c of e.body) writeAll(fd, c);
          fchownSync(fd, e.uid, e.gid);
          fchmodSync(fd, e.mode); // after chown, which clears setuid
          futimesSync(fd, e.mtime, e.mtime);
        } finally {
          closeSync(fd);
        }
        break;
      }
      case 'symlink':
        // The target is not checked: it is followed only inside the container (and inside the layer while unpacking).
        clear(abs, st);
        symlinkSync(e.linkname, abs);
        lchownSync(abs, e.uid, e.gid);
        lutimesSync(abs, e.mtime, e.mtime);
        break;
      case 'hardlink': {
        const targetRel = layerPath(e.linkname, 'link target');
        const target = resolveInRoot(dest, targetRel.join('/'), { budget });
        const tst = lstatOrUndefined(target);
        if (!tst)
          throw new TsswarmError(
            'INVALID_ARGUMENT',
            `layer entry "${e.name}" is a hard link to "${e.linkname}", which is not in this layer (links resolve inside the layer only)`,
          );
        if (tst.isDirectory())
          throw new TsswarmError(
            'INVALID_ARGUMENT',
            `layer entry "${e.name}" is a hard link to the directory "${e.linkname}": directories cannot be hard linked`,
          );
        if (target === abs) break;
        clear(abs, st);
        linkSync(target, abs); // link(2) does not follow a symlink target: it links the symlink itself
        break;
      }
    }
    res.files++;
  };

  for await (const e of readTarStream(counted(), tarLimits)) {
    entries++;
    try {
      await apply(e);
    } catch (err) {
      // Errors that already say where they come from pass as they are.
      if (err === overLimit || err instanceof TarError || (err instanceof TsswarmError && err.message.startsWith('layer entry'))) throw err;
      const msg = err instanceof Error ? err.message : String(err);
      throw new TsswarmError(err instanceof TsswarmError ? err.code : 'INTERNAL', `layer entry "${e.name}": ${msg}`, { cause: err });
    }
  }

  // Last: writing into a directory moves its mtime. Re-resolved, so a directory since replaced by a symlink is left alone.
  for (const d of dirTimes.reverse()) {
    const abs = resolveInRoot(dest, d.rel, { budget });
    if (lstatOrUndefined(abs)?.isDirectory()) lutimesSync(abs, d.mtime, d.mtime);
  }
  if (rootTime !== undefined) lutimesSync(dest, rootTime, rootTime);
  res.digest = `sha256:${hash.digest('hex')}`;
  return res;
}
