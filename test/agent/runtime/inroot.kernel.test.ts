// readFileInRoot on special files, as root (mknod): a FIFO, a symlink to it and
// a character device inside /tmp/tss-inroot-* are refused without blocking,
// both through openat2 and through the lstat-walk fallback. The rest of
// resolveInRoot and readFileInRoot needs no root and is in inroot.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forceInRootFallback, readFileInRoot } from '../../../agent/runtime/inroot.js';
import { mknod, S_IFCHR } from '../../../native/libc.js';
import { isRoot } from '../../have.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync('/tmp/tss-inroot-');
  mkdirSync(join(root, 'etc'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

for (const mode of ['openat2', 'lstat walk'] as const) {
  describe.skipIf(!isRoot)(`readFileInRoot (${mode}) on special files`, () => {
    beforeEach(() => forceInRootFallback(mode === 'lstat walk'));
    afterEach(() => forceInRootFallback(false));

    it('a FIFO or a device is refused without blocking (root)', () => {
      execFileSync('mkfifo', [join(root, 'etc/fifo')]);
      symlinkSync('fifo', join(root, 'etc/shadow'));
      mknod(join(root, 'etc/null'), S_IFCHR | 0o666, (1 << 8) | 3); // /dev/null's numbers
      // No writer ever opens the FIFO: a blocking open would hang this test until its timeout.
      expect(() => readFileInRoot(root, 'etc/fifo', 4096)).toThrow(/\/etc\/fifo in the image is not a regular file \(it is a FIFO\)/);
      expect(() => readFileInRoot(root, 'etc/shadow', 4096)).toThrow(/it is a FIFO/);
      expect(() => readFileInRoot(root, 'etc/null', 4096)).toThrow(/it is a character device/);
    }, 5000);
  });
}
