// The Raft state machine: a pure, deterministic core. Time enters as tick(),
// everything else as step(message); randomness is injected. It never touches
// a disk, a socket or a clock: it appends to its in-memory log and queues
// messages, and RawNode hands those out as a Ready batch.
// Modelled on etcd-io/raft's raft.go (PreVote, CheckQuorum, ReadIndex,
// leader transfer, joint consensus, flow control), written for TypeScript.
import { ConfChange, ConfState, Entry, EntryType, HardState, Message, MessageType, type Snapshot } from '../../proto/gen/raft.js';
import { Changer, type ChangeResult, enterJointOf, leavesJoint, restoreConfig } from './confchange.js';
import { ProposalDroppedError, RaftError, invariant } from './errors.js';
import { RaftLog } from './log.js';
import { VoteResult } from './quorum.js';
import { mutant } from './mutants.js';
import { ReadOnly, type ReadOnlyOption } from './readonly.js';
import { type Storage, payloadSize, snapIndex, snapTerm } from './storage.js';
import { Progress, ProgressState, ProgressTracker, describeConfig } from './tracker.js';

export const NONE = '';

export enum StateType {
  Follower = 'StateFollower',
  Candidate = 'StateCandidate',
  Leader = 'StateLeader',
  PreCandidate = 'StatePreCandidate',
}

export interface RaftLogger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
}

export const silentLogger: RaftLogger = { debug() {}, info() {}, warn() {} };

export interface RaftConfig {
  /** This member's id; never empty, never reused. */
  id: string;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). */
  electionTick: number;
  /** Ticks between a leader's heartbeats. */
  heartbeatTick: number;
  storage: Storage;
  /** The last index the application has applied (on restart). */
  applied?: number;
  /** Max bytes of entries in one MsgApp (default 1 MiB). */
  maxSizePerMsg?: number;
  /** Max bytes of committed entries handed out in one Ready (default: unlimited). */
  maxCommittedSizePerReady?: number;
  /** Max bytes of uncommitted payload the leader accepts before dropping proposals (0 = unlimited). */
  maxUncommittedEntriesSize?: number;
  /** Max MsgApps in flight per follower in StateReplicate (default 256). */
  maxInflightMsgs?: number;
  /** Max bytes in flight per follower (0 = unlimited). */
  maxInflightBytes?: number;
  /** A leader that does not hear from a quorum within an election timeout steps down. */
  checkQuorum?: boolean;
  /** Candidates first ask whether they could win (thesis §9.6), so a partitioned node does not disrupt the cluster when it returns. */
  preVote?: boolean;
  /** 'safe' (ReadIndex with a quorum round, default) or 'lease-based' (needs checkQuorum and bounded clock drift). */
  readOnlyOption?: ReadOnlyOption;
  /** Followers drop proposals instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /** Random integer in [0, n): injected so the core stays deterministic. */
  rand: (n: number) => number;
  logger?: RaftLogger;
}

export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

export interface SoftState {
  lead: string;
  raftState: StateType;
}

/** Context that marks a vote request as part of a leadership transfer (it may interrupt a leader's lease). */
export const CAMPAIGN_TRANSFER = new TextEncoder().encode('CampaignTransfer');

type CampaignType = 'pre-election' | 'election' | 'transfer';

export function isLocalMsg(t: MessageType): boolean {
  return (
    t === MessageType.MSG_HUP ||
    t === MessageType.MSG_BEAT ||
    t === MessageType.MSG_UNREACHABLE ||
    t === MessageType.MSG_SNAP_STATUS ||
    t === MessageType.MSG_CHECK_QUORUM
  );
}

export function isResponseMsg(t: MessageType): boolean {
  return (
    t === MessageType.MSG_APP_RESP ||
    t === MessageType.MSG_VOTE_RESP ||
    t === MessageType.MSG_HEARTBEAT_RESP ||
    t === MessageType.MSG_UNREACHABLE ||
    t === MessageType.MSG_PRE_VOTE_RESP
  );
}

/** MSG_VOTE_RESP → MsgVoteResp, as etcd names message types in logs. */
export function msgType(t: MessageType): string {
  const n = MessageType[t] ?? String(t);
  return n
    .toLowerCase()
    .split('_')
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}

function voteRespType(t: MessageType): MessageType {
  if (t === MessageType.MSG_VOTE) return MessageType.MSG_VOTE_RESP;
  if (t === MessageType.MSG_PRE_VOTE) return MessageType.MSG_PRE_VOTE_RESP;
  throw new RaftError('INVARIANT', `not a vote message: ${msgType(t)}`);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class Raft {
  readonly id: string;
  term = 0;
  vote = NONE;
  lead = NONE;
  state: StateType = StateType.Follower;
  isLearner = false;
  readonly raftLog: RaftLog;
  readonly trk: ProgressTracker;

  /** Messages that can be sent at once. */
  msgs: Message[] = [];
  /** Messages that may only leave once the entries and hard state before them are durable (acks and votes). */
  msgsAfterAppend: Message[] = [];
  readStates: ReadState[] = [];

  leadTransferee = NONE;
  /** Log index of the last conf change proposed; a new one waits until the applied index passes it. */
  pendingConfIndex = 0;
  /** Payload bytes of uncommitted entries in the leader's log (for maxUncommittedEntriesSize). */
  uncommittedSize = 0;
  readOnly: ReadOnly;
  /** Read requests that arrived before this leader committed an entry of its own term. */
  private pendingReadIndexMessages: Message[] = [];

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;

  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  private readonly maxMsgSize: number;
  private readonly maxUncommittedSize: number;
  private readonly disableProposalForwarding: boolean;
  private readonly rand: (n: number) => number;
  readonly logger: RaftLogger;

  private stepRole: (m: Message) => void;
  private tickRole: () => void;

  constructor(c: RaftConfig) {
    invariant(c.id !== NONE, 'cannot use an empty id as a member id');
    invariant(c.heartbeatTick > 0, 'heartbeat tick must be greater than 0');
    invariant(c.electionTick > c.heartbeatTick, 'election tick must be greater than heartbeat tick');
    const readOnlyOption = c.readOnlyOption ?? 'safe';
    invariant(!(readOnlyOption === 'lease-based' && !c.checkQuorum), 'lease-based reads need checkQuorum');
    const maxSizePerMsg = c.maxSizePerMsg ?? 1024 * 1024;
    const maxInflightBytes = c.maxInflightBytes ?? 0;
    invariant(maxInflightBytes === 0 || maxInflightBytes >= maxSizePerMsg, 'maxInflightBytes must be ≥ maxSizePerMsg');
    this.id = c.id;
    this.raftLog = new RaftLog(c.storage, c.maxCommittedSizePerReady ?? Number.MAX_SAFE_INTEGER);
    this.trk = new ProgressTracker(c.maxInflightMsgs ?? 256, maxInflightBytes);
    this.maxMsgSize = maxSizePerMsg;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize ?? 0;
    this.checkQuorum = c.checkQuorum ?? false;
    this.preVote = c.preVote ?? false;
    this.readOnly = new ReadOnly(readOnlyOption);
    this.heartbeatTimeout = c.heartbeatTick;
    this.electionTimeout = c.electionTick;
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;
    this.rand = c.rand;
    this.logger = c.logger ?? silentLogger;
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;

    const { hardState, confState } = c.storage.initialState();
    const restored = restoreConfig(this.trk, confState, this.raftLog.lastIndex());
    this.switchToConfig(restored);
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.loadState(hardState);
    if (c.applied !== undefined && c.applied > 0) this.raftLog.appliedTo(c.applied);
    this.becomeFollower(this.term, NONE);
    this.logger.info(
      `${this.id} newRaft [${describeConfig(this.trk.config)}] term: ${this.term}, commit: ${this.raftLog.committed}, applied: ${this.raftLog.applied}, lastindex: ${this.raftLog.lastIndex()}, lastterm: ${this.raftLog.lastTerm()}`,
    );
  }

  hardState(): HardState {
    return HardState.create({ term: this.term, vote: this.vote, commit: this.raftLog.committed });
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  private loadState(hs: HardState): void {
    invariant(
      hs.commit >= this.raftLog.committed && hs.commit <= this.raftLog.lastIndex(),
      () => `${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
    );
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  // ---------------------------------------------------------------- sending

  /** Queues a message; fills in from and term. */
  send(init: Partial<Message> & { type: MessageType; to: string }): void {
    const m = Message.create(init);
    if (m.from === NONE) m.from = this.id;
    if (
      m.type === MessageType.MSG_VOTE ||
      m.type === MessageType.MSG_VOTE_RESP ||
      m.type === MessageType.MSG_PRE_VOTE ||
      m.type === MessageType.MSG_PRE_VOTE_RESP
    ) {
      // Vote messages carry the term they are about (a PreVote is for term+1), so it must be set.
      invariant(m.term !== 0, () => `term should be set when sending ${msgType(m.type)}`);
    } else {
      invariant(m.term === 0, () => `term should not be set when sending ${msgType(m.type)} (was ${m.term})`);
      // Proposals and read requests forwarded to the leader travel as local messages (term 0).
      if (m.type !== MessageType.MSG_PROP && m.type !== MessageType.MSG_READ_INDEX) m.term = this.term;
    }
    const early =
      m.to !== this.id &&
      ((m.type === MessageType.MSG_APP_RESP && mutant('ack-before-fsync')) ||
        (m.type === MessageType.MSG_VOTE_RESP && mutant('vote-not-durable')));
    if (
      !early &&
      (m.type === MessageType.MSG_APP_RESP || m.type === MessageType.MSG_VOTE_RESP || m.type === MessageType.MSG_PRE_VOTE_RESP)
    ) {
      // Acks and votes promise durability: they wait until the Ready that produced them is persisted.
      this.msgsAfterAppend.push(m);
    } else {
      invariant(m.to !== this.id, () => `message should not be self-addressed when sending ${msgType(m.type)}`);
      this.msgs.push(m);
    }
  }

  /** Sends an append (or a snapshot) to `to` if its flow allows; sendIfEmpty sends even with no entries (a probe or commit update). */
  private maybeSendAppend(to: string, sendIfEmpty: boolean): boolean {
    if (to === this.id) return false;
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    try {
      prevTerm = this.raftLog.term(prevIndex);
    } catch (e) {
      if (e instanceof RaftError && e.code === 'COMPACTED') return this.maybeSendSnapshot(to, pr);
      throw e;
    }
    let ents: Entry[] = [];
    if (pr.state !== ProgressState.Replicate || !pr.inflights.full()) {
      try {
        ents = this.raftLog.entries(pr.next, this.maxMsgSize);
      } catch (e) {
        if (e instanceof RaftError && e.code === 'COMPACTED') return this.maybeSendSnapshot(to, pr);
        throw e;
      }
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send({ to, type: MessageType.MSG_APP, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.raftLog.committed });
    pr.sentEntries(ents.length, payloadSize(ents));
    return true;
  }

  private sendAppend(to: string): void {
    this.maybeSendAppend(to, true);
  }

  private maybeSendSnapshot(to: string, pr: Progress): boolean {
    if (!pr.recentActive) {
      this.logger.debug(`ignore sending snapshot to ${to} since it is not recently active`);
      return false;
    }
    const snap = this.raftLog.snapshot();
    invariant(snapIndex(snap) !== 0, 'need non-empty snapshot');
    this.logger.info(
      `${this.id} [firstindex: ${this.raftLog.firstIndex()}, commit: ${this.raftLog.committed}] sent snapshot[index: ${snapIndex(snap)}, term: ${snapTerm(snap)}] to ${to} [${pr.describe()}]`,
    );
    pr.becomeSnapshot(snapIndex(snap));
    this.send({ to, type: MessageType.MSG_SNAP, snapshot: snap });
    return true;
  }

  private sendHeartbeat(to: string, ctx: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to)!;
    // A follower may not have the leader's whole log yet; it must not commit past what it has.
    const commit = mutant('heartbeat-commit-past-match') ? this.raftLog.committed : Math.min(pr.match, this.raftLog.committed);
    this.send({ to, type: MessageType.MSG_HEARTBEAT, commit, context: ctx ?? new Uint8Array(0) });
  }

  bcastAppend(): void {
    for (const id of this.trk.ids()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    for (const id of this.trk.ids()) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  // ---------------------------------------------------------------- roles

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    for (const [id, old] of this.trk.progress) {
      const pr = new Progress(last + 1, old.isLearner, this.trk.maxInflight, this.trk.maxInflightBytes);
      if (id === this.id) pr.match = last;
      this.trk.progress.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly(this.readOnly.option);
    this.pendingReadIndexMessages = [];
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.rand(this.electionTimeout);
  }

  becomeFollower(term: number, lead: string): void {
    this.stepRole = this.stepFollower;
    this.reset(term);
    this.tickRole = this.tickElection;
    this.lead = lead;
    this.state = StateType.Follower;
    this.logger.info(`${this.id} became follower at term ${this.term}`);
  }

  becomeCandidate(): void {
    invariant(this.state !== StateType.Leader, 'invalid transition [leader -> candidate]');
    this.stepRole = this.stepCandidate;
    this.reset(this.term + 1);
    this.tickRole = this.tickElection;
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.logger.info(`${this.id} became candidate at term ${this.term}`);
  }

  becomePreCandidate(): void {
    invariant(this.state !== StateType.Leader, 'invalid transition [leader -> pre-candidate]');
    // A pre-candidate changes neither its term nor its vote: it only asks whether it could win.
    this.stepRole = this.stepCandidate;
    this.trk.resetVotes();
    this.tickRole = this.tickElection;
    this.lead = NONE;
    this.state = StateType.PreCandidate;
    this.logger.info(`${this.id} became pre-candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    invariant(this.state !== StateType.Follower, 'invalid transition [follower -> leader]');
    this.stepRole = this.stepLeader;
    this.reset(this.term);
    this.tickRole = this.tickHeartbeat;
    this.lead = this.id;
    this.state = StateType.Leader;
    const pr = this.trk.progress.get(this.id)!;
    pr.becomeReplicate();
    pr.recentActive = true;
    // Conservatively assume the tail may hold an unapplied conf change: no new one until it is applied.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // An entry of the new term: committing it commits everything before it (§5.4.2) and
    // enables ReadIndex (the leader then knows the commit index of its term).
    const ok = this.appendEntry([Entry.create()]);
    invariant(ok, 'empty entry was dropped');
    // The empty entry does not count against the uncommitted size limit.
    this.uncommittedSize = 0;
    this.logger.info(`${this.id} became leader at term ${this.term}`);
  }

  private appendEntry(es: Entry[]): boolean {
    let li = this.raftLog.lastIndex();
    for (let i = 0; i < es.length; i++) {
      es[i]!.term = this.term;
      es[i]!.index = li + 1 + i;
    }
    if (!this.increaseUncommittedSize(es)) {
      this.logger.warn(`${this.id} appending new entries to log would exceed uncommitted entry size limit; dropping proposal`);
      return false;
    }
    li = this.raftLog.append(es);
    // The leader acknowledges its own entries too, but only once they are durable.
    this.send({ to: this.id, type: MessageType.MSG_APP_RESP, index: li });
    return true;
  }

  private increaseUncommittedSize(ents: Entry[]): boolean {
    const s = payloadSize(ents);
    if (this.maxUncommittedSize > 0 && this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize)
      return false;
    this.uncommittedSize += s;
    return true;
  }

  reduceUncommittedSize(s: number): void {
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }

  // ---------------------------------------------------------------- time

  tick(): void {
    this.tickRole();
  }

  private tickElection = (): void => {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(Message.create({ from: this.id, type: MessageType.MSG_HUP }));
    }
  };

  private tickHeartbeat = (): void => {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(Message.create({ from: this.id, type: MessageType.MSG_CHECK_QUORUM }));
      // A transfer that did not finish within an election timeout is given up.
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(Message.create({ from: this.id, type: MessageType.MSG_BEAT }));
    }
  };

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  /** Whether this member may become leader: a voter of the current config with no snapshot pending. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasPendingSnapshot();
  }

  // ---------------------------------------------------------------- elections

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) {
      this.logger.debug(`${this.id} ignoring MsgHup because already leader`);
      return;
    }
    if (!this.promotable()) {
      this.logger.warn(`${this.id} is unpromotable and can not campaign`);
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      // Campaigning with a conf change committed but not applied could use a stale config to count votes.
      this.logger.warn(`${this.id} cannot campaign at term ${this.term} since there are still pending configuration changes to apply`);
      return;
    }
    this.logger.info(`${this.id} is starting a new election at term ${this.term}`);
    this.campaign(t);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.raftLog.applied >= this.raftLog.committed) return false;
    const lo = Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex());
    const hi = this.raftLog.committed + 1;
    if (lo >= hi) return false;
    for (const e of this.raftLog.slice(lo, hi, Number.MAX_SAFE_INTEGER)) {
      if (e.type === EntryType.ENTRY_CONF_CHANGE) return true;
    }
    return false;
  }

  private campaign(t: CampaignType): void {
    let voteMsg: MessageType;
    let term: number;
    if (t === 'pre-election') {
      this.becomePreCandidate();
      voteMsg = MessageType.MSG_PRE_VOTE;
      // A PreVote asks about the next term without moving to it.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.MSG_VOTE;
      term = this.term;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.trk.voterIds()) {
      if (id === this.id) {
        // Our own vote counts only once it is durable: it goes through msgsAfterAppend.
        this.send({ to: id, term, type: voteRespType(voteMsg) });
        continue;
      }
      this.logger.info(
        `${this.id} [logterm: ${lastTerm}, index: ${lastIndex}] sent ${msgType(voteMsg)} request to ${id} at term ${this.term}`,
      );
      this.send({
        to: id,
        term,
        type: voteMsg,
        index: lastIndex,
        logTerm: lastTerm,
        context: t === 'transfer' ? CAMPAIGN_TRANSFER : new Uint8Array(0),
      });
    }
  }

  private poll(id: string, t: MessageType, granted: boolean): { granted: number; rejected: number; result: VoteResult } {
    if (granted) this.logger.info(`${this.id} received ${msgType(t)} from ${id} at term ${this.term}`);
    else this.logger.info(`${this.id} received ${msgType(t)} rejection from ${id} at term ${this.term}`);
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes();
  }

  // ---------------------------------------------------------------- step

  /** Feeds one message (or a local event) to the state machine. Throws ProposalDroppedError for proposals that cannot be accepted. */
  step(m: Message): void {
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === MessageType.MSG_VOTE || m.type === MessageType.MSG_PRE_VOTE) {
        const force = sameBytes(m.context, CAMPAIGN_TRANSFER);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // Leader stickiness: we heard from a live leader within the election timeout, so a
          // candidate with a higher term is likely a partitioned node coming back; ignore it.
          this.logger.info(
            `${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] ignored ${msgType(m.type)} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}: lease is not expired (remaining ticks: ${this.electionTimeout - this.electionElapsed})`,
          );
          return;
        }
      }
      if (m.type === MessageType.MSG_PRE_VOTE) {
        // Never change our term in response to a PreVote.
      } else if (m.type === MessageType.MSG_PRE_VOTE_RESP && !m.reject) {
        // A granted PreVote carries the future term; we move to it only if we win.
      } else {
        this.logger.info(
          `${this.id} [term: ${this.term}] received a ${msgType(m.type)} message with higher term from ${m.from} [term: ${m.term}]`,
        );
        if (m.type === MessageType.MSG_APP || m.type === MessageType.MSG_HEARTBEAT || m.type === MessageType.MSG_SNAP) {
          this.becomeFollower(m.term, m.from);
        } else {
          this.becomeFollower(m.term, NONE);
        }
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.MSG_HEARTBEAT || m.type === MessageType.MSG_APP)) {
        // A stale leader (say, one cut off and back) is told the new term, so it steps down
        // instead of waiting forever: with CheckQuorum/PreVote our higher term would never
        // reach it through a vote request.
        this.send({ to: m.from, type: MessageType.MSG_APP_RESP });
      } else if (m.type === MessageType.MSG_PRE_VOTE) {
        this.logger.info(`${this.id} [term: ${this.term}] rejected ${msgType(m.type)} from ${m.from} [term: ${m.term}]`);
        this.send({ to: m.from, term: this.term, type: MessageType.MSG_PRE_VOTE_RESP, reject: true });
      } else {
        this.logger.debug(
          `${this.id} [term: ${this.term}] ignored a ${msgType(m.type)} message with lower term from ${m.from} [term: ${m.term}]`,
        );
      }
      return;
    }

    switch (m.type) {
      case MessageType.MSG_HUP:
        this.hup(this.preVote ? 'pre-election' : 'election');
        return;
      case MessageType.MSG_VOTE:
      case MessageType.MSG_PRE_VOTE: {
        const canVote =
          this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.type === MessageType.MSG_PRE_VOTE && m.term > this.term);
        if (canVote && (this.raftLog.isUpToDate(m.index, m.logTerm) || mutant('vote-for-older-log'))) {
          // Learners vote too: one may have been promoted without having applied that change yet.
          this.logger.info(
            `${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] cast ${msgType(m.type)} for ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`,
          );
          this.send({ to: m.from, term: m.term, type: voteRespType(m.type) });
          if (m.type === MessageType.MSG_VOTE) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.logger.info(
            `${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] rejected ${msgType(m.type)} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`,
          );
          this.send({ to: m.from, term: this.term, type: voteRespType(m.type), reject: true });
        }
        return;
      }
      default:
        this.stepRole(m);
    }
  }

  private stepLeader = (m: Message): void => {
    switch (m.type) {
      case MessageType.MSG_BEAT:
        this.bcastHeartbeat();
        return;
      case MessageType.MSG_CHECK_QUORUM:
        if (!this.trk.quorumActive()) {
          this.logger.warn(`${this.id} stepped down to follower since quorum is not active`);
          this.becomeFollower(this.term, NONE);
        }
        for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false;
        return;
      case MessageType.MSG_PROP:
        this.stepLeaderProp(m);
        return;
      case MessageType.MSG_READ_INDEX:
        if (this.trk.isSingleton()) {
          this.respondToReadIndex(m, this.raftLog.committed);
          return;
        }
        // Until an entry of this term is committed, the leader's commit index may be behind the
        // true one (§6.4): park the request.
        if (!this.committedEntryInCurrentTerm() && !mutant('read-before-term-commit')) {
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.sendReadIndexResponse(m);
        return;
    }

    const pr = this.trk.progress.get(m.from);
    if (!pr) {
      this.logger.debug(`${this.id} no progress available for ${m.from}`);
      return;
    }
    switch (m.type) {
      case MessageType.MSG_APP_RESP:
        this.handleAppResp(m, pr);
        return;
      case MessageType.MSG_HEARTBEAT_RESP: {
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        // A follower that is behind, or being probed, gets entries right away.
        if (pr.match < this.raftLog.lastIndex() || pr.state === ProgressState.Probe) this.sendAppend(m.from);
        if (this.readOnly.option !== 'safe' || m.context.length === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks || this.trk.voteResultOf(acks) !== VoteResult.Won) return;
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        return;
      }
      case MessageType.MSG_SNAP_STATUS:
        if (pr.state !== ProgressState.Snapshot) return;
        if (!m.reject) {
          this.logger.debug(`${this.id} snapshot succeeded, resumed sending replication messages to ${m.from} [${pr.describe()}]`);
          pr.becomeProbe();
        } else {
          // The snapshot did not arrive: forget it, so the next attempt can send a fresh one.
          pr.pendingSnapshot = 0;
          pr.becomeProbe();
          this.logger.debug(`${this.id} snapshot failed, resumed sending replication messages to ${m.from} [${pr.describe()}]`);
        }
        // Wait for a heartbeat response before probing, so a follower still applying the snapshot is not flooded.
        pr.msgAppFlowPaused = true;
        return;
      case MessageType.MSG_UNREACHABLE:
        // Optimistic pipelining to an unreachable member just loses messages: probe instead.
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.logger.debug(`${this.id} failed to send message to ${m.from} because it is unreachable [${pr.describe()}]`);
        return;
      case MessageType.MSG_TRANSFER_LEADER: {
        if (pr.isLearner) {
          this.logger.debug(`${this.id} is learner. Ignored transferring leadership`);
          return;
        }
        const transferee = m.from;
        if (this.leadTransferee !== NONE) {
          if (this.leadTransferee === transferee) {
            this.logger.info(
              `${this.id} [term ${this.term}] transfer leadership to ${transferee} is in progress, ignores request to same node`,
            );
            return;
          }
          this.abortLeaderTransfer();
          this.logger.info(`${this.id} [term ${this.term}] abort previous transferring leadership`);
        }
        if (transferee === this.id) {
          this.logger.debug(`${this.id} is already leader. Ignored transferring leadership to self`);
          return;
        }
        this.logger.info(`${this.id} [term ${this.term}] starts to transfer leadership to ${transferee}`);
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.raftLog.lastIndex()) {
          this.sendTimeoutNow(transferee);
          this.logger.info(`${this.id} sends MsgTimeoutNow to ${transferee} immediately as ${transferee} already has up-to-date log`);
        } else {
          this.sendAppend(transferee);
        }
        return;
      }
    }
  };

  private stepLeaderProp(m: Message): void {
    invariant(m.entries.length > 0, `${this.id} stepped empty MsgProp`);
    if (!this.trk.progress.has(this.id)) {
      // Removed from the configuration (while still leader until the step-down): don't propose.
      throw new ProposalDroppedError('this member is no longer in the configuration');
    }
    if (this.leadTransferee !== NONE) {
      throw new ProposalDroppedError(`leadership is being transferred to ${this.leadTransferee}`);
    }
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i]!;
      if (e.type !== EntryType.ENTRY_CONF_CHANGE) continue;
      const cc = ConfChange.decode(e.data);
      const alreadyPending = this.pendingConfIndex > this.raftLog.applied;
      const alreadyJoint = this.trk.isJoint();
      const wantsLeaveJoint = leavesJoint(cc);
      let refused = '';
      if (alreadyPending) refused = `possible unapplied conf change at index ${this.pendingConfIndex} (applied to ${this.raftLog.applied})`;
      else if (alreadyJoint && !wantsLeaveJoint) refused = 'must transition out of joint config first';
      else if (!alreadyJoint && wantsLeaveJoint) refused = 'not in joint state; refusing empty conf change';
      if (refused) {
        // Replaced by an empty normal entry, not an error: the proposer sees it never applies.
        this.logger.info(`${this.id} ignoring conf change at config ${describeConfig(this.trk.config)}: ${refused}`);
        m.entries[i] = Entry.create({ type: EntryType.ENTRY_NORMAL });
      } else {
        this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
      }
    }
    if (!this.appendEntry(m.entries)) throw new ProposalDroppedError('the uncommitted log is full');
    this.bcastAppend();
  }

  private handleAppResp(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      this.logger.debug(
        `${this.id} received MsgAppResp(rejected, hint: (index ${m.rejectHint}, term ${m.logTerm})) from ${m.from} for index ${m.index}`,
      );
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) {
        // Fast backtracking: skip every entry of ours whose term exceeds the follower's term at
        // the hint, as none of them can match.
        nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm)[0];
      }
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        this.logger.debug(`${this.id} decreased progress of ${m.from} to [${pr.describe()}]`);
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    // A probe answered at exactly the current match also proves the follower's log matches.
    if (!(pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe))) return;
    switch (pr.state) {
      case ProgressState.Probe:
        pr.becomeReplicate();
        break;
      case ProgressState.Snapshot:
        // The follower caught up past the snapshot another way (or the snapshot landed): resume
        // replication if the log still has what comes next.
        if (pr.match + 1 >= this.raftLog.firstIndex()) {
          this.logger.debug(
            `${this.id} recovered from needing snapshot, resumed sending replication messages to ${m.from} [${pr.describe()}]`,
          );
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case ProgressState.Replicate:
        pr.inflights.freeLE(m.index);
        break;
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    } else if (oldPaused && m.from !== this.id) {
      this.sendAppend(m.from);
    }
    // Fill the window while there is more to send.
    if (m.from !== this.id)
      while (this.maybeSendAppend(m.from, false)) {
        /* keep sending */
      }
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
      this.logger.info(`${this.id} sent MsgTimeoutNow to ${m.from} after received MsgAppResp`);
      this.sendTimeoutNow(m.from);
    }
  }

  private stepCandidate = (m: Message): void => {
    const myVoteResp = this.state === StateType.PreCandidate ? MessageType.MSG_PRE_VOTE_RESP : MessageType.MSG_VOTE_RESP;
    switch (m.type) {
      case MessageType.MSG_PROP:
        throw new ProposalDroppedError(`no leader at term ${this.term} (election in progress)`);
      case MessageType.MSG_APP:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.MSG_HEARTBEAT:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.MSG_SNAP:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.MSG_TIMEOUT_NOW:
        this.logger.debug(`${this.id} [term ${this.term} state ${this.state}] ignored MsgTimeoutNow from ${m.from}`);
        return;
      case MessageType.MSG_READ_INDEX:
        this.logger.info(`${this.id} no leader at term ${this.term}; dropping index reading msg`);
        return;
    }
    if (m.type === myVoteResp) {
      const { granted, rejected, result } = this.poll(m.from, m.type, !m.reject);
      this.logger.info(`${this.id} has received ${granted} ${msgType(m.type)} votes and ${rejected} vote rejections`);
      if (result === VoteResult.Won) {
        if (this.state === StateType.PreCandidate) {
          this.campaign('election');
        } else {
          this.becomeLeader();
          this.bcastAppend();
        }
      } else if (result === VoteResult.Lost) {
        // A rejected PreVoteResp carries our term (not the future one): stay there.
        this.becomeFollower(this.term, NONE);
      }
    }
  };

  private stepFollower = (m: Message): void => {
    switch (m.type) {
      case MessageType.MSG_PROP:
        if (this.lead === NONE) throw new ProposalDroppedError(`no leader at term ${this.term}`);
        if (this.disableProposalForwarding) throw new ProposalDroppedError('proposal forwarding is disabled');
        this.msgs.push(Message.create({ ...m, to: this.lead, from: m.from || this.id }));
        return;
      case MessageType.MSG_APP:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.MSG_HEARTBEAT:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.MSG_SNAP:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.MSG_TRANSFER_LEADER:
        if (this.lead === NONE) {
          this.logger.info(`${this.id} no leader at term ${this.term}; dropping leader transfer msg`);
          return;
        }
        this.msgs.push(Message.create({ ...m, to: this.lead }));
        return;
      case MessageType.MSG_TIMEOUT_NOW:
        this.logger.info(`${this.id} [term ${this.term}] received MsgTimeoutNow from ${m.from} and starts an election to get leadership`);
        // Leadership transfer never uses PreVote: the old leader asked for this election.
        this.hup('transfer');
        return;
      case MessageType.MSG_READ_INDEX:
        if (this.lead === NONE) {
          this.logger.info(`${this.id} no leader at term ${this.term}; dropping index reading msg`);
          return;
        }
        this.msgs.push(Message.create({ ...m, to: this.lead, from: m.from || this.id }));
        return;
      case MessageType.MSG_READ_INDEX_RESP:
        if (m.entries.length !== 1) {
          this.logger.warn(`${this.id} invalid format of MsgReadIndexResp from ${m.from}, entries count: ${m.entries.length}`);
          return;
        }
        this.readStates.push({ index: m.index, requestCtx: m.entries[0]!.data });
        return;
    }
  };

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Everything up to our commit index is known to match; tell the leader where we are.
      this.send({ to: m.from, type: MessageType.MSG_APP_RESP, index: this.raftLog.committed });
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send({ to: m.from, type: MessageType.MSG_APP_RESP, index: lastNew });
      return;
    }
    this.logger.debug(
      `${this.id} [logterm: ${this.raftLog.zeroTermOnOutOfBounds(m.index)}, index: ${m.index}] rejected MsgApp [logterm: ${m.logTerm}, index: ${m.index}] from ${m.from}`,
    );
    // Hint where our log could match: the last index ≤ m.index whose term is ≤ m.logTerm. The
    // leader can then skip a whole term of mismatching entries in one round trip.
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex());
    const [idx, t] = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    this.send({ to: m.from, type: MessageType.MSG_APP_RESP, index: m.index, reject: true, rejectHint: idx, logTerm: t });
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send({ to: m.from, type: MessageType.MSG_HEARTBEAT_RESP, context: m.context });
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot!;
    if (this.restore(s)) {
      this.logger.info(`${this.id} [commit: ${this.raftLog.committed}] restored snapshot [index: ${snapIndex(s)}, term: ${snapTerm(s)}]`);
      this.send({ to: m.from, type: MessageType.MSG_APP_RESP, index: this.raftLog.lastIndex() });
    } else {
      this.logger.info(`${this.id} [commit: ${this.raftLog.committed}] ignored snapshot [index: ${snapIndex(s)}, term: ${snapTerm(s)}]`);
      this.send({ to: m.from, type: MessageType.MSG_APP_RESP, index: this.raftLog.committed });
    }
  }

  /** Replaces the log with a snapshot if it is newer than what we have committed. */
  private restore(s: Snapshot): boolean {
    const idx = snapIndex(s);
    if (idx <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // Only a follower receives snapshots (from its leader); anything else is a bug. Move to a
      // higher term as a follower so that no leader of this term is ours.
      this.logger.warn(`${this.id} attempted to restore snapshot as leader; should never happen`);
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const cs = s.metadata?.confState ?? ConfState.create();
    const found = [cs.voters, cs.learners, cs.votersOutgoing].some((set) => set.includes(this.id));
    if (!found) {
      // A member added after the leader's latest snapshot receives that snapshot: it is not in its
      // configuration yet, and learns it is a member from the log entries that follow (as a
      // brand-new member with an empty log does). etcd refuses here and relies on the application
      // taking a fresh snapshot; accepting is as safe, since only a leader that tracks us sends one.
      this.logger.info(`${this.id} restoring snapshot [index: ${idx}] whose configuration does not include it yet`);
    }
    if (this.raftLog.matchTerm(idx, snapTerm(s))) {
      // We already have the entry the snapshot ends at: fast-forward the commit index instead.
      this.logger.info(
        `${this.id} [commit: ${this.raftLog.committed}, lastindex: ${this.raftLog.lastIndex()}] fast-forwarded commit to snapshot [index: ${idx}, term: ${snapTerm(s)}]`,
      );
      this.raftLog.commitTo(idx);
      return false;
    }
    this.raftLog.restore(s);
    this.trk.config = { voters: [new Set(), new Set()], learners: new Set(), learnersNext: new Set(), autoLeave: false };
    this.trk.progress = new Map();
    const restored = restoreConfig(this.trk, cs, this.raftLog.lastIndex());
    this.switchToConfig(restored);
    return true;
  }

  // ---------------------------------------------------------------- reads

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.zeroTermOnOutOfBounds(this.raftLog.committed) === this.term;
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendReadIndexResponse(m);
  }

  private sendReadIndexResponse(m: Message): void {
    if (this.readOnly.option === 'lease-based' || mutant('read-without-quorum')) {
      // The lease (CheckQuorum's guarantee that no other leader exists within an election
      // timeout) stands in for the heartbeat round.
      this.respondToReadIndex(m, this.raftLog.committed);
      return;
    }
    const ctx = m.entries[0]!.data;
    this.readOnly.addRequest(this.raftLog.committed, m);
    this.readOnly.recvAck(this.id, ctx);
    this.bcastHeartbeatWithCtx(ctx);
  }

  private respondToReadIndex(req: Message, index: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index, requestCtx: req.entries[0]!.data });
      return;
    }
    this.send({ to: req.from, type: MessageType.MSG_READ_INDEX_RESP, index, entries: req.entries });
  }

  // ---------------------------------------------------------------- commit, transfer, membership

  private maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  private sendTimeoutNow(to: string): void {
    this.send({ to, type: MessageType.MSG_TIMEOUT_NOW });
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  /** Called by RawNode.advance once the application applied up to index. */
  appliedTo(index: number): void {
    const newApplied = Math.max(index, this.raftLog.applied);
    this.raftLog.appliedTo(newApplied);
    if (this.trk.config.autoLeave && newApplied >= this.pendingConfIndex && this.state === StateType.Leader) {
      // The joint configuration we entered is applied: propose leaving it (an empty change).
      try {
        this.step(
          Message.create({
            type: MessageType.MSG_PROP,
            entries: [Entry.create({ type: EntryType.ENTRY_CONF_CHANGE, data: ConfChange.encode(ConfChange.create()) })],
          }),
        );
        this.logger.info(`${this.id} initiating automatic transition out of joint configuration ${describeConfig(this.trk.config)}`);
      } catch (e) {
        this.logger.debug(`${this.id} not initiating automatic transition out of joint configuration: ${(e as Error).message}`);
      }
    }
  }

  /** Applies a committed conf change entry; returns the new configuration. */
  applyConfChange(cc: ConfChange): ConfState {
    const changer = new Changer(this.trk, this.raftLog.lastIndex());
    let res: ChangeResult;
    if (leavesJoint(cc)) {
      res = changer.leaveJoint();
    } else {
      const { joint, autoLeave } = enterJointOf(cc);
      res = joint ? changer.enterJoint(autoLeave, cc.changes) : changer.simple(cc.changes);
    }
    return this.switchToConfig(res);
  }

  private switchToConfig(res: ChangeResult): ConfState {
    this.trk.config = res.config;
    this.trk.progress = res.progress;
    this.logger.info(`${this.id} switched to configuration ${describeConfig(this.trk.config)}`);
    const cs = this.trk.confState();
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr?.isLearner ?? false;
    if ((!pr || this.isLearner) && this.state === StateType.Leader) {
      // A leader removed or demoted to learner steps down at once; the others elect a new leader
      // (after an election timeout, or sooner if the application transferred leadership first).
      this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (this.state !== StateType.Leader || cs.voters.length === 0) return cs;
    // The quorum may have shrunk, committing more; and new members need entries.
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else {
      for (const id of this.trk.ids()) this.maybeSendAppend(id, false);
    }
    const tr = this.leadTransferee;
    if (tr !== NONE && !this.trk.config.voters[0].has(tr) && !this.trk.config.voters[1].has(tr)) this.abortLeaderTransfer();
    return cs;
  }
}
