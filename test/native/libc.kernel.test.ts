// native/libc.ts against the real kernel, as root: setns into a network
// namespace the test creates (named tss-nt-*, removed when the file ends), and
// mknod and the l*xattr calls in /tmp/tss-libc-*. The calls that need no root
// (the subreaper flag, setns errors, openat2) are in libc.test.ts.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyscallError } from '../../lib/errors.js';
import { runFixture } from './run-fixture.js';
import { have, isRoot } from '../have.js';
import { lgetxattr, lsetxattr, mknod, nativeAvailable, S_IFCHR, withNetns } from '../../native/libc.js';

const native = nativeAvailable();
const skipNative = native.ok ? '' : ` (skipped: ${native.reason})`;

const netnsBlocker = !native.ok
  ? native.reason
  : !isRoot
    ? 'creating a network namespace needs root'
    : !have('ip', ['-V'])
      ? 'the ip command (Debian package iproute2) is missing'
      : '';

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
    const r = runFixture<{ hostDevices: string[]; devices: string[]; interfaces: string[]; inNamespace: boolean }>('netns.ts', path);
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

describe.skipIf(!native.ok || !isRoot)(`mknod and extended attributes (root)${skipNative}`, () => {
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
