// native/libc.ts against the real kernel: the subreaper flag (in a child
// process, so the test worker is left as it was) and setns into a network
// namespace the test creates (named tss-nt-*, removed when the file ends);
// mknod and the l*xattr calls in /tmp/tss-libc-* (root).
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyscallError } from '../../lib/errors.js';
import { lgetxattr, lsetxattr, mknod, Namespace, nativeAvailable, S_IFCHR, setns, withNetns } from '../../native/libc.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** Runs a fixture under tsx and parses the JSON line it prints. */
function runFixture<T>(name: string, ...args: string[]): T {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fixture(name), ...args], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (r.status !== 0) throw new Error(`fixture ${name} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

const native = nativeAvailable();
const skipNative = native.ok ? '' : ` (skipped: ${native.reason})`;

function hasIp(): boolean {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const netnsBlocker = !native.ok
  ? native.reason
  : process.getuid?.() !== 0
    ? 'creating a network namespace needs root'
    : !hasIp()
      ? 'the ip command (Debian package iproute2) is missing'
      : '';

describe.skipIf(!native.ok)(`prctl child subreaper${skipNative}`, () => {
  it('a subreaper adopts its orphaned grandchildren, and the flag reads back and clears', () => {
    const r = runFixture<{ pid: number; before: boolean; after: boolean; orphanParent: number; cleared: boolean }>(
      'subreaper.ts',
    );
    expect(r).toEqual({ pid: r.pid, before: false, after: true, orphanParent: r.pid, cleared: true });
  });
});

describe.skipIf(!native.ok)(`setns errors${skipNative}`, () => {
  it('setns on a closed descriptor throws a SyscallError with EBADF', () => {
    let err: unknown;
    try {
      setns(987654, Namespace.net);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SyscallError);
    expect(err).toMatchObject({ code: 'SYSCALL', errno: 9, errnoCode: 'EBADF', syscall: 'setns(fd 987654, CLONE_NEWNET)' });
    expect((err as Error).message).toBe('setns(fd 987654, CLONE_NEWNET) failed: EBADF (Bad file descriptor)');
  });

  it('setns with a namespace type that does not match the descriptor throws EINVAL', () => {
    const fd = openSync('/proc/thread-self/ns/net', 'r');
    try {
      expect(() => setns(fd, Namespace.uts)).toThrow(/^setns\(fd \d+, CLONE_NEWUTS\) failed: EINVAL/);
    } finally {
      closeSync(fd);
    }
  });
});

describe.skipIf(netnsBlocker !== '')(`setns into a network namespace${netnsBlocker ? ` (skipped: ${netnsBlocker})` : ''}`, () => {
  const name = `tss-nt-${randomBytes(4).toString('hex')}`;
  const path = `/run/netns/${name}`;

  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', name]);
    // `ip -n` enters only the network namespace; lo comes up with 127.0.0.1.
    execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  });
  afterAll(() => {
    if (existsSync(path)) execFileSync('ip', ['netns', 'del', name]);
  });

  it('a process that entered a fresh namespace sees only lo', () => {
    const r = runFixture<{ hostDevices: string[]; devices: string[]; interfaces: string[]; inNamespace: boolean }>(
      'netns.ts',
      path,
    );
    expect(r.inNamespace).toBe(true);
    expect(r.devices).toEqual(['lo']);
    expect(r.interfaces).toEqual(['lo']);
    expect(r.hostDevices).toContain('lo');
  });

  it('withNetns runs a function inside the namespace and returns the thread to where it was', () => {
    const home = statSync('/proc/thread-self/ns/net').ino;
    const seen = withNetns(path, () => ({
      ino: statSync('/proc/thread-self/ns/net').ino,
      interfaces: Object.keys(networkInterfaces()).sort(),
    }));
    expect(seen.ino).toBe(statSync(path).ino);
    expect(seen.ino).not.toBe(home);
    expect(seen.interfaces).toEqual(['lo']);
    expect(statSync('/proc/thread-self/ns/net').ino).toBe(home);
  });

  it('withNetns returns the thread home even when the function throws', () => {
    const home = statSync('/proc/thread-self/ns/net').ino;
    expect(() =>
      withNetns(path, () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(statSync('/proc/thread-self/ns/net').ino).toBe(home);
  });
});

describe.skipIf(!native.ok || process.getuid?.() !== 0)(`mknod and extended attributes (root)${skipNative}`, () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync('/tmp/tss-libc-');
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('mknod makes a 0:0 character device (an overlay whiteout), and never replaces a symlink', () => {
    mknod(join(dir, 'wh'), S_IFCHR, 0);
    const st = lstatSync(join(dir, 'wh'));
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(0);
    const target = join(dir, 'target');
    symlinkSync(target, join(dir, 'link'));
    expect(() => mknod(join(dir, 'link'), S_IFCHR, 0)).toThrow(/^mknod\(.*\/link, 0o20000, 0\) failed: EEXIST/);
    expect(existsSync(target)).toBe(false);
  });

  it('lsetxattr sets an attribute on the path itself, and lgetxattr reads it back or gives undefined', () => {
    mkdirSync(join(dir, 'd'));
    lsetxattr(join(dir, 'd'), 'trusted.overlay.opaque', 'y');
    expect(lgetxattr(join(dir, 'd'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(lgetxattr(join(dir, 'd'), 'trusted.tss-none')).toBeUndefined();
    mkdirSync(join(dir, 'real'));
    symlinkSync(join(dir, 'real'), join(dir, 'sym'));
    lsetxattr(join(dir, 'sym'), 'trusted.overlay.opaque', 'y');
    expect(lgetxattr(join(dir, 'real'), 'trusted.overlay.opaque')).toBeUndefined();
    expect(() => lsetxattr(join(dir, 'missing'), 'trusted.x', '')).toThrow(SyscallError);
  });
});
