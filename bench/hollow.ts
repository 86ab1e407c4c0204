// `npm run bench -- hollow`: one manager (Raft on a temporary directory, mTLS
// on loopback) and N hollow nodes (node/hollow.ts) in this one process. Each
// node joins with the worker token (its own key, certificate and session) and
// runs the real worker over a hollow runtime. Measures seconds until all N
// are READY in the store, seconds from a service of T replicas created until
// all T are RUNNING, seconds until the tasks of a drained 10 % run elsewhere,
// and the process's RSS. The manager and every agent share this process and
// its one event loop, so these are the figures of the whole cluster on one
// core, not of a manager alone. N and T: BENCH_NODES (200), BENCH_TASKS (5000);
// joins at once: BENCH_JOIN_WIDTH (16).
import { startHollowNodes } from '../node/hollow.js';
import { ContainerSpec, NodeState, Placement, ServiceSpec, TaskSpec, TaskState } from '../proto/gen/objects.js';
import { startLoneManager } from '../test/manager/lone-manager.js';
import { until } from '../test/lib/wait.js';
import { Report } from './report.js';

export async function main(): Promise<void> {
  const nodes = Number(process.env.BENCH_NODES ?? 200);
  const tasks = Number(process.env.BENCH_TASKS ?? 5000);
  const report = new Report('hollow');
  const c = `${nodes}n-${tasks}t`;
  const lone = await startLoneManager('tssm-bench', 'tssbenchhollow00000000000', { tls: true });
  const store = lone.manager.store;
  const api = lone.manager.controlHandlers();
  const wait = (what: string, f: () => boolean) => until(what, f, { timeoutMs: 30 * 60_000, everyMs: 100 });
  const t0 = performance.now();
  const hollow = await startHollowNodes({
    managerAddrs: [lone.addr],
    joinToken: lone.manager.clusterApi.joinTokens().worker,
    count: nodes,
    namePrefix: 'bench-hollow',
    joinConcurrency: Number(process.env.BENCH_JOIN_WIDTH ?? 16),
  });
  try {
    report.add('tsswarm', c, 'join_seconds', (performance.now() - t0) / 1000, 's');
    const ids = new Set(hollow.nodes.map((n) => n.nodeId));
    await wait('all nodes READY', () => {
      let ready = 0;
      for (const n of store.view((tx) => tx.nodes.list())) if (ids.has(n.meta.id) && n.status?.state === NodeState.READY) ready++;
      return ready === nodes;
    });
    report.add('tsswarm', c, 'ready_seconds', (performance.now() - t0) / 1000, 's');

    const spec = ServiceSpec.create({
      name: 'bench',
      task: TaskSpec.create({
        container: ContainerSpec.create({ image: 'tss/busybox' }),
        placement: Placement.create({ constraints: ['node.role==worker'] }),
      }),
      replicated: { replicas: tasks },
    });
    const t1 = performance.now();
    const sid = (await api.createService({ spec })).service.meta.id;
    const running = () =>
      store
        .view((tx) => tx.tasks.list())
        .filter((t) => t.serviceId === sid && t.desiredState === TaskState.RUNNING && t.status.state === TaskState.RUNNING);
    await wait(`${tasks} tasks RUNNING`, () => running().length === tasks);
    report.add('tsswarm', c, 'run_seconds', (performance.now() - t1) / 1000, 's');

    const drained = new Set(hollow.nodes.slice(0, Math.max(1, Math.floor(nodes / 10))).map((n) => n.nodeId));
    const t2 = performance.now();
    for (const ref of drained) await api.updateNode({ ref, version: 0, availability: 'drain', role: '', labelAdd: {}, labelRm: [] });
    await wait('the drained tasks RUNNING elsewhere', () => {
      const r = running();
      return r.length === tasks && r.every((t) => !drained.has(t.nodeId));
    });
    report.add('tsswarm', c, 'drain10pct_seconds', (performance.now() - t2) / 1000, 's');
    report.add('tsswarm', c, 'rss_mb', process.memoryUsage().rss / 2 ** 20, 'MB');
  } finally {
    await hollow.close();
    await lone.close();
  }
  report.table();
}
