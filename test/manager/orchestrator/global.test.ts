// Global services: one task per eligible node, following the nodes.
import { afterEach, describe, expect, it } from 'vitest';
import { Node, NodeAvailability, NodeState, TaskState } from '../../../proto/gen/objects.js';
import { agents, cluster, nodeObject, running, service, setNode, settle, spec, tasksOf, teardown, withImage, withTask } from './harness.js';

afterEach(teardown);

const globalSpec = (name: string) => spec(name, { replicated: undefined, global: {} });
const nodesOf = (ts: { nodeId: string }[]) => ts.map((t) => t.nodeId).sort();

describe('global orchestrator', () => {
  it('runs one task per eligible node, with the node preset on the task', async () => {
    const c = await cluster(3);
    await c.api.createService({ spec: globalSpec('mon') });
    await settle();
    const ts = tasksOf(c, 'mon');
    expect(nodesOf(ts)).toEqual(['n1', 'n2', 'n3']);
    expect(ts.every((t) => t.slot === 0 && t.status?.state === TaskState.ASSIGNED)).toBe(true);
  });

  it('a node that joins gets a task', async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: globalSpec('mon') });
    await agents(c);
    await c.store.update((tx) => tx.nodes.create(nodeObject(3)));
    await agents(c);
    expect(nodesOf(running(c, 'mon'))).toEqual(['n1', 'n2', 'n3']);
  });

  it('a node that becomes ready gets a task; one that is not ready does not', async () => {
    const c = await cluster(1);
    await c.store.update((tx) =>
      tx.nodes.create(nodeObject(2, {}, { status: { state: NodeState.DOWN, message: '', addr: '' } } as Partial<Node>)),
    );
    await c.api.createService({ spec: globalSpec('mon') });
    await agents(c);
    expect(nodesOf(running(c, 'mon'))).toEqual(['n1']);
    await setNode(c, 'n2', (n) => Node.create({ ...n, status: { ...n.status, state: NodeState.READY } }));
    await agents(c);
    expect(nodesOf(running(c, 'mon'))).toEqual(['n1', 'n2']);
  });

  it("a drained node's task is shut down and not replaced elsewhere", async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: globalSpec('mon') });
    await agents(c);
    await setNode(c, 'n1', (n) => Node.create({ ...n, spec: { ...n.spec, availability: NodeAvailability.DRAIN } }));
    await agents(c);
    expect(nodesOf(running(c, 'mon'))).toEqual(['n2']);
    const old = tasksOf(c, 'mon').find((t) => t.nodeId === 'n1')!;
    expect(old).toMatchObject({ desiredState: TaskState.SHUTDOWN, status: { state: TaskState.SHUTDOWN } });
    expect(tasksOf(c, 'mon')).toHaveLength(2);
  });

  it("a removed node's task is shut down", async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: globalSpec('mon') });
    await agents(c);
    await c.store.update((tx) => tx.nodes.delete(tx.nodes.get('n2')!));
    await settle();
    expect(tasksOf(c, 'mon').find((t) => t.nodeId === 'n2')!.desiredState).toBe(TaskState.SHUTDOWN);
  });

  it('follows constraints: a node that gets the label gets a task, one that loses it loses it', async () => {
    const c = await cluster(3, (i): Record<string, string> => (i === 1 ? { edge: 'yes' } : {}));
    await c.api.createService({
      spec: withTask(globalSpec('lb'), {
        placement: { constraints: ['node.labels.edge==yes'], preferences: [], maxReplicas: 0, platforms: [] },
      }),
    });
    await agents(c);
    expect(nodesOf(running(c, 'lb'))).toEqual(['n1']);
    await setNode(c, 'n2', (n) => Node.create({ ...n, spec: { ...n.spec, labels: { edge: 'yes' } } }));
    await setNode(c, 'n1', (n) => Node.create({ ...n, spec: { ...n.spec, labels: {} } }));
    await agents(c);
    expect(nodesOf(running(c, 'lb'))).toEqual(['n2']);
  });

  it('a failed global task is restarted on its own node', async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: globalSpec('mon') });
    await agents(c);
    const n2 = running(c, 'mon').find((t) => t.nodeId === 'n2')!;
    await c.store.update((tx) => {
      const t = tx.tasks.get(n2.meta.id)!;
      tx.tasks.update({ ...t, status: { ...t.status, state: TaskState.FAILED, exitCode: 1 } } as typeof t);
    });
    await agents(c);
    expect(nodesOf(running(c, 'mon'))).toEqual(['n1', 'n2']);
    expect(tasksOf(c, 'mon')).toHaveLength(3);
  });

  describe('on a paused node (as SwarmKit: only drain stops a global task)', () => {
    const pause = (c: Awaited<ReturnType<typeof cluster>>, id: string, availability = NodeAvailability.PAUSE) =>
      setNode(c, id, (n) => Node.create({ ...n, spec: { ...n.spec, availability } }));

    it('the running task keeps running; drain then stops it', async () => {
      const c = await cluster(2);
      await c.api.createService({ spec: globalSpec('mon') });
      await agents(c);
      const before = running(c, 'mon').find((t) => t.nodeId === 'n1')!;
      await pause(c, 'n1');
      await agents(c);
      expect(nodesOf(running(c, 'mon'))).toEqual(['n1', 'n2']);
      expect(running(c, 'mon').find((t) => t.nodeId === 'n1')!.meta.id).toBe(before.meta.id);
      await pause(c, 'n1', NodeAvailability.DRAIN);
      await agents(c);
      expect(nodesOf(running(c, 'mon'))).toEqual(['n2']);
      expect(tasksOf(c, 'mon').find((t) => t.meta.id === before.meta.id)!.desiredState).toBe(TaskState.SHUTDOWN);
    });

    it('a service created while the node is paused gets no task there until it is active again', async () => {
      const c = await cluster(2);
      await pause(c, 'n2');
      await c.api.createService({ spec: globalSpec('mon') });
      await agents(c);
      expect(nodesOf(tasksOf(c, 'mon'))).toEqual(['n1']);
      await pause(c, 'n2', NodeAvailability.ACTIVE);
      await agents(c);
      expect(nodesOf(running(c, 'mon'))).toEqual(['n1', 'n2']);
    });

    it('a task that fails there is shut down and not restarted while the node is paused', async () => {
      const c = await cluster(2);
      await c.api.createService({ spec: globalSpec('mon') });
      await agents(c);
      await pause(c, 'n2');
      const n2 = running(c, 'mon').find((t) => t.nodeId === 'n2')!;
      await c.store.update((tx) => {
        const t = tx.tasks.get(n2.meta.id)!;
        tx.tasks.update({ ...t, status: { ...t.status, state: TaskState.FAILED, exitCode: 1 } } as typeof t);
      });
      await agents(c);
      expect(nodesOf(running(c, 'mon'))).toEqual(['n1']);
      expect(tasksOf(c, 'mon').filter((t) => t.nodeId === 'n2')).toHaveLength(1);
      expect(tasksOf(c, 'mon').find((t) => t.nodeId === 'n2')!.desiredState).toBe(TaskState.SHUTDOWN);
      await pause(c, 'n2', NodeAvailability.ACTIVE);
      await agents(c);
      expect(nodesOf(running(c, 'mon'))).toEqual(['n1', 'n2']);
    });

    it('a rolling update leaves the task on the paused node as it is', async () => {
      const c = await cluster(2);
      await c.api.createService({ spec: globalSpec('mon') });
      await agents(c);
      const kept = running(c, 'mon').find((t) => t.nodeId === 'n2')!;
      await pause(c, 'n2');
      const svc = service(c, 'mon');
      await c.api.updateService({ ref: 'mon', version: svc.meta.version, spec: withImage(svc.spec, 'busybox:2'), rollback: false });
      await agents(c);
      const now = running(c, 'mon');
      expect(nodesOf(now)).toEqual(['n1', 'n2']);
      expect(now.find((t) => t.nodeId === 'n1')!.spec?.container?.image).toBe('busybox:2');
      expect(now.find((t) => t.nodeId === 'n2')!.meta.id).toBe(kept.meta.id);
    });
  });
});
