// ReadIndex through the real RaftNode driver on a three-member in-memory
// cluster (lossy transport, manual ticks): lost read messages are retried,
// several reads may be outstanding, request ids survive a restart unique, and
// a read right after a snapshot install does not wait for a later entry.
import { afterEach, describe, expect, it } from 'vitest';
import { type Entry, HardState, Message, MessageType, type Snapshot } from '../../../proto/gen/raft.js';
import { RaftNode, ReadTimeoutError, type StateMachine } from '../../../manager/raft/node.js';
import { snapIndex } from '../../../manager/raft/storage.js';

/** What a member made durable, kept in memory so that it can be restarted. */
class MemDisk {
  hardState = HardState.create();
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];

  persist(b: { hardState?: HardState | null; entries: Entry[]; snapshot?: Snapshot | null }): Promise<void> {
    if (b.snapshot && snapIndex(b.snapshot) > 0) {
      this.snapshot = b.snapshot;
      this.entries = [];
    }
    const first = b.entries[0];
    if (first) this.entries = this.entries.filter((e) => e.index < first.index).concat(b.entries);
    if (b.hardState) this.hardState = b.hardState;
    return Promise.resolve();
  }

  compact(s: Snapshot): Promise<void> {
    this.snapshot = s;
    this.entries = this.entries.filter((e) => e.index > snapIndex(s));
    return Promise.resolve();
  }
}

/** A counter: every applied entry adds one. */
class Counter implements StateMachine {
  n = 0;
  apply(): void {
    this.n++;
  }
  restore(data: Uint8Array): void {
    this.n = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
  }
  snapshot(): Uint8Array {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, this.n);
    return b;
  }
}

const IDS = ['n1', 'n2', 'n3'];
let nonces = 1n;

class Cluster {
  nodes = new Map<string, RaftNode>();
  disks = new Map<string, MemDisk>();
  /** Members cut off from everyone. */
  isolated = new Set<string>();
  /** Decides, per message, whether the network loses it. */
  drop: (m: Message) => boolean = () => false;
  sent: Message[] = [];

  async start(id: string, o: { snapshotEntries?: number; readRetryTicks?: number } = {}): Promise<RaftNode> {
    const disk = this.disks.get(id) ?? new MemDisk();
    this.disks.set(id, disk);
    const fresh = disk.hardState.term === 0 && disk.entries.length === 0;
    let seed = 7 + IDS.indexOf(id);
    const node = await RaftNode.open({
      id,
      loaded: { hardState: disk.hardState, snapshot: disk.snapshot, entries: disk.entries.slice() },
      persistence: { persist: (b) => disk.persist(b), compact: (s) => disk.compact(s) },
      transport: { send: (msgs) => this.send(msgs) },
      stateMachine: new Counter(),
      bootstrap: fresh ? IDS : undefined,
      electionTick: 10,
      heartbeatTick: 1,
      snapshotEntries: o.snapshotEntries ?? 0,
      keepEntries: 0,
      readRetryTicks: o.readRetryTicks,
      rand: (n) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n,
      nonce: nonces++ * 0x1234567n,
    });
    this.nodes.set(id, node);
    return node;
  }

  node(id: string): RaftNode {
    return this.nodes.get(id)!;
  }

  private send(msgs: Message[]): void {
    for (const m of msgs) {
      const copy = Message.decode(Message.encode(m));
      this.sent.push(copy);
      if (this.isolated.has(m.to) || this.isolated.has(m.from) || this.drop(copy)) continue;
      setImmediate(() => this.nodes.get(copy.to)?.step(copy));
    }
  }

  /** Lets every queued message and Ready settle. */
  async settle(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setImmediate(r));
      await Promise.all([...this.nodes.values()].map((n) => n.idle()));
    }
  }

  async tick(times = 1): Promise<void> {
    for (let i = 0; i < times; i++) {
      for (const n of this.nodes.values()) n.tick();
      await this.settle();
    }
  }

  /** Ticks until `cond` holds; fails after `max` ticks. */
  async tickUntil(cond: () => boolean, max: number, what: string): Promise<number> {
    for (let i = 0; i <= max; i++) {
      if (cond()) return i;
      await this.tick();
    }
    throw new Error(`${what}: not after ${max} ticks`);
  }

  async elect(id: string): Promise<void> {
    this.node(id).campaign();
    await this.tickUntil(
      () => this.node(id).isLeader && IDS.every((x) => this.isolated.has(x) || this.node(x).leader === id),
      50,
      `${id} leading`,
    );
    // The new leader's empty entry commits: ReadIndex serves only after that.
    const last = this.node(id).status().commit;
    await this.tickUntil(
      () => IDS.every((x) => this.isolated.has(x) || this.node(x).appliedIndex >= last),
      50,
      'everyone applying the leader entry',
    );
  }

  async stop(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.stop()));
  }
}

/** A promise's outcome, observable without awaiting it. */
function track<T>(p: Promise<T>): { done: boolean; value?: T; error?: unknown } {
  const t: { done: boolean; value?: T; error?: unknown } = { done: false };
  p.then(
    (v) => Object.assign(t, { done: true, value: v }),
    (e: unknown) => Object.assign(t, { done: true, error: e }),
  );
  return t;
}

const ctxOf = (m: Message): string => Buffer.from(m.entries[0]?.data ?? new Uint8Array()).toString('hex');
const isRead = (m: Message): boolean => m.type === MessageType.MSG_READ_INDEX;
const isReadResp = (m: Message): boolean => m.type === MessageType.MSG_READ_INDEX_RESP;

describe('RaftNode ReadIndex', () => {
  let c: Cluster;
  afterEach(async () => {
    await c?.stop();
  });

  async function threeMembers(o: { snapshotEntries?: number; readRetryTicks?: number } = {}): Promise<Cluster> {
    c = new Cluster();
    for (const id of IDS) await c.start(id, o);
    await c.elect('n1');
    return c;
  }

  it('answers a read whose MsgReadIndex the network lost, by asking again', async () => {
    await threeMembers();
    let lost = 0;
    c.drop = (m) => isRead(m) && m.from === 'n2' && lost++ === 0;
    const r = track(c.node('n2').readBarrier());
    const ticks = await c.tickUntil(() => r.done, 20, 'the read to complete');
    expect(lost).toBeGreaterThan(1);
    expect(r.error).toBeUndefined();
    expect(r.value).toBe(c.node('n1').status().commit);
    // Asked again after the retry interval (5 ticks), not at the next election.
    expect(ticks).toBeLessThanOrEqual(8);
  });

  it("answers a read whose leader's answer the network lost, by asking again", async () => {
    await threeMembers();
    let lost = 0;
    c.drop = (m) => isReadResp(m) && m.to === 'n3' && lost++ === 0;
    const r = track(c.node('n3').readBarrier());
    await c.tickUntil(() => r.done, 20, 'the read to complete');
    expect(lost).toBe(2);
    expect(r.error).toBeUndefined();
  });

  it('keeps several reads outstanding: a later read completes while an earlier one is still unanswered', async () => {
    await threeMembers();
    let firstCtx = '';
    let lostFirst = 0;
    c.drop = (m) => {
      if (!isRead(m) || m.from !== 'n2') return false;
      firstCtx ||= ctxOf(m);
      // The first request is lost twice; everything else goes through.
      if (ctxOf(m) !== firstCtx || lostFirst === 2) return false;
      lostFirst++;
      return true;
    };
    const a = track(c.node('n2').readBarrier());
    await c.settle();
    const b = track(c.node('n2').readBarrier());
    await c.tickUntil(() => b.done, 3, 'the second read to complete');
    expect(b.error).toBeUndefined();
    expect(a.done).toBe(false);
    await c.tickUntil(() => a.done, 20, 'the first read to complete');
    expect(a.error).toBeUndefined();
    expect(lostFirst).toBe(2);
  });

  it('fails a read with ReadTimeoutError when its deadline passes without a leader, and forgets it', async () => {
    await threeMembers();
    c.isolated.add('n3');
    const ac = new AbortController();
    const r = track(c.node('n3').readBarrier({ signal: ac.signal }));
    await c.tick(12);
    expect(r.done).toBe(false);
    ac.abort(new DOMException('deadline', 'TimeoutError'));
    await c.settle();
    expect(r.error).toBeInstanceOf(ReadTimeoutError);
    expect((r.error as Error).message).toMatch(/timed out.*no leader is known, or it cannot reach a quorum/);
    expect(c.node('n3').outstandingReads).toEqual([]);
  });

  it('gives read requests ids that differ across a restart of the member', async () => {
    await threeMembers();
    const idsFrom = (): string[] => c.sent.filter((m) => isRead(m) && m.from === 'n2').map(ctxOf);
    const first = track(c.node('n2').readBarrier());
    await c.tickUntil(() => first.done, 20, 'the read before the restart');
    const before = new Set(idsFrom());
    expect(before.size).toBeGreaterThan(0);
    await c.node('n2').stop();
    c.sent = [];
    await c.start('n2');
    await c.tickUntil(() => c.node('n2').leader === 'n1', 30, 'the restarted member to learn the leader');
    const r = track(c.node('n2').readBarrier());
    await c.tickUntil(() => r.done, 20, 'the read after the restart');
    const after = idsFrom();
    expect(after.length).toBeGreaterThan(0);
    for (const id of after) expect(before.has(id)).toBe(false);
    // 64-bit nonce, then a counter.
    expect(after[0]).toHaveLength(32);
  });

  it('serves a read right after a snapshot install without waiting for a later entry', async () => {
    await threeMembers({ snapshotEntries: 1 });
    c.isolated.add('n3');
    const leader = c.node('n1');
    for (let i = 0; i < 10; i++) await leader.propose(new Uint8Array([i]));
    // The leader compacts its whole log, so n3 can only catch up by a snapshot.
    await c.tickUntil(() => snapIndex(leader.storage.snapshot()) === leader.storage.lastIndex(), 30, 'the leader to compact its log');
    const target = leader.storage.lastIndex();
    const n3 = c.node('n3');
    expect(n3.appliedIndex).toBeLessThan(target);
    c.isolated.clear();
    await c.tickUntil(() => snapIndex(n3.storage.snapshot()) === target, 40, 'n3 to install the snapshot');
    const r = track(n3.readBarrier());
    await c.tickUntil(() => r.done, 10, 'the read on n3');
    expect(r.error).toBeUndefined();
    expect(r.value).toBe(target);
    expect(n3.appliedIndex).toBe(target);
    expect(leader.storage.lastIndex()).toBe(target);
  });
});
