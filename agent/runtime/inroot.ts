// Path resolution confined to a root directory, as openat2(RESOLVE_IN_ROOT)
// does it: used to unpack image layers and to read files out of an image's
// rootfs, where every symlink was written by whoever built the image.
import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { TsswarmError } from '../../lib/errors.js';

/** Symlinks followed in one resolution before it fails with ELOOP, as the kernel counts. */
export const MAX_SYMLINK_HOPS = 40;

const O_CLOEXEC = 0o2000000;

/** An error from resolving a path inside a root; `errno` says which kind, as the kernel would. */
export class InRootError extends TsswarmError {
  readonly errno: 'ELOOP' | 'ENOTDIR' | 'ENOENT';

  constructor(errno: 'ELOOP' | 'ENOTDIR' | 'ENOENT', message: string) {
    super('INVALID_ARGUMENT', message);
    this.errno = errno;
  }
}

const parts = (p: string): string[] => p.split('/').filter((c) => c !== '');

/** `lstat` of `p`, or undefined when nothing is there. */
export function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The host path `relPath` names inside `root`: `..` stops at root, an
 * absolute symlink target starts again at root, a relative one at the
 * symlink's directory, and more than 40 symlinks fail with ELOOP. The last
 * component is not followed unless `followFinal`. Every directory on the way
 * to the result is a real directory (never a symlink). Once a component is
 * missing nothing below it can exist, so the rest is completed by name and
 * the result may not exist yet: creating it (mkdir -p included) stays inside
 * root; a `..` below a missing component fails with ENOENT, as in the kernel. This is an lstat walk, so it holds only while nobody else changes the
 * tree; the callers are the only writers of the trees they resolve in.
 */
export function resolveInRoot(root: string, relPath: string, o: { followFinal?: boolean } = {}): string {
  const base = resolve(root);
  const stack: string[] = [];
  let todo = parts(relPath);
  let hops = 0;
  let missing = false;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '.') continue;
    if (c === '..') {
      // Below a missing component, `..` would climb back into the real tree
      // with the components between never checked (`nonexist/../link`): the
      // kernel fails such a path with ENOENT, and so do we.
      if (missing) throw new InRootError('ENOENT', `"${relPath}" in ${root}: ".." after "${stack.join('/')}", which does not exist`);
      stack.pop();
      continue;
    }
    if (missing) {
      stack.push(c);
      continue;
    }
    const here = join(base, ...stack, c);
    const st = lstatOrUndefined(here);
    const last = todo.length === 0;
    if (!st) {
      missing = true;
      stack.push(c);
      continue;
    }
    if (st.isSymbolicLink() && (!last || o.followFinal)) {
      if (++hops > MAX_SYMLINK_HOPS) {
        throw new InRootError('ELOOP', `"${relPath}" in ${root}: more than ${MAX_SYMLINK_HOPS} symlinks on the way (a symlink loop)`);
      }
      const target = readlinkSync(here);
      if (target.startsWith('/')) stack.length = 0;
      todo = [...parts(target), ...todo];
      continue;
    }
    if (!last && !st.isDirectory()) {
      throw new InRootError('ENOTDIR', `"${relPath}" in ${root}: "${[...stack, c].join('/')}" is not a directory`);
    }
    stack.push(c);
  }
  return join(base, ...stack);
}

/**
 * The contents of the regular file `relPath` names inside `root` (symlinks
 * followed inside root only), or undefined when there is none. A FIFO, a
 * device or a directory is refused without blocking, and a file over
 * `maxBytes` is refused: an image's /etc/passwd must not stall or swamp the
 * agent.
 */
export function readFileInRoot(root: string, relPath: string, maxBytes: number): Buffer | undefined {
  let path: string;
  try {
    path = resolveInRoot(root, relPath, { followFinal: true });
  } catch (err) {
    if (err instanceof InRootError && (err.errno === 'ENOTDIR' || err.errno === 'ENOENT')) return undefined;
    throw err;
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | O_CLOEXEC);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new TsswarmError('INVALID_ARGUMENT', `cannot open /${parts(relPath).join('/')} in the image: ${(err as Error).message}`, { cause: err });
  }
  try {
    const st = fstatSync(fd);
    const name = `/${parts(relPath).join('/')}`;
    if (!st.isFile()) {
      throw new TsswarmError('INVALID_ARGUMENT', `${name} in the image is not a regular file (it is a ${kindOf(st)}): replace it with a file, or pass --user as numeric uid:gid`);
    }
    if (st.size > maxBytes) {
      throw new TsswarmError('INVALID_ARGUMENT', `${name} in the image is ${st.size} bytes, over the limit of ${maxBytes}: shrink it, or pass --user as numeric uid:gid`);
    }
    // One byte more than the cap, so a file that grew since fstat is caught too.
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > maxBytes) {
        throw new TsswarmError('INVALID_ARGUMENT', `${name} in the image is over the limit of ${maxBytes} bytes: shrink it, or pass --user as numeric uid:gid`);
      }
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isSocket()) return 'socket';
  if (st.isSymbolicLink()) return 'symlink';
  return 'special file';
}
