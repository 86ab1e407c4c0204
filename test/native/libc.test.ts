import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyscallError } from '../../lib/errors.js';
import { runFixture } from './run-fixture.js';
import { AT_FDCWD, Namespace, nativeAvailable, openat2, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, setns } from '../../native/libc.js';

const native = nativeAvailable();
const skipNative = native.ok ? '' : ` (skipped: ${native.reason})`;
describe.skipIf(!native.ok)(`prctl child subreaper${skipNative}`, () => {
  it('a subreaper adopts its orphaned grandchildren, and the flag reads back and clears', () => {
    const r = runFixture<{ pid: number; before: boolean; after: boolean; orphanParent: number; cleared: boolean }>('subreaper.ts');
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

describe.skipIf(!native.ok)(`openat2${skipNative}`, () => {
  let root = '';
  let canary = '';
  let dirfd = -1;
  beforeAll(() => {
    root = mkdtempSync('/tmp/tss-libc-o2-');
    canary = mkdtempSync('/tmp/tss-libc-canary-');
    writeFileSync(join(canary, 'secret'), 'host canary\n');
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc/passwd'), 'inside\n');
    // Absolute and climbing targets: resolved at the host's / they would reach the canary.
    symlinkSync('/etc', join(root, 'abs'));
    symlinkSync(canary, join(root, 'leak'));
    symlinkSync(`../../../../../../..${canary}/secret`, join(root, 'up'));
    dirfd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
  });
  afterAll(() => {
    if (dirfd >= 0) closeSync(dirfd);
    rmSync(root, { recursive: true, force: true });
    rmSync(canary, { recursive: true, force: true });
  });

  const read = (path: string, resolve = RESOLVE_IN_ROOT): string => {
    const fd = openat2(dirfd, path, constants.O_RDONLY, resolve);
    try {
      return readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  };

  it('with RESOLVE_IN_ROOT an absolute symlink resolves inside the directory, and ".." stops at it', () => {
    expect(read('abs/passwd')).toBe('inside\n');
    expect(read('/etc/passwd')).toBe('inside\n');
    expect(read('../../etc/passwd')).toBe('inside\n');
  });

  it('with RESOLVE_IN_ROOT a symlink out of the directory finds nothing: ENOENT, never the host file', () => {
    for (const p of ['leak/secret', 'up']) {
      expect(() => read(p), p).toThrow(
        expect.objectContaining({ errnoCode: 'ENOENT', syscall: expect.stringMatching(/^openat2\(fd \d+, /) }),
      );
    }
    // The same links followed without RESOLVE_IN_ROOT do reach the canary: the flag is what confines them.
    expect(read('leak/secret', 0)).toBe('host canary\n');
  });

  it('RESOLVE_NO_MAGICLINKS refuses a /proc magic link with ELOOP', () => {
    const fd = openat2(AT_FDCWD, `/proc/self/root${canary}/secret`, constants.O_RDONLY, 0);
    closeSync(fd);
    expect(() => openat2(AT_FDCWD, `/proc/self/root${canary}/secret`, constants.O_RDONLY, RESOLVE_NO_MAGICLINKS)).toThrow(
      expect.objectContaining({ errnoCode: 'ELOOP' }),
    );
  });

  it('an unknown resolve bit is refused with EINVAL', () => {
    expect(() => openat2(dirfd, 'etc/passwd', constants.O_RDONLY, 0x1000)).toThrow(expect.objectContaining({ errnoCode: 'EINVAL' }));
  });
});
