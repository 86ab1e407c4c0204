// The task reaper: history per slot, REMOVE tasks.
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, Meta, Node, NodeState, Task, TaskState } from '../../../proto/gen/objects.js';
import { agents, all, cluster, report, running, service, settle, spec, tasksOf, teardown } from './harness.js';

afterEach(teardown);

describe('task reaper', () => {
  it('keeps the current task and 5 old ones per slot', async () => {
    const c = await cluster(1);
    await c.api.createService({ spec: spec('web') });
    await agents(c);
    for (let i = 0; i < 8; i++) {
      await report(c, running(c, 'web')[0]!, { state: TaskState.FAILED, exitCode: 1 });
      await agents(c);
    }
    const ts = tasksOf(c, 'web');
    expect(ts).toHaveLength(6);
    expect(ts.filter((t) => t.desiredState === TaskState.RUNNING)).toHaveLength(1);
    // The newest old ones stay.
    expect(Math.max(...ts.map((t) => t.restartAttempt))).toBe(8);
    expect(Math.min(...ts.map((t) => t.restartAttempt))).toBe(3);
  });

  it('follows the cluster task history limit', async () => {
    const c = await cluster(1);
    await c.store.update((tx) =>
      tx.cluster.create(
        Cluster.create({ meta: Meta.create({ id: 'c1' }), spec: { name: 'default', taskHistoryLimit: 2 } } as Partial<Cluster>),
      ),
    );
    await c.api.createService({ spec: spec('web') });
    await agents(c);
    for (let i = 0; i < 4; i++) {
      await report(c, running(c, 'web')[0]!, { state: TaskState.FAILED, exitCode: 1 });
      await agents(c);
    }
    expect(tasksOf(c, 'web')).toHaveLength(3);
  });

  it("deletes a removed service's tasks once the agent reports them stopped", async () => {
    const c = await cluster(1);
    await c.api.createService({ spec: spec('web', { replicated: { replicas: 2 } }) });
    await agents(c);
    const id = service(c, 'web').meta.id;
    await c.api.removeService({ ref: 'web' });
    await settle();
    expect(all(c).filter((t) => t.serviceId === id)).toHaveLength(2);
    await c.store.update((tx) => {
      for (const t of tx.tasks.by('service', id))
        tx.tasks.update(Task.create({ ...t, status: { ...t.status, state: TaskState.SHUTDOWN } }));
    });
    await settle();
    expect(all(c).filter((t) => t.serviceId === id)).toHaveLength(0);
  });

  it('deletes REMOVE tasks at once when they were never assigned or their node is DOWN', async () => {
    const c = await cluster(2);
    await c.api.createService({
      spec: spec('web', {
        replicated: { replicas: 1 },
        task: { ...spec('x').task, placement: { constraints: ['node.labels.none==1'], preferences: [], maxReplicas: 0, platforms: [] } },
      }),
    });
    await c.api.createService({ spec: spec('db') });
    await agents(c);
    expect(tasksOf(c, 'web')[0]!.status.state).toBe(TaskState.PENDING);
    const dbNode = running(c, 'db')[0]!.nodeId;
    await c.store.update((tx) => {
      const n = tx.nodes.get(dbNode)!;
      tx.nodes.update(Node.create({ ...n, status: { ...n.status, state: NodeState.DOWN } }));
    });
    await settle();
    await c.api.removeService({ ref: 'web' });
    await c.api.removeService({ ref: 'db' });
    await settle();
    expect(all(c).filter((t) => t.nodeId === dbNode || t.status?.state === TaskState.PENDING)).toHaveLength(0);
  });
});
