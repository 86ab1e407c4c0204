// A backlog of pending tasks worth more than 8 MiB (every task carries its
// service's spec) is placed in transactions under the store's 1.5 MiB cap.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Scheduler } from '../../../manager/scheduler/index.js';
import { encodedSize, MAX_TRANSACTION_BYTES, MemoryStore } from '../../../manager/store/index.js';
import { Meta, Node, NodeAvailability, NodeRole, NodeState, Task, TaskState } from '../../../proto/gen/objects.js';

const log = pino({ level: 'silent' });
let sched: Scheduler | null = null;
afterEach(async () => {
  await sched?.stop();
  sched = null;
});

describe('scheduler writes by bytes', () => {
  it('places 1,100 pending tasks of 8 KiB each (over 8 MiB) with every transaction under the cap', async () => {
    const entries: number[] = [];
    const store: MemoryStore = new MemoryStore({
      propose: async (d) => {
        entries.push(d.length);
        store.apply(d, entries.length);
        return entries.length;
      },
    });
    const env = Array.from({ length: 8 }, (_, i) => `V${i}=${'x'.repeat(1020)}`);
    const n = 1100;
    await store.update((tx) => {
      for (let i = 1; i <= 3; i++) {
        tx.nodes.create(
          Node.create({
            meta: Meta.create({ id: `n${i}` }),
            spec: { name: `h${i}`, role: NodeRole.WORKER, availability: NodeAvailability.ACTIVE, labels: {} },
            status: { state: NodeState.READY, message: '', addr: '' },
            description: {
              hostname: `h${i}`,
              platform: { os: 'linux', architecture: 'x86_64' },
              resources: { nanoCpus: 4e9, memoryBytes: 2 ** 30, pids: 0 },
              engineVersion: '',
            },
          } as Partial<Node>),
        );
      }
    });
    for (let from = 0; from < n; from += 100) {
      await store.update((tx) => {
        for (let i = from; i < Math.min(n, from + 100); i++) {
          tx.tasks.create(
            Task.create({
              meta: Meta.create({ id: `t${i}` }),
              serviceId: 's',
              slot: i + 1,
              desiredState: TaskState.RUNNING,
              status: { state: TaskState.PENDING },
              spec: { container: { image: 'busybox', env } },
            } as unknown as Partial<Task>),
          );
        }
      });
    }
    const before = entries.length;
    expect(store.view((tx) => tx.tasks.list().reduce((a, t) => a + encodedSize('tasks', t), 0))).toBeGreaterThan(8 << 20);
    sched = new Scheduler({ store, logger: log });
    sched.start();
    const assigned = (): number =>
      store.view((tx) => tx.tasks.list().filter((t) => t.status?.state === TaskState.ASSIGNED && t.nodeId).length);
    await sched.idle();
    expect(assigned()).toBe(n);
    const written = entries.slice(before);
    expect(written.length).toBeGreaterThan(6);
    expect(Math.max(...written)).toBeLessThanOrEqual(MAX_TRANSACTION_BYTES);
  }, 60_000);
});
