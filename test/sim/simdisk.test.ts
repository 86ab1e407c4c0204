// Crash points of the simulated disk: a crash armed with armCrash() lands
// inside a later call (a write, an fsync, a rename, a removal), so the
// simulation can kill a member anywhere on its I/O path, not only between Readys.
import { describe, expect, it } from 'vitest';
import { scripted } from '../manager/raft/storage/helpers.js';
import { SimDisk } from './simdisk.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Whether a promise settles within a few turns of the microtask queue. */
async function settles(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 20; i++) await Promise.resolve();
  return done;
}

describe('SimDisk crash points', () => {
  it('crashes inside the n-th next call: the write before it is lost and the interrupted fsync never returns', async () => {
    const disk = new SimDisk();
    const vfs = disk.session();
    await vfs.mkdirp('/d');
    const f = await vfs.open('/d/f');
    await vfs.syncDir('/d');
    await f.append(enc('abc'));
    await f.sync();
    let crashed = 0;
    // Lose every unsynced write (no torn prefix) so the outcome is exact.
    disk.armCrash(1, scripted([], 0.99), () => crashed++);
    expect(await settles(f.append(enc('def')))).toBe(true);
    expect(crashed).toBe(0);
    expect(await settles(f.sync())).toBe(false);
    expect(crashed).toBe(1);
    expect(disk.crashArmed).toBe(false);
    expect(dec(await disk.readFile('/d/f'))).toBe('abc');
    // The dead process's session is fenced too.
    expect(await settles(vfs.list('/d'))).toBe(false);
  });

  it('can tear the very write it interrupts', async () => {
    const disk = new SimDisk();
    await disk.mkdirp('/d');
    const f = await disk.open('/d/f');
    await disk.syncDir('/d');
    // Torn (0.1 < 1/2), cut in the first pending write (k = 0), keeping floor(0.5 * 6) = 3 bytes.
    disk.armCrash(0, scripted([0.1, 0, 0.5]), () => undefined);
    expect(await settles(f.append(enc('abcdef')))).toBe(false);
    expect(dec(await disk.readFile('/d/f'))).toBe('abc');
  });

  it('can crash between a rename and the directory fsync, losing the rename', async () => {
    const disk = new SimDisk();
    await disk.mkdirp('/d');
    await disk.writeFileAtomic('/d/a', enc('x'));
    // The crash keeps none of the directory's pending operations (keep = floor(0 * 2)).
    disk.armCrash(0, scripted([0]), () => undefined);
    expect(await settles(disk.rename('/d/a', '/d/b'))).toBe(false);
    expect(await disk.list('/d')).toEqual(['a']);
  });

  it('does nothing when disarmed before the call', async () => {
    const disk = new SimDisk();
    await disk.mkdirp('/d');
    const f = await disk.open('/d/f');
    disk.armCrash(
      0,
      () => 0.99,
      () => expect.unreachable('disarmed crash fired'),
    );
    disk.disarm();
    expect(await settles(f.append(enc('a')))).toBe(true);
    expect(disk.stats.crashes).toBe(0);
  });
});
