// Unit tests of the Raft core, one behaviour each, over real RawNodes and
// MemoryStorage driven synchronously (no timers, no I/O).
import { describe, expect, it } from 'vitest';
import {
  ConfChange,
  ConfChangeSingle,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  Message,
  MessageType,
  Snapshot,
  SnapshotMetadata,
} from '../../../proto/gen/raft.js';
import { MemoryStorage, RawNode, StateType, type Ready } from '../../../manager/raft/index.js';
import { VoteResult, jointCommitted, jointVote, majorityCommitted, majorityVote } from '../../../manager/raft/quorum.js';
import { Changer, ConfChangeError, restoreConfig } from '../../../manager/raft/confchange.js';
import { Inflights, ProgressTracker } from '../../../manager/raft/tracker.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

interface N {
  rn: RawNode;
  st: MemoryStorage;
}

/** A synchronous cluster: process every Ready, deliver every message, until quiet. */
class Net {
  nodes = new Map<string, N>();
  dropped = new Set<string>();
  constructor(ids: string[], opts: Partial<{ preVote: boolean; checkQuorum: boolean; learners: string[] }> = {}) {
    for (const id of ids) {
      const st = new MemoryStorage();
      st.applySnapshot(
        Snapshot.create({
          metadata: SnapshotMetadata.create({
            index: 1,
            term: 1,
            confState: ConfState.create({ voters: ids.filter((x) => !opts.learners?.includes(x)), learners: opts.learners ?? [] }),
          }),
        }),
      );
      this.nodes.set(id, {
        st,
        rn: new RawNode({
          id,
          electionTick: 10,
          heartbeatTick: 1,
          storage: st,
          applied: 1,
          rand: () => 0,
          preVote: opts.preVote,
          checkQuorum: opts.checkQuorum,
        }),
      });
    }
  }
  n(id: string): N {
    return this.nodes.get(id)!;
  }
  isolate(id: string): void {
    for (const o of this.nodes.keys()) if (o !== id) this.dropped.add(`${id}>${o}`).add(`${o}>${id}`);
  }
  heal(): void {
    this.dropped.clear();
  }
  stabilize(): void {
    for (let round = 0; round < 1000; round++) {
      const msgs: Message[] = [];
      for (const [, x] of this.nodes) {
        while (x.rn.hasReady()) {
          const rd = x.rn.ready();
          persist(x, rd);
          msgs.push(...rd.messages, ...rd.messagesAfterPersist);
          x.rn.advance();
        }
      }
      if (msgs.length === 0) return;
      for (const m of msgs) if (!this.dropped.has(`${m.from}>${m.to}`)) this.n(m.to).rn.step(m);
    }
    throw new Error('did not stabilize');
  }
  leader(): string | undefined {
    return [...this.nodes].find(([, x]) => x.rn.raft.state === StateType.Leader)?.[0];
  }
}

function persist(x: N, rd: Ready): void {
  if (rd.snapshot) x.st.applySnapshot(rd.snapshot);
  x.st.append(rd.entries);
  if (rd.hardState) x.st.setHardState(rd.hardState);
  for (const e of rd.committedEntries) if (e.type === EntryType.ENTRY_CONF_CHANGE) x.rn.applyConfChange(ConfChange.decode(e.data));
}

const cc = (type: ConfChangeType, nodeId: string): ConfChangeSingle => ConfChangeSingle.create({ type, nodeId });

describe('quorum', () => {
  it('a majority commits the median acknowledged index', () => {
    const acked: Record<string, number> = { a: 5, b: 3, c: 9 };
    expect(majorityCommitted(new Set(['a', 'b', 'c']), (id) => acked[id])).toBe(5);
  });
  it('an unacknowledged voter counts as index 0', () => {
    expect(majorityCommitted(new Set(['a', 'b', 'c']), (id) => ({ a: 7 })[id])).toBe(0);
  });
  it('a joint config commits the smaller of its two majorities', () => {
    const acked: Record<string, number> = { a: 9, b: 9, c: 1, d: 1, e: 9 };
    expect(jointCommitted([new Set(['a', 'b', 'c']), new Set(['c', 'd', 'e'])], (id) => acked[id])).toBe(1);
  });
  it('a vote is won, lost or pending by majority', () => {
    const cfg = new Set(['a', 'b', 'c']);
    expect(
      majorityVote(
        cfg,
        new Map([
          ['a', true],
          ['b', true],
        ]),
      ),
    ).toBe(VoteResult.Won);
    expect(
      majorityVote(
        cfg,
        new Map([
          ['a', false],
          ['b', false],
        ]),
      ),
    ).toBe(VoteResult.Lost);
    expect(
      majorityVote(
        cfg,
        new Map([
          ['a', true],
          ['b', false],
        ]),
      ),
    ).toBe(VoteResult.Pending);
  });
  it('a joint vote needs both majorities', () => {
    const v = new Map([
      ['a', true],
      ['b', true],
      ['d', false],
      ['e', false],
    ]);
    expect(jointVote([new Set(['a', 'b', 'c']), new Set(['c', 'd', 'e'])], v)).toBe(VoteResult.Lost);
  });
});

describe('inflights', () => {
  it('fills up at maxCount and frees by acknowledged index', () => {
    const f = new Inflights(3, 0);
    f.add(5, 10);
    f.add(7, 10);
    f.add(9, 10);
    expect(f.full()).toBe(true);
    f.freeLE(7);
    expect([f.count, f.full()]).toEqual([1, false]);
  });
  it('fills up at maxBytes', () => {
    const f = new Inflights(100, 25);
    f.add(1, 10);
    f.add(2, 10);
    expect(f.full()).toBe(false);
    f.add(3, 10);
    expect(f.full()).toBe(true);
  });
});

describe('membership changes (confchange)', () => {
  const trk = (): ProgressTracker => {
    const t = new ProgressTracker(10, 0);
    const r = restoreConfig(t, ConfState.create({ voters: ['1', '2', '3'] }), 10);
    t.config = r.config;
    t.progress = r.progress;
    return t;
  };
  it('a simple change may change only one voter', () => {
    expect(() => new Changer(trk(), 10).simple([cc(ConfChangeType.CONF_ADD_NODE, '4'), cc(ConfChangeType.CONF_ADD_NODE, '5')])).toThrow(
      ConfChangeError,
    );
  });
  it('removing every voter is refused', () => {
    expect(() =>
      new Changer(trk(), 10).enterJoint(true, [
        cc(ConfChangeType.CONF_REMOVE_NODE, '1'),
        cc(ConfChangeType.CONF_REMOVE_NODE, '2'),
        cc(ConfChangeType.CONF_REMOVE_NODE, '3'),
      ]),
    ).toThrow(/removed all voters/);
  });
  it('demoting an outgoing voter during a joint change stages it in learnersNext', () => {
    const r = new Changer(trk(), 10).enterJoint(false, [
      cc(ConfChangeType.CONF_ADD_LEARNER_NODE, '3'),
      cc(ConfChangeType.CONF_ADD_NODE, '4'),
    ]);
    expect([...r.config.learnersNext]).toEqual(['3']);
    expect([...r.config.voters[0]].sort()).toEqual(['1', '2', '4']);
    expect([...r.config.voters[1]].sort()).toEqual(['1', '2', '3']);
  });
  it('leaving the joint config turns learnersNext into learners', () => {
    const t = trk();
    const j = new Changer(t, 10).enterJoint(false, [cc(ConfChangeType.CONF_ADD_LEARNER_NODE, '3'), cc(ConfChangeType.CONF_ADD_NODE, '4')]);
    const l = new Changer({ ...j, maxInflight: 10, maxInflightBytes: 0 }, 10).leaveJoint();
    expect({ voters: [...l.config.voters[0]].sort(), out: l.config.voters[1].size, learners: [...l.config.learners] }).toEqual({
      voters: ['1', '2', '4'],
      out: 0,
      learners: ['3'],
    });
  });
  it('a ConfState round-trips through restore, joint state included', () => {
    const cs = ConfState.create({ voters: ['1', '2', '4'], votersOutgoing: ['1', '2', '3'], learnersNext: ['3'], autoLeave: true });
    const r = restoreConfig(new ProgressTracker(10, 0), cs, 5);
    const t = new ProgressTracker(10, 0);
    t.config = r.config;
    t.progress = r.progress;
    expect(t.confState()).toEqual(
      ConfState.create({ voters: ['1', '2', '4'], votersOutgoing: ['1', '2', '3'], learnersNext: ['3'], learners: [], autoLeave: true }),
    );
  });
  it('a failed change leaves the tracker untouched', () => {
    const t = trk();
    const before = t.progress.get('3')!.isLearner;
    expect(() =>
      new Changer(t, 10).simple([
        cc(ConfChangeType.CONF_ADD_LEARNER_NODE, '3'),
        cc(ConfChangeType.CONF_ADD_NODE, '5'),
        cc(ConfChangeType.CONF_ADD_NODE, '6'),
      ]),
    ).toThrow();
    expect(t.progress.get('3')!.isLearner).toBe(before);
  });
});

describe('raft core', () => {
  it('votes and append acknowledgements are held until their Ready is persisted', () => {
    const net = new Net(['1', '2', '3']);
    net.n('1').rn.campaign();
    const rd1 = net.n('1').rn.ready();
    net.n('1').rn.advance();
    net.n('2').rn.step(rd1.messages.find((m) => m.to === '2')!);
    const rd2 = net.n('2').rn.ready();
    expect(rd2.messages.filter((m) => m.type === MessageType.MSG_VOTE_RESP)).toEqual([]);
    expect(rd2.messagesAfterPersist.map((m) => [m.type, m.to, m.reject])).toEqual([[MessageType.MSG_VOTE_RESP, '1', false]]);
    expect(rd2.hardState?.vote).toBe('1');
    expect(rd2.mustSync).toBe(true);
  });

  it("a candidate's own vote counts only after advance (its vote is durable)", () => {
    const net = new Net(['1']);
    net.n('1').rn.campaign();
    expect(net.n('1').rn.raft.state).toBe(StateType.Candidate);
    net.n('1').rn.ready();
    net.n('1').rn.advance();
    expect(net.n('1').rn.raft.state).toBe(StateType.Leader);
  });

  it('a leader does not commit an entry of an older term by counting replicas (§5.4.2)', () => {
    const net = new Net(['1', '2', '3']);
    net.n('1').rn.campaign();
    net.stabilize();
    const r = net.n('1').rn.raft;
    // An entry of the current term that only the leader has...
    r.step(Message.create({ type: MessageType.MSG_PROP, from: '1', entries: [Entry.create({ data: enc('x') })] }));
    const idx = r.raftLog.lastIndex();
    const oldTerm = r.term;
    // ...and then the same member leads again in a later term (its new empty entry not yet acked).
    r.becomeFollower(r.term + 1, '');
    r.becomeCandidate();
    r.becomeLeader();
    expect(r.raftLog.term(idx)).toBe(oldTerm);
    const committed = r.raftLog.committed;
    // A majority now has the old-term entry: still not committable by counting.
    r.trk.progress.get('1')!.maybeUpdate(idx);
    r.trk.progress.get('2')!.maybeUpdate(idx);
    expect(r.raftLog.maybeCommit(r.trk.committed(), r.term)).toBe(false);
    expect(r.raftLog.committed).toBe(committed);
    // Once a majority has the new term's entry, both commit.
    r.trk.progress.get('1')!.maybeUpdate(idx + 1);
    r.trk.progress.get('2')!.maybeUpdate(idx + 1);
    expect(r.raftLog.maybeCommit(r.trk.committed(), r.term)).toBe(true);
    expect(r.raftLog.committed).toBe(idx + 1);
  });

  it('a learner never campaigns', () => {
    const net = new Net(['1', '2', '3'], { learners: ['3'] });
    for (let i = 0; i < 50; i++) net.n('3').rn.tick();
    expect(net.n('3').rn.raft.state).toBe(StateType.Follower);
    expect(net.n('3').rn.hasReady()).toBe(false);
  });

  it('a second conf change while one is unapplied becomes an empty entry', () => {
    const net = new Net(['1', '2', '3']);
    net.n('1').rn.campaign();
    net.stabilize();
    net.n('1').rn.proposeConfChange(ConfChange.create({ changes: [cc(ConfChangeType.CONF_ADD_LEARNER_NODE, '4')] }));
    net.n('1').rn.proposeConfChange(ConfChange.create({ changes: [cc(ConfChangeType.CONF_ADD_LEARNER_NODE, '5')] }));
    const ents = net.n('1').rn.raft.raftLog.unstableEntries();
    expect(ents.map((e) => e.type)).toEqual([EntryType.ENTRY_CONF_CHANGE, EntryType.ENTRY_NORMAL]);
    expect(ents[1]!.data.length).toBe(0);
  });

  it('a proposal on a follower without a leader is dropped with a clear error', () => {
    const net = new Net(['1', '2', '3']);
    expect(() => net.n('2').rn.propose(enc('x'))).toThrow(/no leader/);
  });

  it('lease-based reads are refused without CheckQuorum', () => {
    const st = new MemoryStorage(ConfState.create({ voters: ['1'] }));
    expect(
      () => new RawNode({ id: '1', electionTick: 10, heartbeatTick: 1, storage: st, rand: () => 0, readOnlyOption: 'lease-based' }),
    ).toThrow(/checkQuorum/);
  });

  it('a stale leader back from a partition steps down on the first reply of the new term', () => {
    const net = new Net(['1', '2', '3'], { preVote: true, checkQuorum: true });
    net.n('1').rn.campaign();
    net.stabilize();
    net.isolate('1');
    // 3's lease on leader 1 runs out without it campaigning; then 2 campaigns and wins.
    net.n('3').rn.raft.randomizedElectionTimeout = 25;
    for (let i = 0; i < 10; i++) net.n('3').rn.tick();
    for (let i = 0; i < 10; i++) net.n('2').rn.tick();
    net.stabilize();
    expect(net.n('2').rn.raft.state).toBe(StateType.Leader);
    const newLeader = '2';
    net.heal();
    net.n('1').rn.raft.step(Message.create({ type: MessageType.MSG_BEAT, from: '1' }));
    net.stabilize();
    expect(net.n('1').rn.raft.state).toBe(StateType.Follower);
    expect(net.n('1').rn.raft.term).toBe(net.n(newLeader).rn.raft.term);
    // The next heartbeat tells it who leads.
    net.n(newLeader).rn.tick();
    net.stabilize();
    expect(net.n('1').rn.raft.lead).toBe(newLeader);
  });

  it('bootstrap commits the founding configuration as log entries', () => {
    const st = new MemoryStorage();
    const rn = new RawNode({ id: 'a', electionTick: 10, heartbeatTick: 1, storage: st, rand: () => 0 });
    rn.bootstrap(['a', 'b', 'c']);
    const rd = rn.ready();
    expect(rd.entries.map((e) => [e.index, e.term, e.type])).toEqual([
      [1, 1, EntryType.ENTRY_CONF_CHANGE],
      [2, 1, EntryType.ENTRY_CONF_CHANGE],
      [3, 1, EntryType.ENTRY_CONF_CHANGE],
    ]);
    expect(rd.committedEntries.length).toBe(3);
    expect(rd.hardState).toMatchObject({ term: 1, commit: 3 });
    expect(rn.status().config.voters).toEqual(['a', 'b', 'c']);
  });

  it('a restarted member rebuilds its configuration by applying the logged conf changes', () => {
    const st = new MemoryStorage();
    const rn = new RawNode({ id: 'a', electionTick: 10, heartbeatTick: 1, storage: st, rand: () => 0 });
    rn.bootstrap(['a']);
    const rd = rn.ready();
    st.append(rd.entries);
    st.setHardState(rd.hardState!);
    rn.advance();
    const again = new RawNode({ id: 'a', electionTick: 10, heartbeatTick: 1, storage: st, rand: () => 0 });
    expect(again.status().config.voters).toEqual([]);
    const rd2 = again.ready();
    for (const e of rd2.committedEntries) again.applyConfChange(ConfChange.decode(e.data));
    again.advance();
    expect(again.status().config.voters).toEqual(['a']);
  });

  it('ready() refuses a step before advance()', () => {
    const net = new Net(['1']);
    net.n('1').rn.campaign();
    net.n('1').rn.ready();
    expect(() => net.n('1').rn.tick()).toThrow(/between ready\(\) and advance\(\)/);
  });
});
