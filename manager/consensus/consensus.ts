// The manager's Raft member: the Raft library wired to its WAL, to the gRPC
// transport on the manager's shared (mTLS) server, and to the replicated
// store. It also keeps the member list (raft id → address, node id) inside
// the replicated state, so every manager can route to every other one after
// a restart or a snapshot, and it promotes caught-up learners to voters.
import type * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import type pino from 'pino';
import { type ConfChange, ConfChangeTransition, ConfChangeType, type ConfState } from '../../proto/gen/raft.js';
import { RaftError } from '../raft/errors.js';
import { RaftNode, type StateMachine } from '../raft/node.js';
import type { StateType } from '../raft/raft.js';
import { DiskStorage, type Kek, realVfs } from '../raft/storage/index.js';
import { forceNewCluster } from '../raft/recovery.js';
import { GrpcTransport, type RaftCall } from '../raft/transport/index.js';
import { rename } from 'node:fs/promises';
import { decodeMember, encodeMember, type MemberRecord, decodeState, encodeState, ENTRY_MEMBER, ENTRY_STORE } from './format.js';
import { MAX_MESSAGE_BYTES } from '../../lib/grpc.js';
import { MAX_TRANSACTION_BYTES } from '../store/index.js';
import { TsswarmError } from '../../lib/errors.js';

/**
 * Raft's MaxSizePerMsg: the entries one append carries, except that an
 * append always carries at least one entry. So the largest append is
 * max(RAFT_MAX_SIZE_PER_MSG, one entry) plus the message's own fields, and an
 * entry is at most the store's cap (1.5 MiB, for every writer) plus its
 * one-byte frame: both below the gRPC
 * message limit, and the transport sends a message over its batch size alone.
 */
const RAFT_MAX_SIZE_PER_MSG = 1 << 20;
/** The largest entry proposed: a store transaction at the cap, framed. */
const MAX_ENTRY_BYTES = MAX_TRANSACTION_BYTES + 1;
// Checked where both are known: a change to either constant that breaks the bound fails at load, not in production.
if (Math.max(RAFT_MAX_SIZE_PER_MSG, MAX_ENTRY_BYTES) + (64 << 10) > MAX_MESSAGE_BYTES) {
  throw new Error(
    `raft: appends of up to ${Math.max(RAFT_MAX_SIZE_PER_MSG, MAX_ENTRY_BYTES)} bytes would not fit the gRPC message limit of ${MAX_MESSAGE_BYTES} bytes`,
  );
}

export interface ConsensusOptions {
  /** Directory of the WAL and snapshot files. */
  dir: string;
  /** This member's Raft id (fresh for every membership, never reused). */
  raftId: string;
  nodeId: string;
  /** host:port other managers reach us at. */
  advertiseAddr: string;
  clusterId: string;
  /** The manager's server: the Raft transport adds its service to it. */
  server: grpc.Server;
  credentials: { server: grpc.ServerCredentials; client: grpc.ChannelCredentials };
  channelOptions?: grpc.ChannelOptions;
  authorize?: (call: RaftCall) => grpc.ServiceError | null;
  /** Per accepted Raft stream: the sender ids its caller may use (see TransportOptions.senders). */
  senders?: (call: RaftCall) => (from: string) => boolean;
  /** The replicated store. */
  store: StateMachine;
  logger: pino.Logger;
  /** First start of the first manager: a one-member cluster. */
  bootstrap?: boolean;
  /** Known members at first start of a joining manager (from the join answer). */
  members?: MemberRecord[];
  /** Rewrite this member's state as a one-manager cluster keeping its committed state (quorum lost for good). */
  forceNewCluster?: boolean;
  /** The unlock key's KEK, for a manager locked by autolock (raft/storage/keys.ts). */
  unlock?: Kek;
  tickMs?: number;
  electionTick?: number;
  snapshotEntries?: number;
}

export class NotLeaderError extends RaftError {
  constructor(readonly leaderAddr: string) {
    super(
      'NOT_LEADER',
      leaderAddr
        ? `this manager is not the leader; the leader is at ${leaderAddr}`
        : 'there is no leader at the moment (an election is under way, or quorum is lost)',
    );
  }
}

export class Consensus {
  readonly node: RaftNode;
  private readonly o: ConsensusOptions;
  private readonly transport: GrpcTransport;
  private readonly log: pino.Logger;
  private members = new Map<string, MemberRecord>();
  private conf: ConfState | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private promoter: NodeJS.Timeout | null = null;
  private leaderListeners: ((leader: string, term: number) => void)[] = [];
  private closed = false;

  private constructor(o: ConsensusOptions, node: RaftNode, transport: GrpcTransport, members: Map<string, MemberRecord>) {
    this.o = o;
    this.node = node;
    this.transport = transport;
    this.members = members;
    this.log = o.logger.child({ component: 'raft' });
  }

  static async open(o: ConsensusOptions): Promise<Consensus> {
    const log = o.logger.child({ component: 'raft' });
    const members = new Map<string, MemberRecord>();
    for (const m of o.members ?? []) members.set(m.raftId, m);
    members.set(o.raftId, { raftId: o.raftId, nodeId: o.nodeId, addr: o.advertiseAddr });
    let self: Consensus | undefined;
    const wrapper: StateMachine = {
      apply: async (data, index) => {
        if (data.length === 0) return;
        if (data[0] === ENTRY_MEMBER) {
          self?.learnMember(decodeMember(data.subarray(1)));
          return;
        }
        await o.store.apply(data.subarray(1), index);
      },
      snapshot: async () => encodeState([...(self?.members ?? members).values()], await o.store.snapshot()),
      restore: async (data, index) => {
        const st = decodeState(data);
        const target = self?.members ?? members;
        for (const m of st.members) target.set(m.raftId, m);
        target.set(o.raftId, { raftId: o.raftId, nodeId: o.nodeId, addr: o.advertiseAddr });
        await o.store.restore(st.store, index);
        self?.syncPeers();
      },
    };
    if (o.forceNewCluster) {
      const r = await forceNewCluster(realVfs, o.dir, o.raftId, wrapper, {
        rename: (from, to) => rename(from, to),
        encryption: true,
        unlock: o.unlock,
        onConfChange: (cc) => {
          if (cc.context.length === 0) return;
          try {
            const m = decodeMember(cc.context);
            if (m.raftId && m.raftId !== o.raftId) members.set(m.raftId, m);
          } catch {
            // not a member record
          }
        },
      });
      log.warn(
        { index: r.index, localCommit: r.localCommit, backup: r.backupDir },
        'forced a new one-manager cluster from every entry this manager held; the old raft state is kept in the backup directory',
      );
    }
    // Encrypted at rest: WAL records and snapshots sealed with this manager's data key (raft/storage/keys.ts).
    const { storage, state } = await DiskStorage.open(realVfs, o.dir, { logger: log, encryption: true, unlock: o.unlock });
    const transport = new GrpcTransport(
      {
        id: o.raftId,
        cluster: o.clusterId,
        listen: o.advertiseAddr,
        server: o.server,
        credentials: o.credentials,
        channelOptions: o.channelOptions,
        authorize: o.authorize,
        senders: o.senders,
        logger: log,
      },
      {
        onMessage: (m) => self?.node.step(m),
        onUnreachable: (peer) => self?.node.reportUnreachable(peer),
        onSnapshotStatus: (peer, ok) => self?.node.reportSnapshot(peer, ok),
      },
    );
    await transport.start();
    const node = await RaftNode.open({
      id: o.raftId,
      loaded: state,
      persistence: storage,
      transport,
      stateMachine: wrapper,
      bootstrap: o.bootstrap ? [o.raftId] : undefined,
      electionTick: o.electionTick ?? 10,
      heartbeatTick: 1,
      preVote: true,
      checkQuorum: true,
      maxSizePerMsg: RAFT_MAX_SIZE_PER_MSG,
      maxInflightMsgs: 256,
      snapshotEntries: o.snapshotEntries ?? 10_000,
      keepEntries: 500,
      rand: (n) => Math.floor(Math.random() * n),
      nonce: randomBytes(8).readBigUInt64BE() >> 1n,
      logger: { debug: (m) => log.debug(m), info: (m) => log.info(m), warn: (m) => log.warn(m) },
      onLeaderChange: (lead, term) => self?.leaderChanged(lead, term),
      onConfChange: (cs, cc) => self?.confChanged(cs, cc),
      onFatal: (err) => {
        log.fatal({ err }, 'raft failed; the manager must stop');
        process.exit(70);
      },
    });
    self = new Consensus(o, node, transport, members);
    self.conf = node.status().config;
    self.syncPeers();
    const c = self;
    self.ticker = setInterval(() => c.node.tick(), o.tickMs ?? 100);
    self.promoter = setInterval(() => void c.promoteCaughtUpLearners(), 500);
    if (o.bootstrap || o.forceNewCluster) {
      // One voter: no need to wait an election timeout.
      node.campaign();
    }
    self.storage = storage;
    return self;
  }

  private storage: DiskStorage | null = null;

  /** Autolock: the data keys wrapped by the unlock key's KEK, or (null) by a stored one again; returns the TLS key's secret (null: none). */
  setUnlockKek(unlock: Kek | null): Promise<Uint8Array | null> {
    if (!this.storage) return Promise.resolve(null);
    return this.storage.setUnlockKek(unlock);
  }

  /** The TLS key's secret while this manager is locked by autolock, else null. */
  get nodeKeySecret(): Uint8Array | null {
    return this.storage?.nodeKeySecret ?? null;
  }

  /**
   * Rotates this manager's Raft data key (DiskStorage.rotateDataKey) while it keeps serving; the old
   * key is forgotten once the snapshots that follow have released the WAL segments it sealed.
   */
  rotateDataKey(): Promise<number> {
    if (!this.storage) return Promise.resolve(0);
    return this.storage.rotateDataKey();
  }

  // ------------------------------------------------------------ state

  get raftId(): string {
    return this.o.raftId;
  }

  get isLeader(): boolean {
    return this.node.isLeader;
  }

  /** Raft id of the current leader, '' when none is known. */
  get leader(): string {
    return this.node.leader;
  }

  /** The leader's manager address, '' when none is known. */
  get leaderAddr(): string {
    return this.members.get(this.node.leader)?.addr ?? '';
  }

  leaderNodeId(): string {
    return this.members.get(this.node.leader)?.nodeId ?? '';
  }

  memberList(): MemberRecord[] {
    const cs = this.conf;
    const inConf = new Set([...(cs?.voters ?? []), ...(cs?.learners ?? [])]);
    return [...this.members.values()].filter((m) => inConf.has(m.raftId));
  }

  /**
   * The node id of member `raftId`; undefined when it is not (or no longer)
   * in the configuration. Before this member has applied any configuration
   * (a joining learner), the members the leader told it of count.
   */
  memberNodeId(raftId: string): string | undefined {
    const cs = this.conf;
    const known =
      cs && cs.voters.length + cs.learners.length > 0
        ? cs.voters.includes(raftId) || cs.learners.includes(raftId)
        : this.members.has(raftId);
    return known ? this.members.get(raftId)?.nodeId || undefined : undefined;
  }

  isVoter(raftId: string): boolean {
    return this.conf?.voters.includes(raftId) ?? false;
  }

  status() {
    return this.node.status();
  }

  onLeaderChange(fn: (leader: string, term: number) => void): void {
    this.leaderListeners.push(fn);
  }

  /** Proposes a store transaction; resolves with its index once applied here. Refused at once when not leader. */
  proposeStore(data: Uint8Array): Promise<number> {
    if (!this.node.isLeader) return Promise.reject(new NotLeaderError(this.leaderAddr));
    // The store refuses such a transaction with the object's name first; this guards any other caller.
    if (data.length + 1 > MAX_ENTRY_BYTES) {
      return Promise.reject(
        new TsswarmError(
          'INVALID_ARGUMENT',
          `a store transaction of ${data.length} bytes is over the limit of ${MAX_TRANSACTION_BYTES} bytes per Raft entry: write it in smaller parts`,
        ),
      );
    }
    const framed = new Uint8Array(data.length + 1);
    framed[0] = ENTRY_STORE;
    framed.set(data, 1);
    return this.node.propose(framed);
  }

  /** Resolves once this member reflects every write committed before the call; ReadTimeoutError when `signal` fires first. */
  readBarrier(opts: { signal?: AbortSignal } = {}): Promise<number> {
    return this.node.readBarrier(opts);
  }

  // ------------------------------------------------------------ membership

  /** Adds a manager as a learner; it is promoted to voter once caught up. Leader only. */
  async addLearner(m: MemberRecord): Promise<void> {
    if (!this.node.isLeader) throw new NotLeaderError(this.leaderAddr);
    if (this.conf?.voters.includes(m.raftId) || this.conf?.learners.includes(m.raftId)) return;
    this.members.set(m.raftId, m);
    this.syncPeers();
    await this.node
      .proposeConfChange({
        transition: ConfChangeTransition.TRANSITION_AUTO,
        changes: [{ type: ConfChangeType.CONF_ADD_LEARNER_NODE, nodeId: m.raftId }],
        context: encodeMember(m),
      })
      .catch((e: unknown) => {
        throw membershipError(e, `adding manager ${m.nodeId || m.raftId} (raft id ${m.raftId}) as a learner`);
      });
  }

  /** Removes a member (voter or learner). Leader only. */
  async removeMember(raftId: string): Promise<void> {
    if (!this.node.isLeader) throw new NotLeaderError(this.leaderAddr);
    const cs = this.node.status().config;
    if (![...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext].includes(raftId)) {
      throw new TsswarmError(
        'NOT_FOUND',
        `raft member ${raftId} is not in the configuration (already removed?): list the managers with \`tsswarm node ls\``,
      );
    }
    const m = this.members.get(raftId);
    await this.node
      .proposeConfChange({
        transition: ConfChangeTransition.TRANSITION_AUTO,
        changes: [{ type: ConfChangeType.CONF_REMOVE_NODE, nodeId: raftId }],
        context: m ? encodeMember(m) : new Uint8Array(0),
      })
      .catch((e: unknown) => {
        throw membershipError(e, `removing raft member ${raftId}`);
      });
  }

  /** Hands leadership to another voter (e.g. before this manager is demoted or leaves). */
  transferLeadership(to: string): void {
    this.node.transferLeadership(to);
  }

  /**
   * Hands leadership to voter `to` and resolves with the new term once this member sees `to` lead.
   * Leader only. Refused when `to` is not a voter or has not been heard from lately; rejects with
   * DEADLINE_EXCEEDED when the transfer has not happened within `timeoutMs` (Raft abandons a
   * transfer after an election timeout, and this member keeps leading).
   */
  moveLeader(to: string, timeoutMs: number): Promise<number> {
    if (!this.node.isLeader) return Promise.reject(new NotLeaderError(this.leaderAddr));
    const st = this.node.status();
    if (to === this.o.raftId) return Promise.resolve(st.term);
    if (!st.config.voters.includes(to)) {
      const why = st.config.learners.includes(to)
        ? 'is a learner still catching up: wait until it is a voter'
        : 'is not in the configuration';
      return Promise.reject(new TsswarmError('FAILED_PRECONDITION', `cannot hand leadership to raft member ${to}: it ${why}`));
    }
    if (!st.progress[to]?.recentActive) {
      return Promise.reject(
        new TsswarmError(
          'FAILED_PRECONDITION',
          `cannot hand leadership to raft member ${to}: the leader has not heard from it lately (it is down or cut off)`,
        ),
      );
    }
    return new Promise<number>((resolve, reject) => {
      const done = (err: Error | null, term = 0) => {
        clearTimeout(timer);
        this.leaderListeners = this.leaderListeners.filter((f) => f !== listen);
        if (err) reject(err);
        else resolve(term);
      };
      const listen = (lead: string, term: number) => {
        if (lead === to) done(null, term);
      };
      const timer = setTimeout(
        () =>
          done(
            new TsswarmError(
              'DEADLINE_EXCEEDED',
              `raft member ${to} did not take over leadership within ${timeoutMs} ms (it may be lagging behind the log); ${this.node.isLeader ? 'this manager still leads' : 'leadership is being decided'}: retry`,
            ),
          ),
        timeoutMs,
      );
      this.leaderListeners.push(listen);
      this.node.transferLeadership(to);
    });
  }

  /** How long an election takes to time out here, in milliseconds. */
  get electionTimeoutMs(): number {
    return (this.o.electionTick ?? 10) * (this.o.tickMs ?? 100);
  }

  /** Whether removing `raftId` keeps a reachable majority of the remaining voters (a safety check for demote/remove). */
  quorumSafeWithout(raftId: string, reachable: (raftId: string) => boolean): boolean {
    const voters = (this.conf?.voters ?? []).filter((v) => v !== raftId);
    if (voters.length === 0) return false;
    const up = voters.filter((v) => v === this.o.raftId || reachable(v)).length;
    return up > voters.length / 2;
  }

  private promoting = false;

  private async promoteCaughtUpLearners(): Promise<void> {
    if (!this.node.isLeader || this.closed || this.promoting) return;
    this.promoting = true;
    try {
      await this.promoteOne();
    } finally {
      this.promoting = false;
    }
  }

  private async promoteOne(): Promise<void> {
    const st = this.node.status();
    for (const l of st.config.learners) {
      const p = st.progress[l];
      // Caught up: it has acknowledged appends (replicating, not probing) and is within 100 entries of the commit.
      if (!p || p.match === 0 || p.state !== 'Replicate' || p.match + 100 < st.commit || !p.recentActive) continue;
      this.log.info({ learner: l, match: p.match, commit: st.commit }, 'learner caught up: promoting to voter');
      try {
        await this.node.proposeConfChange({
          transition: ConfChangeTransition.TRANSITION_AUTO,
          changes: [{ type: ConfChangeType.CONF_ADD_NODE, nodeId: l }],
          context: encodeMember(this.members.get(l) ?? { raftId: l, nodeId: '', addr: '' }),
        });
      } catch (err) {
        this.log.debug({ err, learner: l }, 'promotion not proposed (will retry)');
      }
      return; // one change at a time
    }
  }

  private learnMember(m: MemberRecord): void {
    if (!m.raftId || !m.addr) return;
    const old = this.members.get(m.raftId);
    if (m.raftId === this.o.raftId) return; // our own address is what we were started with
    this.members.set(m.raftId, m);
    if (!old || old.addr !== m.addr) this.syncPeers();
  }

  /** Makes the transport's peers match the configuration's members. */
  private syncPeers(): void {
    const cs = this.conf ?? this.node?.status().config;
    const want = new Set([...(cs?.voters ?? []), ...(cs?.learners ?? [])]);
    // Before the first conf change is applied (a joining member), talk to every known member.
    if (want.size === 0) for (const id of this.members.keys()) want.add(id);
    for (const id of want) {
      if (id === this.o.raftId) continue;
      const m = this.members.get(id);
      if (m?.addr) this.transport.addPeer(id, m.addr);
    }
  }

  private confChanged(cs: ConfState, cc: ConfChange): void {
    this.conf = cs;
    if (cc.context.length > 0) {
      try {
        const m = decodeMember(cc.context);
        if (m.raftId) this.members.set(m.raftId, m.raftId === this.o.raftId ? { ...m, addr: this.o.advertiseAddr } : m);
      } catch {
        // an old or foreign context: the member list stays as it is
      }
    }
    const inConf = new Set([...cs.voters, ...cs.learners]);
    for (const ch of cc.changes) {
      if (ch.type === ConfChangeType.CONF_REMOVE_NODE && !inConf.has(ch.nodeId)) {
        this.transport.removePeer(ch.nodeId);
        this.log.info({ member: ch.nodeId }, 'raft member removed');
      }
    }
    this.syncPeers();
    if (cc.changes.some((ch) => ch.type === ConfChangeType.CONF_REMOVE_NODE && ch.nodeId === this.o.raftId))
      this.log.warn('this manager was removed from the raft group');
  }

  private leaderChanged(lead: string, term: number): void {
    this.log.info({ leader: lead, term, leaderAddr: this.members.get(lead)?.addr }, 'raft leader changed');
    if (lead === this.o.raftId && this.members.get(this.o.raftId)) {
      // Make sure every member can route to us after a restart with a new address.
      const me = this.members.get(this.o.raftId)!;
      const framed = new Uint8Array([ENTRY_MEMBER, ...encodeMember(me)]);
      this.node.propose(framed).catch(() => undefined);
    }
    for (const f of this.leaderListeners) f(lead, term);
  }

  get state(): StateType {
    return this.node.status().raftState;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    if (this.promoter) clearInterval(this.promoter);
    await this.node.stop();
    await this.transport.stop();
    await this.storage?.close();
  }
}

/**
 * A membership change that did not happen, as the caller should see it:
 * refused before it was proposed (invalid, or one is already in flight),
 * or proposed and then lost or undecided.
 */
function membershipError(e: unknown, what: string): unknown {
  if (!(e instanceof RaftError)) return e;
  switch (e.code) {
    case 'CONF_CHANGE_INVALID':
      return new TsswarmError('FAILED_PRECONDITION', `${what} was refused: ${e.message}`, { cause: e });
    case 'PROPOSAL_DROPPED':
      return new TsswarmError('UNAVAILABLE', `${what} was not made: ${e.message}`, { cause: e });
    case 'OUTCOME_UNKNOWN':
    case 'STOPPED':
      return new TsswarmError('UNAVAILABLE', `${what}: ${e.message}; check the managers (\`tsswarm node ls\`) before trying again`, {
        cause: e,
      });
  }
  return e;
}

export { newRaftId } from '../../lib/ids.js';
