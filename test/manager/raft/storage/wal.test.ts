// The WAL on the real file system: replay, segments, overwrites, snapshot
// markers, release, and the line between a torn tail (cut away) and
// corruption (refused, naming the file and offset).
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Entry, HardState } from '../../../../proto/gen/raft.js';
import { type Vfs, Wal, WalCorruptError, WalFailedError, WalInconsistentError, realVfs } from '../../../../manager/raft/storage/index.js';
import { SimDisk } from '../../../sim/simdisk.js';
import { SEGMENT_HEADER_BYTES, captureLogger, ent, entryRecordBytes, ents, recordBytes, tempDir, view } from './helpers.js';

let dir: string;
beforeEach(async () => {
  dir = path.join(await tempDir(), 'wal');
});
afterEach(async () => {
  await fs.rm(path.dirname(dir), { recursive: true, force: true });
});

const hs = (term: number, commit: number, vote = 'n1'): HardState => HardState.create({ term, vote, commit });

async function segmentFiles(): Promise<string[]> {
  return (await fs.readdir(dir)).filter((n) => n.endsWith('.wal')).sort();
}

async function flipByte(file: string, offset: number): Promise<void> {
  const buf = await fs.readFile(file);
  buf[offset] = buf[offset]! ^ 0x5a;
  await fs.writeFile(file, buf);
}

describe('Wal', () => {
  it('opens empty, then replays the entries and hard state it saved', async () => {
    const a = await Wal.open(realVfs, dir);
    expect(a.state).toEqual({ hardState: HardState.create(), snapshot: null, entries: [] });
    expect(await segmentFiles()).toEqual(['0000000000000001-0000000000000001.wal']);
    await a.wal.save(hs(2, 3), ents(1, 3, 2), true);
    await a.wal.close();

    const b = await Wal.open(realVfs, dir);
    expect(view(b.state.entries)).toEqual([
      { index: 1, term: 2, data: 'e1' },
      { index: 2, term: 2, data: 'e2' },
      { index: 3, term: 2, data: 'e3' },
    ]);
    expect({ ...b.state.hardState }).toEqual({ term: 2, vote: 'n1', commit: 3 });
    expect(b.state.snapshot).toBeNull();
    await b.wal.close();
  });

  it('spreads many entries over several segments and replays them all in order', async () => {
    const { wal } = await Wal.open(realVfs, dir, { segmentBytes: 4096 });
    const payload = 'x'.repeat(100);
    for (let b = 0; b < 30; b++) {
      const batch = Array.from({ length: 10 }, (_, k) => ent(b * 10 + k + 1, 1, `${b * 10 + k + 1}:${payload}`));
      await wal.save(hs(1, b * 10), batch, true);
    }
    const files = await segmentFiles();
    expect(files.length).toBe(wal.stats.segments);
    expect(files.length).toBeGreaterThanOrEqual(3);
    await wal.close();

    // Names count segments from 1 without gaps; each new segment starts after a whole batch of 10.
    files.forEach((f, i) => {
      expect(parseInt(f.slice(0, 16), 16)).toBe(i + 1);
      expect((parseInt(f.slice(17, 33), 16) - 1) % 10).toBe(0);
    });
    // Only the last segment carries preallocated space; the others end at their last record.
    for (const f of files.slice(0, -1)) expect((await fs.stat(path.join(dir, f))).size).toBeLessThan(4096 + 10 * 150);

    const { wal: again, state } = await Wal.open(realVfs, dir, { segmentBytes: 4096 });
    expect(state.entries.map((e) => e.index)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(new TextDecoder().decode(state.entries[299]!.data)).toBe(`300:${payload}`);
    expect({ ...state.hardState }).toEqual({ term: 1, vote: 'n1', commit: 290 });
    await again.close();
  });

  it('lets a later entry at index i replace every logged entry from i on', async () => {
    const { wal } = await Wal.open(realVfs, dir);
    await wal.save(hs(1, 2), ents(1, 10, 1), true);
    await wal.save(hs(2, 2), ents(6, 8, 2, 'new'), true);
    await wal.close();

    const { wal: w2, state } = await Wal.open(realVfs, dir);
    expect(view(state.entries)).toEqual([...view(ents(1, 5, 1)), ...view(ents(6, 8, 2, 'new'))]);
    // And the log keeps growing from the overwritten tail.
    await w2.save(null, ents(9, 9, 2, 'new'), true);
    await w2.close();
    const { wal: w3, state: s3 } = await Wal.open(realVfs, dir);
    expect(s3.entries.map((e) => `${e.index}/${e.term}`)).toEqual(['1/1', '2/1', '3/1', '4/1', '5/1', '6/2', '7/2', '8/2', '9/2']);
    await w3.close();
  });

  it('starts replay after the newest snapshot marker, dropping the entries it covers', async () => {
    const { wal } = await Wal.open(realVfs, dir);
    await wal.save(hs(1, 10), ents(1, 10), true);
    await wal.saveSnapshotMarker({ index: 6, term: 1 });
    await wal.save(null, ents(11, 12), true);
    await wal.close();

    const { wal: w2, state } = await Wal.open(realVfs, dir);
    expect(state.snapshot).toEqual({ index: 6, term: 1 });
    expect(state.entries.map((e) => e.index)).toEqual([7, 8, 9, 10, 11, 12]);
    await w2.close();
  });

  it('voids the whole earlier log after a marker that replaced it (a snapshot from the leader)', async () => {
    const { wal } = await Wal.open(realVfs, dir);
    await wal.save(hs(1, 5), ents(1, 10, 1), true);
    await wal.saveSnapshotMarker({ index: 20, term: 3 }, { replacesLog: true, sync: false });
    await wal.save(hs(3, 20), [], true);
    await wal.close();

    const a = await Wal.open(realVfs, dir);
    expect(a.state.snapshot).toEqual({ index: 20, term: 3 });
    expect(a.state.entries).toEqual([]);
    await a.wal.save(null, ents(21, 22, 3), true);
    await a.wal.close();

    const b = await Wal.open(realVfs, dir);
    expect(b.state.entries.map((e) => `${e.index}/${e.term}`)).toEqual(['21/3', '22/3']);
    expect({ ...b.state.hardState }).toEqual({ term: 3, vote: 'n1', commit: 20 });
    await b.wal.close();
  });

  it('makes one save of 100 entries and a hard state cost exactly one fsync', async () => {
    const { wal } = await Wal.open(realVfs, dir);
    const before = wal.stats.fsyncs;
    await wal.save(hs(1, 0), ents(1, 100), true);
    expect(wal.stats.fsyncs - before).toBe(1);
    expect(wal.stats.entriesWritten).toBe(100);
    const expectedBytes = ents(1, 100).reduce((n, e) => n + entryRecordBytes(e), 0) + recordBytes(HardState.encode(hs(1, 0)).length);
    expect(wal.stats.bytesWritten).toBe(expectedBytes);
    // Without sync, nothing is fsynced; the next synced save covers both.
    await wal.save(null, ents(101, 101), false);
    expect(wal.stats.fsyncs - before).toBe(1);
    await wal.save(null, [], true);
    expect(wal.stats.fsyncs - before).toBe(2);
    await wal.close();
  });

  it('cuts a torn last record away, warns, and keeps appending after the good ones', async () => {
    const { wal } = await Wal.open(realVfs, dir, { preallocBytes: 0 });
    await wal.save(hs(1, 5), ents(1, 5), true);
    await wal.save(null, ents(6, 7), true);
    await wal.close();
    const [name] = await segmentFiles();
    const file = path.join(dir, name!);
    const size = (await fs.stat(file)).size;
    const last = entryRecordBytes(ents(7, 7)[0]!);
    // A crash in the middle of writing entry 7's record.
    await fs.truncate(file, size - 5);

    const { logger, lines } = captureLogger();
    const a = await Wal.open(realVfs, dir, { preallocBytes: 0, logger });
    expect(a.state.entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await fs.stat(file)).size).toBe(size - last);
    const warn = lines.find((l) => l.level === 40);
    expect(warn).toMatchObject({ file, offset: size - last, droppedBytes: last - 5 });

    await a.wal.save(hs(1, 7), ents(7, 8, 1, 'again'), true);
    await a.wal.close();
    const b = await Wal.open(realVfs, dir, { preallocBytes: 0 });
    expect(view(b.state.entries)).toEqual([...view(ents(1, 6)), ...view(ents(7, 8, 1, 'again'))]);
    expect(b.state.hardState.commit).toBe(7);
    await b.wal.close();
  });

  it('treats a torn record inside the preallocated zeros as a torn tail too', async () => {
    const { wal } = await Wal.open(realVfs, dir);
    await wal.save(hs(1, 3), ents(1, 3), true);
    await wal.close();
    const file = path.join(dir, (await segmentFiles())[0]!);
    const end =
      SEGMENT_HEADER_BYTES + ents(1, 3).reduce((n, e) => n + entryRecordBytes(e), 0) + recordBytes(HardState.encode(hs(1, 3)).length);
    expect((await fs.stat(file)).size).toBe(256 * 1024);
    // Half a record header (a length and no more) landed in the zeros after the last record.
    const fh = await fs.open(file, 'r+');
    await fh.write(Uint8Array.of(40, 0, 0, 0), 0, 4, end);
    await fh.close();

    const a = await Wal.open(realVfs, dir);
    expect(a.state.entries.map((e) => e.index)).toEqual([1, 2, 3]);
    expect((await fs.stat(file)).size).toBe(end);
    await a.wal.save(null, ents(4, 4), true);
    await a.wal.close();
    const b = await Wal.open(realVfs, dir);
    expect(b.state.entries.map((e) => e.index)).toEqual([1, 2, 3, 4]);
    await b.wal.close();
  });

  it('refuses to open when a middle record is corrupt, naming the file and the offset', async () => {
    const { wal } = await Wal.open(realVfs, dir);
    await wal.save(null, ents(1, 10), true);
    await wal.close();
    const file = path.join(dir, (await segmentFiles())[0]!);
    const offsetOf3 = SEGMENT_HEADER_BYTES + ents(1, 2).reduce((n, e) => n + entryRecordBytes(e), 0);
    await flipByte(file, offsetOf3 + 12);

    const err = await Wal.open(realVfs, dir).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WalCorruptError);
    const c = err as WalCorruptError;
    expect(c.code).toBe('WAL_CORRUPT');
    expect(c.file).toBe(file);
    expect(c.offset).toBe(offsetOf3);
    expect(c.message).toContain(file);
    expect(c.message).toContain(`offset ${offsetOf3}`);
    expect(c.message).toContain(`valid record follows at offset ${offsetOf3 + entryRecordBytes(ents(3, 3)[0]!)}`);
    expect(c.message).toContain('from a healthy peer');
    expect(c.message).toContain('join it again');
  });

  it('refuses to open when a record of an earlier segment is damaged, even its last one', async () => {
    const { wal } = await Wal.open(realVfs, dir, { segmentBytes: 512, preallocBytes: 0 });
    for (let i = 1; i <= 40; i += 4) await wal.save(null, ents(i, i + 3), true);
    await wal.close();
    const files = await segmentFiles();
    expect(files.length).toBeGreaterThanOrEqual(3);
    const second = path.join(dir, files[1]!);
    const size = (await fs.stat(second)).size;
    // Cutting its end would be a torn tail in the last segment; here it is lost acknowledged data.
    await fs.truncate(second, size - 3);
    const lastRecord = size - entryRecordBytes(ents(parseInt(files[2]!.slice(17), 16) - 1, parseInt(files[2]!.slice(17), 16) - 1)[0]!);

    const err = (await Wal.open(realVfs, dir, { segmentBytes: 512 }).catch((e: unknown) => e)) as WalCorruptError;
    expect(err).toBeInstanceOf(WalCorruptError);
    expect(err.file).toBe(second);
    expect(err.offset).toBe(lastRecord);
    expect(err.message).toContain('not the last');
  });

  it('refuses to open when a segment in the middle is missing', async () => {
    const { wal } = await Wal.open(realVfs, dir, { segmentBytes: 512, preallocBytes: 0 });
    for (let i = 1; i <= 40; i += 4) await wal.save(null, ents(i, i + 3), true);
    await wal.close();
    const files = await segmentFiles();
    await fs.rm(path.join(dir, files[1]!));
    const err = (await Wal.open(realVfs, dir).catch((e: unknown) => e)) as WalCorruptError;
    expect(err.code).toBe('WAL_CORRUPT');
    expect(err.file).toBe(path.join(dir, files[2]!));
    expect(err.message).toContain('segment 2');
  });

  it('releases whole segments before a snapshot, repeating the hard state so the rest still loads', async () => {
    const { wal } = await Wal.open(realVfs, dir, { segmentBytes: 1024, preallocBytes: 0 });
    await wal.save(hs(4, 1, 'n3'), ents(1, 1, 4), true);
    for (let i = 2; i <= 200; i += 9) await wal.save(null, ents(i, Math.min(i + 8, 200), 4), true);
    await wal.saveSnapshotMarker({ index: 150, term: 4 });
    const before = await segmentFiles();
    await wal.releaseTo(150);
    const after = await segmentFiles();
    // Kept: the last segment starting at or before 150, and every later one.
    const firsts = before.map((f) => parseInt(f.slice(17, 33), 16));
    const keepFrom = firsts.filter((f) => f <= 150).length - 1;
    expect(after).toEqual(before.slice(keepFrom));
    expect(after.length).toBeLessThan(before.length);
    expect(wal.stats.segments).toBe(after.length);
    await wal.close();

    const { wal: w2, state } = await Wal.open(realVfs, dir);
    expect(state.snapshot).toEqual({ index: 150, term: 4 });
    expect(state.entries.map((e) => e.index)).toEqual(Array.from({ length: 50 }, (_, i) => 151 + i));
    expect({ ...state.hardState }).toEqual({ term: 4, vote: 'n3', commit: 1 });
    await w2.close();

    // Without the snapshot the released log cannot start: it says so instead of starting with a hole.
    const err = (await Wal.open(realVfs, dir, { chooseSnapshot: () => null }).catch((e: unknown) => e)) as WalInconsistentError;
    expect(err).toBeInstanceOf(WalInconsistentError);
    expect(err.code).toBe('WAL_INCONSISTENT');
  });

  it('removes a segment left half-created by a crash before its rename', async () => {
    const { wal } = await Wal.open(realVfs, dir);
    await wal.save(null, ents(1, 2), true);
    await wal.close();
    await fs.writeFile(path.join(dir, '0000000000000002-0000000000000003.wal.tmp'), 'garbage');
    const { wal: w2, state } = await Wal.open(realVfs, dir);
    expect(state.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(await fs.readdir(dir)).toEqual(['0000000000000001-0000000000000001.wal']);
    await w2.close();
  });

  it('refuses a batch that would leave a hole in the log, before writing anything', async () => {
    const { wal } = await Wal.open(realVfs, dir);
    await wal.save(null, ents(1, 3), true);
    await expect(wal.save(null, ents(5, 6), true)).rejects.toMatchObject({ code: 'WAL_INVALID_APPEND' });
    await expect(wal.save(null, [ents(4, 4)[0]!, ents(6, 6)[0]!], true)).rejects.toMatchObject({ code: 'WAL_INVALID_APPEND' });
    await wal.saveSnapshotMarker({ index: 2, term: 1 });
    await expect(wal.save(null, ents(2, 2), true)).rejects.toMatchObject({ code: 'WAL_INVALID_APPEND' });
    const bytes = wal.stats.bytesWritten;
    await wal.save(null, ents(4, 4), true);
    expect(wal.stats.bytesWritten).toBeGreaterThan(bytes);
    await wal.close();
    const again = await Wal.open(realVfs, dir);
    expect(again.state.entries.map((e) => e.index)).toEqual([3, 4]);
    await again.wal.close();
  });

  it('refuses all further work after a failed fsync, since the kernel may have dropped the pages', async () => {
    const disk = new SimDisk();
    let failSync = false;
    const vfs: Vfs = {
      ...disk.session(),
      open: async (p) => {
        const f = await disk.open(p);
        const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
        return {
          path: f.path,
          size: () => f.size(),
          writeAt: (d, pos) => f.writeAt(d, pos),
          append: (d) => f.append(d),
          truncate: (n) => f.truncate(n),
          close: () => f.close(),
          sync: () => (failSync ? Promise.reject(eio) : f.sync()),
        };
      },
    };
    const { wal } = await Wal.open(vfs, '/wal');
    await wal.save(null, ents(1, 2), true);
    failSync = true;
    const err = await wal.save(null, ents(3, 3), true).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalFailedError);
    expect((err as WalFailedError).code).toBe('WAL_FAILED');
    expect((err as WalFailedError).message).toContain('EIO');
    failSync = false;
    await expect(wal.save(null, ents(4, 4), true)).rejects.toBe(err);
    await wal.close();
  });

  it('rejects work after close with WAL_CLOSED', async () => {
    const { wal } = await Wal.open(realVfs, dir);
    await wal.close();
    await expect(wal.save(null, [Entry.create({ index: 1, term: 1 })], true)).rejects.toMatchObject({ code: 'WAL_CLOSED' });
  });
});
