// Encryption at rest of the Raft storage, on real files in a temp dir: WAL
// records and snapshot files sealed with the data key, the key files, what
// tampering is caught (a flipped byte, a record moved to another place, a
// snapshot under another name), migration of a plaintext directory, and a
// data key rotation through a snapshot.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMetadata } from '../../../../proto/gen/raft.js';
import {
  DEK_FILE,
  DataKeys,
  DiskStorage,
  KEK_FILE,
  KeyFileError,
  SnapshotAuthError,
  SnapshotCorruptError,
  SnapshotStore,
  StorageError,
  WalCorruptError,
  crc32c,
  realVfs,
  snapshotFileName,
} from '../../../../manager/raft/storage/index.js';
import { dec, enc, ents, tempDir, view } from './helpers.js';

// What must never reach the disk in clear: the sort of value the store holds (the root CA's key).
const MARKER = 'tss-marker-ROOT-CA-KEY-MHcCAQEEIBFakeFakeFakeFakeFakeFakeFakeFakeFakeoAoGCCqGSM49';

let root: string;
let dir: string;
beforeEach(async () => {
  root = await tempDir();
  dir = path.join(root, 'raft');
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const hs = (term: number, commit: number): HardState => HardState.create({ term, vote: 'n1', commit });

function secretEntries(from: number, to: number, term = 1): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(Entry.create({ index: i, term, type: EntryType.ENTRY_NORMAL, data: enc(`${MARKER}#${i}`) }));
  return out;
}

function snap(index: number, term: number, data = `${MARKER}@${index}`): Snapshot {
  return Snapshot.create({
    data: enc(data),
    metadata: SnapshotMetadata.create({ index, term, confState: ConfState.create({ voters: ['n1'] }) }),
  });
}

async function allFiles(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) out.push(...(await allFiles(p)));
    else out.push(p);
  }
  return out;
}

/** Files under `d` whose raw bytes contain `needle`. */
async function filesContaining(d: string, needle: string): Promise<string[]> {
  const b = Buffer.from(needle);
  const hits: string[] = [];
  for (const f of await allFiles(d)) if ((await fs.readFile(f)).includes(b)) hits.push(path.relative(d, f));
  return hits;
}

async function segments(): Promise<string[]> {
  return (await fs.readdir(path.join(dir, 'wal')))
    .filter((n) => n.endsWith('.wal'))
    .sort()
    .map((n) => path.join(dir, 'wal', n));
}

interface RawRecord {
  offset: number;
  len: number;
  kind: number;
  keyId?: number;
}

/** The records of a segment file as the format lays them out. */
function records(buf: Buffer): RawRecord[] {
  const out: RawRecord[] = [];
  for (let off = 0; off + 8 <= buf.length; ) {
    const len = buf.readUInt32LE(off);
    if (len === 0) break;
    const kind = buf[off + 8]!;
    out.push({ offset: off, len, kind, keyId: kind === 5 ? buf.readUInt32LE(off + 9) : undefined });
    off += (8 + len + 7) & ~7;
  }
  return out;
}

function segmentVersion(buf: Buffer): number {
  return buf.readUInt32LE(9);
}

function u64(n: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** Recomputes a record's CRC for where it now sits, as someone altering the file on purpose would. */
function fixCrc(buf: Buffer, seq: number, off: number): void {
  const len = buf.readUInt32LE(off);
  const seed = crc32c(u64(off), crc32c(u64(seq)));
  buf.writeUInt32LE(crc32c(buf, seed, off + 8, off + 8 + len), off + 4);
}

async function dekIds(): Promise<number[]> {
  const d = JSON.parse(await fs.readFile(path.join(dir, DEK_FILE), 'utf8')) as { current: number; deks: { id: number }[] };
  return d.deks.map((k) => k.id);
}

describe('encryption at rest', () => {
  it('round trip: reads back what it wrote, after a restart too, and no plaintext is on disk', async () => {
    const a = await DiskStorage.open(realVfs, dir, { encryption: true, segmentBytes: 4096 });
    expect(a.storage.dataKeys).not.toBeNull();
    for (let i = 1; i <= 30; i += 5) await a.storage.persist({ hardState: hs(1, i + 4), entries: secretEntries(i, i + 4), mustSync: true });
    await a.storage.compact(snap(20, 1));
    await a.storage.persist({ hardState: hs(1, 40), entries: secretEntries(31, 40), mustSync: true });
    await a.storage.close();

    // The key files sit beside wal/ and snap/, and say what wraps what.
    const dekJson = JSON.parse(await fs.readFile(path.join(dir, DEK_FILE), 'utf8'));
    const kekJson = JSON.parse(await fs.readFile(path.join(dir, KEK_FILE), 'utf8'));
    expect(dekJson).toMatchObject({ format: 'tsswarm-raft-dek', version: 1, kek: { id: kekJson.id, source: 'stored' }, current: 1 });
    expect(kekJson).toMatchObject({ format: 'tsswarm-raft-kek', version: 1 });
    expect((await fs.stat(path.join(dir, KEK_FILE))).mode & 0o777).toBe(0o600);

    // Every segment is version 2, and every record after its header is sealed.
    const segs = await segments();
    expect(segs.length).toBeGreaterThan(1);
    for (const f of segs) {
      const buf = await fs.readFile(f);
      expect(segmentVersion(buf)).toBe(2);
      const rs = records(buf);
      expect(rs[0]!.kind).toBe(1);
      expect(rs.slice(1).every((r) => r.kind === 5 && r.keyId === 1)).toBe(true);
    }
    expect(await filesContaining(root, MARKER)).toEqual([]);
    expect(await filesContaining(root, 'ROOT-CA-KEY')).toEqual([]);

    // A restart reads it back, without being told to encrypt: the key file is enough.
    const b = await DiskStorage.open(realVfs, dir);
    expect(b.state.snapshot?.metadata?.index).toBe(20);
    expect(dec(b.state.snapshot!.data)).toBe(`${MARKER}@20`);
    expect(view(b.state.entries)).toEqual(view(secretEntries(21, 40)));
    expect(b.state.hardState.commit).toBe(40);
    await b.storage.persist({ entries: secretEntries(41, 41), mustSync: true });
    await b.storage.close();
    const c = await DiskStorage.open(realVfs, dir);
    expect(c.state.entries.map((e) => e.index)).toEqual(Array.from({ length: 21 }, (_, i) => 21 + i));
    await c.storage.close();
  });

  it('the same writes without encryption do leave the marker on disk (the grep above can see it)', async () => {
    const a = await DiskStorage.open(realVfs, dir);
    expect(a.storage.dataKeys).toBeNull();
    await a.storage.persist({ hardState: hs(1, 3), entries: secretEntries(1, 3), mustSync: true });
    await a.storage.compact(snap(2, 1));
    await a.storage.close();
    expect((await filesContaining(root, MARKER)).sort()).toEqual([
      path.join('raft', 'snap', snapshotFileName({ index: 2, term: 1 })),
      path.join('raft', 'wal', '0000000000000001-0000000000000001.wal'),
    ]);
  });

  async function sixRecords(): Promise<{ file: string; rs: RawRecord[] }> {
    const a = await DiskStorage.open(realVfs, dir, { encryption: true, preallocBytes: 0 });
    // One save per entry: one sealed record each (a save is sealed as one record).
    for (let i = 1; i <= 6; i++) await a.storage.persist({ hardState: hs(1, i), entries: ents(i, i), mustSync: true });
    await a.storage.close();
    const [file] = await segments();
    const rs = records(await fs.readFile(file!));
    return { file: file!, rs };
  }

  it('a flipped byte in a WAL record is an error naming the file and offset, never skipped', async () => {
    const { file, rs } = await sixRecords();
    const victim = rs[2]!; // the second entry, with valid records after it
    const buf = await fs.readFile(file);
    buf[victim.offset + 30] = buf[victim.offset + 30]! ^ 0x01;
    await fs.writeFile(file, buf);
    const err = (await DiskStorage.open(realVfs, dir).catch((e: unknown) => e)) as WalCorruptError;
    expect(err).toBeInstanceOf(WalCorruptError);
    expect(err.file).toBe(file);
    expect(err.offset).toBe(victim.offset);
    expect(err.message).toContain(`${file} is corrupt at byte offset ${victim.offset}`);

    // The same flip with the checksum made to match, as a deliberate change would: authentication catches it.
    fixCrc(buf, 1, victim.offset);
    await fs.writeFile(file, buf);
    const err2 = (await DiskStorage.open(realVfs, dir).catch((e: unknown) => e)) as WalCorruptError;
    expect(err2).toBeInstanceOf(WalCorruptError);
    expect(err2.offset).toBe(victim.offset);
    expect(err2.message).toMatch(/does not open: authentication failed with data key 1/);
  });

  it('a flipped byte in the last record is caught too when its checksum is made to match', async () => {
    const { file, rs } = await sixRecords();
    const last = rs[rs.length - 1]!;
    const buf = await fs.readFile(file);
    buf[last.offset + 20] = buf[last.offset + 20]! ^ 0x80;
    fixCrc(buf, 1, last.offset);
    await fs.writeFile(file, buf);
    const err = (await DiskStorage.open(realVfs, dir).catch((e: unknown) => e)) as WalCorruptError;
    expect(err).toBeInstanceOf(WalCorruptError);
    expect(err.offset).toBe(last.offset);
    expect(err.message).toContain('authentication failed');
  });

  it('a record moved to another position does not authenticate, even with its checksum fixed', async () => {
    const { file, rs } = await sixRecords();
    // Entries 2 and 3: sealed records of the same size, so swapping them keeps the layout.
    const [r2, r3] = [rs[2]!, rs[3]!];
    expect(r2.kind).toBe(5);
    expect(r2.len).toBe(r3.len);
    const size = (8 + r2.len + 7) & ~7;
    const buf = await fs.readFile(file);
    const a = Buffer.from(buf.subarray(r2.offset, r2.offset + size));
    const b = Buffer.from(buf.subarray(r3.offset, r3.offset + size));
    b.copy(buf, r2.offset);
    a.copy(buf, r3.offset);
    fixCrc(buf, 1, r2.offset);
    fixCrc(buf, 1, r3.offset);
    await fs.writeFile(file, buf);
    const err = (await DiskStorage.open(realVfs, dir).catch((e: unknown) => e)) as WalCorruptError;
    expect(err).toBeInstanceOf(WalCorruptError);
    expect(err.file).toBe(file);
    expect(err.offset).toBe(r2.offset);
    expect(err.message).toContain('moved from another position');

    // Replaying an older record in place of a newer one (a copy, not a swap) is refused the same way.
    a.copy(buf, r2.offset);
    a.copy(buf, r3.offset);
    fixCrc(buf, 1, r3.offset);
    await fs.writeFile(file, buf);
    const err2 = (await DiskStorage.open(realVfs, dir).catch((e: unknown) => e)) as WalCorruptError;
    expect(err2).toBeInstanceOf(WalCorruptError);
    expect(err2.offset).toBe(r3.offset);
  });

  it('scanning past a bad record is quick when the bytes after it read as a length of 2^31 or more', async () => {
    const { file, rs } = await sixRecords();
    const r = rs[2]!;
    const buf = await fs.readFile(file);
    // findValidAfter reads a length 8 bytes into the damaged record; this one once made it checksum gigabytes.
    buf.writeUInt32LE(0xfffffff9, r.offset + 8);
    await fs.writeFile(file, buf);
    const t = performance.now();
    const err = (await DiskStorage.open(realVfs, dir).catch((e: unknown) => e)) as WalCorruptError;
    expect(performance.now() - t).toBeLessThan(2000);
    expect(err).toBeInstanceOf(WalCorruptError);
    expect(err.offset).toBe(r.offset);
    expect(err.message).toContain(`yet a valid record follows at offset ${rs[3]!.offset}`);
  });

  it('a plaintext record slipped into an encrypted segment is refused', async () => {
    const { file, rs } = await sixRecords();
    const r = rs[2]!;
    const buf = await fs.readFile(file);
    buf[r.offset + 8] = 2; // claims to be a plain entry
    fixCrc(buf, 1, r.offset);
    await fs.writeFile(file, buf);
    const err = (await DiskStorage.open(realVfs, dir).catch((e: unknown) => e)) as WalCorruptError;
    expect(err).toBeInstanceOf(WalCorruptError);
    expect(err.message).toContain('a plaintext entry in an encrypted segment');
  });

  it('a snapshot file: a flipped byte fails its checks, and a fixed-up or renamed one fails authentication', async () => {
    const a = await DiskStorage.open(realVfs, dir, { encryption: true });
    await a.storage.persist({ hardState: hs(1, 5), entries: ents(1, 5), mustSync: true });
    await a.storage.compact(snap(5, 1));
    await a.storage.close();
    const file = path.join(dir, 'snap', snapshotFileName({ index: 5, term: 1 }));
    const good = await fs.readFile(file);
    expect(good.readUInt32LE(4)).toBe(2);

    const flipped = Buffer.from(good);
    flipped[40] = flipped[40]! ^ 0x10;
    await fs.writeFile(file, flipped);
    const loaded = await DataKeys.load(realVfs, dir);
    const s2 = await SnapshotStore.open(realVfs, path.join(dir, 'snap'), { keyring: loaded.keyring });
    await expect(s2.load({ index: 5, term: 1 })).rejects.toThrow(SnapshotCorruptError);
    await expect(s2.load({ index: 5, term: 1 })).rejects.toThrow(`snapshot file ${file} is corrupt: checksum mismatch`);

    // Fixed-up checksum: authentication fails, and the member refuses to start (no silent fallback).
    flipped.writeUInt32LE(crc32c(flipped.subarray(12)), 8);
    await fs.writeFile(file, flipped);
    const err = (await DiskStorage.open(realVfs, dir).catch((e: unknown) => e)) as SnapshotAuthError;
    expect(err).toBeInstanceOf(SnapshotAuthError);
    expect(err.file).toBe(file);
    expect(err.message).toContain(`snapshot file ${file} fails authentication at byte offset 12`);

    // The intact file under another snapshot's name: it is bound to its own term and index.
    await fs.writeFile(file, good);
    const other = path.join(dir, 'snap', snapshotFileName({ index: 4, term: 1 }));
    await fs.writeFile(other, good);
    await expect(s2.load({ index: 4, term: 1 })).rejects.toThrow(SnapshotAuthError);
    expect(dec((await s2.load({ index: 5, term: 1 })).data)).toBe(`${MARKER}@5`);
  });

  it('a damaged or mismatched key file is a clear error naming it', async () => {
    const a = await DiskStorage.open(realVfs, dir, { encryption: true });
    await a.storage.persist({ hardState: hs(1, 2), entries: ents(1, 2), mustSync: true });
    await a.storage.close();
    const kekFile = path.join(dir, KEK_FILE);
    const kek = JSON.parse(await fs.readFile(kekFile, 'utf8'));
    await fs.writeFile(kekFile, JSON.stringify({ ...kek, key: Buffer.alloc(32, 7).toString('base64') }));
    const err = (await DiskStorage.open(realVfs, dir).catch((e: unknown) => e)) as KeyFileError;
    expect(err).toBeInstanceOf(KeyFileError);
    expect(err.message).toContain(`${path.join(dir, DEK_FILE)}: data key 1 does not unwrap with key-encryption key ${kek.id}`);
    await fs.rm(kekFile);
    await expect(DiskStorage.open(realVfs, dir)).rejects.toThrow(`Raft key file ${kekFile}: missing`);
    // Without the DEK file the encrypted WAL cannot be read, and says so.
    await fs.rm(path.join(dir, DEK_FILE));
    const err3 = (await DiskStorage.open(realVfs, dir).catch((e: unknown) => e)) as StorageError;
    expect(err3).toBeInstanceOf(StorageError);
    expect(err3.code).toBe('WAL_KEY_MISSING');
    expect(err3.message).toContain('is encrypted, but no data key was given');
  });

  it('migrates a plaintext directory: everything still there, sealed, and no plaintext left', async () => {
    const a = await DiskStorage.open(realVfs, dir, { segmentBytes: 2048, preallocBytes: 0 });
    for (let i = 1; i <= 40; i += 10)
      await a.storage.persist({ hardState: hs(1, i + 9), entries: secretEntries(i, i + 9), mustSync: true });
    await a.storage.compact(snap(10, 1), 1); // keeps the whole log
    await a.storage.compact(snap(20, 1), 1);
    await a.storage.persist({ hardState: hs(2, 45), entries: secretEntries(41, 45, 2), mustSync: false });
    await a.storage.close();
    const before = await segments();
    expect(before.length).toBeGreaterThan(2);
    expect((await filesContaining(root, MARKER)).length).toBeGreaterThan(2);

    const b = await DiskStorage.open(realVfs, dir, { encryption: true, segmentBytes: 2048, preallocBytes: 0 });
    expect(b.state.snapshot?.metadata?.index).toBe(20);
    expect(dec(b.state.snapshot!.data)).toBe(`${MARKER}@20`);
    expect(view(b.state.entries)).toEqual(view([...secretEntries(21, 40), ...secretEntries(41, 45, 2)]));
    expect(b.state.hardState.commit).toBe(45);
    await b.storage.persist({ hardState: hs(2, 46), entries: secretEntries(46, 46, 2), mustSync: true });
    await b.storage.close();

    expect(await filesContaining(root, MARKER)).toEqual([]);
    const after = await segments();
    expect(after.slice(0, before.length)).toEqual(before); // same segments, sealed in place, plus the new tail
    for (const f of after) expect(segmentVersion(await fs.readFile(f))).toBe(2);
    for (const n of await fs.readdir(path.join(dir, 'snap')))
      expect((await fs.readFile(path.join(dir, 'snap', n))).readUInt32LE(4)).toBe(2);

    // It restarts from the sealed state exactly, even from the older snapshot (the whole log is still there).
    const c = await DiskStorage.open(realVfs, dir);
    expect(c.state.snapshot?.metadata?.index).toBe(20);
    expect(view(c.state.entries)).toEqual(view([...secretEntries(21, 40), ...secretEntries(41, 46, 2)]));
    expect(c.state.hardState.commit).toBe(46);
    await c.storage.close();
    await fs.rm(path.join(dir, 'snap', snapshotFileName({ index: 20, term: 1 })));
    const d = await DiskStorage.open(realVfs, dir);
    expect(d.state.snapshot?.metadata?.index).toBe(10);
    expect(d.state.entries.map((e) => e.index)).toEqual(Array.from({ length: 36 }, (_, i) => 11 + i));
    await d.storage.close();
  });

  it('rotates the data key through a snapshot while writing: new records use it, old segments go, restart reads all', async () => {
    const a = await DiskStorage.open(realVfs, dir, { encryption: true, segmentBytes: 2048, preallocBytes: 0, keepSnapshots: 2 });
    await a.storage.persist({ hardState: hs(1, 40), entries: secretEntries(1, 40), mustSync: true });
    await a.storage.compact(snap(30, 1), 25);
    const beforeRotation = await segments();

    const rotating = a.storage.rotateDataKey();
    // Writes carry on during the rotation.
    const writing = a.storage.persist({ hardState: hs(1, 50), entries: secretEntries(41, 50), mustSync: true });
    expect(await rotating).toBe(2);
    await writing;
    expect(await dekIds()).toEqual([2, 1]); // the old key stays while older segments use it
    // Snapshot files are resealed with the new key at once.
    for (const n of await fs.readdir(path.join(dir, 'snap'))) {
      const buf = await fs.readFile(path.join(dir, 'snap', n));
      expect(buf.readUInt32LE(12)).toBe(2);
    }
    await a.storage.persist({ hardState: hs(1, 60), entries: secretEntries(51, 60), mustSync: true });
    const tail = (await segments()).at(-1)!;
    expect(beforeRotation).not.toContain(tail);
    const sealed = records(await fs.readFile(tail)).slice(1);
    expect(sealed.length).toBeGreaterThan(0);
    expect(sealed.every((r) => r.kind === 5 && r.keyId === 2)).toBe(true);

    // The next snapshots release the segments sealed with key 1, and then key 1 is forgotten.
    await a.storage.compact(snap(55, 1));
    await a.storage.compact(snap(60, 1));
    const left = await segments();
    for (const f of beforeRotation) expect(left).not.toContain(f);
    for (const f of left)
      expect(
        records(await fs.readFile(f))
          .slice(1)
          .every((r) => r.keyId === 2),
      ).toBe(true);
    expect(await dekIds()).toEqual([2]);
    expect(a.storage.dataKeys!.keyring.ids()).toEqual([2]);
    await a.storage.close();
    expect(await filesContaining(root, MARKER)).toEqual([]);

    const b = await DiskStorage.open(realVfs, dir);
    expect(b.state.snapshot?.metadata?.index).toBe(60);
    expect(dec(b.state.snapshot!.data)).toBe(`${MARKER}@60`);
    expect(b.state.hardState.commit).toBe(60);
    await b.storage.persist({ hardState: hs(1, 61), entries: secretEntries(61, 61), mustSync: true });
    await b.storage.close();
    const c = await DiskStorage.open(realVfs, dir);
    expect(view(c.state.entries)).toEqual(view(secretEntries(61, 61)));
    await c.storage.close();
  });

  it('a restart in the middle of a rotation reads both keys and finishes the job later', async () => {
    const a = await DiskStorage.open(realVfs, dir, { encryption: true, segmentBytes: 2048, preallocBytes: 0 });
    await a.storage.persist({ hardState: hs(1, 30), entries: secretEntries(1, 30), mustSync: true });
    await a.storage.rotateDataKey();
    await a.storage.persist({ hardState: hs(1, 40), entries: secretEntries(31, 40), mustSync: true });
    await a.storage.close();
    const b = await DiskStorage.open(realVfs, dir, { segmentBytes: 2048, preallocBytes: 0 });
    expect(view(b.state.entries)).toEqual(view(secretEntries(1, 40)));
    expect(await dekIds()).toEqual([2, 1]);
    await b.storage.compact(snap(40, 1));
    expect(await dekIds()).toEqual([2]);
    await b.storage.close();
    const c = await DiskStorage.open(realVfs, dir);
    expect(c.state.snapshot?.metadata?.index).toBe(40);
    await c.storage.close();
  });

  it('rotation is refused, clearly, on storage that is not encrypted', async () => {
    const a = await DiskStorage.open(realVfs, dir);
    await expect(a.storage.rotateDataKey()).rejects.toThrow('this raft state is not encrypted');
    await a.storage.close();
  });
});
