// Snapshot files and DiskStorage (WAL + snapshots): the ordering of a
// snapshot against the WAL, compaction and release, falling back to an older
// snapshot when the newest is damaged, and loading after a torn restore.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfState, HardState, Snapshot, SnapshotMetadata } from '../../../../proto/gen/raft.js';
import {
  DiskStorage,
  SnapshotCorruptError,
  SnapshotStore,
  WalInconsistentError,
  realVfs,
  snapshotFileName,
} from '../../../../manager/raft/storage/index.js';
import { SimDisk } from '../../../sim/simdisk.js';
import { captureLogger, dec, enc, ents, tempDir, view } from './helpers.js';

function snap(index: number, term: number, data = `state@${index}`): Snapshot {
  return Snapshot.create({
    data: enc(data),
    metadata: SnapshotMetadata.create({ index, term, confState: ConfState.create({ voters: ['n1', 'n2', 'n3'], learners: ['n4'] }) }),
  });
}

const hs = (term: number, commit: number, vote = 'n1'): HardState => HardState.create({ term, vote, commit });
const LOSE_ALL = (): number => 0.99;

describe('SnapshotStore', () => {
  it('saves, lists newest first, and loads a snapshot exactly', async () => {
    const disk = new SimDisk();
    const store = await SnapshotStore.open(disk, '/snap');
    await store.save(snap(10, 1));
    await store.save(snap(30, 2));
    await store.save(snap(20, 2));
    expect(await store.list()).toEqual([
      { index: 30, term: 2 },
      { index: 20, term: 2 },
      { index: 10, term: 1 },
    ]);
    expect(await disk.list('/snap')).toEqual([
      '0000000000000001-000000000000000a.snap',
      '0000000000000002-0000000000000014.snap',
      '0000000000000002-000000000000001e.snap',
    ]);
    const s = await store.load({ index: 20, term: 2 });
    expect(dec(s.data)).toBe('state@20');
    expect(s.metadata?.index).toBe(20);
    expect(s.metadata?.term).toBe(2);
    expect(s.metadata?.confState?.voters).toEqual(['n1', 'n2', 'n3']);
    expect(s.metadata?.confState?.learners).toEqual(['n4']);
  });

  it('skips a corrupt newest file with a warning, sets it aside, and loads the previous one', async () => {
    const disk = new SimDisk();
    const { logger, lines } = captureLogger();
    const store = await SnapshotStore.open(disk, '/snap', { logger });
    await store.save(snap(10, 1));
    await store.save(snap(20, 1));
    const newest = '/snap/' + snapshotFileName({ index: 20, term: 1 });
    disk.corrupt(newest, 20);

    await expect(store.load({ index: 20, term: 1 })).rejects.toBeInstanceOf(SnapshotCorruptError);
    const s = await store.loadLatest();
    expect(s?.metadata?.index).toBe(10);
    expect(await disk.list('/snap')).toEqual(['0000000000000001-000000000000000a.snap', '0000000000000001-0000000000000014.snap.broken']);
    expect(lines.filter((l) => l.level === 40)).toMatchObject([{ file: newest }]);
  });

  it('loads only what `accept` admits, and purges all but the newest `keep`', async () => {
    const disk = new SimDisk();
    const store = await SnapshotStore.open(disk, '/snap');
    for (const i of [10, 20, 30, 40]) await store.save(snap(i, 1));
    expect((await store.loadLatest((m) => m.index <= 25))?.metadata?.index).toBe(20);
    expect(await store.loadLatest(() => false)).toBeNull();
    expect(await store.purge(2)).toEqual([
      { index: 40, term: 1 },
      { index: 30, term: 1 },
    ]);
    expect(await store.list()).toEqual([
      { index: 40, term: 1 },
      { index: 30, term: 1 },
    ]);
  });

  it('rejects a file whose contents disagree with its name', async () => {
    const disk = new SimDisk();
    const store = await SnapshotStore.open(disk, '/snap');
    await store.save(snap(10, 1));
    await disk.rename('/snap/' + snapshotFileName({ index: 10, term: 1 }), '/snap/' + snapshotFileName({ index: 11, term: 1 }));
    await expect(store.load({ index: 11, term: 1 })).rejects.toMatchObject({ code: 'SNAPSHOT_CORRUPT' });
  });
});

describe('DiskStorage', () => {
  let tmp: string | undefined;
  afterEach(async () => {
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
    tmp = undefined;
  });

  it('persists and reloads entries and hard state on the real file system', async () => {
    tmp = await tempDir();
    const dir = path.join(tmp, 'member');
    const a = await DiskStorage.open(realVfs, dir);
    expect(a.state).toEqual({ hardState: HardState.create(), snapshot: null, entries: [] });
    await a.storage.persist({ hardState: hs(1, 2), entries: ents(1, 4), mustSync: true });
    await a.storage.close();
    expect((await fs.readdir(dir)).sort()).toEqual(['snap', 'wal']);

    const b = await DiskStorage.open(realVfs, dir);
    expect(view(b.state.entries)).toEqual(view(ents(1, 4)));
    expect({ ...b.state.hardState }).toEqual({ term: 1, vote: 'n1', commit: 2 });
    expect(b.state.snapshot).toBeNull();
    await b.storage.close();
  });

  it('persists a Ready of 100 entries with one fsync and one write', async () => {
    const disk = new SimDisk();
    const { storage } = await DiskStorage.open(disk, '/m');
    const before = { ...disk.stats };
    await storage.persist({ hardState: hs(1, 0), entries: ents(1, 100), mustSync: true });
    expect(disk.stats.fsyncs - before.fsyncs).toBe(1);
    expect(disk.stats.writes - before.writes).toBe(1);
  });

  it('compacts: stores the snapshot, releases the WAL, and reloads from the snapshot', async () => {
    const disk = new SimDisk();
    const { storage } = await DiskStorage.open(disk, '/m', { segmentBytes: 512, preallocBytes: 0 });
    for (let i = 1; i <= 100; i += 5) await storage.persist({ hardState: hs(1, i + 4), entries: ents(i, i + 4), mustSync: true });
    const segmentsBefore = storage.stats.segments;
    await storage.compact(snap(60, 1), 50);
    // Only one snapshot file, so it is the oldest kept: the WAL may go up to min(50, 60 + 1).
    expect(storage.stats.segments).toBeLessThan(segmentsBefore);
    disk.crash(LOSE_ALL);

    const { state } = await DiskStorage.open(disk, '/m', { segmentBytes: 512 });
    expect(state.snapshot?.metadata?.index).toBe(60);
    expect(dec(state.snapshot!.data)).toBe('state@60');
    expect(state.entries.map((e) => e.index)).toEqual(Array.from({ length: 40 }, (_, i) => 61 + i));
    expect(state.hardState.commit).toBe(100);
  });

  it('keeps the WAL back to the oldest kept snapshot, so a damaged newest one falls back to the previous', async () => {
    const disk = new SimDisk();
    const { storage } = await DiskStorage.open(disk, '/m', { segmentBytes: 512, preallocBytes: 0 });
    for (let i = 1; i <= 120; i += 5) await storage.persist({ hardState: hs(1, i + 4), entries: ents(i, i + 4), mustSync: true });
    await storage.compact(snap(40, 1), 40);
    await storage.compact(snap(80, 1), 80);
    await storage.compact(snap(110, 1), 110);
    expect(await disk.list('/m/snap')).toEqual([snapshotFileName({ index: 80, term: 1 }), snapshotFileName({ index: 110, term: 1 })]);
    disk.corrupt('/m/snap/' + snapshotFileName({ index: 110, term: 1 }), 30);

    const { logger, lines } = captureLogger();
    const { state } = await DiskStorage.open(disk, '/m', { logger });
    expect(state.snapshot?.metadata?.index).toBe(80);
    expect(dec(state.snapshot!.data)).toBe('state@80');
    expect(state.entries.map((e) => e.index)).toEqual(Array.from({ length: 40 }, (_, i) => 81 + i));
    expect(lines.some((l) => l.level === 40 && l.file === '/m/snap/' + snapshotFileName({ index: 110, term: 1 }))).toBe(true);
  });

  it('refuses to start when no snapshot can be loaded and the WAL no longer reaches back to index 1', async () => {
    const disk = new SimDisk();
    const { storage } = await DiskStorage.open(disk, '/m', { segmentBytes: 512, preallocBytes: 0, keepSnapshots: 1 });
    for (let i = 1; i <= 100; i += 5) await storage.persist({ hardState: hs(1, i + 4), entries: ents(i, i + 4), mustSync: true });
    await storage.compact(snap(90, 1), 90);
    disk.corrupt('/m/snap/' + snapshotFileName({ index: 90, term: 1 }), 30);
    const err = await DiskStorage.open(disk, '/m').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalInconsistentError);
    expect((err as WalInconsistentError).message).toContain('no snapshot file recorded in the WAL can be loaded');
  });

  it('ignores a snapshot file whose WAL marker a crash lost', async () => {
    const disk = new SimDisk();
    const { storage } = await DiskStorage.open(disk, '/m');
    await storage.persist({ hardState: hs(1, 10), entries: ents(1, 10), mustSync: true });
    await storage.compact(snap(5, 1));
    // The file of a later snapshot is durable, but the process died before its marker.
    await storage.snapshots.save(snap(9, 1));
    disk.crash(LOSE_ALL);
    const { state } = await DiskStorage.open(disk, '/m');
    expect(state.snapshot?.metadata?.index).toBe(5);
    expect(state.entries.map((e) => e.index)).toEqual([6, 7, 8, 9, 10]);
  });

  it('counts only snapshots the WAL recorded towards retention: a file whose marker a crash lost never displaces the fallback', async () => {
    const disk = new SimDisk();
    const a = await DiskStorage.open(disk, '/m', { segmentBytes: 512, preallocBytes: 0 });
    for (let i = 1; i <= 120; i += 5) await a.storage.persist({ hardState: hs(1, i + 4), entries: ents(i, i + 4), mustSync: true });
    await a.storage.compact(snap(40, 1), 40);
    // A crash between the snapshot file and its WAL marker.
    await a.storage.snapshots.save(snap(60, 1));
    disk.crash(LOSE_ALL);

    const b = await DiskStorage.open(disk, '/m', { segmentBytes: 512, preallocBytes: 0 });
    expect(b.state.snapshot?.metadata?.index).toBe(40);
    await b.storage.compact(snap(80, 1), 80);
    // Kept: 80 and the recorded 40 (keepSnapshots 2); the unrecorded 60 does not count.
    expect(await disk.list('/m/snap')).toContain(snapshotFileName({ index: 40, term: 1 }));
    disk.corrupt('/m/snap/' + snapshotFileName({ index: 80, term: 1 }), 30);
    await b.storage.close();

    // The newest is damaged: the recorded 40 and the WAL after it still rebuild the same log.
    const c = await DiskStorage.open(disk, '/m', { segmentBytes: 512, preallocBytes: 0 });
    expect(c.state.snapshot?.metadata?.index).toBe(40);
    expect(c.state.entries.map((e) => e.index)).toEqual(Array.from({ length: 80 }, (_, i) => 41 + i));
    // Once older than the oldest recorded snapshot kept, the stray file goes too.
    await c.storage.compact(snap(100, 1), 100);
    await c.storage.compact(snap(110, 1), 110);
    expect(await disk.list('/m/snap')).toEqual([
      snapshotFileName({ index: 80, term: 1 }) + '.broken',
      snapshotFileName({ index: 100, term: 1 }),
      snapshotFileName({ index: 110, term: 1 }),
    ]);
  });

  it("persists a leader's snapshot before the entries after it, always synced, and voids the old log", async () => {
    const disk = new SimDisk();
    const { storage } = await DiskStorage.open(disk, '/m');
    await storage.persist({ hardState: hs(1, 3), entries: ents(1, 10, 1), mustSync: true });
    const fsyncs = storage.stats.fsyncs;
    await storage.persist({ hardState: hs(3, 50), entries: [], snapshot: snap(50, 3), mustSync: false });
    expect(storage.stats.fsyncs - fsyncs).toBe(1);
    await storage.persist({ hardState: null, entries: ents(51, 52, 3), mustSync: true });
    disk.crash(LOSE_ALL);

    const { state } = await DiskStorage.open(disk, '/m');
    expect(state.snapshot?.metadata?.index).toBe(50);
    expect(state.snapshot?.metadata?.confState?.voters).toEqual(['n1', 'n2', 'n3']);
    expect(state.entries.map((e) => `${e.index}/${e.term}`)).toEqual(['51/3', '52/3']);
    expect({ ...state.hardState }).toEqual({ term: 3, vote: 'n1', commit: 50 });
  });

  it("raises term and commit to a leader's snapshot when the hard state written after its marker was torn off", async () => {
    const disk = new SimDisk();
    const { storage } = await DiskStorage.open(disk, '/m');
    await storage.persist({ hardState: hs(2, 3, 'n2'), entries: ents(1, 5, 2), mustSync: true });
    // What survives a crash that tore the batch right after the marker.
    await storage.snapshots.save(snap(50, 3));
    await storage.wal.saveSnapshotMarker({ index: 50, term: 3 }, { replacesLog: true });
    disk.crash(LOSE_ALL);

    const { state } = await DiskStorage.open(disk, '/m');
    expect(state.snapshot?.metadata?.index).toBe(50);
    expect(state.entries).toEqual([]);
    expect({ ...state.hardState }).toEqual({ term: 3, vote: '', commit: 50 });
  });
});
