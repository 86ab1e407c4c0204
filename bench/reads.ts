// `npm run bench -- reads`: the cost of the per-request listings on a large
// store, in process (no cluster): a store of TASKS tasks (default 100,000)
// over SERVICES services (default 100) and NODES nodes (default 100), restored
// from one snapshot, then the reads `docker service ps` and `docker service
// ls` make: the Control API's ListTasks by service and by node, ListServices,
// and the store's own index lookup against a scan of the whole table; then
// the two Control API reads GET /tasks?filters=service=… makes, with the
// tasks read whole (as before issue 19) and by service. Median and p90 of RUNS
// runs (default 30) after 3 warm-up runs, in milliseconds.
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../lib/log.js';
import { ServiceApi } from '../manager/controlapi/index.js';
import { localStore, type MemoryStore } from '../manager/store/index.js';
import {
  ContainerSpec,
  Meta,
  Node,
  NodeRole,
  NodeSpec,
  Service,
  ServiceSpec,
  StoreSnapshot,
  Task,
  TaskSpec,
  TaskState,
  TaskStatus,
} from '../proto/gen/objects.js';
import { percentile } from './report.js';

const num = (name: string, dflt: number): number => {
  const v = process.env[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: a positive integer (got "${v}")`);
  return n;
};

const pad = (i: number): string => i.toString(36).padStart(25, '0');

/** A store of `tasks` tasks spread round-robin over `services` services and `nodes` nodes. */
export function bigStore(tasks: number, services: number, nodes: number): MemoryStore {
  const spec = TaskSpec.create({ container: ContainerSpec.create({ image: 'busybox:latest', command: ['sleep', '1d'], env: ['A=1'] }) });
  const snap = StoreSnapshot.create({
    format: 1,
    nodes: Array.from({ length: nodes }, (_, i) =>
      Node.create({ meta: Meta.create({ id: `n${pad(i)}` }), spec: NodeSpec.create({ name: `host-${i}`, role: NodeRole.WORKER }) }),
    ),
    services: Array.from({ length: services }, (_, i) =>
      Service.create({
        meta: Meta.create({ id: `s${pad(i)}` }),
        spec: ServiceSpec.create({ name: `svc-${i}`, replicated: { replicas: Math.ceil(tasks / services) }, task: spec }),
      }),
    ),
    tasks: Array.from({ length: tasks }, (_, i) =>
      Task.create({
        meta: Meta.create({ id: `t${pad(i)}`, version: 1, createdAt: 1, updatedAt: 1 }),
        serviceId: `s${pad(i % services)}`,
        nodeId: `n${pad(i % nodes)}`,
        slot: Math.floor(i / services) + 1,
        spec,
        desiredState: i % 4 === 0 ? TaskState.SHUTDOWN : TaskState.RUNNING,
        status: TaskStatus.create({ state: i % 4 === 0 ? TaskState.SHUTDOWN : TaskState.RUNNING, timestamp: 1, message: 'started' }),
      }),
    ),
  });
  const s = localStore();
  s.restore(StoreSnapshot.encode(snap), 1);
  return s;
}

async function time(runs: number, fn: () => unknown): Promise<{ p50: number; p90: number }> {
  for (let i = 0; i < 3; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { p50: percentile(ms, 0.5), p90: percentile(ms, 0.9) };
}

export async function main(): Promise<void> {
  const tasks = num('TASKS', 100_000);
  const services = num('SERVICES', 100);
  const nodes = num('NODES', 100);
  const runs = num('RUNS', 30);
  const t0 = performance.now();
  const store = bigStore(tasks, services, nodes);
  console.error(`store of ${tasks} tasks, ${services} services, ${nodes} nodes restored in ${(performance.now() - t0).toFixed(0)} ms`);
  const api = new ServiceApi({ store, logger: silentLogger() });
  const sid = `s${pad(7)}`;
  const nid = `n${pad(7)}`;
  const cases: Array<[string, () => unknown]> = [
    ['store_scan_service', () => store.view((tx) => tx.tasks.list().filter((t) => t.serviceId === sid))],
    ['store_index_service', () => store.view((tx) => tx.tasks.by('service', sid))],
    ['listtasks_service', () => api.listTasks({ services: ['svc-7'], nodes: [], desiredRunning: false })],
    ['listtasks_node', () => api.listTasks({ services: [], nodes: [nid], desiredRunning: false })],
    ['listtasks_all', () => api.listTasks({ services: [], nodes: [], desiredRunning: false })],
    ['listservices', () => api.listServices({})],
    // What GET /tasks?filters=service=… asks of the Control API: every service, and its tasks (before: every task).
    ['engine_ps_whole_table', () => Promise.all([api.listServices({}), api.listTasks({ services: [], nodes: [], desiredRunning: false })])],
    [
      'engine_ps_by_service',
      () => Promise.all([api.listServices({}), api.listTasks({ services: [sid], nodes: [], desiredRunning: false })]),
    ],
  ];
  for (const [name, fn] of cases) {
    const r = await time(runs, fn);
    console.log(
      JSON.stringify({ bench: 'reads', case: name, tasks, services, nodes, p50_ms: +r.p50.toFixed(3), p90_ms: +r.p90.toFixed(3) }),
    );
    console.error(`${name.padEnd(22)} p50 ${r.p50.toFixed(3).padStart(9)} ms  p90 ${r.p90.toFixed(3).padStart(9)} ms`);
  }
}
