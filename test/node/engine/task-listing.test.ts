// GET /tasks and GET /services?status on a real ServiceApi over a local
// store: a `service` or `node` filter reads only those tasks through the
// Control API's filters (the store's indexes), and answers exactly what the
// whole listing filtered by hand would.
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../lib/log.js';
import { ServiceApi } from '../../../manager/controlapi/index.js';
import { localStore } from '../../../manager/store/index.js';
import type { ControlHandlers } from '../../../proto/gen/control.js';
import { Meta, NodeRole, Task, TaskState, TaskStatus } from '../../../proto/gen/objects.js';
import { service as serviceFixture } from '../../manager/store/fixtures.js';
import { call, fakeBackend, node, type Served, serve } from './fake.js';

let s: Served | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

const N1 = 'n1aaaaaaaaaaaaaaaaaaaaaaa';
const N2 = 'n2bbbbbbbbbbbbbbbbbbbbbbb';
const SVC = { web: 'swebaaaaaaaaaaaaaaaaaaaaa', api: 'sapiaaaaaaaaaaaaaaaaaaaaa', db: 'sdbaaaaaaaaaaaaaaaaaaaaaa' };

async function setup(): Promise<{ calls: Array<{ method: string; req: unknown }> }> {
  const store = localStore();
  const nodes = [node(N1, 'm1', NodeRole.MANAGER), node(N2, 'w1', NodeRole.WORKER)];
  await store.update((tx) => {
    for (const n of nodes) tx.nodes.create(n);
    for (const [name, id] of Object.entries(SVC)) tx.services.create(serviceFixture(id, name, 3));
    let i = 0;
    for (const [name, id] of Object.entries(SVC))
      for (let slot = 1; slot <= 3; slot++) {
        const running = slot !== 3;
        tx.tasks.create(
          Task.create({
            meta: Meta.create({ id: `t${String(i++).padStart(24, '0')}` }),
            serviceId: id,
            serviceName: name,
            nodeId: slot % 2 ? N1 : N2,
            slot,
            desiredState: running ? TaskState.RUNNING : TaskState.SHUTDOWN,
            status: TaskStatus.create({ state: running ? TaskState.RUNNING : TaskState.SHUTDOWN }),
          }),
        );
      }
  });
  const api = new ServiceApi({ store, logger: silentLogger() });
  const calls: Array<{ method: string; req: unknown }> = [];
  const control = {
    listServices: (req: never) => {
      calls.push({ method: 'listServices', req });
      return api.listServices(req);
    },
    listTasks: (req: never) => {
      calls.push({ method: 'listTasks', req });
      return api.listTasks(req);
    },
    listNetworks: async () => ({ networks: [], stale: false }),
    listNodes: async () => ({ nodes, stale: false }),
  } as unknown as ControlHandlers;
  const f = fakeBackend();
  s = await serve({ ...f.backend, control: () => control });
  return { calls };
}

type DockerTask = { ID: string; ServiceID: string; NodeID: string; DesiredState: string };
const q = (filters: Record<string, string[]>): string => `filters=${encodeURIComponent(JSON.stringify(filters))}`;
const tasksCall = async (filters: Record<string, string[]>): Promise<DockerTask[]> => {
  const r = await call(s!.socket, 'GET', `/v1.41/tasks?${q(filters)}`);
  expect(r.status, r.text).toBe(200);
  return (r.json as DockerTask[]).sort((a, b) => a.ID.localeCompare(b.ID));
};
const listTasksReqs = (calls: Array<{ method: string; req: unknown }>) => calls.filter((c) => c.method === 'listTasks').map((c) => c.req);

describe('GET /tasks with service and node filters', () => {
  it('reads only the filtered services and nodes, and answers what the whole listing filtered would', async () => {
    const { calls } = await setup();
    const all = await tasksCall({});
    expect(all).toHaveLength(9);
    expect(listTasksReqs(calls)).toEqual([{ services: [], nodes: [], desiredRunning: false }]);

    const cases: Array<[Record<string, string[]>, (t: DockerTask) => boolean, { services: string[]; nodes: string[] } | null]> = [
      [{ service: ['web'] }, (t) => t.ServiceID === SVC.web, { services: [SVC.web], nodes: [] }],
      [
        { service: [SVC.api.slice(0, 5), 'db'] },
        (t) => t.ServiceID === SVC.api || t.ServiceID === SVC.db,
        { services: [SVC.api, SVC.db], nodes: [] },
      ],
      [{ node: ['w1'] }, (t) => t.NodeID === N2, { services: [], nodes: [N2] }],
      [{ service: ['web'], node: [N1] }, (t) => t.ServiceID === SVC.web && t.NodeID === N1, { services: [SVC.web], nodes: [N1] }],
      [
        { service: ['web'], 'desired-state': ['running'] },
        (t) => t.ServiceID === SVC.web && t.DesiredState === 'running',
        { services: [SVC.web], nodes: [] },
      ],
      // A filter none of whose values names anything keeps nothing, and reads nothing.
      [{ service: ['nope'] }, () => false, null],
      [{ node: ['nope'] }, () => false, null],
    ];
    for (const [filters, want, req] of cases) {
      calls.length = 0;
      const got = await tasksCall(filters);
      expect(got, JSON.stringify(filters)).toEqual(all.filter(want));
      expect(listTasksReqs(calls), JSON.stringify(filters)).toEqual(req ? [{ ...req, desiredRunning: false }] : []);
    }
  });

  it('a filter the index does not serve (labels) still reads the whole listing', async () => {
    const { calls } = await setup();
    await tasksCall({ label: ['x=y'] });
    expect(listTasksReqs(calls)).toEqual([{ services: [], nodes: [], desiredRunning: false }]);
  });
});

describe('GET /services?status with a filter', () => {
  it('counts only the chosen services, from their tasks alone, with the counts of the whole listing', async () => {
    const { calls } = await setup();
    type DockerService = { ID: string; ServiceStatus: unknown };
    const get = async (query: string): Promise<DockerService[]> => {
      const r = await call(s!.socket, 'GET', `/v1.41/services?status=true${query}`);
      expect(r.status, r.text).toBe(200);
      return r.json as DockerService[];
    };
    const all = await get('');
    expect(listTasksReqs(calls)).toEqual([{ services: [], nodes: [], desiredRunning: false }]);
    calls.length = 0;
    const web = await get(`&${q({ name: ['web'] })}`);
    expect(web).toEqual(all.filter((x) => x.ID === SVC.web));
    expect(web[0]!.ServiceStatus).toEqual({ RunningTasks: 2, DesiredTasks: 3, CompletedTasks: 0 });
    expect(listTasksReqs(calls)).toEqual([{ services: [SVC.web], nodes: [], desiredRunning: false }]);
    calls.length = 0;
    expect(await get(`&${q({ name: ['nope'] })}`)).toEqual([]);
    expect(listTasksReqs(calls)).toEqual([]);
  });
});
