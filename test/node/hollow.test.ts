// Hollow nodes (node/hollow.ts) against one real in-process manager serving
// mTLS on loopback: 50 join with the worker token, each with its own key,
// certificate and session, and are READY; a service of 500 replicas runs on
// them through the real worker and task runners; a drain of 5 moves their
// tasks; a start set to fail fails its task; a health check passes; and closing them leaves no
// timer or session behind (the manager sees every one go DOWN).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHollowNodes, type HollowNodes } from '../../node/hollow.js';
import type { ControlHandlers } from '../../proto/gen/control.js';
import { ContainerSpec, NodeAvailability, NodeState, Placement, ServiceSpec, TaskSpec, TaskState } from '../../proto/gen/objects.js';
import { until } from '../lib/wait.js';
import { type LoneManager, startLoneManager } from '../manager/lone-manager.js';

const N = 50;
const REPLICAS = 500;
let lone: LoneManager;
let api: ControlHandlers;
let hollow: HollowNodes | undefined;

const wait = <T>(what: string, fn: () => T): Promise<NonNullable<T>> => until(what, fn, { timeoutMs: 60_000, everyMs: 50 });
const store = () => lone.manager.store;
const hollowNodes = () =>
  store()
    .view((tx) => tx.nodes.list())
    .filter((n) => n.description?.hostname.startsWith('tss-hollow-'));
const tasksOf = (serviceId: string) =>
  store()
    .view((tx) => tx.tasks.list())
    .filter((t) => t.serviceId === serviceId);

const service = (name: string, image: string, replicas: number) =>
  ServiceSpec.create({
    name,
    task: TaskSpec.create({
      container: ContainerSpec.create({ image }),
      // The manager's own node has no agent here: tasks go to the hollow workers only.
      placement: Placement.create({ constraints: ['node.role==worker'] }),
    }),
    replicated: { replicas },
  });

beforeAll(async () => {
  lone = await startLoneManager('tssm-hollow', 'tsshollowcluster000000000', { tls: true, heartbeatPeriodMs: 1000 });
  api = lone.manager.controlHandlers();
}, 30_000);

afterAll(async () => {
  await hollow?.close();
  await lone?.close();
});

describe('hollow nodes', () => {
  it(`${N} join with the worker token, run ${REPLICAS} tasks, a drain moves tasks, and close leaves nothing running`, async () => {
    const token = lone.manager.clusterApi.joinTokens().worker;
    hollow = await startHollowNodes({
      managerAddrs: [lone.addr],
      joinToken: token,
      count: N,
      namePrefix: 'tss-hollow',
      delays: { prepareMs: 5, startMs: 5, stopMs: 1 },
      failStart: (c) => c.image === 'tss/hollow-fails',
    });
    expect(hollow.nodes).toHaveLength(N);
    // Each its own identity: distinct node ids, each a worker in the store.
    expect(new Set(hollow.nodes.map((n) => n.nodeId)).size).toBe(N);
    await wait(`all ${N} hollow nodes READY`, () => {
      const ns = hollowNodes();
      return ns.length === N && ns.every((n) => n.status?.state === NodeState.READY);
    });
    expect(
      hollowNodes()
        .map((n) => n.meta.id)
        .sort(),
    ).toEqual(hollow.nodes.map((n) => n.nodeId).sort());

    const svc = (await api.createService({ spec: service('tss-hollow-web', 'tss/busybox', REPLICAS) })).service;
    const sid = svc.meta.id;
    const ids = new Set(hollow.nodes.map((n) => n.nodeId));
    const running = () => tasksOf(sid).filter((t) => t.desiredState === TaskState.RUNNING && t.status.state === TaskState.RUNNING);
    await wait(`${REPLICAS} tasks RUNNING`, () => running().length === REPLICAS);
    expect(running().every((t) => ids.has(t.nodeId))).toBe(true);
    // The hollow runtimes hold exactly those containers, each attached to its networks.
    expect(hollow.nodes.reduce((s, n) => s + n.runtime.running, 0)).toBe(REPLICAS);
    expect(hollow.nodes.reduce((s, n) => s + n.network.attached.size, 0)).toBe(REPLICAS);

    // Drain 5: their tasks shut down there and run elsewhere.
    const drained = hollow.nodes.slice(0, 5);
    const gone = new Set(drained.map((n) => n.nodeId));
    expect(running().filter((t) => gone.has(t.nodeId)).length).toBeGreaterThan(0);
    for (const n of drained)
      await api.updateNode({ ref: n.nodeId, version: 0, availability: 'drain', role: '', labelAdd: {}, labelRm: [] });
    expect(store().view((tx) => tx.nodes.get(drained[0]!.nodeId))!.spec.availability).toBe(NodeAvailability.DRAIN);
    await wait(`${REPLICAS} tasks RUNNING off the drained nodes`, () => {
      const r = running();
      return r.length === REPLICAS && r.every((t) => !gone.has(t.nodeId));
    });
    await wait('the drained nodes’ containers stopped', () => drained.every((n) => n.runtime.running === 0));

    // A start set to fail: the task fails with the hollow runtime's message, and is replaced.
    const bad = (await api.createService({ spec: service('tss-hollow-fails', 'tss/hollow-fails', 1) })).service;
    const failed = await wait('the failing task FAILED', () => tasksOf(bad.meta.id).find((t) => t.status.state === TaskState.FAILED));
    expect(failed.status.err).toContain('this start was set to fail');
    expect(hollow.nodes.reduce((s, n) => s + n.runtime.failed, 0)).toBeGreaterThan(0);

    // A health check passes in a hollow container: the task goes STARTING → RUNNING on its probe.
    const spec = service('tss-hollow-checked', 'tss/busybox', 2);
    spec.task!.container!.healthcheck = {
      test: ['CMD', 'true'],
      intervalMs: 100,
      timeoutMs: 1000,
      retries: 3,
      startPeriodMs: 0,
      startIntervalMs: 0,
    };
    const checked = (await api.createService({ spec })).service;
    await wait('the checked tasks RUNNING and healthy', () => {
      const ts = tasksOf(checked.meta.id).filter((t) => t.status.state === TaskState.RUNNING);
      return ts.length === 2 && ts.every((t) => t.status.health === 'healthy');
    });

    // Closing: no timer, session or heartbeat survives; the manager marks every hollow node DOWN.
    await hollow.close();
    expect(hollow.pendingTimers).toBe(0);
    expect(hollow.nodes.every((n) => n.session.connectedTo === '')).toBe(true);
    await wait(`all ${N} hollow nodes DOWN`, () => hollowNodes().every((n) => n.status?.state === NodeState.DOWN));
    hollow = undefined;
  }, 180_000);
});
