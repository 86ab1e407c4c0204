// The stable log as the Raft core reads it (the `Storage` interface), and
// MemoryStorage, the in-memory mirror of the durable WAL that the driver keeps
// up to date (the pattern of etcd and SwarmKit: disk for durability, memory
// for the core's reads).
import { ConfState, Entry, HardState, Snapshot, SnapshotMetadata } from '../../proto/gen/raft.js';
import { CompactedError, SnapshotOutOfDateError, UnavailableError, invariant } from './errors.js';

export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at most maxSize bytes but always at least one. Throws CompactedError / UnavailableError. */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /** Term of entry i; works for firstIndex()-1 (the snapshot's index). */
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

/** Bytes an entry counts for in size limits (payload plus a small constant for its header). */
export function entrySize(e: Entry): number {
  return e.data.length + 16;
}

export function payloadSize(ents: readonly Entry[]): number {
  let s = 0;
  for (const e of ents) s += e.data.length;
  return s;
}

/** The longest prefix of `ents` within maxSize bytes, never empty if ents is not. */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length <= 1) return ents;
  let size = entrySize(ents[0]!);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]!);
    if (size > maxSize) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

export function emptySnapshot(cs?: ConfState): Snapshot {
  return Snapshot.create({ metadata: SnapshotMetadata.create({ confState: cs ?? ConfState.create(), index: 0, term: 0 }) });
}

export function snapIndex(s: Snapshot | null | undefined): number {
  return s?.metadata?.index ?? 0;
}

export function snapTerm(s: Snapshot | null | undefined): number {
  return s?.metadata?.term ?? 0;
}

export class MemoryStorage implements Storage {
  hardState: HardState = HardState.create();
  private snap: Snapshot;
  // ents[0] is a dummy entry holding the snapshot's index and term.
  private ents: Entry[];

  /** `initial` is the configuration of a brand-new member (bootstrap); a restarted member loads a snapshot instead. */
  constructor(initial?: ConfState) {
    this.snap = emptySnapshot(initial);
    this.ents = [Entry.create({ index: 0, term: 0 })];
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata?.confState ?? ConfState.create() };
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  private get offset(): number {
    return this.ents[0]!.index;
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const off = this.offset;
    if (lo <= off) throw new CompactedError(lo, off + 1);
    invariant(hi <= this.lastIndex() + 1, () => `entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    if (this.ents.length === 1) throw new UnavailableError(lo, this.lastIndex());
    return limitSize(this.ents.slice(lo - off, hi - off), maxSize);
  }

  term(i: number): number {
    const off = this.offset;
    if (i < off) throw new CompactedError(i, off + 1);
    if (i - off >= this.ents.length) throw new UnavailableError(i, this.lastIndex());
    return this.ents[i - off]!.term;
  }

  lastIndex(): number {
    return this.offset + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the whole log with a snapshot (a follower receiving one, or a restart). */
  applySnapshot(s: Snapshot): void {
    const idx = snapIndex(s);
    if (idx <= snapIndex(this.snap) && !(idx === 0 && this.lastIndex() === 0)) throw new SnapshotOutOfDateError(idx, snapIndex(this.snap));
    this.snap = s;
    this.ents = [Entry.create({ index: idx, term: snapTerm(s) })];
  }

  /** Records a snapshot of the state machine taken at applied index i (the log is not compacted here). */
  createSnapshot(i: number, cs: ConfState, data: Uint8Array): Snapshot {
    if (i <= snapIndex(this.snap)) throw new SnapshotOutOfDateError(i, snapIndex(this.snap));
    invariant(i <= this.lastIndex(), () => `snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    this.snap = Snapshot.create({
      data,
      metadata: SnapshotMetadata.create({ index: i, term: this.ents[i - this.offset]!.term, confState: cs }),
    });
    return this.snap;
  }

  /** Discards entries before compactIndex; compactIndex becomes the dummy. */
  compact(compactIndex: number): void {
    const off = this.offset;
    if (compactIndex <= off) throw new CompactedError(compactIndex, off + 1);
    invariant(compactIndex <= this.lastIndex(), () => `compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    const i = compactIndex - off;
    const head = Entry.create({ index: this.ents[i]!.index, term: this.ents[i]!.term });
    this.ents = [head, ...this.ents.slice(i + 1)];
  }

  /** Appends entries, replacing any existing suffix from the first new index. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return; // all already compacted
    let es = entries;
    if (first > es[0]!.index) es = es.slice(first - es[0]!.index);
    const offset = es[0]!.index - this.offset;
    if (this.ents.length > offset) {
      this.ents = this.ents.slice(0, offset);
      for (const e of es) this.ents.push(e);
    } else if (this.ents.length === offset) {
      for (const e of es) this.ents.push(e);
    } else {
      invariant(false, () => `missing log entry [last: ${this.lastIndex()}, append at: ${es[0]!.index}]`);
    }
  }
}
