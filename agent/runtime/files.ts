// A container's secrets and configs, as dockerd mounts them
// (daemon/container_operations_unix.go): a tmpfs of their own at
// `<container dir>/files` (nodev, nosuid, noexec, mode 0700), each file
// written there with its owner and mode, the tmpfs remounted read-only, and
// each file bind-mounted read-only at its target in the container (spec.ts).
// The values live in memory only: never on the node's disk, never in a log.
// The tmpfs goes when the container stops (the runtime sees its exit) or is
// removed, whichever comes first; the container's own bind mounts keep the
// files until its last process is gone.
import { chmodSync, chownSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsswarmError } from '../../lib/errors.js';
import { isMounted, MNT_DETACH, mount, umount } from '../../native/libc.js';
import type { ContainerFile } from './types.js';

// mount(2) flags (linux/mount.h).
const MS_RDONLY = 1;
const MS_NOSUID = 2;
const MS_NODEV = 4;
const MS_NOEXEC = 8;
const MS_REMOUNT = 32;
const SAFE = MS_NOSUID | MS_NODEV | MS_NOEXEC;

/** The tmpfs's directory under the container's own. */
export const FILES_DIR = 'files';
const PAGE = 4096;

/** A file's bind mount: where it is on the node, where it appears in the container. */
export interface FileMount {
  source: string;
  target: string;
}

/** Why a file cannot be mounted as given, or undefined (the managers checked it; this is the node's own guard). */
export function fileError(f: ContainerFile, i: number): string | undefined {
  if (!f.target.startsWith('/') || f.target.split('/').includes('..') || f.target.includes('\0'))
    return `files[${i}]: target ${JSON.stringify(f.target)} must be an absolute path without ".."`;
  for (const [k, v] of [
    ['uid', f.uid],
    ['gid', f.gid],
  ] as const)
    if (!Number.isInteger(v) || v < 0 || v > 0xfffffffe) return `files[${i}] (${f.target}): ${k} ${v} is not a numeric id`;
  if (!Number.isInteger(f.mode) || f.mode < 0 || f.mode > 0o777) return `files[${i}] (${f.target}): mode ${f.mode} is above 0777`;
  return undefined;
}

/**
 * Mounts the tmpfs under `containerDir`, writes the files into it and makes
 * it read-only; returns their bind mounts (file i is `files/<i>`: the same
 * secret may appear at two targets with two owners). Throws with nothing
 * left mounted when any step fails. Never puts a value in an error.
 */
export function mountFiles(containerDir: string, files: readonly ContainerFile[]): FileMount[] {
  files.forEach((f, i) => {
    const bad = fileError(f, i);
    if (bad) throw new TsswarmError('INVALID_ARGUMENT', bad);
  });
  const dir = join(containerDir, FILES_DIR);
  mkdirSync(dir, { mode: 0o700 });
  // Each file takes whole pages; a little room for the directory itself.
  const size = files.reduce((n, f) => n + Math.ceil(f.data.length / PAGE) * PAGE, 0) + 16 * PAGE;
  mount('tss-files', dir, 'tmpfs', `mode=0700,uid=0,gid=0,size=${size}`, SAFE);
  try {
    const out = files.map((f, i): FileMount => {
      const path = join(dir, String(i));
      writeFileSync(path, f.data, { mode: 0o600, flag: 'wx' });
      chownSync(path, f.uid, f.gid);
      // After the chown, which clears set-id bits; the umask does not apply to chmod.
      chmodSync(path, f.mode);
      return { source: path, target: f.target };
    });
    remountReadOnly(dir);
    return out;
  } catch (e) {
    unmountFiles(containerDir);
    throw e;
  }
}

/** The tmpfs read-only; moby retries on EBUSY (moby/moby#48783), so do we. */
function remountReadOnly(dir: string): void {
  for (let i = 0; ; i++) {
    try {
      mount('', dir, '', '', MS_REMOUNT | MS_RDONLY | SAFE);
      return;
    } catch (e) {
      if (i >= 4 || !/EBUSY|busy/i.test((e as Error).message)) throw e;
    }
  }
}

/** Unmounts the tmpfs (its files go with it) and removes its directory. Idempotent. */
export function unmountFiles(containerDir: string): void {
  const dir = join(containerDir, FILES_DIR);
  if (isMounted(dir)) {
    try {
      umount(dir);
    } catch {
      umount(dir, MNT_DETACH);
    }
  }
  try {
    rmdirSync(dir);
  } catch {
    /* never made, or already gone */
  }
}
