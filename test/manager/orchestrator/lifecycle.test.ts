// The pipeline's parts as the leader runs them: allocator pass-through, start and stop.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Allocator } from '../../../manager/allocator/index.js';
import { startOrchestration } from '../../../manager/orchestrator/index.js';
import { localStore } from '../../../manager/store/index.js';
import { Meta, Task, TaskState } from '../../../proto/gen/objects.js';
import { ManualClock, cluster, settle, spec, tasksOf, teardown } from './harness.js';

afterEach(teardown);
const log = pino({ level: 'silent' });

describe('allocator and orchestration life cycle', () => {
  it('the allocator moves a burst of NEW tasks to PENDING in one transaction', async () => {
    const store = localStore();
    const a = new Allocator({ store, logger: log });
    a.start();
    const before = store.appliedIndex;
    await Promise.all(
      Array.from({ length: 3 }, (_, k) =>
        store.update((tx) => {
          for (let i = 0; i < 100; i++)
            tx.tasks.create(
              Task.create({
                meta: Meta.create({ id: `t${k}-${i}` }),
                serviceId: 's',
                slot: i + 1,
                desiredState: TaskState.RUNNING,
                status: { state: TaskState.NEW },
              } as Partial<Task>),
            );
        }),
      ),
    );
    await a.idle();
    await a.stop();
    const ts = store.view((tx) => tx.tasks.list());
    expect(ts.every((t) => t.status?.state === TaskState.PENDING && t.status.message === 'pending task scheduling')).toBe(true);
    expect(store.appliedIndex - before).toBe(4); // 3 creates, 1 allocation
  });

  it('the allocator leaves tasks that are no longer wanted NEW', async () => {
    const store = localStore();
    const a = new Allocator({ store, logger: log });
    a.start();
    await store.update((tx) =>
      tx.tasks.create(
        Task.create({
          meta: Meta.create({ id: 't' }),
          serviceId: 's',
          desiredState: TaskState.SHUTDOWN,
          status: { state: TaskState.NEW },
        } as Partial<Task>),
      ),
    );
    await a.idle();
    await a.stop();
    expect(store.view((tx) => tx.tasks.get('t'))!.status.state).toBe(TaskState.NEW);
  });

  it('stop() leaves no subscription, timer or pass behind', async () => {
    const c = await cluster(2);
    await c.api.createService({
      spec: spec('web', {
        replicated: { replicas: 2 },
        task: { ...spec('x').task, restart: { condition: 0, delayMs: 60_000, maxAttempts: 0, windowMs: 0 } },
      }),
    });
    await settle();
    const [t] = tasksOf(c, 'web');
    await c.store.update((tx) => {
      const cur = tx.tasks.get(t!.meta.id)!;
      tx.tasks.update(Task.create({ ...cur, status: { ...cur.status, state: TaskState.FAILED } }));
    });
    await settle();
    expect(c.clock.pending).toBe(1); // the restart delay
    await c.orch.stop();
    expect(c.orch.orchestrator.busy).toBe(false);
    expect(c.clock.pending).toBe(0);
    const n = c.store.appliedIndex;
    c.clock.advance(120_000);
    await c.api.createService({ spec: spec('late') });
    // Every timer of the orchestration is on this clock: none was set, so no pass can follow.
    expect(c.clock.pending).toBe(0);
    expect(c.store.appliedIndex).toBe(n + 1); // only the service itself
  });

  it('a new orchestration rebuilds from the store: no duplicate tasks', async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: spec('web', { replicated: { replicas: 4 } }) });
    await settle();
    await c.orch.stop();
    c.orch = startOrchestration({ store: c.store, logger: log, clock: new ManualClock() });
    await settle();
    expect(tasksOf(c, 'web')).toHaveLength(4);
  });

  it('a 10,000-replica service goes from creation to every task ASSIGNED in at most 10 store entries', async () => {
    const c = await cluster(50);
    const before = c.store.appliedIndex;
    await c.api.createService({ spec: spec('big', { replicated: { replicas: 10_000 } }) });
    const done = (): boolean => {
      const ts = tasksOf(c, 'big');
      return ts.length === 10_000 && ts.every((t) => t.status?.state === TaskState.ASSIGNED);
    };
    for (let i = 0; i < 50 && !done(); i++) await settle();
    const ts = tasksOf(c, 'big');
    expect(ts).toHaveLength(10_000);
    expect(ts.every((t) => t.status?.state === TaskState.ASSIGNED)).toBe(true);
    expect(c.store.appliedIndex - before).toBeLessThanOrEqual(10);
  });
});
