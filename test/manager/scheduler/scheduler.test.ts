// The scheduler's shell on a store: batched writes, waiting tasks and retries.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Scheduler } from '../../../manager/scheduler/index.js';
import { localStore, type MemoryStore } from '../../../manager/store/index.js';
import { Meta, Node, NodeAvailability, NodeRole, NodeState, Task, TaskState } from '../../../proto/gen/objects.js';

const log = pino({ level: 'silent' });
let sched: Scheduler | null = null;
afterEach(async () => {
  await sched?.stop();
  sched = null;
});

const node = (i: number, state = NodeState.READY, cpus = 4): Node =>
  Node.create({
    meta: Meta.create({ id: `n${i}` }),
    spec: { name: `h${i}`, role: NodeRole.WORKER, availability: NodeAvailability.ACTIVE, labels: {} },
    status: { state, message: '', addr: '' },
    description: {
      hostname: `h${i}`,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCpus: cpus * 1e9, memoryBytes: 2 ** 30, pids: 0 },
      engineVersion: '',
    },
  } as Partial<Node>);

const pending = (id: string, over: Partial<Task> = {}, cpus = 0): Task =>
  Task.create({
    meta: Meta.create({ id }),
    serviceId: 's',
    slot: 1,
    desiredState: TaskState.RUNNING,
    status: { state: TaskState.PENDING },
    serviceVersion: 1,
    spec: { resources: { reservations: { nanoCpus: cpus * 1e9, memoryBytes: 0 } } },
    ...over,
  } as unknown as Partial<Task>);

async function setup(nodes: Node[]): Promise<MemoryStore> {
  const store = localStore();
  if (nodes.length) await store.update((tx) => nodes.forEach((n) => tx.nodes.create(n)));
  sched = new Scheduler({ store, logger: log });
  sched.start();
  return store;
}
const settle = (): Promise<void> => sched!.idle();
const get = (store: MemoryStore, id: string): Task => store.view((tx) => tx.tasks.get(id))!;

describe('scheduler shell', () => {
  it('assigns 10,000 tasks in at most 10 transactions, ASSIGNED with the node and message', async () => {
    const store = await setup(Array.from({ length: 100 }, (_, i) => node(i)));
    await store.update((tx) => {
      for (let i = 0; i < 10_000; i++) tx.tasks.create(pending(`t${i}`, { slot: i + 1 }));
    });
    const before = store.appliedIndex;
    await settle();
    expect(store.appliedIndex - before).toBeLessThanOrEqual(10);
    const ts = store.view((tx) => tx.tasks.list());
    expect(
      ts.every((t) => t.status?.state === TaskState.ASSIGNED && t.nodeId && t.status.message === 'scheduler assigned task to node'),
    ).toBe(true);
    const perNode = new Map<string, number>();
    for (const t of ts) perNode.set(t.nodeId, (perNode.get(t.nodeId) ?? 0) + 1);
    expect(new Set(perNode.values())).toEqual(new Set([100]));
  });

  it('leaves an unschedulable task PENDING with the explanation, written once', async () => {
    const store = await setup([node(1, NodeState.DOWN)]);
    await store.update((tx) => tx.tasks.create(pending('t1')));
    await settle();
    const t = get(store, 't1');
    expect(t.status).toMatchObject({ state: TaskState.PENDING, err: 'no suitable node (1 node not available for new tasks (h1))' });
    const version = t.meta.version;
    // Another node that does not fit either: the explanation changes, so it is rewritten; no change, no write.
    await store.update((tx) => tx.nodes.create(node(2, NodeState.DOWN)));
    await settle();
    const t2 = get(store, 't1');
    expect(t2.status.err).toBe('no suitable node (2 nodes not available for new tasks (h1, h2))');
    expect(t2.meta.version).toBeGreaterThan(version);
    const idx = store.appliedIndex;
    await store.update((tx) => tx.tasks.create(pending('other', { desiredState: TaskState.SHUTDOWN })));
    await settle();
    expect(get(store, 't1').meta.version).toBe(t2.meta.version);
    expect(store.appliedIndex).toBe(idx + 1);
  });

  it('retries a waiting task when a node becomes ready', async () => {
    const store = await setup([node(1, NodeState.DOWN)]);
    await store.update((tx) => tx.tasks.create(pending('t1')));
    await settle();
    await store.update((tx) =>
      tx.nodes.update(Node.create({ ...tx.nodes.get('n1')!, status: { state: NodeState.READY, message: '', addr: '' } })),
    );
    await settle();
    expect(get(store, 't1')).toMatchObject({ nodeId: 'n1', status: { state: TaskState.ASSIGNED, err: '' } });
  });

  it('retries a waiting task when resources are freed', async () => {
    const store = await setup([node(1, NodeState.READY, 2)]);
    await store.update((tx) => tx.tasks.create(pending('big1', {}, 2)));
    await settle();
    await store.update((tx) => tx.tasks.create(pending('big2', { slot: 2 }, 2)));
    await settle();
    expect(get(store, 'big2').status.err).toMatch(/insufficient resources/);
    await store.update((tx) => {
      const t = tx.tasks.get('big1')!;
      tx.tasks.update(Task.create({ ...t, status: { ...t.status, state: TaskState.FAILED } }));
    });
    await settle();
    expect(get(store, 'big2').status.state).toBe(TaskState.ASSIGNED);
  });
});
