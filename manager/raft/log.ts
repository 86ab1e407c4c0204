// The Raft log as the core sees it: stable entries in Storage followed by
// unstable ones (appended but not yet durable), with the commit and apply
// pointers. Modelled on etcd-io/raft's log.go and log_unstable.go.
import type { Entry, Snapshot } from '../../proto/gen/raft.js';
import { CompactedError, RaftError, UnavailableError, invariant } from './errors.js';
import { mutant } from './mutants.js';
import { type Storage, limitSize, snapIndex, snapTerm } from './storage.js';

/** Entries and a snapshot not yet handed to durable storage. */
export class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  /** Index of entries[0]. */
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? snapIndex(this.snapshot) + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? snapIndex(this.snapshot) : undefined;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && snapIndex(this.snapshot) === i) return snapTerm(this.snapshot);
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]!.term;
  }

  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    // Only if the entry is still the one that was persisted (a newer leader may have replaced it).
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && snapIndex(this.snapshot) === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = snapIndex(s) + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const from = ents[0]!.index;
    if (from === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (from <= this.offset) {
      // Replaces the unstable entries entirely (and, in storage, the suffix from `from`).
      this.offset = from;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, from - this.offset).concat(ents);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    invariant(
      lo >= this.offset && hi <= this.offset + this.entries.length,
      () => `unstable.slice[${lo},${hi}) out of bound [${this.offset},${this.offset + this.entries.length}]`,
    );
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known to be committed by a quorum. */
  committed: number;
  /** Highest index handed to the application to apply (applied ≤ applying ≤ committed). */
  applying: number;
  /** Highest index the application has applied. */
  applied: number;

  constructor(
    readonly storage: Storage,
    readonly maxApplyingEntsSize: number,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applying = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of entry i. Throws CompactedError below the snapshot, UnavailableError past the end. */
  term(i: number): number {
    const dummy = this.firstIndex() - 1;
    if (i < dummy) throw new CompactedError(i, dummy + 1);
    if (i > this.lastIndex()) throw new UnavailableError(i, this.lastIndex());
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    return this.storage.term(i);
  }

  /** The term of entry i, or 0 when i is outside the log. */
  zeroTermOnOutOfBounds(i: number): number {
    try {
      return this.term(i);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return 0;
      throw e;
    }
  }

  matchTerm(i: number, t: number): boolean {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return false;
    try {
      return this.term(i) === t;
    } catch (e) {
      if (e instanceof RaftError && e.code !== 'INVARIANT') return false;
      throw e;
    }
  }

  /** Appends a leader's entries after (index, logTerm) if the logs match there; returns the new last index, or undefined on mismatch. */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm) && !(mutant('append-ignores-prev-term') && index >= this.firstIndex() && index <= this.lastIndex()))
      return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      invariant(ci > this.committed, () => `entry ${ci} conflict with committed entry [committed(${this.committed})]`);
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(mutant('apply-before-commit') ? lastNew : Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    invariant(after >= this.committed, () => `after(${after}) is out of range [committed(${this.committed})]`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** The first entry whose index exists with another term, or the first new entry; 0 when all are present. */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /** The largest index ≤ `index` whose term is ≤ `term`, with that term: where a leader should probe next (fast backtracking). */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      let t: number;
      try {
        t = this.term(index);
      } catch (e) {
        if (e instanceof CompactedError || e instanceof UnavailableError) return [index, 0];
        throw e;
      }
      if (t <= term) return [index, t];
    }
    return [0, 0];
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  hasNextCommittedEnts(): boolean {
    if (this.hasPendingSnapshot()) return false;
    const lo = Math.max(this.applying + 1, this.firstIndex());
    return this.committed + 1 > lo;
  }

  nextCommittedEnts(): Entry[] {
    if (this.hasPendingSnapshot()) return [];
    const lo = Math.max(this.applying + 1, this.firstIndex());
    const hi = this.committed + 1;
    if (lo >= hi) return [];
    return this.slice(lo, hi, this.maxApplyingEntsSize);
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(tocommit: number): void {
    if (this.committed < tocommit) {
      invariant(
        this.lastIndex() >= tocommit,
        () => `tocommit(${tocommit}) is out of range [lastIndex(${this.lastIndex()})]. Was the raft log corrupted, truncated, or lost?`,
      );
      this.committed = tocommit;
    }
  }

  acceptApplying(i: number): void {
    invariant(i <= this.committed, () => `applying(${i}) is out of range [committed(${this.committed})]`);
    this.applying = Math.max(this.applying, i);
  }

  appliedTo(i: number): void {
    invariant(
      i <= this.committed && i >= this.applied - 0,
      () => `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`,
    );
    this.applied = i;
    this.applying = Math.max(this.applying, i);
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  isUpToDate(lastIndex: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lastIndex >= this.lastIndex());
  }

  /** Commits maxIndex if it is an entry of the leader's current term (Raft §5.4.2: older terms commit only indirectly). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && (this.zeroTermOnOutOfBounds(maxIndex) === term || mutant('commit-by-counting'))) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  restore(s: Snapshot): void {
    this.committed = snapIndex(s);
    this.unstable.restore(s);
  }

  /** Entries from i on, at most maxSize bytes. */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  allEntries(): Entry[] {
    return this.entries(this.firstIndex(), Number.MAX_SAFE_INTEGER);
  }

  slice(lo: number, hi: number, maxSize: number): Entry[] {
    invariant(lo <= hi, () => `invalid slice ${lo} > ${hi}`);
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    invariant(hi <= this.lastIndex() + 1, () => `slice[${lo},${hi}) out of bound [${first},${this.lastIndex()}]`);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const uoff = this.unstable.offset;
    if (lo < uoff) {
      const stored = this.storage.entries(lo, Math.min(hi, uoff), maxSize);
      // Storage stopped early because of the size limit: return what it gave.
      if (stored.length < Math.min(hi, uoff) - lo) return stored;
      ents = stored;
    }
    if (hi > uoff) {
      const u = this.unstable.slice(Math.max(lo, uoff), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxSize);
  }

  describe(): string {
    return `committed=${this.committed} applied=${this.applied} applying=${this.applying} unstable.offset=${this.unstable.offset} unstable.entries=${this.unstable.entries.length}`;
  }
}
