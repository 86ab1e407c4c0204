// The dispatcher's task feed and status writer on a store without Raft:
// what a node is sent (full set, then only changes that are orders), and which
// status reports are written (only forward, only from the task's node, batched).
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Assignments } from '../../../proto/gen/control.js';
import { AssignmentFeed } from '../../../manager/dispatcher/assignments.js';
import { StatusWriter, movesForward } from '../../../manager/dispatcher/status.js';
import { localStore } from '../../../manager/store/index.js';
import { Task, TaskState, TaskStatus } from '../../../proto/gen/objects.js';
import { task } from '../store/fixtures.js';

const log = pino({ level: 'silent' });
const assigned = (id: string, nodeId: string, state = TaskState.ASSIGNED): Task =>
  Task.create({ ...task(id, 's1', nodeId, 1), status: TaskStatus.create({ state }) });

async function setup() {
  const store = localStore();
  await store.update((tx) => {
    tx.tasks.create(assigned('t1', 'n1'));
    tx.tasks.create(assigned('t2', 'n2'));
    tx.tasks.create(assigned('t3', 'n1', TaskState.PENDING));
  });
  const feed = new AssignmentFeed(store, log);
  const got: Assignments[] = [];
  const detach = feed.attach('n1', (a) => got.push(a));
  return { store, feed, got, detach };
}

describe('assignment feed', () => {
  it('sends a node the full set of its tasks that are past the scheduler when its session opens', async () => {
    const { got } = await setup();
    expect(got).toHaveLength(1);
    expect(got[0]!.full).toBe(true);
    expect(got[0]!.tasks.map((t) => t.meta.id)).toEqual(['t1']);
  });

  it('sends a task when the scheduler assigns it, in one message per transaction', async () => {
    const { store, got } = await setup();
    await store.update((tx) => {
      const t3 = tx.tasks.get('t3')!;
      tx.tasks.update(Task.create({ ...t3, status: { ...t3.status, state: TaskState.ASSIGNED } }));
      tx.tasks.create(assigned('t4', 'n1'));
    });
    expect(got).toHaveLength(2);
    expect(got[1]!.full).toBe(false);
    expect(got[1]!.tasks.map((t) => t.meta.id).sort()).toEqual(['t3', 't4']);
  });

  it('does not echo the agent its own status reports, but sends desired-state changes', async () => {
    const { store, got } = await setup();
    const t1 = store.view((tx) => tx.tasks.get('t1'))!;
    await store.update((tx) => tx.tasks.update(Task.create({ ...t1, status: { ...t1.status, state: TaskState.RUNNING } })));
    expect(got).toHaveLength(1);
    const t1b = store.view((tx) => tx.tasks.get('t1'))!;
    await store.update((tx) => tx.tasks.update(Task.create({ ...t1b, desiredState: TaskState.SHUTDOWN })));
    expect(got).toHaveLength(2);
    expect(got[1]!.tasks[0]!.desiredState).toBe(TaskState.SHUTDOWN);
  });

  it('tells a node about tasks deleted or moved away, and nothing about other nodes', async () => {
    const { store, got } = await setup();
    await store.update((tx) => tx.tasks.delete(tx.tasks.get('t1')!));
    await store.update((tx) => tx.tasks.delete(tx.tasks.get('t2')!));
    expect(got).toHaveLength(2);
    expect(got[1]).toMatchObject({ full: false, tasks: [], removedTaskIds: ['t1'] });
  });

  it('stops sending after the session detaches', async () => {
    const { store, got, detach } = await setup();
    detach();
    await store.update((tx) => tx.tasks.create(assigned('t5', 'n1')));
    expect(got).toHaveLength(1);
  });

  it('after a store reset (a snapshot installed) it sends every attached node its full set again, then keeps sending changes', async () => {
    const { store, got } = await setup();
    // The state a snapshot brings: t1 shut down, t5 new on n1.
    const other = localStore();
    await other.update((tx) => {
      tx.tasks.create(Task.create({ ...assigned('t1', 'n1'), desiredState: TaskState.SHUTDOWN }));
      tx.tasks.create(assigned('t5', 'n1'));
    });
    store.restore(other.snapshot(), store.appliedIndex + 10);
    await expect.poll(() => got.length).toBe(2);
    expect(got[1]!.full).toBe(true);
    expect(got[1]!.tasks.map((t) => [t.meta.id, t.desiredState])).toEqual([
      ['t1', TaskState.SHUTDOWN],
      ['t5', TaskState.RUNNING],
    ]);
    await store.update((tx) => tx.tasks.delete(tx.tasks.get('t5')!));
    expect(got).toHaveLength(3);
    expect(got[2]).toMatchObject({ full: false, removedTaskIds: ['t5'] });
  });

  it('a node whose send throws does not cost the other nodes their changes', async () => {
    const { store, feed, got } = await setup();
    feed.attach('n2', (a) => {
      if (!a.full) throw new Error('boom');
    });
    await store.update((tx) => tx.tasks.create(assigned('t6', 'n2')));
    await store.update((tx) => tx.tasks.create(assigned('t7', 'n1')));
    expect(got.at(-1)!.tasks.map((t) => t.meta.id)).toEqual(['t7']);
  });
});

describe('task status writer', () => {
  it('only lets a status move forward (same state may refresh health)', () => {
    const running = TaskStatus.create({ state: TaskState.RUNNING });
    expect(movesForward(running, TaskStatus.create({ state: TaskState.STARTING }))).toBe(false);
    expect(movesForward(running, TaskStatus.create({ state: TaskState.FAILED }))).toBe(true);
    expect(movesForward(running, TaskStatus.create({ state: TaskState.RUNNING }))).toBe(false);
    expect(movesForward(running, TaskStatus.create({ state: TaskState.RUNNING, health: 'healthy' }))).toBe(true);
    // A node port picked for a host-mode port (or picked again) is news in the same state.
    const port = { name: '', protocol: 0, targetPort: 80, publishedPort: 40001, publishMode: 1 };
    expect(movesForward(running, TaskStatus.create({ state: TaskState.RUNNING, portStatus: [port] }))).toBe(true);
    expect(
      movesForward(
        TaskStatus.create({ state: TaskState.RUNNING, portStatus: [port] }),
        TaskStatus.create({ state: TaskState.RUNNING, portStatus: [{ ...port }] }),
      ),
    ).toBe(false);
  });

  it('writes reports from many nodes in one transaction, dropping backward or foreign ones', async () => {
    const store = localStore();
    await store.update((tx) => {
      tx.tasks.create(assigned('a', 'n1', TaskState.RUNNING));
      tx.tasks.create(assigned('b', 'n2'));
      tx.tasks.create(assigned('c', 'n2'));
    });
    const w = new StatusWriter(store, log);
    const before = store.appliedIndex;
    w.push('n1', [{ taskId: 'a', status: TaskStatus.create({ state: TaskState.ACCEPTED }) }]); // backwards
    w.push('n2', [{ taskId: 'b', status: TaskStatus.create({ state: TaskState.RUNNING, pid: 7 }) }]);
    w.push('n1', [{ taskId: 'c', status: TaskStatus.create({ state: TaskState.FAILED }) }]); // not n1's task
    await w.flush();
    expect(store.appliedIndex).toBe(before + 1);
    const v = store.view((tx) => ({ a: tx.tasks.get('a')!.status, b: tx.tasks.get('b')!.status, c: tx.tasks.get('c')!.status }));
    expect(v.a.state).toBe(TaskState.RUNNING);
    expect(v.b).toMatchObject({ state: TaskState.RUNNING, pid: 7 });
    expect(v.c.state).toBe(TaskState.ASSIGNED);
    expect(w.written).toBe(1);
    w.close();
  });
});
