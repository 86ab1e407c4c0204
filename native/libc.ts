// The few libc calls Node lacks, through ffi-rs: prctl(PR_SET_CHILD_SUBREAPER)
// so a runtime can reap the containers it starts, and setns(2) so a socket can
// be opened inside another network namespace. Each wrapper throws a
// SyscallError carrying errno when the call fails.
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { SyscallError, TsswarmError } from '../lib/errors.js';

type Ffi = typeof import('ffi-rs');

// Loaded on first use, so that importing native/ never fails on a machine
// whose ffi-rs binary is missing; only the calls do.
let ffi: Ffi | undefined;
const LIBRARY = 'tsswarm-libc';

function libc(): Ffi {
  if (!ffi) {
    const loaded = createRequire(import.meta.url)('ffi-rs') as Ffi;
    loaded.open({ library: LIBRARY, path: 'libc.so.6' });
    ffi = loaded;
  }
  return ffi;
}

/** Whether native calls work here; the reason when they do not. */
export function nativeAvailable(): { ok: true } | { ok: false; reason: string } {
  try {
    libc();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `ffi-rs cannot load libc.so.6: ${(err as Error).message}` };
  }
}

type Arg = 'i32' | 'i64' | 'buffer';

/** Calls `name` and returns its int result, or throws SyscallError when it returns -1. */
function call(name: string, args: ReadonlyArray<readonly [Arg, number | Buffer]>, describe: () => string): number {
  const { load, DataType } = libc();
  const types = { i32: DataType.I32, i64: DataType.I64, buffer: DataType.U8Array } as const;
  const r = load({
    library: LIBRARY,
    funcName: name,
    retType: DataType.I32,
    paramsType: args.map(([t]) => types[t]),
    paramsValue: args.map(([, v]) => v),
    errno: true as const,
  });
  if (r.value === -1) {
    // errnoMessage reads "Bad file descriptor (os error 9)"; keep the words.
    const text = r.errnoMessage.replace(/\s*\(os error \d+\)$/, '');
    const hint = r.errnoCode === 1 ? '; this needs CAP_SYS_ADMIN: run as root' : '';
    throw new SyscallError(describe(), r.errnoCode, `${text}${hint}`);
  }
  return r.value;
}

const PR_SET_CHILD_SUBREAPER = 36;
const PR_GET_CHILD_SUBREAPER = 37;

/**
 * Makes this process a child subreaper: orphaned descendants are re-parented
 * to it (not to init), so it sees their exit status.
 */
export function setChildSubreaper(enabled = true): void {
  // prctl is variadic and reads unsigned longs: pass 64-bit values so no
  // stale upper register half reaches the kernel.
  call(
    'prctl',
    [['i32', PR_SET_CHILD_SUBREAPER], ['i64', enabled ? 1 : 0], ['i64', 0], ['i64', 0], ['i64', 0]],
    () => `prctl(PR_SET_CHILD_SUBREAPER, ${enabled ? 1 : 0})`,
  );
}

export function isChildSubreaper(): boolean {
  const out = Buffer.alloc(4);
  call(
    'prctl',
    [['i32', PR_GET_CHILD_SUBREAPER], ['buffer', out], ['i64', 0], ['i64', 0], ['i64', 0]],
    () => 'prctl(PR_GET_CHILD_SUBREAPER)',
  );
  return out.readInt32LE(0) !== 0;
}

/** Namespace types for setns(2) (the CLONE_NEW* flags). */
export const Namespace = {
  net: 0x40000000,
  mnt: 0x00020000,
  uts: 0x04000000,
  ipc: 0x08000000,
  pid: 0x20000000,
  user: 0x10000000,
  cgroup: 0x02000000,
  time: 0x00000080,
} as const;
export type NamespaceType = (typeof Namespace)[keyof typeof Namespace];

function nstypeName(nstype: number): string {
  if (nstype === 0) return '0';
  const e = Object.entries(Namespace).find(([, v]) => v === nstype);
  return e ? `CLONE_NEW${e[0].toUpperCase()}` : `0x${nstype.toString(16)}`;
}

/**
 * Moves the calling thread (the JavaScript main thread) into the namespace
 * open at `fd` (e.g. `/run/netns/NAME`, `/proc/PID/ns/net`). `nstype` 0
 * accepts any type. Only the main thread moves: libuv's thread pool (fs,
 * dns.lookup) stays where it was.
 */
export function setns(fd: number, nstype: NamespaceType | 0 = 0): void {
  call('setns', [['i32', fd], ['i32', nstype]], () => `setns(fd ${fd}, ${nstypeName(nstype)})`);
}

/**
 * Runs `fn` with the main thread inside the network namespace at `nsPath`,
 * then moves it back. `fn` must be synchronous: sockets it creates stay in
 * that namespace after the switch back, but any later callback would run in
 * the original one.
 */
export function withNetns<T>(nsPath: string, fn: () => T): T {
  const home = openSync('/proc/thread-self/ns/net', 'r');
  try {
    const target = openSync(nsPath, 'r');
    try {
      setns(target, Namespace.net);
    } finally {
      closeSync(target);
    }
    let result: T;
    try {
      result = fn();
    } finally {
      setns(home, Namespace.net);
    }
    if (result instanceof Promise) {
      throw new TsswarmError('INTERNAL', 'withNetns runs synchronous work only: the function returned a Promise');
    }
    return result;
  } finally {
    closeSync(home);
  }
}
