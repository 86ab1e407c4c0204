// DiskStorage: the durable state of one Raft member, a WAL plus snapshot
// files under one directory (`<dir>/wal`, `<dir>/snap`). It implements the
// driver's Persistence: what persist() returns from is on disk.
//
// Ordering, and why:
// - A snapshot file is durable before the WAL marker that names it, so a marker never points at
//   nothing. A file without a marker (a crash in between) is ignored on restart.
// - The marker precedes the entries and hard state of the same Ready, all under one fsync; a
//   received snapshot always syncs (etcd issue #10219: a member must not restart behind a
//   snapshot it already acknowledged).
// - The WAL is released only up to the oldest snapshot file kept, so if the newest file is found
//   corrupt on restart, the previous one plus the WAL still rebuild the same state.
import path from 'node:path';
import pino from 'pino';
import { type Entry, HardState, type Snapshot } from '../../../proto/gen/raft.js';
import { SnapshotCorruptError, StorageError } from './errors.js';
import { DataKeys, type Kek } from './keys.js';
import { mutant } from '../mutants.js';
import { SnapshotStore } from './snapshots.js';
import type { Vfs } from './vfs.js';
import { type SnapshotMark, Wal, type WalStats } from './wal.js';

const SILENT = pino({ level: 'silent' });

export interface DiskStorageOptions {
  /** WAL segment size. Default 64 MiB. */
  segmentBytes?: number;
  /** WAL preallocation step. Default 256 KiB. */
  preallocBytes?: number;
  /** Snapshot files kept by compact(); at least 2 leaves a fallback if the newest is damaged. Default 2. */
  keepSnapshots?: number;
  logger?: pino.Logger;
  /**
   * Encrypt at rest (keys.ts, cipher.ts): create the data keys if the directory has none, seal every
   * record and snapshot written from now on, and seal what an older, plaintext directory holds.
   * Whatever this says, a directory that has data keys is read and written with them.
   */
  encryption?: boolean;
  /** The KEK of the unlock key, for a directory locked by autolock (keys.ts); without it a locked one throws LockedError. */
  unlock?: Kek;
}

/** The state a restarting member loads: the snapshot, then the entries after it, and the hard state. */
export interface LoadedState {
  hardState: HardState;
  snapshot: Snapshot | null;
  entries: Entry[];
}

/** What one Raft Ready asks to persist. */
export interface PersistBatch {
  hardState?: HardState | null;
  entries: Entry[];
  snapshot?: Snapshot | null;
  mustSync: boolean;
}

function markOf(s: Snapshot): SnapshotMark {
  return { index: s.metadata?.index ?? 0, term: s.metadata?.term ?? 0 };
}

export class DiskStorage {
  private constructor(
    readonly wal: Wal,
    readonly snapshots: SnapshotStore,
    private readonly keepSnapshots: number,
    private readonly log: pino.Logger,
    /** The snapshots the WAL holds a marker for and may restart from, oldest first: only these count for retention. */
    private recorded: SnapshotMark[],
    /** The data keys, when the directory is encrypted. */
    readonly dataKeys: DataKeys | null,
  ) {}

  // Compaction and key rotation run one at a time: both rewrite snapshot files and decide which keys are still in use.
  private exclusive: Promise<void> = Promise.resolve();

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.exclusive.then(fn);
    this.exclusive = p.then(noop, noop);
    return p;
  }

  /** Opens (creating if needed) the storage in `dir` and loads it. Throws WalCorruptError / WalInconsistentError when it cannot be trusted. */
  static async open(vfs: Vfs, dir: string, opts: DiskStorageOptions = {}): Promise<{ storage: DiskStorage; state: LoadedState }> {
    const keep = opts.keepSnapshots ?? 2;
    if (!(keep >= 1)) throw new StorageError('STORAGE_OPTIONS', `keepSnapshots must be at least 1 (got ${keep})`);
    const log = (opts.logger ?? SILENT).child({ component: 'raft-storage' });
    const fresh = !(await vfs.exists(dir));
    await vfs.mkdirp(dir);
    if (fresh) await vfs.syncDir(path.dirname(dir));
    let dataKeys: DataKeys | null = null;
    if (await DataKeys.exists(vfs, dir)) dataKeys = await DataKeys.load(vfs, dir, opts.unlock);
    else if (opts.encryption) {
      const legacy = (await vfs.list(path.join(dir, 'wal'))).length + (await vfs.list(path.join(dir, 'snap'))).length > 0;
      dataKeys = await DataKeys.create(vfs, dir);
      if (legacy) log.warn({ dir }, 'raft state is in plaintext: created data keys, sealing the WAL and snapshot files with them');
      else log.info({ dir }, 'created data keys for the raft state');
    }
    const keyring = dataKeys?.keyring;
    const snapshots = await SnapshotStore.open(vfs, path.join(dir, 'snap'), { logger: opts.logger, keyring });
    let snapshot: Snapshot | null = null;
    let recorded: SnapshotMark[] = [];
    const { wal, state } = await Wal.open(vfs, path.join(dir, 'wal'), {
      segmentBytes: opts.segmentBytes,
      preallocBytes: opts.preallocBytes,
      logger: opts.logger,
      keyring,
      // Only snapshots the WAL recorded: a file written just before a crash, without its marker, may
      // be ahead of the hard state (a snapshot received from the leader but never acknowledged).
      chooseSnapshot: async (markers) => {
        recorded = markers.slice();
        snapshot = await snapshots.loadLatest((m) => markers.some((k) => k.index === m.index && k.term === m.term));
        return snapshot ? markOf(snapshot) : null;
      },
    });
    let hardState = state.hardState;
    const snap = snapshot as Snapshot | null;
    if (snap) {
      // A crash can tear the batch after a received snapshot's marker, losing the hard state written
      // with it. The snapshot holds only committed entries, and the leader that sent it had a term at
      // least its own, so raising commit and term is what that hard state said anyway. The vote is
      // cleared with a raised term: no vote in that term was ever durable, so none was ever sent.
      const m = markOf(snap);
      if (hardState.term < m.term) {
        log.warn(
          { term: hardState.term, snapshotTerm: m.term },
          'hard state is older than the snapshot (torn after the marker); raising its term',
        );
        hardState = HardState.create({ term: m.term, vote: '', commit: hardState.commit });
      }
      if (hardState.commit < m.index) {
        log.warn(
          { commit: hardState.commit, snapshotIndex: m.index },
          'hard state commit is behind the snapshot (torn after the marker); raising it',
        );
        hardState = HardState.create({ term: hardState.term, vote: hardState.vote, commit: m.index });
      }
    }
    log.info(
      { snapshot: snap ? markOf(snap) : null, entries: state.entries.length, commit: hardState.commit, term: hardState.term },
      'loaded raft storage',
    );
    const storage = new DiskStorage(wal, snapshots, keep, log, recorded, dataKeys);
    if (dataKeys) {
      try {
        // Snapshot files in plaintext (an older directory) or under a key being retired (a rotation a crash interrupted).
        await storage.serial(() => storage.sealAndRetire(true));
      } catch (e) {
        await wal.close().catch(noop);
        throw e;
      }
    }
    return { storage, state: { hardState, snapshot: snap, entries: state.entries } };
  }

  /** Persists one Ready: the snapshot (file, then WAL marker), then entries and hard state, with one WAL fsync. */
  async persist(batch: PersistBatch): Promise<void> {
    const snap = batch.snapshot;
    if (snap && markOf(snap).index > 0) {
      await this.snapshots.save(snap);
      // The leader's snapshot replaced this member's whole log: replay must not resurrect entries from before it.
      await this.wal.saveSnapshotMarker(markOf(snap), { replacesLog: !mutant('snapshot-keeps-log'), sync: false });
      // Snapshots from before the replaced log are no restart point any more (replay ignores them).
      this.recorded = [markOf(snap)];
      await this.wal.save(batch.hardState ?? null, batch.entries, true);
      return;
    }
    await this.wal.save(batch.hardState ?? null, batch.entries, batch.mustSync);
  }

  /**
   * Stores a snapshot taken locally: file, WAL marker, then the WAL released up to `releaseTo`
   * (default: the snapshot's index; entries ≥ releaseTo are kept, for slow followers) but never
   * past the oldest snapshot file kept, and snapshot files beyond `keepSnapshots` deleted.
   */
  compact(snapshot: Snapshot, releaseTo?: number): Promise<void> {
    return this.serial(() => this.compactNow(snapshot, releaseTo));
  }

  private async compactNow(snapshot: Snapshot, releaseTo?: number): Promise<void> {
    const m = markOf(snapshot);
    const latest = this.wal.snapshotMark;
    if (latest && m.index <= latest.index) {
      this.log.debug({ index: m.index, latest: latest.index }, 'compaction skipped: a newer snapshot is already stored');
      return;
    }
    if (mutant('wal-released-early')) await this.wal.releaseTo(releaseTo ?? m.index);
    await this.snapshots.save(snapshot);
    await this.wal.saveSnapshotMarker(m);
    this.recorded.push(m);
    const kept = await this.snapshots.purge(this.keepSnapshots, (s) => this.recorded.some((r) => r.index === s.index && r.term === s.term));
    const oldest = kept[kept.length - 1]?.index ?? m.index;
    await this.wal.releaseTo(Math.min(releaseTo ?? m.index, oldest + 1));
    if (this.dataKeys && this.dataKeys.keyring.ids().length > 1) await this.sealAndRetire(false);
  }

  /**
   * Rotates the data key without stopping: a new key is made current (durably, before any record
   * uses it), the WAL starts a new segment, and every snapshot file is resealed with it. The old key
   * stays in the key file, for the older WAL segments only, until compaction has released them all
   * (the next snapshots); then it is forgotten. Returns the new key's id.
   */
  rotateDataKey(): Promise<number> {
    const keys = this.dataKeys;
    if (!keys)
      return Promise.reject(new StorageError('RAFT_NOT_ENCRYPTED', 'this raft state is not encrypted: there is no data key to rotate'));
    return this.serial(() => this.rotateNow(keys));
  }

  private async rotateNow(keys: DataKeys): Promise<number> {
    const id = await keys.rotate();
    await this.wal.cutSegment();
    await this.sealAndRetire(true);
    this.log.info({ key: id }, 'rotated the raft data key; the previous one is kept until the WAL segments sealed with it are released');
    return id;
  }

  /**
   * Autolock: wraps the data keys under `unlock` (the unlock key's KEK), forgetting the stored KEK;
   * with null, under a new stored KEK (autolock off). Returns the node key secret that then guards
   * the TLS key (null with autolock off). Only the key file is rewritten, except when a stored KEK
   * gives way to an unlock key: then the data key also rotates (rotateDataKey), so that a copy of the
   * directory taken before cannot read what is written after.
   */
  setUnlockKek(unlock: Kek | null): Promise<Uint8Array | null> {
    const keys = this.dataKeys;
    if (!keys)
      return Promise.reject(new StorageError('RAFT_NOT_ENCRYPTED', 'this raft state is not encrypted: there is no data key to lock'));
    return this.serial(async () => {
      if (unlock) {
        const wasStored = keys.source === 'stored';
        const was = wasStored ? '' : keys.kekId;
        await keys.lock(unlock);
        if (was !== unlock.id) this.log.info({ kek: unlock.id }, 'raft data keys wrapped by the unlock key (autolock)');
        // As Swarm: a copy of the directory taken while its KEK was stored must not read what comes next.
        if (wasStored) await this.rotateNow(keys);
        return keys.nodeKeySecret;
      }
      if (keys.source === 'unlock-key') {
        await keys.unlockForGood();
        this.log.info({ kek: keys.kekId }, 'autolock off: raft data keys wrapped by a stored key again');
      }
      return null;
    });
  }

  /** The node key secret while the keys are locked by an unlock key, else null. */
  get nodeKeySecret(): Uint8Array | null {
    return this.dataKeys?.source === 'unlock-key' ? this.dataKeys.nodeKeySecret : null;
  }

  /**
   * Reseals snapshot files that are not under the current key (with `snapshots`), then forgets the
   * data keys no WAL segment or snapshot file uses any more.
   */
  private async sealAndRetire(snapshots: boolean): Promise<void> {
    const keys = this.dataKeys!;
    const cur = keys.keyring.currentId;
    const used = this.wal.keysInUse();
    for (const m of await this.snapshots.list()) {
      let id = await this.snapshots.keyIdOf(m);
      if (id !== cur && snapshots) {
        try {
          await this.snapshots.reseal(m);
          id = cur;
        } catch (e) {
          // A damaged file is never a restart point (loadLatest sets it aside); it must not stop the others.
          if (!(e instanceof SnapshotCorruptError)) throw e;
          this.log.warn({ file: e.file, err: e.message }, 'cannot reseal a damaged snapshot file; leaving it as it is');
        }
      }
      used.add(id);
    }
    const retire = keys.keyring.ids().filter((id) => id !== cur && !used.has(id));
    if (retire.length > 0) {
      await keys.retire(retire);
      this.log.info({ retired: retire, current: cur }, 'forgot raft data keys that no file uses any more');
    }
  }

  get stats(): WalStats {
    return this.wal.stats;
  }

  close(): Promise<void> {
    return this.exclusive.then(() => this.wal.close());
  }
}

function noop(): void {}
