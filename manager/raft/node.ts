// The driver: runs the Ready loop of one Raft member. Inputs (messages,
// ticks, proposals, reads) queue while a Ready is being handled and are
// stepped together before the next one, so every proposal that arrived during
// an fsync shares the next fsync (group commit). Per Ready: send what may go
// at once, persist with one fsync, send acks and votes, apply, advance.
import { ConfChange, ConfState, type Entry, EntryType, type HardState, type Message, type Snapshot } from '../../proto/gen/raft.js';
import { ConfChangeError, confChangeError, leavesJoint } from './confchange.js';
import { ProposalDroppedError, RaftError } from './errors.js';
import { mutant } from './mutants.js';
import { NONE, type RaftConfig, type RaftLogger, StateType } from './raft.js';
import { RawNode, type Ready, type Status } from './rawnode.js';
import { MemoryStorage, snapIndex } from './storage.js';

/** Durable storage of a member: implemented by the WAL + snapshot files (storage/), or a simulated disk. */
export interface Persistence {
  /** Writes a snapshot (if any), then entries and hard state; one fsync when mustSync. */
  persist(batch: { hardState?: HardState | null; entries: Entry[]; snapshot?: Snapshot | null; mustSync: boolean }): Promise<void>;
  /** Stores a snapshot taken locally and releases the log before `releaseTo`. */
  compact(snapshot: Snapshot, releaseTo: number): Promise<void>;
}

export interface Transport {
  send(msgs: Message[]): void;
}

/** The replicated state machine on top of the log. Entries arrive in log order, exactly once per incarnation. */
export interface StateMachine {
  apply(data: Uint8Array, index: number): void | Promise<void>;
  /** Replace the whole state with a snapshot's data. */
  restore(data: Uint8Array, index: number): void | Promise<void>;
  /** The whole state, for a snapshot at the last applied index. */
  snapshot(): Uint8Array | Promise<Uint8Array>;
}

export interface RaftNodeOptions {
  id: string;
  /** Loaded durable state (empty for a brand-new member). */
  loaded: { hardState: HardState; snapshot: Snapshot | null; entries: Entry[] };
  persistence: Persistence;
  transport: Transport;
  stateMachine: StateMachine;
  /** Voters of a brand-new cluster; only on the first start of its founding members. */
  bootstrap?: string[];
  electionTick?: number;
  heartbeatTick?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  readOnlyOption?: RaftConfig['readOnlyOption'];
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
  maxUncommittedEntriesSize?: number;
  /**
   * A ReadIndex request still unanswered after this many ticks is asked again (its message or
   * the answer may have been lost). Default 5: 500 ms at the manager's 100 ms tick, as etcd does.
   */
  readRetryTicks?: number;
  /** Take a snapshot after this many applied entries (0 = never). */
  snapshotEntries?: number;
  /** Entries kept behind a snapshot for slow followers. */
  keepEntries?: number;
  /**
   * A proposal not settled after this many ticks settles as ProposalOutcomeUnknownError (its
   * entry, or the message forwarding it, may have been lost). Default 10 election timeouts.
   */
  proposalTimeoutTicks?: number;
  rand: (n: number) => number;
  /** A 64-bit random prefix for proposal ids (unique across members and restarts). */
  nonce: bigint;
  /** How processing is scheduled after an input: setImmediate in production, a microtask in the simulation. */
  schedule?: (fn: () => void) => void;
  logger?: RaftLogger;
  onLeaderChange?: (lead: string, term: number) => void;
  onConfChange?: (cs: ConfState, cc: ConfChange, index: number) => void;
  /** Called when the loop dies on an error it cannot survive (a failed fsync): the member must stop. */
  onFatal?: (err: Error) => void;
}

export class StoppedError extends RaftError {
  constructor() {
    super('STOPPED', 'raft node is stopped');
  }
}

/**
 * A proposal this member appended as leader whose index now holds another
 * entry (a later leader's): it was not applied and never will be, so the
 * caller may retry it as it is. A kind of dropped proposal: it did not happen.
 */
export class ProposalLostError extends ProposalDroppedError {
  constructor(
    readonly index: number,
    readonly term: number,
  ) {
    super(`its entry at index ${index} (term ${term}) was replaced by a later leader's entry; it was not applied: retry it`);
  }
}

/**
 * A proposal whose fate this member cannot know: it may still commit (under a
 * new leader), or it may be lost. The caller reads the state again before it
 * retries; a retry must be safe to apply twice or check what it finds.
 */
export class ProposalOutcomeUnknownError extends RaftError {
  constructor(
    readonly reason: string,
    readonly index?: number,
  ) {
    super(
      'OUTCOME_UNKNOWN',
      `the outcome of the raft proposal${index ? ` at index ${index}` : ''} is unknown: ${reason}; read the state again and retry if it did not apply`,
    );
  }
}

/** A read barrier whose caller gave up (its signal fired) before a leader confirmed a read point. */
export class ReadTimeoutError extends RaftError {
  constructor(reason: string) {
    super(
      'READ_TIMEOUT',
      `the read could not be confirmed by a leader before its deadline (${reason}): no leader is known, or it cannot reach a quorum`,
    );
  }
}

interface Waiter {
  resolve: (index: number) => void;
  reject: (e: Error) => void;
}

/** A proposal waiting for its entry to apply. */
interface Proposal extends Waiter {
  /** Tick count at which it settles as outcome-unknown. */
  deadline: number;
  /** Where its entry sits in the log, once known: appended here as leader, or seen arriving from the leader. */
  index?: number;
  term?: number;
  /** Appended by this member as leader, so it is in the log at `index` or nowhere. */
  own?: boolean;
}

interface ReadBatch {
  /** Request id: the member's 64-bit nonce and a counter, so that no answer meant for an earlier incarnation matches. */
  ctx: Uint8Array;
  key: string;
  waiters: Waiter[];
  /** The read point, once the leader answered. */
  index?: number;
  /** Tick count when the request was last sent; -1: send again at the next chance. */
  sentAt: number;
}

type Input =
  | { kind: 'msg'; m: Message }
  | { kind: 'tick' }
  | { kind: 'campaign' }
  | { kind: 'conf'; cc: ConfChange; w: Proposal; id: bigint }
  | { kind: 'transfer'; to: string }
  | { kind: 'unreachable'; id: string }
  | { kind: 'snapStatus'; id: string; ok: boolean };

/** 8-byte nonce + 4-byte sequence, prefixed to every proposal's data (and to a proposed conf change's context). */
export const PROPOSAL_HEADER = 12;
const HEADER = PROPOSAL_HEADER;

export interface NodeStats {
  readies: number;
  entriesPersisted: number;
  fsyncs: number;
  applied: number;
  proposalsBatched: number;
  proposeBatches: number;
}

export class RaftNode {
  readonly id: string;
  readonly rn: RawNode;
  readonly storage: MemoryStorage;
  private readonly o: RaftNodeOptions;
  private readonly schedule: (fn: () => void) => void;
  private inputs: Input[] = [];
  private proposals: { data: Uint8Array; w: Proposal; id: bigint }[] = [];
  /** Proposal id → waiter, in proposal order (so deadlines are in order too). */
  private waiters = new Map<bigint, Proposal>();
  /** Log index → ids of the proposals whose entry was placed there. */
  private byIndex = new Map<number, bigint[]>();
  private leading = false;
  private seq = 0;
  private reads: ReadBatch[] = [];
  private pendingReads: Waiter[] = [];
  private readSeq = 0n;
  private ticks = 0;
  private running = false;
  private scheduled = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  private confState: ConfState;
  private snapshotIndex: number;
  private lead = NONE;
  private term = 0;
  readonly stats: NodeStats = { readies: 0, entriesPersisted: 0, fsyncs: 0, applied: 0, proposalsBatched: 0, proposeBatches: 0 };

  private constructor(o: RaftNodeOptions, storage: MemoryStorage, applied: number) {
    this.o = o;
    this.id = o.id;
    this.storage = storage;
    this.schedule = o.schedule ?? ((fn) => setImmediate(fn));
    this.confState = storage.snapshot().metadata?.confState ?? ConfState.create();
    this.snapshotIndex = snapIndex(storage.snapshot());
    this.rn = new RawNode({
      id: o.id,
      storage,
      applied,
      electionTick: o.electionTick ?? 10,
      heartbeatTick: o.heartbeatTick ?? 1,
      preVote: o.preVote ?? true,
      checkQuorum: o.checkQuorum ?? true,
      readOnlyOption: o.readOnlyOption,
      maxSizePerMsg: o.maxSizePerMsg,
      maxInflightMsgs: o.maxInflightMsgs,
      maxUncommittedEntriesSize: o.maxUncommittedEntriesSize,
      rand: o.rand,
      logger: o.logger,
    });
    if (o.bootstrap && storage.lastIndex() === 0) this.rn.bootstrap(o.bootstrap);
  }

  /** Builds a member from its durable state: the state machine is restored from the snapshot before any entry is applied. */
  static async open(o: RaftNodeOptions): Promise<RaftNode> {
    const storage = new MemoryStorage();
    const { snapshot, hardState, entries } = o.loaded;
    let applied = 0;
    if (snapshot && snapIndex(snapshot) > 0) {
      storage.applySnapshot(snapshot);
      await o.stateMachine.restore(snapshot.data, snapIndex(snapshot));
      applied = snapIndex(snapshot);
    }
    storage.append(entries);
    storage.setHardState(hardState);
    return new RaftNode(o, storage, applied);
  }

  // ------------------------------------------------------------ inputs

  step(m: Message): void {
    this.push({ kind: 'msg', m });
  }

  tick(): void {
    this.push({ kind: 'tick' });
  }

  campaign(): void {
    this.push({ kind: 'campaign' });
  }

  transferLeadership(to: string): void {
    this.push({ kind: 'transfer', to });
  }

  reportUnreachable(id: string): void {
    this.push({ kind: 'unreachable', id });
  }

  reportSnapshot(id: string, ok: boolean): void {
    this.push({ kind: 'snapStatus', id, ok });
  }

  /** Proposes data; resolves with its log index once this member has applied it. A proposal may also be lost (leader change): callers time out. */
  propose(data: Uint8Array): Promise<number> {
    if (this.stopped) return Promise.reject(new StoppedError());
    return new Promise((resolve, reject) => {
      const id = this.nextId();
      const w: Proposal = { resolve, reject, deadline: this.ticks + this.proposalTimeoutTicks };
      this.waiters.set(id, w);
      this.proposals.push({ data: this.wrap(id, data), w, id });
      this.kick();
    });
  }

  /** Proposes a membership change; resolves with its index once applied here. */
  proposeConfChange(cc: ConfChange): Promise<number> {
    if (this.stopped) return Promise.reject(new StoppedError());
    return new Promise((resolve, reject) => {
      const id = this.nextId();
      const w: Proposal = { resolve, reject, deadline: this.ticks + this.proposalTimeoutTicks };
      this.waiters.set(id, w);
      // The proposal id rides in the change's context, which Raft carries untouched.
      const tagged = ConfChange.create({ ...cc, context: this.wrap(id, cc.context) });
      this.push({ kind: 'conf', cc: tagged, w, id });
    });
  }

  /**
   * Resolves once this member's state machine reflects every write committed before the call
   * (linearizable read barrier, by ReadIndex). An unanswered request is asked again every
   * `readRetryTicks` until it is answered or `signal` fires (then ReadTimeoutError).
   */
  readBarrier(opts: { signal?: AbortSignal } = {}): Promise<number> {
    if (this.stopped) return Promise.reject(new StoppedError());
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(new ReadTimeoutError(abortReason(signal)));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.dropRead(w);
        reject(new ReadTimeoutError(abortReason(signal!)));
      };
      const w: Waiter = {
        resolve: (i) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(i);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pendingReads.push(w);
      this.kick();
    });
  }

  /** Forgets a read whose caller gave up; a request left without callers is not asked again. */
  private dropRead(w: Waiter): void {
    this.pendingReads = this.pendingReads.filter((x) => x !== w);
    for (const b of this.reads) b.waiters = b.waiters.filter((x) => x !== w);
    this.reads = this.reads.filter((b) => b.waiters.length > 0);
  }

  /** Request ids of the reads not yet answered, oldest first (for tests and diagnostics). */
  get outstandingReads(): Uint8Array[] {
    return this.reads.filter((b) => b.index === undefined).map((b) => b.ctx);
  }

  status(): Status {
    return this.rn.status();
  }

  get leader(): string {
    return this.lead;
  }

  get isLeader(): boolean {
    return this.rn.raft.state === StateType.Leader;
  }

  get appliedIndex(): number {
    return this.rn.raft.raftLog.applied;
  }

  /** Resolves when no input is queued and no Ready is being handled. */
  idle(): Promise<void> {
    if (!this.running && !this.scheduled && (this.stopped || !this.hasWork())) return Promise.resolve();
    // Work nothing has kicked yet (a bootstrapped member's first Ready) is started, not waited on forever.
    this.kick();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Stops: pending proposals and reads fail with StoppedError. In-flight persistence finishes first. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.idle();
    await this.compaction;
    this.failAll(new StoppedError());
  }

  // ------------------------------------------------------------ loop

  private push(i: Input): void {
    if (this.stopped) return;
    this.inputs.push(i);
    this.kick();
  }

  private kick(): void {
    if (this.running || this.scheduled || this.stopped) return;
    this.scheduled = true;
    this.schedule(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private hasWork(): boolean {
    return (
      this.inputs.length > 0 || this.proposals.length > 0 || this.pendingReads.length > 0 || this.readsToResend() || this.rn.hasReady()
    );
  }

  private readsToResend(): boolean {
    return this.rn.raft.lead !== NONE && this.reads.some((b) => b.index === undefined && b.sentAt < 0);
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (!this.stopped || this.rn.inProgress) {
        this.drainInputs();
        if (!this.rn.hasReady()) break;
        await this.handleReady(this.rn.ready());
        await this.maybeSnapshot();
      }
    } catch (e) {
      this.stopped = true;
      this.failAll(e as Error);
      this.o.logger?.warn(`${this.id} raft loop stopped: ${(e as Error).stack ?? String(e)}`);
      this.o.onFatal?.(e as Error);
    } finally {
      this.running = false;
    }
    if (!this.stopped && this.hasWork()) {
      this.kick();
      return;
    }
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }

  private drainInputs(): void {
    const inputs = this.inputs;
    this.inputs = [];
    for (const i of inputs) {
      try {
        switch (i.kind) {
          case 'msg':
            this.rn.step(i.m);
            break;
          case 'tick':
            this.ticks++;
            this.rn.tick();
            break;
          case 'campaign':
            this.rn.campaign();
            break;
          case 'transfer':
            this.rn.transferLeadership(i.to);
            break;
          case 'unreachable':
            this.rn.reportUnreachable(i.id);
            break;
          case 'snapStatus':
            this.rn.reportSnapshot(i.id, i.ok);
            break;
          case 'conf': {
            const refused = this.refuseConfChange(i.cc);
            if (refused) throw refused;
            const before = this.rn.raft.raftLog.lastIndex();
            this.rn.proposeConfChange(i.cc);
            if (this.rn.raft.raftLog.lastIndex() === before + 1) this.track(i.id, before + 1, this.rn.raft.term, true);
            break;
          }
        }
      } catch (e) {
        if ((e instanceof ProposalDroppedError || e instanceof ConfChangeError) && i.kind === 'conf') {
          this.waiters.delete(i.id);
          i.w.reject(e);
        } else if (!(e instanceof RaftError) || e.code === 'INVARIANT') {
          throw e;
        }
      }
    }
    if (this.proposals.length > 0) {
      // Leader-side batching: every proposal queued since the last Ready becomes one MsgProp.
      const batch = this.proposals;
      this.proposals = [];
      try {
        const leader = this.rn.raft.state === StateType.Leader;
        const before = this.rn.raft.raftLog.lastIndex();
        this.rn.proposeBatch(batch.map((p) => p.data));
        // Appended here (not forwarded): each entry's place is known, so its loss can be seen.
        if (leader && this.rn.raft.raftLog.lastIndex() === before + batch.length) {
          const term = this.rn.raft.term;
          for (const [k, p] of batch.entries()) this.track(p.id, before + 1 + k, term, true);
        }
        this.stats.proposeBatches++;
        this.stats.proposalsBatched += batch.length;
      } catch (e) {
        if (!(e instanceof ProposalDroppedError)) throw e;
        for (const p of batch) {
          this.waiters.delete(p.id);
          p.w.reject(e);
        }
      }
    }
    this.expireProposals();
    this.issueReads();
  }

  /**
   * One new ReadIndex serves every read that arrived since the last drain; earlier ones may still
   * be outstanding. A request unanswered for `readRetryTicks` is sent again with the same id:
   * the MsgReadIndex or its answer may have been dropped, and a leader that already holds it only
   * repeats its heartbeat round.
   */
  private issueReads(): void {
    if (this.pendingReads.length > 0) {
      const ctx = this.readCtx();
      this.reads.push({ ctx, key: ctxHex(ctx), waiters: this.pendingReads, sentAt: -1 });
      this.pendingReads = [];
    }
    // Without a leader the request would only be dropped: it waits, and goes out when one is known.
    if (this.rn.raft.lead === NONE) return;
    const every = Math.max(1, this.o.readRetryTicks ?? 5);
    for (const b of this.reads) {
      if (b.index !== undefined) continue;
      if (b.sentAt >= 0 && this.ticks - b.sentAt < every) continue;
      if (b.sentAt >= 0) this.o.logger?.debug(`${this.id} read ${b.key} unanswered after ${this.ticks - b.sentAt} ticks; asking again`);
      b.sentAt = this.ticks;
      this.rn.readIndex(b.ctx);
    }
  }

  private readCtx(): Uint8Array {
    this.readSeq++;
    const ctx = new Uint8Array(16);
    const dv = new DataView(ctx.buffer);
    dv.setBigUint64(0, this.o.nonce & 0xffffffffffffffffn);
    dv.setBigUint64(8, this.readSeq);
    return ctx;
  }

  private async handleReady(rd: Ready): Promise<void> {
    this.stats.readies++;
    if (rd.softState) {
      const leading = rd.softState.raftState === StateType.Leader;
      if (this.leading && !leading) this.settleOnStepDown();
      this.leading = leading;
    }
    if (rd.softState) {
      const lead = rd.softState.lead;
      const term = rd.hardState?.term ?? this.rn.raft.term;
      if (lead !== this.lead || term !== this.term) {
        if (lead !== this.lead) {
          // A ReadIndex sent to the old leader may never be answered: unanswered reads are asked
          // again of the new one at once, rather than after the retry interval.
          for (const b of this.reads) if (b.index === undefined) b.sentAt = -1;
        }
        this.lead = lead;
        this.term = term;
        this.o.onLeaderChange?.(lead, term);
      }
    }
    // 1. Messages that need nothing durable leave at once (the leader's appends go out while it writes).
    if (rd.messages.length > 0) this.o.transport.send(rd.messages);
    // 2. Persist: snapshot, entries, hard state; one fsync.
    if (rd.snapshot) this.storage.applySnapshot(rd.snapshot);
    let unsynced: Promise<void> | null = null;
    if (rd.entries.length > 0 || rd.hardState || rd.snapshot) {
      const write = this.o.persistence.persist({
        hardState: rd.hardState,
        entries: rd.entries,
        snapshot: rd.snapshot,
        mustSync: rd.mustSync,
      });
      if (rd.mustSync || rd.entries.length > 0 || rd.snapshot) {
        await write;
      } else {
        // Only the commit index moved: that write promises nothing (a restarted member learns its
        // commit from the leader again), so applying does not wait for it; it completes before advance.
        unsynced = write;
      }
      if (rd.mustSync) this.stats.fsyncs++;
      this.stats.entriesPersisted += rd.entries.length;
    }
    this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    if (this.waiters.size > 0) this.trackArrived(rd.entries);
    // 3. Acks and votes: what they promise is durable now.
    if (rd.messagesAfterPersist.length > 0) this.o.transport.send(rd.messagesAfterPersist);
    // 4. Apply.
    try {
      if (rd.snapshot) {
        await this.o.stateMachine.restore(rd.snapshot.data, snapIndex(rd.snapshot));
        this.confState = rd.snapshot.metadata?.confState ?? ConfState.create();
        this.snapshotIndex = snapIndex(rd.snapshot);
        // The state machine now reflects every entry up to the snapshot: a read at or below it is
        // served now, not when a later entry happens to be applied.
        if (snapIndex(rd.snapshot) > this.rn.raft.raftLog.applied) this.rn.raft.raftLog.appliedTo(snapIndex(rd.snapshot));
      }
      for (const e of rd.committedEntries) await this.applyEntry(e);
    } finally {
      if (unsynced) await unsynced;
    }
    if (rd.snapshot) this.settleCovered(snapIndex(rd.snapshot));
    for (const rs of rd.readStates) {
      const key = ctxHex(rs.requestCtx);
      const b = this.reads.find((x) => x.key === key);
      if (b && b.index === undefined) b.index = rs.index;
    }
    this.rn.advance();
    this.releaseReads();
  }

  private async applyEntry(e: Entry): Promise<void> {
    this.stats.applied++;
    if (e.type === EntryType.ENTRY_CONF_CHANGE) {
      const cc = ConfChange.decode(e.data);
      const id = this.unwrapId(cc.context);
      try {
        if (!(mutant('conf-change-lost') && id === undefined)) this.confState = this.rn.applyConfChange(cc);
      } catch (err) {
        // Invalid against the configuration it meets (a change forwarded past the leader's check):
        // every replica meets the same configuration here and skips it alike; the proposer hears why.
        if (!(err instanceof ConfChangeError)) throw err;
        this.o.logger?.warn(`${this.id} skipped the membership change at index ${e.index}: ${err.message}`);
        if (id !== undefined) this.settle(id, err);
        this.settleIndex(e.index);
        return;
      }
      // Proposed changes carry our 12-byte proposal id before the caller's context; bootstrap ones carry nothing.
      const context = cc.context.length >= HEADER ? cc.context.subarray(HEADER) : new Uint8Array(0);
      this.o.onConfChange?.(this.confState, { ...cc, context }, e.index);
      if (id !== undefined) this.resolve(id, e.index);
      this.settleIndex(e.index);
      return;
    }
    if (e.data.length > 0) {
      // (An empty entry is a new leader's own: nothing to apply.)
      const id = this.unwrapId(e.data);
      await this.o.stateMachine.apply(e.data.subarray(HEADER), e.index);
      if (id !== undefined) this.resolve(id, e.index);
    }
    this.settleIndex(e.index);
  }

  // ------------------------------------------------------------ settling proposals

  private get proposalTimeoutTicks(): number {
    return this.o.proposalTimeoutTicks ?? 10 * (this.o.electionTick ?? 10);
  }

  /**
   * Why the leader refuses a membership change before proposing it, or null.
   * Raft itself would turn a change it cannot take now into an empty entry
   * that its proposer waits on in vain, and one invalid against the
   * configuration would fail at apply on every replica.
   */
  private refuseConfChange(cc: ConfChange): RaftError | null {
    const r = this.rn.raft;
    if (r.state !== StateType.Leader) {
      return new ProposalDroppedError(
        `membership changes are proposed by the leader and this member is not it (leader: ${r.lead || 'none known'}): retry on the leader`,
      );
    }
    if (r.pendingConfIndex > r.raftLog.applied) {
      return new ProposalDroppedError(
        `the membership change at index ${r.pendingConfIndex} is not applied yet (applied: ${r.raftLog.applied}); one change at a time: retry once it is`,
      );
    }
    const joint = r.trk.config.voters[1].size > 0;
    if (joint && !leavesJoint(cc))
      return new ProposalDroppedError(
        'the configuration is joint: it must be left (an empty change) before another change; retry once it is',
      );
    return confChangeError(r.trk, r.raftLog.lastIndex(), cc);
  }

  private track(id: bigint, index: number, term: number, own: boolean): void {
    const w = this.waiters.get(id);
    if (!w) return;
    if (w.index === index && w.term === term) return;
    w.index = index;
    w.term = term;
    w.own = own;
    const ids = this.byIndex.get(index);
    if (ids) ids.push(id);
    else this.byIndex.set(index, [id]);
  }

  /** Our proposals among entries arriving from the leader (forwarded ones): from now on their place is known. */
  private trackArrived(entries: Entry[]): void {
    for (const e of entries) {
      let id: bigint | undefined;
      if (e.type === EntryType.ENTRY_CONF_CHANGE) id = this.unwrapId(ConfChange.decode(e.data).context);
      else id = this.unwrapId(e.data);
      if (id !== undefined && this.waiters.has(id) && !this.waiters.get(id)!.own) this.track(id, e.index, e.term, false);
    }
  }

  private settle(id: bigint, e: Error): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    w.reject(e);
  }

  /**
   * The entry at `index` was applied: a proposal placed there that did not
   * resolve lost its place to another entry. One this member appended is
   * lost for sure; a forwarded one might have been appended twice (a
   * duplicated message), so its fate is only unknown.
   */
  private settleIndex(index: number): void {
    const ids = this.byIndex.get(index);
    if (!ids) return;
    this.byIndex.delete(index);
    for (const id of ids) {
      const w = this.waiters.get(id);
      if (!w || w.index !== index) continue;
      this.settle(
        id,
        w.own
          ? new ProposalLostError(index, w.term!)
          : new ProposalOutcomeUnknownError(`its forwarded entry at index ${index} was replaced by another`, index),
      );
    }
  }

  /** A snapshot replaced the log up to `index`: proposals placed there were not applied here, and may or may not be in it. */
  private settleCovered(index: number): void {
    for (const [id, w] of this.waiters) {
      if (w.index === undefined || w.index > index) continue;
      this.settle(
        id,
        new ProposalOutcomeUnknownError(`a snapshot up to index ${index} was installed before its entry was applied here`, w.index),
      );
    }
    for (const i of [...this.byIndex.keys()]) if (i <= index) this.byIndex.delete(i);
  }

  /**
   * Leadership lost: what this member appended and did not see committed
   * may still be committed by the next leader, or be replaced. Its callers
   * hear so now rather than after the deadline (etcd fails them likewise).
   */
  private settleOnStepDown(): void {
    const committed = this.rn.raft.raftLog.committed;
    for (const [id, w] of this.waiters) {
      if (!w.own || w.index === undefined || w.index <= committed) continue;
      this.settle(id, new ProposalOutcomeUnknownError(`this member lost the leadership before its entry committed`, w.index));
    }
  }

  /** Proposals past their deadline: waiters are in proposal order, so the first one still in time ends the scan. */
  private expireProposals(): void {
    for (const [id, w] of this.waiters) {
      if (w.deadline > this.ticks) break;
      this.settle(
        id,
        new ProposalOutcomeUnknownError(
          `it did not settle within ${this.proposalTimeoutTicks} ticks (no leader, or its message was lost)`,
          w.index,
        ),
      );
    }
  }

  /** Releases every answered read whose point is applied, in any order: each point was fixed after its callers arrived. */
  private releaseReads(): void {
    const applied = this.rn.raft.raftLog.applied;
    const done = this.reads.filter((b) => b.index !== undefined && b.index <= applied);
    if (done.length === 0) return;
    this.reads = this.reads.filter((b) => !done.includes(b));
    for (const b of done) for (const w of b.waiters) w.resolve(b.index!);
  }

  /**
   * Takes a snapshot every `snapshotEntries` applied entries. The state is
   * captured here, between Readys; writing it out and releasing the WAL run
   * in the background, so a large snapshot does not stall commits (measured:
   * a 35 MB raftkv snapshot held the loop for hundreds of ms, p99 ×3.5).
   */
  private async maybeSnapshot(): Promise<void> {
    const every = this.snapshotEvery ?? this.o.snapshotEntries ?? 0;
    const applied = this.rn.raft.raftLog.applied;
    if (every <= 0 || applied - this.snapshotIndex < every || this.compaction) return;
    const data = await this.o.stateMachine.snapshot();
    const snap = this.storage.createSnapshot(applied, this.confState, data);
    const compactTo = applied - (this.o.keepEntries ?? 0);
    this.snapshotIndex = applied;
    this.compaction = this.o.persistence.compact(snap, compactTo).then(
      () => {
        this.compaction = null;
        if (compactTo > this.storage.firstIndex() && compactTo <= this.storage.lastIndex()) this.storage.compact(compactTo);
      },
      (e: unknown) => {
        this.compaction = null;
        if (this.stopped) return;
        this.stopped = true;
        this.failAll(e as Error);
        this.o.logger?.warn(`${this.id} snapshot failed: ${(e as Error).stack ?? String(e)}`);
        this.o.onFatal?.(e as Error);
      },
    );
  }
  private compaction: Promise<void> | null = null;
  private snapshotEvery: number | undefined;

  /** Changes `snapshotEntries` while running (the cluster's snapshot interval); the next applied entry uses it. */
  setSnapshotEntries(n: number): void {
    if (n > 0) this.snapshotEvery = n;
  }

  /** Applied entries between two snapshots. */
  get snapshotEntries(): number {
    return this.snapshotEvery ?? this.o.snapshotEntries ?? 0;
  }

  // ------------------------------------------------------------ proposal ids

  private nextId(): bigint {
    this.seq = (this.seq + 1) >>> 0;
    return (this.o.nonce << 32n) | BigInt(this.seq);
  }

  private wrap(id: bigint, data: Uint8Array): Uint8Array {
    const out = new Uint8Array(HEADER + data.length);
    const dv = new DataView(out.buffer);
    dv.setBigUint64(0, this.o.nonce & 0xffffffffffffffffn);
    dv.setUint32(8, Number(id & 0xffffffffn));
    out.set(data, HEADER);
    return out;
  }

  private unwrapId(data: Uint8Array): bigint | undefined {
    if (data.length < HEADER) return undefined;
    const dv = new DataView(data.buffer, data.byteOffset, HEADER);
    const nonce = dv.getBigUint64(0);
    if (nonce !== (this.o.nonce & 0xffffffffffffffffn)) return undefined; // another member's proposal
    return (nonce << 32n) | BigInt(dv.getUint32(8));
  }

  private resolve(id: bigint, index: number): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    w.resolve(index);
  }

  private failAll(e: Error): void {
    for (const w of this.waiters.values()) w.reject(e);
    this.waiters.clear();
    this.byIndex.clear();
    for (const p of this.proposals) p.w.reject(e);
    this.proposals = [];
    for (const b of this.reads) for (const w of b.waiters) w.reject(e);
    this.reads = [];
    for (const w of this.pendingReads) w.reject(e);
    this.pendingReads = [];
  }
}

function ctxHex(ctx: Uint8Array): string {
  return Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('hex');
}

function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r.name === 'TimeoutError' ? 'timed out' : r.message;
  return r === undefined ? 'aborted' : String(r);
}
