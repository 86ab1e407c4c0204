// The simulated disk (test/sim/simdisk.ts) and the WAL on it: crashes lose
// exactly what was not synced, sometimes leaving a torn prefix, and the WAL
// always reopens with every synced record and a prefix of the rest.
import { describe, expect, it } from 'vitest';
import { type Entry, HardState } from '../../../../proto/gen/raft.js';
import { Keyring, Wal } from '../../../../manager/raft/storage/index.js';
import { SimDisk } from '../../../sim/simdisk.js';
import { captureLogger, dec, enc, entryRecordBytes, ents, scripted, seeded, view } from './helpers.js';

const LOSE_ALL = (): number => 0.99;

async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 20; i++) await Promise.resolve();
  return done;
}

describe('SimDisk', () => {
  it('keeps synced bytes and loses unsynced ones on a crash', async () => {
    const disk = new SimDisk();
    await disk.mkdirp('/d');
    const f = await disk.open('/d/f');
    await disk.syncDir('/d');
    await f.append(enc('abc'));
    await f.sync();
    await f.append(enc('def'));
    expect(dec(await disk.readFile('/d/f'))).toBe('abcdef');
    expect(dec(disk.durableContent('/d/f')!)).toBe('abc');
    disk.crash(LOSE_ALL);
    expect(dec(await disk.readFile('/d/f'))).toBe('abc');
    expect(disk.stats).toEqual({ fsyncs: 1, dirSyncs: 1, writes: 2, bytesWritten: 6, crashes: 1 });
  });

  it('may keep a torn prefix of the unsynced writes, never a later write without the earlier ones', async () => {
    const disk = new SimDisk();
    await disk.mkdirp('/d');
    const f = await disk.open('/d/f');
    await disk.syncDir('/d');
    await f.append(enc('abc'));
    await f.sync();
    await f.append(enc('defgh'));
    await f.append(enc('ij'));
    // torn (0.1 < 1/2), cut inside the first pending write (k = 0), keeping floor(0.5 * 6) = 3 of its bytes.
    disk.crash(scripted([0.1, 0, 0.5]));
    expect(dec(await disk.readFile('/d/f'))).toBe('abcdef');
  });

  it('can lose a file whose data was synced but whose directory entry was not', async () => {
    const disk = new SimDisk();
    await disk.mkdirp('/d');
    const f = await disk.open('/d/f');
    await f.append(enc('x'));
    await f.sync();
    disk.crash(() => 0); // keeps none of the directory's pending operations
    expect(await disk.exists('/d/f')).toBe(false);
    expect(await disk.list('/d')).toEqual([]);

    const g = await disk.open('/d/g');
    await g.append(enc('y'));
    await g.sync();
    disk.crash(LOSE_ALL); // keeps the creation
    expect(dec(await disk.readFile('/d/g'))).toBe('y');
  });

  it('undoes an unsynced rename or removal in order, and never a synced one', async () => {
    const disk = new SimDisk();
    await disk.writeFileAtomic('/a', enc('1'));
    await disk.rename('/a', '/b');
    await disk.remove('/b');
    disk.crash(scripted([0.4])); // floor(0.4 * 3) = 1: the rename survives, the removal does not
    expect(await disk.list('/')).toEqual(['b']);
    await disk.remove('/b');
    await disk.syncDir('/');
    disk.crash(() => 0);
    expect(await disk.list('/')).toEqual([]);
  });

  it('makes writeFileAtomic durable whatever the crash keeps', async () => {
    const disk = new SimDisk();
    await disk.mkdirp('/d');
    await disk.writeFileAtomic('/d/x', enc('whole'));
    disk.crash(() => 0);
    expect(dec(await disk.readFile('/d/x'))).toBe('whole');
    expect(await disk.list('/d')).toEqual(['x']);
  });

  it('leaves files opened before a crash, and a session of that time, hanging and harmless', async () => {
    const disk = new SimDisk();
    const vfs = disk.session();
    const f = await vfs.open('/f');
    await vfs.syncDir('/');
    await f.append(enc('a'));
    await f.sync();
    disk.crash(LOSE_ALL);
    expect(await settled(f.append(enc('zzz')))).toBe(false);
    expect(await settled(vfs.remove('/f'))).toBe(false);
    expect(dec(await disk.readFile('/f'))).toBe('a');
  });
});

describe('Wal on SimDisk', () => {
  const hs = (commit: number): HardState => HardState.create({ term: 1, vote: 'n1', commit });

  it('loses unsynced entries on a crash and reopens with the synced ones', async () => {
    const disk = new SimDisk();
    const a = await Wal.open(disk, '/wal');
    await a.wal.save(hs(5), ents(1, 5), true);
    await a.wal.save(hs(8), ents(6, 8), false);
    disk.crash(LOSE_ALL);

    const b = await Wal.open(disk, '/wal');
    expect(view(b.state.entries)).toEqual(view(ents(1, 5)));
    expect(b.state.hardState.commit).toBe(5);
    await b.wal.save(null, ents(6, 6, 2), true);
    disk.crash(LOSE_ALL);
    const c = await Wal.open(disk, '/wal');
    expect(c.state.entries.map((e) => `${e.index}/${e.term}`)).toEqual(['1/1', '2/1', '3/1', '4/1', '5/1', '6/2']);
  });

  it('cuts a torn unsynced batch back to its whole records and keeps going', async () => {
    const disk = new SimDisk();
    const a = await Wal.open(disk, '/wal', { preallocBytes: 0 });
    await a.wal.save(hs(5), ents(1, 5), true);
    await a.wal.save(null, ents(6, 8), false);
    const r = entryRecordBytes(ents(6, 6)[0]!);
    // torn, in the first pending write (the batch of three records), keeping floor(0.5 * (3r + 1)) = 1.5r bytes.
    disk.crash(scripted([0.1, 0, 0.5]));

    const { logger, lines } = captureLogger();
    const b = await Wal.open(disk, '/wal', { preallocBytes: 0, logger });
    expect(b.state.entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
    expect(lines.find((l) => l.level === 40)).toMatchObject({ droppedBytes: r / 2 });
    await b.wal.save(hs(7), ents(7, 7, 1, 'again'), true);
    disk.crash(LOSE_ALL);
    const c = await Wal.open(disk, '/wal', { preallocBytes: 0 });
    expect(view(c.state.entries)).toEqual([...view(ents(1, 6)), { index: 7, term: 1, data: 'again7' }]);
  });

  it('counts one fsync and one write for a save of 100 entries (group commit)', async () => {
    const disk = new SimDisk();
    const { wal } = await Wal.open(disk, '/wal');
    const before = { ...disk.stats };
    await wal.save(hs(0), ents(1, 100), true);
    expect(disk.stats.fsyncs - before.fsyncs).toBe(1);
    expect(disk.stats.writes - before.writes).toBe(1);
    expect(wal.stats.fsyncs).toBe(2); // the first segment's creation, then this save
  });

  // Random saves, overwrites, snapshot markers and releases over small segments, with crashes at
  // random points (also in the middle of an operation). After every crash the replayed state must be
  // one the log passed through since its last fsync: all synced data survives, and what survives of
  // the rest is a prefix of it, record by record.
  // Encrypted too: a save is then one sealed record, all or nothing, which is one of the states allowed.
  it.each([false, true])(
    'always reopens after a crash with every synced record and a prefix of the rest (encrypted: %s)',
    async (encrypted) => {
      let crashes = 0;
      let torn = 0;
      for (let seed = 1; seed <= 150; seed++) {
        const rnd = seeded(seed);
        const int = (n: number): number => Math.floor(rnd() * n);
        const disk = new SimDisk();
        const opts = {
          segmentBytes: 400 + int(600),
          preallocBytes: [0, 128, 1024][int(3)]!,
          keyring: encrypted ? new Keyring([[1, new Uint8Array(32).fill(seed)]], 1) : undefined,
        };
        const open = async (): Promise<{
          wal: Wal;
          state: { hardState: HardState; snapshot: { index: number; term: number } | null; entries: Entry[] };
        }> => {
          const { logger, lines } = captureLogger();
          const r = await Wal.open(disk.session(), '/wal', { ...opts, logger });
          torn += lines.filter((l) => l.level === 40).length;
          return r;
        };
        let { wal, state } = await open();
        const key = (s: typeof state): string =>
          JSON.stringify([
            s.hardState.term,
            s.hardState.vote,
            s.hardState.commit,
            s.snapshot,
            s.entries.map((e) => [e.index, e.term, dec(e.data)]),
          ]);
        let ref = state;
        let history = [key(ref)];
        let durableFrom = 0;
        let term = 1;

        for (let step = 0; step < 60; step++) {
          const last = ref.entries[ref.entries.length - 1]?.index ?? ref.snapshot?.index ?? 0;
          const commit = ref.hardState.commit;
          const snapIndex = ref.snapshot?.index ?? 0;
          const fsyncsBefore = wal.stats.fsyncs;
          let op: Promise<void>;
          const u = rnd();
          if (u < 0.75 || commit <= snapIndex) {
            // Append, or overwrite an uncommitted suffix with a newer term.
            const overwrite = last > commit && rnd() < 0.25;
            if (overwrite) term++;
            const from = overwrite ? commit + 1 + int(last - commit) : last + 1;
            const batch = ents(from, from + int(8), term, `s${seed}.${step}.`);
            const newLast = batch[batch.length - 1]!.index;
            const hard = rnd() < 0.6 ? HardState.create({ term, vote: 'n1', commit: commit + int(newLast - commit + 1) }) : null;
            for (const e of batch) {
              ref = { ...ref, entries: [...ref.entries.filter((x) => x.index < e.index), e] };
              history.push(key(ref));
            }
            if (hard) {
              ref = { ...ref, hardState: hard };
              history.push(key(ref));
            }
            op = wal.save(hard, batch, rnd() < 0.7);
          } else {
            const at = snapIndex + 1 + int(commit - snapIndex);
            const mark = { index: at, term: ref.entries.find((e) => e.index === at)!.term };
            ref = { ...ref, snapshot: mark, entries: ref.entries.filter((e) => e.index > at) };
            history.push(key(ref));
            const w = wal;
            op = w.saveSnapshotMarker(mark).then(() => (rnd() < 0.6 ? w.releaseTo(at) : undefined));
          }

          const crashNow = rnd() < 0.12;
          if (crashNow && rnd() < 0.5) {
            // Crash while the operation is still under way.
            for (let t = int(12); t > 0; t--) await Promise.resolve();
          } else {
            await op;
          }
          if (wal.stats.fsyncs > fsyncsBefore) durableFrom = history.length - 1;
          if (!crashNow) continue;

          disk.crash(rnd);
          crashes++;
          ({ wal, state } = await open());
          const got = key(state);
          const candidates = history.slice(durableFrom);
          if (!candidates.includes(got)) {
            throw new Error(`seed ${seed} step ${step}: replayed ${got}\nnot among states since the last fsync:\n${candidates.join('\n')}`);
          }
          ref = state;
          history = [got];
          durableFrom = 0;
          term = Math.max(term, ref.hardState.term, ...ref.entries.map((e) => e.term));
        }
      }
      expect(crashes).toBeGreaterThan(100);
      expect(torn).toBeGreaterThan(10);
    },
  );
});
