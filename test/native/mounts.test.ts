// native/libc.ts isMounted: what /proc/self/mounts lists, by exact mount point.
import { expect, it } from 'vitest';
import { isMounted } from '../../native/libc.js';

it('finds a mount point by its exact path, not by a prefix or a path below it', () => {
  expect(isMounted('/proc')).toBe(true);
  expect(isMounted('/pro')).toBe(false);
  expect(isMounted('/proc/self')).toBe(false);
  expect(isMounted('/tmp/tss-not-a-mount-point')).toBe(false);
});
