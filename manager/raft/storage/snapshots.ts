// Snapshot files of a Raft member: one file per snapshot, named by term and
// index, written atomically and checksummed. The WAL records which of them a
// restart may use; see DiskStorage for how the two are ordered.
//
// File format: u32 LE magic "TSNP", u32 LE format version, u32 LE CRC-32C of the payload, then
// the payload. Version 1: the payload is a raftpb.Snapshot. Version 2 (encrypted, written when the
// store has a keyring): the payload is the raftpb.Snapshot sealed (cipher.ts: u32 key id, nonce,
// AES-256-GCM ciphertext, tag) with additional data "TSNP" ++ u64 term ++ u64 index ++ u32 key id,
// so a file renamed to another snapshot's name does not authenticate. Both versions are read.
// Names are `<term>-<index>.snap`, 16 lowercase hex digits each.
import path from 'node:path';
import pino from 'pino';
import { Snapshot } from '../../../proto/gen/raft.js';
import { type Keyring, SealError, sealedKeyId } from './cipher.js';
import { crc32c } from './crc32c.js';
import { SnapshotAuthError, SnapshotCorruptError, StorageError } from './errors.js';
import { TMP_SUFFIX, type Vfs } from './vfs.js';
import type { SnapshotMark } from './wal.js';

const SILENT = pino({ level: 'silent' });
const MAGIC = 0x504e5354; // "TSNP" read as u32 LE
const VERSION = 1;
const SEALED_VERSION = 2;
const HEADER = 12;
const NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
/** Suffix given to a file that failed its checks: kept for an operator to inspect, never read again. */
export const BROKEN_SUFFIX = '.broken';

function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

export function snapshotFileName(m: SnapshotMark): string {
  return `${hex16(m.term)}-${hex16(m.index)}.snap`;
}

function markOf(s: Snapshot): SnapshotMark {
  return { index: s.metadata?.index ?? 0, term: s.metadata?.term ?? 0 };
}

function sealAad(m: SnapshotMark, keyId: number): Uint8Array {
  const b = new Uint8Array(24);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setBigUint64(4, BigInt(m.term), true);
  dv.setBigUint64(12, BigInt(m.index), true);
  dv.setUint32(20, keyId, true);
  return b;
}

export class SnapshotStore {
  private constructor(
    private readonly vfs: Vfs,
    readonly dir: string,
    private readonly log: pino.Logger,
    /** With one, files are written sealed (version 2); needed to read version 2 files. */
    private readonly keyring: Keyring | undefined,
  ) {}

  /** Creates `dir` if needed and deletes what a crash left half-written. */
  static async open(vfs: Vfs, dir: string, opts: { logger?: pino.Logger; keyring?: Keyring } = {}): Promise<SnapshotStore> {
    const fresh = !(await vfs.exists(dir));
    await vfs.mkdirp(dir);
    if (fresh) await vfs.syncDir(path.dirname(dir));
    for (const name of await vfs.list(dir)) {
      if (name.endsWith(TMP_SUFFIX)) await vfs.remove(path.join(dir, name));
    }
    return new SnapshotStore(vfs, dir, (opts.logger ?? SILENT).child({ component: 'snapshots' }), opts.keyring);
  }

  /** Writes the snapshot durably (tmp, fsync, rename, fsync dir); replaces a file of the same term and index. */
  async save(snap: Snapshot): Promise<void> {
    const m = markOf(snap);
    if (m.index <= 0) throw new StorageError('SNAPSHOT_INVALID', `a snapshot to save needs metadata with index ≥ 1 (got ${m.index})`);
    const plain = Snapshot.encode(snap);
    const payload = this.keyring ? this.keyring.seal((id) => sealAad(m, id), plain) : plain;
    const buf = new Uint8Array(HEADER + payload.length);
    const dv = new DataView(buf.buffer);
    dv.setUint32(0, MAGIC, true);
    dv.setUint32(4, this.keyring ? SEALED_VERSION : VERSION, true);
    dv.setUint32(8, crc32c(payload), true);
    buf.set(payload, HEADER);
    await this.vfs.writeFileAtomic(path.join(this.dir, snapshotFileName(m)), buf);
  }

  /** Snapshots present, by file name, newest (highest index) first. */
  async list(): Promise<SnapshotMark[]> {
    const out: SnapshotMark[] = [];
    for (const name of await this.vfs.list(this.dir)) {
      const m = NAME.exec(name);
      if (m) out.push({ term: parseInt(m[1]!, 16), index: parseInt(m[2]!, 16) });
    }
    return out.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  /** Reads and checks one snapshot file. Throws SnapshotCorruptError if it fails its checks (an I/O error propagates as is). */
  async load(m: SnapshotMark): Promise<Snapshot> {
    const file = path.join(this.dir, snapshotFileName(m));
    const buf = await this.vfs.readFile(file);
    if (buf.length < HEADER) throw new SnapshotCorruptError(file, `${buf.length} bytes is shorter than the header`);
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    if (dv.getUint32(0, true) !== MAGIC) throw new SnapshotCorruptError(file, 'bad magic number');
    const version = dv.getUint32(4, true);
    if (version !== VERSION && version !== SEALED_VERSION)
      throw new SnapshotCorruptError(file, `format version ${version}, this build reads ${VERSION} and ${SEALED_VERSION}`);
    let payload = buf.subarray(HEADER);
    if (crc32c(payload) !== dv.getUint32(8, true)) throw new SnapshotCorruptError(file, 'checksum mismatch');
    if (version === SEALED_VERSION) {
      if (!this.keyring) {
        throw new StorageError(
          'SNAPSHOT_KEY_MISSING',
          `snapshot file ${file} is encrypted, but no data key was given: its key file (raft-dek.json beside the snap directory) is missing`,
        );
      }
      try {
        payload = this.keyring.open((id) => sealAad(m, id), payload);
      } catch (e) {
        if (!(e instanceof SealError)) throw e;
        throw new SnapshotAuthError(file, HEADER, e.reason);
      }
    }
    let snap: Snapshot;
    try {
      snap = Snapshot.decode(payload);
    } catch (e) {
      throw new SnapshotCorruptError(file, `cannot decode: ${(e as Error).message}`);
    }
    const got = markOf(snap);
    if (got.index !== m.index || got.term !== m.term) {
      throw new SnapshotCorruptError(file, `it holds snapshot ${got.index} (term ${got.term}), unlike its name`);
    }
    return snap;
  }

  /** The data key id a snapshot file is sealed with; 0 for a plaintext (version 1) file. */
  async keyIdOf(m: SnapshotMark): Promise<number> {
    const buf = await this.vfs.readFile(path.join(this.dir, snapshotFileName(m)));
    if (buf.length < HEADER + 4) return 0;
    const version = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(4, true);
    return version === SEALED_VERSION ? sealedKeyId(buf.subarray(HEADER)) : 0;
  }

  /** Rewrites a snapshot file sealed with the current data key (atomically: the old or the new file after a crash). */
  async reseal(m: SnapshotMark): Promise<void> {
    if (!this.keyring) throw new StorageError('SNAPSHOT_NO_KEY', 'resealing a snapshot file needs a keyring');
    await this.save(await this.load(m));
    this.log.info({ file: snapshotFileName(m), key: this.keyring.currentId }, 'resealed a snapshot file with the current data key');
  }

  /**
   * The newest snapshot that `accept` admits and whose checks pass. A file that fails them is
   * renamed `*.broken`, logged at warn, and the next older one is tried.
   *
   * Falling back to an older snapshot is safe only if the WAL still holds every entry after it,
   * because replay rebuilds the newer state from those entries. DiskStorage guarantees that by
   * releasing the WAL only up to the oldest snapshot it keeps (never merely up to the newest), and
   * the WAL refuses to open (WalInconsistentError) if the entries are not all there, rather than
   * start from a log with a hole. It is also why `accept` exists: a snapshot the WAL never recorded,
   * or one from before the log was replaced by the leader's snapshot, is not a valid starting point.
   */
  async loadLatest(accept: (m: SnapshotMark) => boolean = () => true): Promise<Snapshot | null> {
    for (const m of await this.list()) {
      if (!accept(m)) continue;
      try {
        return await this.load(m);
      } catch (e) {
        if (!(e instanceof SnapshotCorruptError)) throw e;
        this.log.warn({ file: e.file, err: e.message }, 'snapshot file is corrupt; setting it aside and trying the previous one');
        await this.vfs.rename(e.file, e.file + BROKEN_SUFFIX);
        await this.vfs.syncDir(this.dir);
      }
    }
    return null;
  }

  /**
   * Keeps the newest `keep` snapshot files that `recorded` admits (those the WAL has a marker for)
   * and deletes the older ones; returns those kept, newest first. A file the WAL never recorded (a
   * crash between the file and its marker) is never a restart point, so it neither counts towards
   * `keep` nor is ever the oldest kept; it is deleted once older than the oldest kept, and left
   * alone if newer (it may be a snapshot whose marker is being written right now).
   */
  async purge(keep: number, recorded: (m: SnapshotMark) => boolean = () => true): Promise<SnapshotMark[]> {
    if (!(keep >= 1)) throw new StorageError('SNAPSHOT_OPTIONS', `keep must be at least 1 (got ${keep})`);
    const all = await this.list();
    const kept = all.filter(recorded).slice(0, keep);
    const oldest = kept[kept.length - 1];
    const gone = all.filter((m) => !kept.includes(m) && (recorded(m) || (oldest !== undefined && m.index < oldest.index)));
    if (gone.length === 0) return kept;
    for (const m of gone) await this.vfs.remove(path.join(this.dir, snapshotFileName(m)));
    await this.vfs.syncDir(this.dir);
    this.log.debug({ removed: gone.map(snapshotFileName) }, 'purged old snapshot files');
    return kept;
  }
}
