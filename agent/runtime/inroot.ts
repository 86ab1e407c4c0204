// Path resolution confined to a root directory, as openat2(RESOLVE_IN_ROOT)
// does it: used to unpack image layers (an lstat walk; we are the only writer)
// and to read files out of a rootfs (openat2 itself; a container may be writing).
import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { SyscallError, TsswarmError } from '../../lib/errors.js';
import { componentLogger, createLogger, type Logger } from '../../lib/log.js';
import { nativeAvailable, openat2, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS } from '../../native/libc.js';

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

/** Counts the lstat and readlink calls of many resolutions; `spend` throws once the caller's allowance is used up. */
export interface StepBudget {
  spend(): void;
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
export function resolveInRoot(root: string, relPath: string, o: { followFinal?: boolean; budget?: StepBudget } = {}): string {
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
    o.budget?.spend();
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
      o.budget?.spend();
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

/** How readFileInRoot opens files: openat2 unless the kernel (or a seccomp filter) lacks it. */
let openat2Missing = false;
let fallbackLog: Logger | undefined;

/** Tests only: force the lstat-walk fallback (as on a kernel without openat2), or restore. */
export function forceInRootFallback(on: boolean): void {
  openat2Missing = on;
}

const O_PATH = 0o10000000;
/** openat2 fails with EAGAIN when a rename raced a `..` it resolved; a few retries settle it. */
const EAGAIN_RETRIES = 16;

/**
 * The contents of the regular file `relPath` names inside `root` (symlinks
 * followed inside root only), or undefined when there is none. A FIFO, a
 * device or a directory is refused without blocking (or being opened for
 * reading at all), and a file over `maxBytes` is refused: an image's
 * /etc/passwd must not stall or swamp the agent.
 *
 * The root may be a running container's rootfs, which the container can
 * change while we resolve (swap a directory for a symlink to a host path
 * between our lstat and our open). So the kernel resolves: openat2 with
 * RESOLVE_IN_ROOT holds every component, `..` and symlink inside the root
 * atomically. Only where openat2 does not exist (ENOSYS: kernels before
 * 5.6, some seccomp filters) does the lstat walk stand in, logged once,
 * since it is safe only against trees nobody else is changing.
 */
export function readFileInRoot(root: string, relPath: string, maxBytes: number, log?: Logger): Buffer | undefined {
  const name = `/${parts(relPath).join('/')}`;
  const fd = openat2Missing ? undefined : openWithOpenat2(root, relPath, name, log);
  if (fd === 'missing') return undefined;
  return fd === undefined ? readByWalk(root, relPath, name, maxBytes) : readOpened(fd, name, maxBytes);
}

/** An O_PATH descriptor of the file inside root, 'missing', or undefined when openat2 is unavailable. */
function openWithOpenat2(root: string, relPath: string, name: string, log?: Logger): number | 'missing' | undefined {
  if (!nativeAvailable().ok) return fallBack('ffi-rs cannot load libc', log);
  let dirfd: number;
  try {
    dirfd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY | O_CLOEXEC);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
    throw err;
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        // O_PATH: nothing is opened for reading until fstat says it is a regular file.
        return openat2(dirfd, parts(relPath).join('/') || '.', O_PATH | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
      } catch (err) {
        if (!(err instanceof SyscallError)) throw err;
        switch (err.errnoCode) {
          case 'ENOENT':
          case 'ENOTDIR':
            return 'missing';
          case 'EAGAIN':
            if (attempt < EAGAIN_RETRIES) continue;
            throw new TsswarmError(
              'UNAVAILABLE',
              `cannot open ${name} in the image: its directories kept changing while it was opened (openat2 EAGAIN ${EAGAIN_RETRIES + 1} times); try again`,
              { cause: err },
            );
          case 'ELOOP':
            throw new InRootError('ELOOP', `"${relPath}" in ${root}: more than ${MAX_SYMLINK_HOPS} symlinks on the way (a symlink loop)`);
          case 'ENOSYS':
            return fallBack('the kernel has no openat2 (Linux 5.6 or later has it)', log);
          default:
            throw new TsswarmError('INVALID_ARGUMENT', `cannot open ${name} in the image: ${err.message}`, { cause: err });
        }
      }
    }
  } finally {
    closeSync(dirfd);
  }
}

function fallBack(why: string, log?: Logger): undefined {
  openat2Missing = true;
  const l = log ?? (fallbackLog ??= componentLogger(createLogger(), 'inroot'));
  l.warn(
    { reason: why },
    'files inside container roots are resolved by an lstat walk instead of openat2: safe only while the container is not changing them',
  );
  return undefined;
}

/** The lstat walk: the same answer as openat2 on a tree nobody else is changing. */
function readByWalk(root: string, relPath: string, name: string, maxBytes: number): Buffer | undefined {
  let path: string;
  try {
    path = resolveInRoot(root, relPath, { followFinal: true });
  } catch (err) {
    if (err instanceof InRootError && (err.errno === 'ENOTDIR' || err.errno === 'ENOENT')) return undefined;
    throw err;
  }
  let fd: number;
  try {
    fd = openSync(path, O_PATH | constants.O_NOFOLLOW | O_CLOEXEC);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new TsswarmError('INVALID_ARGUMENT', `cannot open ${name} in the image: ${(err as Error).message}`, { cause: err });
  }
  return readOpened(fd, name, maxBytes);
}

/** Reads the file behind the O_PATH descriptor `pathFd` (closed here) once fstat says it is a regular file within the cap. */
function readOpened(pathFd: number, name: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    const st = fstatSync(pathFd);
    checkFile(st, name, maxBytes);
    // Reopening through /proc/self/fd opens exactly the inode checked above, whatever the path now names.
    fd = openSync(`/proc/self/fd/${pathFd}`, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | O_CLOEXEC);
  } finally {
    closeSync(pathFd);
  }
  try {
    checkFile(fstatSync(fd), name, maxBytes);
    // One byte more than the cap, so a file that grew since fstat is caught too.
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > maxBytes) {
        throw new TsswarmError(
          'INVALID_ARGUMENT',
          `${name} in the image is over the limit of ${maxBytes} bytes: shrink it, or pass --user as numeric uid:gid`,
        );
      }
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function checkFile(st: Stats, name: string, maxBytes: number): void {
  if (!st.isFile()) {
    throw new TsswarmError(
      'INVALID_ARGUMENT',
      `${name} in the image is not a regular file (it is a ${kindOf(st)}): replace it with a file, or pass --user as numeric uid:gid`,
    );
  }
  if (st.size > maxBytes) {
    throw new TsswarmError(
      'INVALID_ARGUMENT',
      `${name} in the image is ${st.size} bytes, over the limit of ${maxBytes}: shrink it, or pass --user as numeric uid:gid`,
    );
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
