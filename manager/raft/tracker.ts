// What the leader knows of each member: how far its log matches (Progress),
// the MsgApps in flight to it (Inflights, the flow-control window), and the
// configuration (voters, learners) with the quorum questions asked of it.
import { ConfState } from '../../proto/gen/raft.js';
import { VoteResult, jointCommitted, jointIds, jointVote, majorityVote } from './quorum.js';

/** A bounded window of unacknowledged MsgApps: (last index, bytes) per message. */
export class Inflights {
  private idx: number[] = [];
  private sizes: number[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {}

  get count(): number {
    return this.idx.length - this.head;
  }

  add(index: number, bytes: number): void {
    this.idx.push(index);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Frees every message whose last index is ≤ `to` (they were acknowledged). */
  freeLE(to: number): void {
    while (this.head < this.idx.length && this.idx[this.head]! <= to) {
      this.bytes -= this.sizes[this.head]!;
      this.head++;
    }
    // Compact now and then so the arrays do not grow without bound.
    if (this.head > 64 && this.head * 2 > this.idx.length) {
      this.idx = this.idx.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }

  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  reset(): void {
    this.idx = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
  }
}

export enum ProgressState {
  /** One MsgApp per heartbeat until the match point is found. */
  Probe = 0,
  /** Optimistic pipelining, bounded by the inflight window. */
  Replicate = 1,
  /** A snapshot is on its way; appends wait. */
  Snapshot = 2,
}

export class Progress {
  match = 0;
  next: number;
  state = ProgressState.Probe;
  /** Index of the snapshot being sent, while in StateSnapshot. */
  pendingSnapshot = 0;
  /** Heard from within the last election timeout (for CheckQuorum). */
  recentActive = false;
  /** In Probe: a probe is out. In Replicate: the inflight window is full. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;

  constructor(
    next: number,
    public isLearner: boolean,
    maxInflight: number,
    maxInflightBytes: number,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      // Whatever happened to the snapshot, the follower has at least what it had, and if the snapshot
      // landed the next AppResp moves us forward; probing from past the snapshot saves a round trip.
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
  }

  /** Records a MsgApp sent with `n` entries of `bytes` payload. */
  sentEntries(n: number, bytes: number): void {
    if (this.state === ProgressState.Replicate) {
      if (n > 0) {
        this.next += n;
        this.inflights.add(this.next - 1, bytes);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === ProgressState.Probe && n > 0) {
      this.msgAppFlowPaused = true;
    }
  }

  /** An acknowledgement of everything up to `n`; false if it was stale. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** A rejection of the MsgApp at `rejected`; `matchHint` is where the follower suggests trying. False if stale. */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // In Replicate, a rejection of an index at or below the match is a stale reply.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In Probe, only a rejection of the probe just sent (next-1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
      case ProgressState.Replicate:
        return this.msgAppFlowPaused;
      case ProgressState.Snapshot:
        return true;
    }
  }

  describe(): string {
    const st = ['StateProbe', 'StateReplicate', 'StateSnapshot'][this.state]!;
    let s = `${st} match=${this.match} next=${this.next}`;
    if (this.isLearner) s += ' learner';
    if (this.isPaused()) s += ' paused';
    if (this.pendingSnapshot > 0) s += ` pendingSnap=${this.pendingSnapshot}`;
    if (!this.recentActive) s += ' inactive';
    if (this.inflights.count > 0) s += ` inflight=${this.inflights.count}${this.inflights.full() ? '[full]' : ''}`;
    return s;
  }
}

export interface TrackerConfig {
  voters: [Set<string>, Set<string>];
  learners: Set<string>;
  /** Voters of the outgoing config to become learners when the joint config is left. */
  learnersNext: Set<string>;
  autoLeave: boolean;
}

export function cloneConfig(c: TrackerConfig): TrackerConfig {
  return {
    voters: [new Set(c.voters[0]), new Set(c.voters[1])],
    learners: new Set(c.learners),
    learnersNext: new Set(c.learnersNext),
    autoLeave: c.autoLeave,
  };
}

export function emptyConfig(): TrackerConfig {
  return { voters: [new Set(), new Set()], learners: new Set(), learnersNext: new Set(), autoLeave: false };
}

export function describeConfig(c: TrackerConfig): string {
  const f = (s: Set<string>): string => `(${[...s].sort().join(' ')})`;
  let s = `voters=${f(c.voters[0])}`;
  if (c.voters[1].size > 0) s += `&&${f(c.voters[1])}`;
  if (c.learners.size > 0) s += ` learners=${f(c.learners)}`;
  if (c.learnersNext.size > 0) s += ` learners_next=${f(c.learnersNext)}`;
  if (c.autoLeave) s += ' autoleave';
  return s;
}

export type ProgressMap = Map<string, Progress>;

export class ProgressTracker {
  config: TrackerConfig = emptyConfig();
  progress: ProgressMap = new Map();
  votes = new Map<string, boolean>();

  constructor(
    readonly maxInflight: number,
    readonly maxInflightBytes: number,
  ) {}

  /** Ids of every member with a progress entry, sorted (so output is deterministic). */
  ids(): string[] {
    return [...this.progress.keys()].sort();
  }

  voterIds(): string[] {
    return jointIds(this.config.voters);
  }

  isSingleton(): boolean {
    return this.config.voters[0].size === 1 && this.config.voters[1].size === 0;
  }

  isJoint(): boolean {
    return this.config.voters[1].size > 0;
  }

  committed(): number {
    return jointCommitted(this.config.voters, (id) => this.progress.get(id)?.match);
  }

  /** Whether a quorum of voters was heard from recently (the leader's CheckQuorum). */
  quorumActive(): boolean {
    const active = new Map<string, boolean>();
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      active.set(id, pr.recentActive);
    }
    return jointVote(this.config.voters, active) === VoteResult.Won;
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  recordVote(id: string, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: jointVote(this.config.voters, this.votes) };
  }

  voteResultOf(acks: ReadonlyMap<string, boolean>): VoteResult {
    return jointVote(this.config.voters, acks);
  }

  confState(): ConfState {
    const s = (x: Set<string>): string[] => [...x].sort();
    return ConfState.create({
      voters: s(this.config.voters[0]),
      votersOutgoing: s(this.config.voters[1]),
      learners: s(this.config.learners),
      learnersNext: s(this.config.learnersNext),
      autoLeave: this.config.autoLeave,
    });
  }
}

export { majorityVote };
