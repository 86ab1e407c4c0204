// RawNode: the synchronous API around the core. The caller feeds it ticks,
// messages and proposals, takes a Ready batch (what to persist, send and
// apply), does the work, and calls advance(). No step may happen between
// ready() and advance() except applyConfChange: the driver queues them.
import {
  ConfChange,
  ConfChangeSingle,
  ConfChangeType,
  type ConfState,
  Entry,
  EntryType,
  type HardState,
  Message,
  MessageType,
  type Snapshot,
} from '../../proto/gen/raft.js';
import { RaftError, invariant } from './errors.js';
import { NONE, Raft, type RaftConfig, type ReadState, type SoftState, StateType, isLocalMsg, isResponseMsg } from './raft.js';
import { payloadSize, snapIndex } from './storage.js';
import { ProgressState } from './tracker.js';

export interface Ready {
  /** Leader and role, when they changed (volatile, not persisted). */
  softState?: SoftState;
  /** Term, vote and commit, when they changed: persist before messagesAfterPersist leave. */
  hardState?: HardState;
  readStates: ReadState[];
  /** Entries to append to stable storage (an entry at index i replaces stored entries ≥ i). */
  entries: Entry[];
  /** A snapshot to persist and load into the state machine. */
  snapshot?: Snapshot;
  /** Committed entries to apply, in order (call applyConfChange for conf change entries). */
  committedEntries: Entry[];
  /** Messages that may be sent at once, even before this Ready is persisted (thesis §10.2.1: a leader writes its log in parallel with its followers). */
  messages: Message[];
  /** Acknowledgements and votes: they promise durability, so they leave only after this Ready is persisted. */
  messagesAfterPersist: Message[];
  /** Whether the persistence of this Ready needs an fsync (new entries, or a term or vote change). */
  mustSync: boolean;
}

export interface Status {
  id: string;
  term: number;
  vote: string;
  commit: number;
  applied: number;
  lead: string;
  raftState: StateType;
  leadTransferee: string;
  config: ConfState;
  progress: Record<string, { match: number; next: number; state: string; recentActive: boolean; isLearner: boolean }>;
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export class RawNode {
  readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private stepsOnAdvance: Message[] = [];
  private inReady: Ready | undefined;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoft = this.raft.softState();
    this.prevHard = this.raft.hardState();
  }

  /**
   * Starts a brand-new cluster: the initial members become conf change entries 1..n of term 1,
   * committed, so the configuration is persisted through the log like any later change.
   * Only valid on empty storage.
   */
  bootstrap(voters: string[]): void {
    const r = this.raft;
    invariant(r.raftLog.lastIndex() === 0, 'bootstrap needs empty storage');
    invariant(voters.length > 0, 'bootstrap needs at least one voter');
    r.becomeFollower(1, NONE);
    const ents = voters.map((id, i) =>
      Entry.create({
        term: 1,
        index: i + 1,
        type: EntryType.ENTRY_CONF_CHANGE,
        data: ConfChange.encode(
          ConfChange.create({ changes: [ConfChangeSingle.create({ type: ConfChangeType.CONF_ADD_NODE, nodeId: id })] }),
        ),
      }),
    );
    r.raftLog.append(ents);
    // Committed by fiat: every member bootstraps with the same entries. They are applied again
    // from the first Ready (adding an existing voter is a no-op).
    r.raftLog.committed = ents.length;
    for (const id of voters) {
      r.applyConfChange(ConfChange.create({ changes: [ConfChangeSingle.create({ type: ConfChangeType.CONF_ADD_NODE, nodeId: id })] }));
    }
  }

  tick(): void {
    this.assertNotInReady('tick');
    this.raft.tick();
  }

  /** Campaigns at once (a single-member bootstrap, or a test). */
  campaign(): void {
    this.assertNotInReady('campaign');
    this.raft.step(Message.create({ type: MessageType.MSG_HUP }));
  }

  /** Proposes data to be appended; throws ProposalDroppedError if it cannot be. */
  propose(data: Uint8Array): void {
    this.assertNotInReady('propose');
    this.raft.step(Message.create({ type: MessageType.MSG_PROP, from: this.raft.id, entries: [Entry.create({ data })] }));
  }

  /** Proposes several entries in one message (leader-side batching of client proposals). */
  proposeBatch(datas: Uint8Array[]): void {
    this.assertNotInReady('propose');
    if (datas.length === 0) return;
    this.raft.step(
      Message.create({ type: MessageType.MSG_PROP, from: this.raft.id, entries: datas.map((data) => Entry.create({ data })) }),
    );
  }

  proposeConfChange(cc: ConfChange): void {
    this.assertNotInReady('proposeConfChange');
    this.raft.step(
      Message.create({
        type: MessageType.MSG_PROP,
        from: this.raft.id,
        entries: [Entry.create({ type: EntryType.ENTRY_CONF_CHANGE, data: ConfChange.encode(cc) })],
      }),
    );
  }

  /** Applies a committed conf change; call it while applying the entry. Returns the new configuration. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Steps a message from a peer. Local message types from the network are refused. */
  step(m: Message): void {
    this.assertNotInReady('step');
    if (isLocalMsg(m.type)) throw new RaftError('STEP_LOCAL_MSG', `raft: cannot step raft local message ${MessageType[m.type]}`);
    if (isResponseMsg(m.type) && !this.raft.trk.progress.has(m.from)) {
      // A response from a member we no longer know (removed): ignore it.
      return;
    }
    this.raft.step(m);
  }

  /** Asks for a linearizable read point; the answer arrives as a ReadState with the same ctx. */
  readIndex(ctx: Uint8Array): void {
    this.assertNotInReady('readIndex');
    this.raft.step(Message.create({ type: MessageType.MSG_READ_INDEX, entries: [Entry.create({ data: ctx })] }));
  }

  /** Asks the leader to hand leadership to `transferee` (on the leader, or forwarded from a follower). */
  transferLeadership(transferee: string): void {
    this.assertNotInReady('transferLeadership');
    this.raft.step(Message.create({ type: MessageType.MSG_TRANSFER_LEADER, from: transferee }));
  }

  reportUnreachable(id: string): void {
    this.assertNotInReady('reportUnreachable');
    this.raft.step(Message.create({ type: MessageType.MSG_UNREACHABLE, from: id }));
  }

  reportSnapshot(id: string, ok: boolean): void {
    this.assertNotInReady('reportSnapshot');
    this.raft.step(Message.create({ type: MessageType.MSG_SNAP_STATUS, from: id, reject: !ok }));
  }

  hasReady(): boolean {
    const r = this.raft;
    const soft = r.softState();
    if (soft.lead !== this.prevSoft.lead || soft.raftState !== this.prevSoft.raftState) return true;
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHard)) return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.msgsAfterAppend.length > 0 || r.readStates.length > 0) return true;
    if (r.raftLog.unstableEntries().length > 0) return true;
    return r.raftLog.hasNextCommittedEnts();
  }

  ready(): Ready {
    this.assertNotInReady('ready');
    const r = this.raft;
    const rd: Ready = {
      readStates: r.readStates,
      entries: r.raftLog.unstableEntries().slice(),
      committedEntries: r.raftLog.nextCommittedEnts(),
      messages: r.msgs,
      messagesAfterPersist: [],
      mustSync: false,
    };
    const soft = r.softState();
    if (soft.lead !== this.prevSoft.lead || soft.raftState !== this.prevSoft.raftState) {
      rd.softState = soft;
      this.prevSoft = soft;
    }
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHard)) rd.hardState = hs;
    if (r.raftLog.unstable.snapshot) rd.snapshot = r.raftLog.unstable.snapshot;
    // A commit index change alone needs no fsync: it can be recovered from the leader.
    rd.mustSync =
      rd.entries.length > 0 ||
      (rd.hardState !== undefined && (hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote)) ||
      rd.snapshot !== undefined;
    if (rd.hardState) this.prevHard = hs;

    r.msgs = [];
    r.readStates = [];
    for (const m of r.msgsAfterAppend) {
      if (m.to === r.id) this.stepsOnAdvance.push(m);
      else rd.messagesAfterPersist.push(m);
    }
    r.msgsAfterAppend = [];
    if (rd.committedEntries.length > 0) {
      const last = rd.committedEntries[rd.committedEntries.length - 1]!;
      r.raftLog.acceptApplying(last.index);
      if (r.state === StateType.Leader) r.reduceUncommittedSize(payloadSize(rd.committedEntries));
    }
    this.inReady = rd;
    return rd;
  }

  /** The Ready was persisted, sent and applied. */
  advance(): void {
    const rd = this.inReady;
    invariant(rd !== undefined, 'advance() without ready()');
    this.inReady = undefined;
    const r = this.raft;
    if (rd.snapshot) r.raftLog.stableSnapTo(snapIndex(rd.snapshot));
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      r.raftLog.stableTo(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) r.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index);
    const steps = this.stepsOnAdvance;
    this.stepsOnAdvance = [];
    for (const m of steps) r.step(m);
  }

  /** Whether a ready() is awaiting its advance(). */
  get inProgress(): boolean {
    return this.inReady !== undefined;
  }

  status(): Status {
    const r = this.raft;
    const progress: Status['progress'] = {};
    if (r.state === StateType.Leader) {
      for (const [id, pr] of r.trk.progress) {
        progress[id] = {
          match: pr.match,
          next: pr.next,
          state: ProgressState[pr.state],
          recentActive: pr.recentActive,
          isLearner: pr.isLearner,
        };
      }
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.raftLog.committed,
      applied: r.raftLog.applied,
      lead: r.lead,
      raftState: r.state,
      leadTransferee: r.leadTransferee,
      config: r.trk.confState(),
      progress,
    };
  }

  private assertNotInReady(what: string): void {
    invariant(this.inReady === undefined, () => `${what}() between ready() and advance(): queue it until advance`);
  }
}

export { NONE };
