// The tasks' secondary indexes against a scan of the whole table, after every
// step of a seeded random run of creates, updates (that move tasks between
// services, nodes, states and slots), deletes, refused transactions, snapshot
// restores and a follower applying the same log: the index lookups that the
// listings use must never drift from what a scan would answer.
import { describe, expect, it } from 'vitest';
import { type MemoryStore, taskSlotKey } from '../../../manager/store/index.js';
import { Task, TaskState, TaskStatus } from '../../../proto/gen/objects.js';
import { follower, recordingStore, task } from './fixtures.js';

/** A small seeded PRNG (mulberry32): the same run on every machine. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SERVICES = ['s1', 's2', 's3', ''];
const NODES = ['n1', 'n2', 'n3', ''];
const STATES = [TaskState.NEW, TaskState.RUNNING, TaskState.SHUTDOWN, TaskState.REMOVE];

/** What each index should hold, computed from a scan. */
type Index = 'service' | 'node' | 'desiredState' | 'slot' | 'running' | 'desiredRunning';
const INDEXES: readonly Index[] = ['service', 'node', 'desiredState', 'slot', 'running', 'desiredRunning'];

function expected(store: MemoryStore): Record<Index, Map<string, string[]>> {
  const out = Object.fromEntries(INDEXES.map((i) => [i, new Map()])) as Record<Index, Map<string, string[]>>;
  const add = (m: Map<string, string[]>, k: string | undefined, id: string): void => {
    if (k === undefined) return;
    m.set(k, [...(m.get(k) ?? []), id]);
  };
  for (const t of store.view((tx) => tx.tasks.list())) {
    add(out.service, t.serviceId || undefined, t.meta.id);
    add(out.node, t.nodeId || undefined, t.meta.id);
    add(out.desiredState, String(t.desiredState), t.meta.id);
    add(out.slot, t.serviceId ? taskSlotKey(t.serviceId, t.slot) : undefined, t.meta.id);
    const wantsRunning = t.serviceId && t.desiredState === TaskState.RUNNING;
    add(out.running, wantsRunning && t.status?.state === TaskState.RUNNING ? t.serviceId : undefined, t.meta.id);
    add(out.desiredRunning, wantsRunning ? t.serviceId : undefined, t.meta.id);
  }
  for (const m of Object.values(out)) for (const [k, v] of m) m.set(k, v.sort());
  return out;
}

function checkIndexes(store: MemoryStore, step: string): void {
  const want = expected(store);
  store.view((tx) => {
    for (const index of INDEXES) {
      const have = new Map([...tx.tasks.indexKeys(index)].map(([k, ids]) => [k, [...ids].sort()]));
      expect(have, `${step}: index ${index}`).toEqual(want[index]);
      for (const [k, ids] of want[index]) {
        // The lookup answers the current objects, in id order, and counts them.
        const got = tx.tasks.by(index, k);
        expect(
          got.map((t) => t.meta.id),
          `${step}: by(${index}, ${k})`,
        ).toEqual(ids);
        expect(got, `${step}: by(${index}, ${k}) objects`).toEqual(ids.map((id) => tx.tasks.get(id)));
        expect(tx.tasks.countBy(index, k)).toBe(ids.length);
      }
    }
    for (const s of SERVICES.filter(Boolean)) if (!want.service.has(s)) expect(tx.tasks.by('service', s)).toEqual([]);
  });
}

const pick = <V>(r: () => number, xs: readonly V[]): V => xs[Math.floor(r() * xs.length)]!;

async function randomRun(seed: number, steps: number): Promise<void> {
  const r = rng(seed);
  const { store, log } = recordingStore();
  let next = 0;
  for (let step = 0; step < steps; step++) {
    const ids = store.view((tx) => tx.tasks.list().map((t) => t.meta.id));
    const op = r();
    const label = `seed ${seed} step ${step}`;
    if (op < 0.35 || ids.length === 0) {
      // A transaction of one to three creates.
      const n = 1 + Math.floor(r() * 3);
      await store.update((tx) => {
        for (let i = 0; i < n; i++)
          tx.tasks.create(
            task(`t${String(next++).padStart(4, '0')}`, pick(r, SERVICES), pick(r, NODES), 1 + Math.floor(r() * 3), pick(r, STATES)),
          );
      });
    } else if (op < 0.7) {
      // Updates that move a task, some reading the same index key twice in a row (the cached order must follow).
      const t = store.view((tx) => tx.tasks.get(pick(r, ids))!);
      store.view((tx) => tx.tasks.by('service', t.serviceId || 'none'));
      const moved = Task.create({
        ...t,
        serviceId: r() < 0.3 ? pick(r, SERVICES) : t.serviceId,
        nodeId: r() < 0.5 ? pick(r, NODES) : t.nodeId,
        desiredState: r() < 0.5 ? pick(r, STATES) : t.desiredState,
        slot: r() < 0.3 ? 1 + Math.floor(r() * 3) : t.slot,
        status: { ...t.status, state: r() < 0.5 ? pick(r, STATES) : (t.status?.state ?? TaskState.NEW), message: `step ${step}` },
      });
      await store.update((tx) => tx.tasks.update(moved));
    } else if (op < 0.85) {
      const t = store.view((tx) => tx.tasks.get(pick(r, ids))!);
      await store.update((tx) => tx.tasks.delete(t));
    } else if (op < 0.95) {
      // A refused transaction: a good update followed by a stale one. Nothing of it may reach the indexes.
      const a = store.view((tx) => tx.tasks.get(pick(r, ids))!);
      const b = store.view((tx) => tx.tasks.get(pick(r, ids))!);
      const before = expected(store);
      await expect(
        store.update((tx) => {
          tx.tasks.update(Task.create({ ...a, serviceId: 's9', nodeId: 'n9' }));
          if (b.meta.id !== a.meta.id) tx.tasks.update(Task.create({ ...b, meta: { ...b.meta, version: b.meta.version + 100 } }));
          else tx.tasks.create(task(a.meta.id, 's9', 'n9', 1));
        }),
      ).rejects.toThrow();
      expect(expected(store), `${label}: refused transaction`).toEqual(before);
    } else {
      // Snapshot and restore, into this store (replacing its indexes) and into a fresh follower.
      const snap = store.snapshot();
      const other = follower();
      other.restore(snap, store.appliedIndex);
      checkIndexes(other, `${label}: restored follower`);
      store.restore(snap, store.appliedIndex);
    }
    checkIndexes(store, label);
  }
  // A follower applying the whole log from the start builds the same indexes.
  const f = follower();
  for (const [i, d] of log.entries()) f.apply(d, i + 1);
  expect(expected(f)).toEqual(expected(store));
  checkIndexes(f, `seed ${seed}: follower from the log`);
}

describe('store indexes against a full scan', () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`seed ${seed}: 150 random steps of creates, moves, deletes, refused transactions and restores`, async () => {
      await randomRun(seed, 150);
    });
  }

  it('an update that keeps every key still shows its new object in a lookup read before it', async () => {
    const { store } = recordingStore();
    await store.update((tx) => tx.tasks.create(task('t1', 's1', 'n1', 1)));
    const first = store.view((tx) => tx.tasks.by('service', 's1'))[0]!;
    expect(first.status?.message).toBe('');
    await store.update((tx) =>
      tx.tasks.update(Task.create({ ...first, status: TaskStatus.create({ state: TaskState.RUNNING, message: 'up' }) })),
    );
    expect(store.view((tx) => tx.tasks.by('service', 's1'))[0]!.status?.message).toBe('up');
    expect(store.view((tx) => tx.tasks.by('node', 'n1'))[0]!.status?.message).toBe('up');
  });

  it('a lookup answers a copy: changing it does not change the next answer', async () => {
    const { store } = recordingStore();
    await store.update((tx) => {
      tx.tasks.create(task('t1', 's1', 'n1', 1));
      tx.tasks.create(task('t2', 's1', 'n1', 2));
    });
    const a = store.view((tx) => tx.tasks.by('service', 's1'));
    a.pop();
    expect(store.view((tx) => tx.tasks.by('service', 's1')).map((t) => t.meta.id)).toEqual(['t1', 't2']);
  });
});
