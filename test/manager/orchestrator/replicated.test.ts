// Replicated services: slots 1..replicas, scale up and down, removal.
import { afterEach, describe, expect, it } from 'vitest';
import { PortProtocol, PublishMode, TaskState } from '../../../proto/gen/objects.js';
import { agents, all, cluster, running, service, settle, spec, tasksOf, teardown, withTask } from './harness.js';

afterEach(teardown);

describe('replicated orchestrator', () => {
  it('creates one task per slot 1..replicas, from the service spec, through NEW, PENDING and ASSIGNED', async () => {
    const c = await cluster(3);
    await c.api.createService({ spec: spec('web', { replicated: { replicas: 3 } }) });
    await settle();
    const ts = tasksOf(c, 'web');
    const svc = service(c, 'web');
    expect(ts.map((t) => t.slot).sort()).toEqual([1, 2, 3]);
    for (const t of ts) {
      expect(t).toMatchObject({
        desiredState: TaskState.RUNNING,
        serviceVersion: svc.meta.version,
        serviceName: 'web',
        restartAttempt: 0,
      });
      expect(t.status).toMatchObject({ state: TaskState.ASSIGNED, message: 'scheduler assigned task to node' });
      expect(t.spec?.container?.image).toBe('busybox');
    }
  });

  it('a service on network none (loopback only) is scheduled with no network attachment', async () => {
    const c = await cluster(2);
    await c.api.createService({
      spec: withTask(spec('quiet', { replicated: { replicas: 2 } }), { networks: [{ target: 'none', aliases: [] }] }),
    });
    await settle();
    const ts = tasksOf(c, 'quiet');
    expect(ts).toHaveLength(2);
    for (const t of ts) {
      expect(t.status?.state).toBe(TaskState.ASSIGNED);
      expect(t.networks).toEqual([]);
      expect(t.spec?.networks).toEqual([{ target: 'none', aliases: [] }]);
    }
  });

  it("a task carries its service's labels as they were when it was made (SwarmKit's ServiceAnnotations), not later ones", async () => {
    const c = await cluster(2);
    const s = (
      await c.api.createService({ spec: spec('web', { replicated: { replicas: 1 }, labels: { 'com.docker.stack.namespace': 'demo' } }) })
    ).service;
    await settle();
    const [first] = tasksOf(c, 'web');
    expect(first!.serviceLabels).toEqual({ 'com.docker.stack.namespace': 'demo' });
    await c.api.updateService({
      ref: 'web',
      version: 0,
      spec: { ...s.spec, labels: { tier: 'edge' }, replicated: { replicas: 2 } },
      rollback: false,
    });
    await settle();
    const ts = tasksOf(c, 'web');
    expect(ts.find((t) => t.meta.id === first!.meta.id)!.serviceLabels).toEqual({ 'com.docker.stack.namespace': 'demo' });
    expect(ts.find((t) => t.slot === 2)!.serviceLabels).toEqual({ tier: 'edge' });
  });

  it('tasks of a service without networks or published ports start PENDING; a task carries the ports its service publishes in host mode', async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: spec('web', { replicated: { replicas: 1 } }) });
    const hostPorts = [{ name: '', protocol: PortProtocol.TCP, targetPort: 80, publishedPort: 9090, publishMode: PublishMode.HOST }];
    await c.api.createService({ spec: spec('edge', { replicated: { replicas: 1 }, endpoint: { mode: 0, ports: hostPorts } }) });
    await settle();
    expect(tasksOf(c, 'web')[0]!.hostPorts).toEqual([]);
    const [edge] = tasksOf(c, 'edge');
    expect(edge!.hostPorts).toEqual(hostPorts);
    expect(edge!.status.state).toBe(TaskState.ASSIGNED);
  });

  it('scaling up fills the missing slots and leaves the running tasks alone', async () => {
    const c = await cluster(3);
    const s = (await c.api.createService({ spec: spec('web', { replicated: { replicas: 2 } }) })).service;
    await agents(c);
    const before = running(c, 'web').map((t) => t.meta.id);
    await c.api.updateService({ ref: 'web', version: 0, spec: { ...s.spec, replicated: { replicas: 4 } }, rollback: false });
    await agents(c);
    const r = running(c, 'web');
    expect(r.map((t) => t.slot).sort()).toEqual([1, 2, 3, 4]);
    expect(before.every((id) => r.some((t) => t.meta.id === id))).toBe(true);
  });

  it('scaling down shuts down the highest slots of the most loaded nodes', async () => {
    const c = await cluster(3);
    const s = (await c.api.createService({ spec: spec('web', { replicated: { replicas: 5 } }) })).service;
    await agents(c);
    await c.api.updateService({ ref: 'web', version: 0, spec: { ...s.spec, replicated: { replicas: 2 } }, rollback: false });
    await agents(c);
    const r = running(c, 'web');
    expect(r.map((t) => t.slot).sort()).toEqual([1, 2]);
    expect(new Set(r.map((t) => t.nodeId)).size).toBe(2);
    const gone = tasksOf(c, 'web').filter((t) => t.desiredState === TaskState.SHUTDOWN);
    expect(gone).toHaveLength(3);
    expect(gone.every((t) => t.status?.state === TaskState.SHUTDOWN)).toBe(true);
  });

  it('scaling down removes tasks that are not running before running ones', async () => {
    const c = await cluster(2);
    const s = (await c.api.createService({ spec: spec('web', { replicated: { replicas: 3 } }) })).service;
    await settle();
    // Only slot 1 runs; slots 2 and 3 are still assigned.
    await agents(c, undefined, 0);
    const one = tasksOf(c, 'web').find((t) => t.slot === 3)!;
    await c.store.update((tx) => {
      for (const t of tx.tasks.list()) {
        if (t.slot === 3) tx.tasks.update({ ...t, status: { ...t.status, state: TaskState.RUNNING } } as typeof t);
      }
    });
    await c.api.updateService({ ref: 'web', version: 0, spec: { ...s.spec, replicated: { replicas: 1 } }, rollback: false });
    await settle();
    const cur = tasksOf(c, 'web').filter((t) => t.desiredState === TaskState.RUNNING);
    expect(cur.map((t) => t.meta.id)).toEqual([one.meta.id]);
  });

  it('a removed service has every task set to desired REMOVE', async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: spec('web', { replicated: { replicas: 2 } }) });
    await agents(c);
    const id = service(c, 'web').meta.id;
    await c.api.removeService({ ref: 'web' });
    await settle();
    const left = all(c).filter((t) => t.serviceId === id);
    expect(left).toHaveLength(2);
    expect(left.every((t) => t.desiredState === TaskState.REMOVE)).toBe(true);
  });
});
