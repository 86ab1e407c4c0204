// The store as a Raft state machine: replicas applying the same entries end
// identical (refused entries included), snapshots restore state and indexes,
// and a proposer's refusal or a lost outcome reaches the writer.
import { describe, expect, it } from 'vitest';
import { LocalProposer, localStore, MemoryStore, OutcomeUnknownError, VersionConflictError } from '../../../manager/store/index.js';
import { Node, Service, Task, TaskState } from '../../../proto/gen/objects.js';
import { follower, ids, node, recordingStore, secret, service, task } from './fixtures.js';

/** A history with creates, updates, deletes, refused writes and same-name nodes. */
async function history(s: MemoryStore): Promise<void> {
  await s.update((tx) => {
    tx.nodes.create(node('n1', 'h1'));
    tx.nodes.create(node('n2', 'h2'));
    tx.services.create(service('s1', 'web', 2));
    tx.tasks.create(task('t1', 's1', 'n1', 1));
    tx.tasks.create(task('t2', 's1', 'n2', 2));
    tx.secrets.create(secret('x1', 'pw', [1, 2]));
  });
  const sv = s.view((tx) => tx.services.get('s1'))!;
  await s.update((tx) => tx.services.update(Service.create({ ...sv, spec: { ...sv.spec, labels: { v: '2' } }, previousSpec: sv.spec })));
  // Refused: stale version.
  await s
    .update((tx) => tx.services.update(Service.create({ ...sv, spec: { ...sv.spec, labels: { v: 'stale' } } })))
    .catch(() => undefined);
  const t2 = s.view((tx) => tx.tasks.get('t2'))!;
  await s.update((tx) => {
    tx.tasks.update(Task.create({ ...t2, desiredState: TaskState.SHUTDOWN }));
    tx.tasks.create(task('t3', 's1', 'n1', 2));
    tx.nodes.create(node('n3', 'h1'));
  });
  const t1 = s.view((tx) => tx.tasks.get('t1'))!;
  await s.update((tx) => tx.tasks.delete(t1));
}

/** Everything a reader can observe, including index answers. */
function observe(s: MemoryStore): unknown {
  return s.view((tx) => ({
    nodes: tx.nodes.list(),
    services: tx.services.list(),
    tasks: tx.tasks.list(),
    secrets: tx.secrets.list(),
    byNode: ['n1', 'n2'].map((n) => ids(tx.tasks.by('node', n))),
    byService: ids(tx.tasks.by('service', 's1')),
    byState: [TaskState.RUNNING, TaskState.SHUTDOWN].map((st) => ids(tx.tasks.by('desiredState', st))),
    bySlot: ids(tx.tasks.by('slot', 's1/2')),
    nodesNamedH1: ids(tx.nodes.by('name', 'h1')),
    web: tx.services.byName('WEB')?.meta?.id,
  }));
}

describe('store replication', () => {
  it('two stores applying the same entries, refused ones included, end byte-identical', async () => {
    const { store: leader, log } = recordingStore();
    await history(leader);
    const f = follower();
    log.forEach((d, i) => f.apply(d, i + 1));
    expect(f.appliedIndex).toBe(leader.appliedIndex);
    expect(f.snapshot()).toEqual(leader.snapshot());
    expect(observe(f)).toEqual(observe(leader));
    expect(f.view((tx) => tx.services.get('s1')!.spec.labels)).toEqual({ v: '2' });
  });

  it('a refused transaction is refused on every replica with the same error, and changes nothing there', async () => {
    const { store: leader, log } = recordingStore();
    await leader.update((tx) => tx.nodes.create(node('n1', 'h1')));
    const n = leader.view((tx) => tx.nodes.get('n1'))!;
    // Both proposals read version 1; the second reaches the log and must be refused everywhere.
    const a = leader.update((tx) => tx.nodes.update(Node.create({ ...n, spec: { ...n.spec, labels: { a: '1' } } })));
    const b = leader.update((tx) => tx.nodes.update(Node.create({ ...n, spec: { ...n.spec, labels: { b: '1' } } })));
    await a;
    await expect(b).rejects.toBeInstanceOf(VersionConflictError);
    const leaderOutcome = leader.lastOutcome;
    const replicas = [follower(), follower()];
    for (const r of replicas) {
      log.forEach((d, i) => r.apply(d, i + 1));
      expect(r.lastOutcome).toEqual(leaderOutcome);
      expect(r.lastOutcome!.error).toMatchObject({ code: 'CONFLICT', table: 'nodes', id: 'n1', readVersion: 1, currentVersion: 2 });
      expect(r.snapshot()).toEqual(leader.snapshot());
    }
  });

  it('a snapshot restores equal tables and indexes, and the restored store goes on identical to the original', async () => {
    const { store: s, log } = recordingStore();
    await history(s);
    const r = follower();
    r.restore(s.snapshot(), s.appliedIndex);
    expect(r.appliedIndex).toBe(s.appliedIndex);
    expect(observe(r)).toEqual(observe(s));
    expect(r.snapshot()).toEqual(s.snapshot());
    // Later entries apply the same on both.
    const n3 = s.view((tx) => tx.nodes.get('n3'))!;
    await s.update((tx) => tx.nodes.delete(n3));
    r.apply(log[log.length - 1]!, log.length);
    expect(observe(r)).toEqual(observe(s));
    expect(r.view((tx) => ids(tx.nodes.by('name', 'h1')))).toEqual(['n1']);
  });

  it('restoring replaces the state entirely; an empty snapshot is an empty store', async () => {
    const s = localStore();
    await history(s);
    s.restore(new Uint8Array(0), 3);
    expect(s.appliedIndex).toBe(3);
    expect(s.view((tx) => [tx.nodes.count(), tx.tasks.count(), tx.tasks.by('node', 'n1').length])).toEqual([0, 0, 0]);
  });

  it('an unreadable snapshot is refused with an error and the state is kept', async () => {
    const s = localStore();
    await s.update((tx) => tx.nodes.create(node('n1', 'h1')));
    expect(() => s.restore(new Uint8Array([0x08, 0x07]), 9)).toThrow(/format 7; this version reads format 1/);
    expect(() => s.restore(new Uint8Array([0x0a, 0xff]), 9)).toThrow(/cannot be decoded/);
    expect(s.view((tx) => tx.nodes.count())).toBe(1);
    expect(s.appliedIndex).toBe(1);
  });

  it('an entry applied out of order, or twice, is a driver bug and throws rather than fork the replicas', async () => {
    const { store: s, log } = recordingStore();
    await s.update((tx) => tx.nodes.create(node('n1', 'h1')));
    expect(() => s.apply(log[0]!, 1)).toThrow(/entry 1 applied after entry 1/);
  });

  it('LocalProposer continues numbering after a restored index', async () => {
    const src = localStore();
    await src.update((tx) => tx.nodes.create(node('n1', 'h1')));
    const p = new LocalProposer();
    const s = new MemoryStore(p);
    p.store = s;
    s.restore(src.snapshot(), 41);
    await expect(s.update((tx) => tx.nodes.create(node('n2', 'h2')))).resolves.toBe(42);
  });

  it("a proposer that refuses (not the leader) rejects the writer with the proposer's error and nothing is applied", async () => {
    const s = follower();
    await expect(s.update((tx) => tx.nodes.create(node('n1', 'h1')))).rejects.toThrow('not the leader');
    expect(s.view((tx) => tx.nodes.count())).toBe(0);
    expect(s.appliedIndex).toBe(0);
  });

  it('a proposal whose entry was replaced by a snapshot before it applied here rejects with OutcomeUnknownError', async () => {
    const src = localStore();
    await src.update((tx) => tx.nodes.create(node('n1', 'h1')));
    const s: MemoryStore = new MemoryStore({
      propose: async () => {
        // The member fell behind and installed a snapshot covering index 5 instead of applying it.
        s.restore(src.snapshot(), 5);
        return 5;
      },
    });
    const err = await s.update((tx) => tx.nodes.create(node('n2', 'h2'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', index: 5 });
  });

  it('only the proposing store reports an outcome to a writer; replicas keep no per-request state', async () => {
    const { store: leader, log } = recordingStore();
    await leader.update((tx) => tx.nodes.create(node('n1', 'h1')));
    await leader.update((tx) => tx.nodes.create(node('n1', 'dup'))).catch(() => undefined);
    const f = follower();
    log.forEach((d, i) => f.apply(d, i + 1));
    // The follower's own writes are unaffected by the leader's request ids.
    await expect(f.update((tx) => tx.nodes.create(node('n2', 'h2')))).rejects.toThrow('not the leader');
    expect((f as unknown as { waiting: Map<string, unknown> }).waiting.size).toBe(0);
    expect((leader as unknown as { waiting: Map<string, unknown> }).waiting.size).toBe(0);
  });
});

describe('the proposing store applies its own writes without decoding them', () => {
  it('a task update that keeps the spec shares the stored spec object, and a follower fed the same log stores an equal task', async () => {
    const { store, log } = recordingStore();
    await store.update((tx) => {
      tx.services.create(service('s1', 'web'));
      tx.tasks.create(Task.create({ ...task('t1', 's1', '', 1), spec: service('s1', 'web').spec.task }));
    });
    const before = store.view((tx) => tx.tasks.get('t1'))!;
    await store.update((tx) =>
      tx.tasks.update(Task.create({ ...before, status: { state: TaskState.PENDING, message: 'pending' } as Task['status'] })),
    );
    const after = store.view((tx) => tx.tasks.get('t1'))!;
    expect(after.spec).toBe(before.spec);
    expect(after.status.state).toBe(TaskState.PENDING);
    const f = follower();
    log.forEach((d, i) => f.apply(d, i + 1));
    expect(f.view((tx) => tx.tasks.get('t1'))).toStrictEqual(after);
  });

  it('values the wire would change (a fraction in an integer field, a negative unsigned) are stored as a follower stores them', async () => {
    const { store, log } = recordingStore();
    await store.update((tx) => tx.tasks.create(Task.create({ ...task('t1', 's1', 'n1', 1), slot: 2.5, restartAttempt: -1 })));
    const f = follower();
    log.forEach((d, i) => f.apply(d, i + 1));
    const mine = store.view((tx) => tx.tasks.get('t1'))!;
    expect(mine).toStrictEqual(f.view((tx) => tx.tasks.get('t1')));
    expect(Number.isInteger(mine.slot)).toBe(true);
  });
});
