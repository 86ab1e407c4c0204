// A backlog of NEW tasks worth more than 8 MiB (every task carries its
// service's spec) gets its addresses in transactions under the store's cap.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Allocator } from '../../../manager/allocator/index.js';
import { encodedSize, MAX_TRANSACTION_BYTES, MemoryStore } from '../../../manager/store/index.js';
import { ContainerSpec, Meta, Network, NetworkSpec, Service, ServiceSpec, Task, TaskSpec, TaskState } from '../../../proto/gen/objects.js';

const log = pino({ level: 'silent' });
let alloc: Allocator | null = null;
afterEach(async () => {
  await alloc?.stop();
  alloc = null;
});

describe('allocator writes by bytes', () => {
  it('allocates 1,100 NEW tasks of 8 KiB each (over 8 MiB) with every transaction under the cap', async () => {
    const entries: number[] = [];
    const store: MemoryStore = new MemoryStore({
      propose: async (d) => {
        entries.push(d.length);
        store.apply(d, entries.length);
        return entries.length;
      },
    });
    const env = Array.from({ length: 8 }, (_, i) => `V${i}=${'x'.repeat(1020)}`);
    const svc = Service.create({
      meta: Meta.create({ id: 'svc-big' }),
      spec: ServiceSpec.create({
        name: 'big',
        task: TaskSpec.create({ container: ContainerSpec.create({ image: 'busybox', env }), networks: [{ target: 'net1', aliases: [] }] }),
      }),
    });
    await store.update((tx) => {
      tx.networks.create(
        Network.create({
          meta: Meta.create({ id: 'net1' }),
          spec: NetworkSpec.create({ name: 'back', driver: 'overlay', subnet: '10.78.0.0/20' }),
        }),
      );
      tx.services.create(svc);
    });
    const n = 1100;
    for (let from = 0; from < n; from += 100) {
      await store.update((tx) => {
        for (let i = from; i < Math.min(n, from + 100); i++) {
          tx.tasks.create(
            Task.create({
              meta: Meta.create({ id: `t${i}` }),
              serviceId: 'svc-big',
              serviceName: 'big',
              slot: i + 1,
              desiredState: TaskState.RUNNING,
              status: { state: TaskState.NEW },
              spec: svc.spec.task,
            } as Partial<Task>),
          );
        }
      });
    }
    const before = entries.length;
    expect(store.view((tx) => tx.tasks.list().reduce((a, t) => a + encodedSize('tasks', t), 0))).toBeGreaterThan(8 << 20);
    alloc = new Allocator({ store, logger: log });
    alloc.start();
    const pending = (): number =>
      store.view(
        (tx) => tx.tasks.list().filter((t) => t.status?.state === TaskState.PENDING && t.networks[0]?.addresses.length === 1).length,
      );
    await alloc.idle();
    expect(pending()).toBe(n);
    expect(new Set(store.view((tx) => tx.tasks.list().map((t) => t.networks[0]!.addresses[0]))).size).toBe(n);
    const written = entries.slice(before);
    expect(written.length).toBeGreaterThan(6);
    expect(Math.max(...written)).toBeLessThanOrEqual(MAX_TRANSACTION_BYTES);
  }, 60_000);
});
