// ListTasks and ListServices read the store's service and node indexes; their
// answers must be those of a scan of the whole task table filtered by hand,
// for every combination of service and node filters.
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../lib/log.js';
import { ServiceApi } from '../../../manager/controlapi/index.js';
import { localStore } from '../../../manager/store/index.js';
import { Meta, Task, TaskState, TaskStatus } from '../../../proto/gen/objects.js';
import { node, service } from '../store/fixtures.js';

const SERVICES = ['s1', 's2', 's3'];
const NODES = ['n1', 'n2', 'n3'];
const STATES = [TaskState.PENDING, TaskState.RUNNING, TaskState.SHUTDOWN];

/** Every subset of xs. */
function subsets<V>(xs: readonly V[]): V[][] {
  const out: V[][] = [[]];
  for (const x of xs) for (const a of out.slice()) out.push([...a, x]);
  return out;
}

describe('ListTasks from the indexes', () => {
  it('answers what a scan filtered by service, node and desired state answers, for every filter', async () => {
    const store = localStore();
    await store.update((tx) => {
      for (const n of NODES) tx.nodes.create(node(n, `host-${n}`));
      for (const s of SERVICES) tx.services.create(service(s, `svc-${s}`, 4));
      // 3 services × (3 nodes + unassigned) × 3 states × 3 desired states: every combination, some twice.
      let i = 0;
      for (const s of SERVICES)
        for (const n of [...NODES, ''])
          for (const st of STATES)
            for (const ds of STATES)
              tx.tasks.create(
                Task.create({
                  meta: Meta.create({ id: `t${String((i++ * 7919) % 1000).padStart(3, '0')}` }),
                  serviceId: s,
                  nodeId: n,
                  slot: i,
                  desiredState: ds,
                  status: TaskStatus.create({ state: st }),
                }),
              );
    });
    const api = new ServiceApi({ store, logger: silentLogger() });
    const all = store.view((tx) => tx.tasks.list());
    const wantsRunning = (t: Task): boolean => t.desiredState === TaskState.RUNNING || t.desiredState === TaskState.READY;
    for (const ss of subsets(SERVICES))
      for (const ns of subsets(NODES))
        for (const desiredRunning of [false, true]) {
          const want = all
            .filter((t) => (ss.length === 0 || ss.includes(t.serviceId)) && (ns.length === 0 || ns.includes(t.nodeId)))
            .filter((t) => !desiredRunning || wantsRunning(t))
            .map((t) => t.meta.id)
            .sort();
          // Services by name, nodes by hostname: the references a user gives.
          const r = await api.listTasks({ services: ss.map((s) => `svc-${s}`), nodes: ns.map((n) => `host-${n}`), desiredRunning });
          const got = r.tasks.map((t) => t.meta.id);
          expect(new Set(got).size, 'no task twice').toBe(got.length);
          expect(got.sort(), `services ${ss} nodes ${ns} desiredRunning ${desiredRunning}`).toEqual(want);
        }
  });

  it('ListServices counts running and desired tasks as a scan does', async () => {
    const store = localStore();
    await store.update((tx) => {
      tx.services.create(service('s1', 'web', 5));
      tx.services.create(service('s2', 'api', 2));
      for (let i = 0; i < 12; i++)
        tx.tasks.create(
          Task.create({
            meta: Meta.create({ id: `t${i}` }),
            serviceId: i % 2 ? 's1' : 's2',
            slot: i,
            desiredState: i % 3 ? TaskState.RUNNING : TaskState.SHUTDOWN,
            status: TaskStatus.create({ state: i % 4 ? TaskState.RUNNING : TaskState.PENDING }),
          }),
        );
    });
    const all = store.view((tx) => tx.tasks.list());
    const running = (sid: string): number =>
      all.filter((t) => t.serviceId === sid && t.desiredState === TaskState.RUNNING && t.status?.state === TaskState.RUNNING).length;
    const r = await new ServiceApi({ store, logger: silentLogger() }).listServices({});
    expect(r.services.map((x) => [x.service.meta.id, x.running, x.desired])).toEqual([
      ['s2', running('s2'), 2],
      ['s1', running('s1'), 5],
    ]);
    expect(running('s1')).toBeGreaterThan(0);
  });
});
