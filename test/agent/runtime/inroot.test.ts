// resolveInRoot and readFileInRoot on real trees of symlinks built under
// /tmp/tss-inroot-*: nothing they return or read lies outside the root, and
// oversized files are refused; readFileInRoot both through openat2 and through
// its lstat-walk fallback, and against a process swapping a directory for a
// symlink while it reads. FIFOs and devices (root) are in inroot.kernel.test.ts.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forceInRootFallback, InRootError, MAX_SYMLINK_HOPS, readFileInRoot, resolveInRoot } from '../../../agent/runtime/inroot.js';
import { TsswarmError } from '../../../lib/errors.js';

let root: string;
let outside: string;
beforeEach(() => {
  root = mkdtempSync('/tmp/tss-inroot-');
  outside = mkdtempSync('/tmp/tss-canary-');
  writeFileSync(join(outside, 'secret'), 'host secret\n');
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

describe('resolveInRoot', () => {
  it('.. never climbs above the root, lexically or through a symlink', () => {
    expect(resolveInRoot(root, '../../../etc/passwd')).toBe(join(root, 'etc/passwd'));
    symlinkSync('../../../../..', join(root, 'up'));
    expect(resolveInRoot(root, 'up/etc/passwd')).toBe(join(root, 'etc/passwd'));
    expect(resolveInRoot(root, 'up', { followFinal: true })).toBe(root);
  });

  it('an absolute symlink target is taken relative to the root, a relative one to its directory', () => {
    symlinkSync(outside, join(root, 'abs'));
    expect(resolveInRoot(root, 'abs/secret')).toBe(join(root, outside, 'secret'));
    mkdirSync(join(root, 'a/b'), { recursive: true });
    symlinkSync('../../etc', join(root, 'a/b/rel'));
    expect(resolveInRoot(root, 'a/b/rel/passwd')).toBe(join(root, 'etc/passwd'));
    symlinkSync('/', join(root, 'slash'));
    expect(resolveInRoot(root, 'slash/etc/passwd')).toBe(join(root, 'etc/passwd'));
  });

  it('the final component is not followed unless followFinal', () => {
    symlinkSync('/etc/passwd', join(root, 'pw'));
    expect(resolveInRoot(root, 'pw')).toBe(join(root, 'pw'));
    expect(resolveInRoot(root, 'pw', { followFinal: true })).toBe(join(root, 'etc/passwd'));
    // A trailing "." makes the symlink an inner component, as in the kernel.
    symlinkSync('etc', join(root, 'e'));
    expect(resolveInRoot(root, 'e/.')).toBe(join(root, 'etc'));
  });

  it('missing components are completed by name, below the last real directory', () => {
    symlinkSync(outside, join(root, 'abs'));
    expect(resolveInRoot(root, 'abs/new/deeper/file')).toBe(join(root, outside, 'new/deeper/file'));
    expect(resolveInRoot(root, 'nothing/here')).toBe(join(root, 'nothing/here'));
  });

  it('".." below a missing component fails with ENOENT: it would climb back past components never checked', () => {
    // `b -> nonexist/../h` with `h -> <host dir>`: completing "nonexist" by name and then popping it
    // would hand back <root>/h/..., which the kernel follows to the host.
    symlinkSync(outside, join(root, 'h'));
    symlinkSync('nonexist/../h', join(root, 'b'));
    for (const p of ['b/etc/pwned', 'nonexist/../h/x', 'abs/new/../x']) {
      let err: unknown;
      try {
        resolveInRoot(root, p);
      } catch (e) {
        err = e;
      }
      expect(err, p).toBeInstanceOf(InRootError);
      expect(err, p).toMatchObject({ errno: 'ENOENT' });
    }
    // With the parent real, ".." is fine.
    mkdirSync(join(root, 'real'));
    expect(resolveInRoot(root, 'real/../h/x')).toBe(join(root, outside, 'x'));
  });

  it(`a symlink loop fails with ELOOP; a chain of ${MAX_SYMLINK_HOPS} hops resolves and one more fails`, () => {
    symlinkSync('b', join(root, 'a'));
    symlinkSync('a', join(root, 'b'));
    let err: unknown;
    try {
      resolveInRoot(root, 'a/x');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InRootError);
    expect(err).toMatchObject({ errno: 'ELOOP', code: 'INVALID_ARGUMENT' });
    expect((err as Error).message).toMatch(/"a\/x" in .*: more than 40 symlinks on the way \(a symlink loop\)/);
    for (let i = 0; i < MAX_SYMLINK_HOPS; i++) symlinkSync(i === MAX_SYMLINK_HOPS - 1 ? 'etc' : `c${i + 1}`, join(root, `c${i}`));
    expect(resolveInRoot(root, 'c0/passwd')).toBe(join(root, 'etc/passwd'));
    symlinkSync('c0', join(root, 'c-1'));
    expect(() => resolveInRoot(root, 'c-1/passwd')).toThrow(/more than 40 symlinks/);
  });

  it('a file in the middle of the path is ENOTDIR', () => {
    expect(() => resolveInRoot(root, 'etc/passwd/x')).toThrow(expect.objectContaining({ errno: 'ENOTDIR' }));
  });
});

for (const mode of ['openat2', 'lstat walk'] as const) {
  describe(`readFileInRoot (${mode})`, () => {
    beforeEach(() => forceInRootFallback(mode === 'lstat walk'));
    afterEach(() => forceInRootFallback(false));

    it('reads a file inside the root, following symlinks inside it only', () => {
      symlinkSync('/etc/passwd', join(root, 'pw'));
      symlinkSync(join(outside, 'secret'), join(root, 'leak'));
      expect(readFileInRoot(root, '/etc/passwd', 4096)?.toString()).toBe('root:x:0:0::/root:/bin/sh\n');
      expect(readFileInRoot(root, 'pw', 4096)?.toString()).toBe('root:x:0:0::/root:/bin/sh\n');
      expect(readFileInRoot(root, 'leak', 4096)).toBeUndefined(); // /tmp/tss-canary-*/secret is not in the root
      expect(readFileInRoot(root, '../../../../etc/group', 4096)).toBeUndefined();
      expect(readFileInRoot(root, 'etc/passwd/x', 4096)).toBeUndefined();
    });

    it('a file over the cap is refused, naming the file and the cap', () => {
      writeFileSync(join(root, 'etc/group'), 'x'.repeat(5000));
      let err: unknown;
      try {
        readFileInRoot(root, 'etc/group', 4096);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TsswarmError);
      expect((err as Error).message).toBe(
        '/etc/group in the image is 5000 bytes, over the limit of 4096: shrink it, or pass --user as numeric uid:gid',
      );
      expect(readFileInRoot(root, 'etc/group', 5000)?.length).toBe(5000);
    });

    it('a directory is refused', () => {
      expect(() => readFileInRoot(root, 'etc', 4096)).toThrow(/\/etc in the image is not a regular file \(it is a directory\)/);
    });
  });
}

describe('readFileInRoot against a container changing its root', () => {
  it('a directory swapped for a symlink to a host directory, over and over while it reads, never yields the host file', async () => {
    // The canary directory holds a "passwd" the container must never get the agent to read.
    writeFileSync(join(outside, 'passwd'), 'host canary\n');
    mkdirSync(join(root, 'etc.real'));
    writeFileSync(join(root, 'etc.real/passwd'), 'inside\n');
    symlinkSync(outside, join(root, 'etc.link'));
    rmSync(join(root, 'etc'), { recursive: true });
    // The "container": a process that keeps renaming the real directory and the symlink in and out of "etc".
    const flipper = spawn(
      process.execPath,
      [
        '-e',
        `
      const fs = require('fs'); const r = ${JSON.stringify(root)};
      process.stdout.write('ready\\n');
      for (;;) {
        fs.renameSync(r + '/etc.real', r + '/etc'); fs.renameSync(r + '/etc', r + '/etc.real');
        fs.renameSync(r + '/etc.link', r + '/etc'); fs.renameSync(r + '/etc', r + '/etc.link');
      }`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((res, rej) => {
        flipper.stdout.once('data', () => res());
        flipper.once('exit', (code) => rej(new Error(`the flipper exited (${code})`)));
      });
      const seen = { inside: 0, canary: 0, missing: 0 };
      // The lstat walk (forceInRootFallback) read the canary about once per 1,000 reads here (2 cores):
      // 10,000 makes a pass by luck vanishingly rare.
      for (let i = 0; i < 10_000; i++) {
        let got: string | undefined;
        try {
          got = readFileInRoot(root, 'etc/passwd', 4096)?.toString();
        } catch {
          continue; // a symlink caught as the final component is refused, as it should be
        }
        if (got === undefined) seen.missing++;
        else if (got === 'inside\n') seen.inside++;
        else seen.canary++;
      }
      expect(seen.canary).toBe(0);
      // The race was really run: the real directory was there for some reads and gone for others.
      expect(seen.inside).toBeGreaterThan(0);
      expect(seen.missing).toBeGreaterThan(0);
    } finally {
      flipper.kill('SIGKILL');
      if (flipper.exitCode === null && flipper.signalCode === null) await once(flipper, 'exit');
    }
  }, 60_000);
});
