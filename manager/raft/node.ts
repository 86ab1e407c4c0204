// The driver: runs the Ready loop of one Raft member. Inputs (messages,
// ticks, proposals, reads) queue while a Ready is being handled and are
// stepped together before the next one, so every proposal that arrived during
// an fsync shares the next fsync (group commit). Per Ready: send what may go
// at once, persist with one fsync, send acks and votes, apply, advance.
import { ConfChange, ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot } from '../../proto/gen/raft.js';
import { ProposalDroppedError, RaftError } from './errors.js';
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
  /** Take a snapshot after this many applied entries (0 = never). */
  snapshotEntries?: number;
  /** Entries kept behind a snapshot for slow followers. */
  keepEntries?: number;
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

interface Waiter {
  resolve: (index: number) => void;
  reject: (e: Error) => void;
}

interface ReadBatch {
  ctx: string;
  waiters: Waiter[];
  index?: number;
}

type Input =
  | { kind: 'msg'; m: Message }
  | { kind: 'tick' }
  | { kind: 'campaign' }
  | { kind: 'conf'; cc: ConfChange; w: Waiter; id: bigint }
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
  private proposals: { data: Uint8Array; w: Waiter; id: bigint }[] = [];
  private waiters = new Map<bigint, Waiter>();
  private seq = 0;
  private reads: ReadBatch[] = [];
  private pendingReads: Waiter[] = [];
  private readSeq = 0;
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
      const w = { resolve, reject };
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
      const w = { resolve, reject };
      this.waiters.set(id, w);
      // The proposal id rides in the change's context, which Raft carries untouched.
      const tagged = ConfChange.create({ ...cc, context: this.wrap(id, cc.context) });
      this.push({ kind: 'conf', cc: tagged, w, id });
    });
  }

  /** Resolves once this member's state machine reflects every write committed before the call (linearizable read barrier, by ReadIndex). */
  readBarrier(): Promise<number> {
    if (this.stopped) return Promise.reject(new StoppedError());
    return new Promise((resolve, reject) => {
      this.pendingReads.push({ resolve, reject });
      this.kick();
    });
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
    if (!this.running && !this.scheduled && !this.hasWork()) return Promise.resolve();
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
    return this.inputs.length > 0 || this.proposals.length > 0 || (this.pendingReads.length > 0 && this.reads.length === 0) || this.rn.hasReady();
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
          case 'conf':
            this.rn.proposeConfChange(i.cc);
            break;
        }
      } catch (e) {
        if (e instanceof ProposalDroppedError && i.kind === 'conf') {
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
        this.rn.proposeBatch(batch.map((p) => p.data));
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
    if (this.pendingReads.length > 0 && this.reads.length === 0) {
      // One ReadIndex serves every read that arrived since the last one was issued.
      const ctx = `${this.id}/${++this.readSeq}`;
      this.reads.push({ ctx, waiters: this.pendingReads });
      this.pendingReads = [];
      this.rn.readIndex(new TextEncoder().encode(ctx));
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    this.stats.readies++;
    if (rd.softState) {
      const lead = rd.softState.lead;
      const term = rd.hardState?.term ?? this.rn.raft.term;
      if (lead !== this.lead || term !== this.term) {
        if (lead !== this.lead) {
          // A ReadIndex sent to the old leader may never be answered: unanswered reads are asked
          // again of the new one (a stale answer to an old ctx is ignored).
          const unanswered = this.reads.filter((b) => b.index === undefined);
          this.reads = this.reads.filter((b) => b.index !== undefined);
          for (const b of unanswered) this.pendingReads.push(...b.waiters);
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
      const write = this.o.persistence.persist({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot, mustSync: rd.mustSync });
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
    // 3. Acks and votes: what they promise is durable now.
    if (rd.messagesAfterPersist.length > 0) this.o.transport.send(rd.messagesAfterPersist);
    // 4. Apply.
    try {
      if (rd.snapshot) {
        await this.o.stateMachine.restore(rd.snapshot.data, snapIndex(rd.snapshot));
        this.confState = rd.snapshot.metadata?.confState ?? ConfState.create();
        this.snapshotIndex = snapIndex(rd.snapshot);
      }
      for (const e of rd.committedEntries) await this.applyEntry(e);
    } finally {
      if (unsynced) await unsynced;
    }
    for (const rs of rd.readStates) {
      const ctx = new TextDecoder().decode(rs.requestCtx);
      const b = this.reads.find((x) => x.ctx === ctx);
      if (b) b.index = rs.index;
    }
    this.rn.advance();
    this.releaseReads();
  }

  private async applyEntry(e: Entry): Promise<void> {
    this.stats.applied++;
    if (e.type === EntryType.ENTRY_CONF_CHANGE) {
      const cc = ConfChange.decode(e.data);
      this.confState = this.rn.applyConfChange(cc);
      const id = this.unwrapId(cc.context);
      // Proposed changes carry our 12-byte proposal id before the caller's context; bootstrap ones carry nothing.
      const context = cc.context.length >= HEADER ? cc.context.subarray(HEADER) : new Uint8Array(0);
      this.o.onConfChange?.(this.confState, { ...cc, context }, e.index);
      if (id !== undefined) this.resolve(id, e.index);
      return;
    }
    if (e.data.length === 0) return; // a new leader's empty entry
    const id = this.unwrapId(e.data);
    await this.o.stateMachine.apply(e.data.subarray(HEADER), e.index);
    if (id !== undefined) this.resolve(id, e.index);
  }

  private releaseReads(): void {
    const applied = this.rn.raft.raftLog.applied;
    while (this.reads.length > 0) {
      const b = this.reads[0]!;
      if (b.index === undefined || b.index > applied) break;
      this.reads.shift();
      for (const w of b.waiters) w.resolve(b.index);
    }
  }

  /**
   * Takes a snapshot every `snapshotEntries` applied entries. The state is
   * captured here, between Readys; writing it out and releasing the WAL run
   * in the background, so a large snapshot does not stall commits (measured:
   * a 35 MB raftkv snapshot held the loop for hundreds of ms, p99 ×3.5).
   */
  private async maybeSnapshot(): Promise<void> {
    const every = this.o.snapshotEntries ?? 0;
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
    for (const p of this.proposals) p.w.reject(e);
    this.proposals = [];
    for (const b of this.reads) for (const w of b.waiters) w.reject(e);
    this.reads = [];
    for (const w of this.pendingReads) w.reject(e);
    this.pendingReads = [];
  }
}
