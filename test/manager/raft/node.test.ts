// The RaftNode driver settles every proposal: a cluster of real RaftNodes over
// an in-memory network whose messages the test delivers round by round, with
// ticks only when the test gives them. Partitions, elections and snapshots are
// staged explicitly, so each case reaches its path on every run.
import { describe, expect, it } from 'vitest';
import { ConfChangeTransition, ConfChangeType, HardState, type Message } from '../../../proto/gen/raft.js';
import { ProposalLostError, ProposalOutcomeUnknownError, RaftNode, type StateMachine } from '../../../manager/raft/node.js';
import { ConfChangeError, ProposalDroppedError, StateType } from '../../../manager/raft/index.js';
import { MemoryStore, OutcomeUnknownError } from '../../../manager/store/index.js';
import { Meta, Node, NodeSpec } from '../../../proto/gen/objects.js';

const ELECTION = 10;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

class ListSM implements StateMachine {
  items: string[] = [];
  apply(d: Uint8Array): void {
    this.items.push(new TextDecoder().decode(d));
  }
  snapshot(): Uint8Array {
    return enc(JSON.stringify(this.items));
  }
  restore(d: Uint8Array): void {
    this.items = d.length ? (JSON.parse(new TextDecoder().decode(d)) as string[]) : [];
  }
}

interface Member {
  id: string;
  node: RaftNode;
  sm: StateMachine;
  fatal: Error[];
}

interface ClusterOptions {
  proposalTimeoutTicks?: number;
  snapshotEntries?: number;
  /** A MemoryStore as each member's state machine (proposing through its member). */
  stores?: boolean;
}

/** Members whose messages wait in `queue` until the test delivers them; `cut` holds the "from>to" links that drop. */
class Cluster {
  readonly members = new Map<string, Member>();
  queue: Message[] = [];
  readonly cut = new Set<string>();

  static async start(ids: string[], o: ClusterOptions = {}): Promise<Cluster> {
    const c = new Cluster();
    for (const [k, id] of ids.entries()) {
      const fatal: Error[] = [];
      let node: RaftNode | undefined;
      const sm: StateMachine = o.stores ? new MemoryStore({ propose: (d) => node!.propose(d) }) : new ListSM();
      node = await RaftNode.open({
        id,
        loaded: { hardState: HardState.create(), snapshot: null, entries: [] },
        persistence: { persist: async () => undefined, compact: async () => undefined },
        transport: { send: (msgs) => c.queue.push(...msgs) },
        stateMachine: sm,
        bootstrap: ids,
        electionTick: ELECTION,
        heartbeatTick: 1,
        // The longest randomized timeout (2×ELECTION−1): a follower never campaigns on its own
        // within the ticks a test gives, while its leader lease (ELECTION ticks) can run out.
        rand: (n) => n - 1,
        nonce: BigInt(k + 1),
        proposalTimeoutTicks: o.proposalTimeoutTicks ?? 1000,
        snapshotEntries: o.snapshotEntries ?? 0,
        keepEntries: 0,
        onFatal: (e) => fatal.push(e),
      });
      c.members.set(id, { id, node, sm, fatal });
    }
    // The bootstrap configuration is applied before anyone may campaign.
    await c.idle();
    return c;
  }

  m(id: string): Member {
    return this.members.get(id)!;
  }

  node(id: string): RaftNode {
    return this.m(id).node;
  }

  items(id: string): string[] {
    return (this.m(id).sm as ListSM).items;
  }

  async idle(): Promise<void> {
    await Promise.all([...this.members.values()].map((m) => m.node.idle()));
  }

  /** Delivers what is queued now (one round), then waits for every member to handle it. */
  async round(): Promise<void> {
    await this.idle();
    const q = this.queue;
    this.queue = [];
    for (const m of q) if (!this.cut.has(`${m.from}>${m.to}`)) this.members.get(m.to)?.node.step(m);
    await this.idle();
  }

  /** Delivers rounds until no message is left. */
  async settle(): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      await this.round();
      if (this.queue.length === 0) return;
    }
    throw new Error('the cluster did not quiesce');
  }

  /** Proposes on `id` and delivers until quiet: resolves or rejects as the proposal does. */
  async propose(id: string, data: string): Promise<number> {
    const p = this.node(id).propose(enc(data));
    p.catch(() => undefined);
    await this.settle();
    return p;
  }

  async tick(n: number, ids = [...this.members.keys()]): Promise<void> {
    for (let i = 0; i < n; i++) {
      for (const id of ids) this.node(id).tick();
      await this.settle();
    }
  }

  isolate(id: string): void {
    for (const o of this.members.keys()) {
      if (o === id) continue;
      this.cut.add(`${id}>${o}`);
      this.cut.add(`${o}>${id}`);
    }
  }

  /** Cuts every link between the two groups, both ways. */
  split(a: string[], b: string[]): void {
    for (const x of a) {
      for (const y of b) {
        this.cut.add(`${x}>${y}`);
        this.cut.add(`${y}>${x}`);
      }
    }
  }

  heal(): void {
    this.cut.clear();
  }

  async elect(id: string): Promise<void> {
    this.node(id).campaign();
    await this.settle();
    expect(this.node(id).isLeader).toBe(true);
  }

  async stop(): Promise<void> {
    for (const m of this.members.values()) await m.node.stop();
    for (const m of this.members.values()) expect(m.fatal).toEqual([]);
  }
}

/** The promise's outcome so far, without waiting: a test checks that a proposal has settled at a given point. */
function watch<T>(p: Promise<T>): { settled: () => boolean; result: () => Promise<T> } {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  return { settled: () => done, result: () => p };
}

describe('every proposal settles', () => {
  it("a partitioned leader's uncommitted proposal settles as outcome-unknown when it steps down, and never applies", async () => {
    const c = await Cluster.start(['a', 'b', 'c']);
    await c.elect('a');
    c.isolate('a');
    const p = watch(c.node('a').propose(enc('x')));
    await c.settle();
    expect(p.settled()).toBe(false);
    // CheckQuorum: a leader that hears no quorum for a whole election timeout steps down.
    await c.tick(2 * ELECTION + 1, ['a']);
    expect(c.node('a').isLeader).toBe(false);
    expect(p.settled()).toBe(true);
    const err = await p.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProposalOutcomeUnknownError);
    expect(err).toMatchObject({
      code: 'OUTCOME_UNKNOWN',
      message: expect.stringMatching(/lost the leadership before its entry committed/),
    });
    // The others go on without it (once a's lease has run out); healed, the old leader takes their log.
    await c.tick(ELECTION + 1, ['b', 'c']);
    await c.elect('b');
    await expect(c.propose('b', 'y')).resolves.toBeGreaterThan(0);
    c.heal();
    await c.tick(2);
    for (const id of ['a', 'b', 'c']) expect(c.items(id)).toEqual(['y']);
    await c.stop();
  });

  it('a store write that the next leader may still commit settles as OutcomeUnknownError, not as refused, and it does apply later', async () => {
    const c = await Cluster.start(['a', 'b', 'c'], { stores: true });
    await c.elect('a');
    const store = (id: string): MemoryStore => c.m(id).sm as MemoryStore;
    // a's entry reaches b only, and b's ack never reaches a: appended on a and b, committed nowhere.
    c.cut.add('a>c');
    c.cut.add('b>a');
    const w = watch(
      store('a').update((tx) => tx.nodes.create(Node.create({ meta: Meta.create({ id: 'n1' }), spec: NodeSpec.create({ name: 'h1' }) }))),
    );
    await c.settle();
    expect(w.settled()).toBe(false);
    c.isolate('a');
    await c.tick(2 * ELECTION + 1, ['a']);
    expect(w.settled()).toBe(true);
    const err = await w.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/is unknown \(this member lost the leadership/) });
    // b has the entry and the longer log: it wins, and its first commit commits the write too.
    await c.tick(ELECTION + 1, ['b', 'c']);
    await c.elect('b');
    c.heal();
    await c.tick(2);
    for (const id of ['a', 'b', 'c']) expect(store(id).view((tx) => tx.nodes.get('n1')?.spec?.name)).toBe('h1');
    await c.stop();
  });

  it('a forwarded proposal whose index a new leader fills with another entry settles once that entry applies', async () => {
    const c = await Cluster.start(['a', 'b', 'c', 'd', 'e']);
    await c.elect('a');
    c.split(['a', 'b'], ['c', 'd', 'e']);
    // b forwards to a, a appends and replicates to b: two of five, never committed.
    const p = watch(c.node('b').propose(enc('x')));
    await c.settle();
    expect(c.node('b').rn.raft.raftLog.lastIndex()).toBe(c.node('a').rn.raft.raftLog.lastIndex());
    // The majority side's leases run out, then c takes over and commits its own entries over x's index.
    await c.tick(ELECTION + 1, ['c', 'd', 'e']);
    await c.elect('c');
    await expect(c.propose('c', 'y')).resolves.toBeGreaterThan(0);
    expect(p.settled()).toBe(false);
    c.heal();
    await c.tick(3);
    expect(p.settled()).toBe(true);
    const err = await p.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProposalOutcomeUnknownError);
    expect((err as Error).message).toMatch(/forwarded entry at index \d+ was replaced by another/);
    for (const id of ['a', 'b', 'c', 'd', 'e']) expect(c.items(id)).toEqual(['y']);
    await c.stop();
  });

  it('a proposal covered by an installed snapshot before it applied here settles as outcome-unknown', async () => {
    const c = await Cluster.start(['a', 'b', 'c'], { snapshotEntries: 5 });
    await c.elect('a');
    const p = watch(c.node('b').propose(enc('x')));
    await c.round(); // b's forwarded proposal reaches a, which appends it
    await c.round(); // the append reaches b (and c)
    expect(c.node('b').rn.raft.raftLog.lastIndex()).toBe(c.node('a').rn.raft.raftLog.lastIndex());
    // b hears nothing more: x commits with c, and a snapshot later covers it.
    c.isolate('b');
    await c.settle();
    for (let i = 0; i < 8; i++) await c.propose('a', `y${i}`);
    await c.idle();
    expect(c.node('a').storage.firstIndex()).toBeGreaterThan(c.node('b').rn.raft.raftLog.committed + 1);
    expect(p.settled()).toBe(false);
    c.heal();
    await c.tick(3);
    expect(c.items('b')).toEqual(c.items('a'));
    expect(p.settled()).toBe(true);
    const err = await p.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProposalOutcomeUnknownError);
    expect((err as Error).message).toMatch(/a snapshot up to index \d+ was installed before its entry was applied here/);
    await c.stop();
  });

  it('a proposal whose forwarded message was lost settles as outcome-unknown at its deadline, not before', async () => {
    const c = await Cluster.start(['a', 'b', 'c'], { proposalTimeoutTicks: 30 });
    await c.elect('a');
    c.cut.add('b>a');
    const p = watch(c.node('b').propose(enc('x')));
    await c.tick(29);
    expect(p.settled()).toBe(false);
    await c.tick(1);
    expect(p.settled()).toBe(true);
    await expect(p.result()).rejects.toThrow(/did not settle within 30 ticks/);
    expect(c.items('a')).toEqual([]);
    await c.stop();
  });

  it('a committed proposal resolves with the index it applied at', async () => {
    const c = await Cluster.start(['a', 'b', 'c']);
    await c.elect('a');
    const i = await c.propose('a', 'x');
    expect(i).toBe(c.node('a').appliedIndex);
    await c.stop();
  });
});

describe('membership changes the leader refuses settle their caller', () => {
  const addLearner = (id: string) => ({
    transition: ConfChangeTransition.TRANSITION_AUTO,
    changes: [{ type: ConfChangeType.CONF_ADD_LEARNER_NODE, nodeId: id }],
    context: new Uint8Array(0),
  });
  const remove = (id: string) => ({
    transition: ConfChangeTransition.TRANSITION_AUTO,
    changes: [{ type: ConfChangeType.CONF_REMOVE_NODE, nodeId: id }],
    context: new Uint8Array(0),
  });

  it('removing the last voter is refused before it is proposed, and the member keeps serving', async () => {
    const c = await Cluster.start(['a']);
    await c.elect('a');
    const last = c.node('a').rn.raft.raftLog.lastIndex();
    const err = await c
      .node('a')
      .proposeConfChange(remove('a'))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfChangeError);
    expect((err as Error).message).toMatch(/removed all voters/);
    expect(c.node('a').rn.raft.raftLog.lastIndex()).toBe(last);
    await expect(c.propose('a', 'y')).resolves.toBe(last + 1);
    expect(c.node('a').status().config.voters).toEqual(['a']);
    await c.stop();
  });

  it('a change while another is not yet applied is refused at once with an error, not left waiting on an empty entry', async () => {
    const c = await Cluster.start(['a', 'b', 'c']);
    await c.elect('a');
    c.isolate('a'); // the first change cannot commit
    const first = watch(c.node('a').proposeConfChange(addLearner('d')));
    await c.settle();
    const err = await c
      .node('a')
      .proposeConfChange(addLearner('e'))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProposalDroppedError);
    expect((err as Error).message).toMatch(/membership change at index \d+ is not applied yet.*retry once it is/);
    expect(first.settled()).toBe(false);
    c.heal();
    await c.tick(2);
    await expect(first.result()).resolves.toBeGreaterThan(0);
    expect(c.node('a').status().config.learners).toEqual(['d']);
    await c.stop();
  });

  it('a follower refuses a membership change, naming the leader', async () => {
    const c = await Cluster.start(['a', 'b', 'c']);
    await c.elect('a');
    await expect(c.node('b').proposeConfChange(addLearner('d'))).rejects.toThrow(/this member is not it \(leader: a\)/);
    expect(c.node('a').status().raftState).toBe(StateType.Leader);
    await c.stop();
  });
});

it('ProposalLostError is a dropped proposal: it did not happen, and may be retried as it is', () => {
  const e = new ProposalLostError(7, 2);
  expect(e).toBeInstanceOf(ProposalDroppedError);
  expect(e.code).toBe('PROPOSAL_DROPPED');
  expect(e.message).toMatch(/index 7 \(term 2\).*not applied: retry it/);
});
