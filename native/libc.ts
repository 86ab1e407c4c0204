// The few libc calls Node lacks, through ffi-rs: prctl(PR_SET_CHILD_SUBREAPER)
// so a runtime can reap the containers it starts, and setns(2) so a socket can
// be opened inside another network namespace, openat2(2) so a file can be read
// inside a root a container may be changing. Each wrapper throws a
// SyscallError carrying errno when the call fails.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { SyscallError, TsswarmError } from '../lib/errors.js';

type Ffi = typeof import('ffi-rs');

// Loaded on first use, so that importing native/ never fails on a machine
// whose ffi-rs binary is missing; only the calls do.
let ffiModule: Ffi | undefined;
let ffi: Ffi | undefined;
const LIBRARY = 'tsswarm-libc';

/**
 * The ffi-rs module, required once for every library opened through it (libc
 * here, libnftables in agent/lb). Its loader picks its glibc or musl binary by
 * calling process.report.getReport() and reading one field: a whole
 * diagnostic report (the native stack symbolised, every handle listed) that
 * takes ~5 ms and leaves about 1 MB of node's symbol and unwind tables
 * resident for the life of the daemon. When the C library mapped into this process
 * settles the question, the loader gets that answer instead of a report.
 */
export function loadFfi(): Ffi {
  if (ffiModule) return ffiModule;
  const req = createRequire(import.meta.url);
  const report = Object.getOwnPropertyDescriptor(process, 'report');
  const libcKind = process.platform === 'linux' && report?.configurable ? mappedLibc() : undefined;
  if (!libcKind) return (ffiModule = req('ffi-rs') as Ffi);
  // glibcVersionRuntime is what the loader reads: set on glibc, absent on musl (as in a real report).
  const header = libcKind === 'glibc' ? { glibcVersionRuntime: 'mapped' } : {};
  Object.defineProperty(process, 'report', { configurable: true, enumerable: true, value: { getReport: () => ({ header }) } });
  try {
    return (ffiModule = req('ffi-rs') as Ffi);
  } finally {
    Object.defineProperty(process, 'report', report!);
  }
}

/** Which C library this process runs on, from the shared objects mapped into it; undefined when unsure. */
function mappedLibc(): 'glibc' | 'musl' | undefined {
  let maps: string;
  try {
    maps = readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return undefined;
  }
  const musl = /\/(?:ld-musl-|libc\.musl-)[^/\n]*$/m.test(maps);
  const glibc = /\/libc\.so\.6$/m.test(maps);
  return musl === glibc ? undefined : glibc ? 'glibc' : 'musl';
}

function libc(): Ffi {
  if (!ffi) {
    const loaded = loadFfi();
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

/**
 * Gives the pages the C heap holds free back to the kernel (glibc's
 * malloc_trim(0)): whether any were returned, or undefined where the call is
 * missing (another C library, no ffi-rs). glibc keeps what was freed inside
 * its heaps for reuse, so after a burst of buffers (an image unpacked, a
 * layer hashed) a process idles megabytes above what it uses. The call walks
 * the free lists (about a millisecond for a daemon's heap); later allocations
 * take pages from the kernel again.
 */
export function releaseFreeHeap(): boolean | undefined {
  let f: Ffi;
  try {
    f = libc();
  } catch {
    return undefined;
  }
  try {
    const { load, DataType } = f;
    return load({ library: LIBRARY, funcName: 'malloc_trim', retType: DataType.I32, paramsType: [DataType.I64], paramsValue: [0] }) === 1;
  } catch {
    return undefined;
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
    [
      ['i32', PR_SET_CHILD_SUBREAPER],
      ['i64', enabled ? 1 : 0],
      ['i64', 0],
      ['i64', 0],
      ['i64', 0],
    ],
    () => `prctl(PR_SET_CHILD_SUBREAPER, ${enabled ? 1 : 0})`,
  );
}

export function isChildSubreaper(): boolean {
  const out = Buffer.alloc(4);
  call(
    'prctl',
    [
      ['i32', PR_GET_CHILD_SUBREAPER],
      ['buffer', out],
      ['i64', 0],
      ['i64', 0],
      ['i64', 0],
    ],
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
  call(
    'setns',
    [
      ['i32', fd],
      ['i32', nstype],
    ],
    () => `setns(fd ${fd}, ${nstypeName(nstype)})`,
  );
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

const cstr = (s: string): Buffer => Buffer.from(`${s}\0`);

/**
 * mount(2) of a filesystem that needs no device, e.g. an overlayfs rootfs:
 * one syscall instead of a `mount` process (which the agent would have to fork).
 */
export function mount(source: string, target: string, fstype: string, data: string, flags = 0): void {
  call(
    'mount',
    [
      ['buffer', cstr(source)],
      ['buffer', cstr(target)],
      ['buffer', cstr(fstype)],
      ['i64', flags],
      ['buffer', cstr(data)],
    ],
    () => `mount(${source}, ${target}, ${fstype})`,
  );
}

export const MNT_DETACH = 2;

/** umount2(2); `flags` MNT_DETACH for a lazy unmount. */
export function umount(target: string, flags = 0): void {
  call(
    'umount2',
    [
      ['buffer', cstr(target)],
      ['i32', flags],
    ],
    () => `umount2(${target}, ${flags})`,
  );
}

/** Whether something is mounted at `path` in this process's mount namespace (/proc/self/mounts; false when unreadable). */
export function isMounted(path: string): boolean {
  let mounts: string;
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return false;
  }
  return mounts.split('\n').some((l) => l.split(' ')[1] === path);
}

// Sockets made by hand, so that one can be created inside another network
// namespace (a socket belongs to the namespace of the thread that called
// socket(2)) and then handed to Node by descriptor. Node's own sockets are
// created after an asynchronous address lookup, too late for withNetns.
export const AF_INET = 2;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;

/** socket(2); returns the new descriptor. */
export function socket(domain: number, type: number, protocol = 0): number {
  return call(
    'socket',
    [
      ['i32', domain],
      ['i32', type],
      ['i32', protocol],
    ],
    () => `socket(${domain}, ${type}, ${protocol})`,
  );
}

/** setsockopt(2) with an int option value. */
export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value, 0);
  call(
    'setsockopt',
    [
      ['i32', fd],
      ['i32', level],
      ['i32', name],
      ['buffer', v],
      ['i32', 4],
    ],
    () => `setsockopt(fd ${fd}, ${level}, ${name}, ${value})`,
  );
}

/** bind(2) of an AF_INET socket to `address:port` (dotted quad). */
export function bindInet4(fd: number, address: string, port: number): void {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new TsswarmError('INVALID_ARGUMENT', `bind address must be an IPv4 dotted quad such as 127.0.0.11 (got "${address}")`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TsswarmError('INVALID_ARGUMENT', `bind port must be a whole number 0-65535 (got ${port})`);
  }
  // struct sockaddr_in: family (host order), port and address (network order), 8 bytes of zero.
  const sa = Buffer.alloc(16);
  sa.writeUInt16LE(AF_INET, 0);
  sa.writeUInt16BE(port, 2);
  for (let i = 0; i < 4; i++) sa[4 + i] = parts[i]!;
  call(
    'bind',
    [
      ['i32', fd],
      ['buffer', sa],
      ['i32', sa.length],
    ],
    () => `bind(fd ${fd}, ${address}:${port})`,
  );
}

/**
 * A non-blocking, close-on-exec (children such as runc never inherit it)
 * IPv4 socket bound to `address:port`, in the calling thread's network
 * namespace. TCP sockets get SO_REUSEADDR so a restarted server can bind
 * while old connections sit in TIME_WAIT. The caller owns the descriptor
 * (hand it to dgram `bind({fd})` or net `listen({fd})`).
 */
export function boundInet4Socket(kind: 'udp' | 'tcp', address: string, port: number): number {
  const fd = socket(AF_INET, (kind === 'udp' ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC);
  try {
    if (kind === 'tcp') setsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    bindInet4(fd, address, port);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 0x1;

/**
 * Sets the interface `name` of the calling thread's network namespace up
 * (SIOCSIFFLAGS), e.g. `lo` in a namespace made without it. Returns whether
 * it was down. One ioctl instead of an `ip link set` process per container.
 */
export function setInterfaceUp(name: string): boolean {
  if (Buffer.byteLength(name) > 15) {
    throw new TsswarmError('INVALID_ARGUMENT', `interface name must be at most 15 bytes (got "${name}")`);
  }
  const fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC);
  try {
    // struct ifreq: ifr_name[16], then a union whose ifr_flags is a short.
    const ifr = Buffer.alloc(40);
    ifr.write(name, 0, 'utf8');
    call(
      'ioctl',
      [
        ['i32', fd],
        ['i64', SIOCGIFFLAGS],
        ['buffer', ifr],
      ],
      () => `ioctl(SIOCGIFFLAGS, ${name})`,
    );
    const flags = ifr.readUInt16LE(16);
    if (flags & IFF_UP) return false;
    ifr.writeUInt16LE(flags | IFF_UP, 16);
    call(
      'ioctl',
      [
        ['i32', fd],
        ['i64', SIOCSIFFLAGS],
        ['buffer', ifr],
      ],
      () => `ioctl(SIOCSIFFLAGS, ${name})`,
    );
    return true;
  } finally {
    closeSync(fd);
  }
}

// Filesystem calls an image layer needs, made on paths whose parents the
// caller has already resolved to real directories: none of them follows a
// symlink in its last component (mknod never does; the l*xattr calls are the
// non-following forms), unlike the mknod and setfattr commands they replace.
export const S_IFCHR = 0o020000;

/** mknod(2): a device node, FIFO or (with S_IFCHR and dev 0) an overlay whiteout. Fails with EEXIST on anything already there, a symlink included. */
export function mknod(path: string, mode: number, dev = 0): void {
  call(
    'mknod',
    [
      ['buffer', cstr(path)],
      ['i32', mode],
      ['i64', dev],
    ],
    () => `mknod(${path}, 0o${mode.toString(8)}, ${dev})`,
  );
}

/** lsetxattr(2): sets an extended attribute on `path` itself, never on what a symlink there points at. */
export function lsetxattr(path: string, name: string, value: Buffer | string, flags = 0): void {
  const v = Buffer.isBuffer(value) ? value : Buffer.from(value);
  // ffi-rs cannot pass an empty array as a pointer; a one-byte buffer with size 0 is the same call.
  const arg = v.length ? v : Buffer.alloc(1);
  call(
    'lsetxattr',
    [
      ['buffer', cstr(path)],
      ['buffer', cstr(name)],
      ['buffer', arg],
      ['i64', v.length],
      ['i32', flags],
    ],
    () => `lsetxattr(${path}, ${name})`,
  );
}

/** lgetxattr(2): the value of an extended attribute of `path` itself (at most `max` bytes), or undefined when it has none (ENODATA). */
export function lgetxattr(path: string, name: string, max = 4096): Buffer | undefined {
  const out = Buffer.alloc(max);
  try {
    const n = call(
      'lgetxattr',
      [
        ['buffer', cstr(path)],
        ['buffer', cstr(name)],
        ['buffer', out],
        ['i64', max],
      ],
      () => `lgetxattr(${path}, ${name})`,
    );
    return out.subarray(0, n);
  } catch (err) {
    if (err instanceof SyscallError && err.errnoCode === 'ENODATA') return undefined;
    throw err;
  }
}

// openat2(2), which glibc has no wrapper for: reached through syscall(2), whose
// number is the same on x86_64 and aarch64 (the unified syscall table).
const SYS_OPENAT2 = 437;
/** Resolve every component as if the directory fd were "/": `..` and absolute symlinks stay inside it. */
export const RESOLVE_IN_ROOT = 0x10;
/** Refuse /proc/PID/fd-style "magic" links, which jump anywhere regardless of the root. */
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const AT_FDCWD = -100;

/**
 * openat2(2): opens `path` relative to the directory open at `dirfd` with
 * `flags` (O_* as for open) and `resolve` (RESOLVE_*), returning the new
 * descriptor (the caller closes it). Throws SyscallError (ENOSYS on kernels
 * before 5.6 or where a seccomp filter hides the call).
 */
export function openat2(dirfd: number, path: string, flags: number, resolve: number, mode = 0): number {
  // struct open_how { u64 flags; u64 mode; u64 resolve; }: the kernel refuses unknown bits and a wrong size.
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  // syscall is variadic and reads longs: every argument goes as a 64-bit value.
  return call(
    'syscall',
    [
      ['i64', SYS_OPENAT2],
      ['i64', dirfd],
      ['buffer', cstr(path)],
      ['buffer', how],
      ['i64', how.length],
    ],
    () => `openat2(fd ${dirfd}, ${path}, 0x${flags.toString(16)}, resolve 0x${resolve.toString(16)})`,
  );
}
