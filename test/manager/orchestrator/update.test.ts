// Rolling updates and rollbacks.
import { afterEach, describe, expect, it } from 'vitest';
import { startOrchestration } from '../../../manager/orchestrator/index.js';
import {
  NodeState,
  type ServiceSpec,
  type Task,
  TaskState,
  UpdateFailureAction,
  UpdateOrder,
  UpdateState,
} from '../../../proto/gen/objects.js';
import {
  agents,
  agentsStep,
  cluster,
  log,
  report,
  setNode,
  running,
  service,
  settle,
  spec,
  tasksOf,
  teardown,
  type TestCluster,
  withImage,
} from './harness.js';

afterEach(teardown);

const update = (o: Partial<NonNullable<ServiceSpec['update']>> = {}) => ({
  parallelism: 1,
  delayMs: 0,
  failureAction: UpdateFailureAction.PAUSE,
  monitorMs: 0,
  maxFailureRatio: 0,
  order: UpdateOrder.STOP_FIRST,
  ...o,
});
const image = (c: TestCluster, name: string, img: string) => tasksOf(c, name).filter((t) => t.spec?.container?.image === img);
const current = (c: TestCluster, name: string, img: string) => image(c, name, img).filter((t) => t.desiredState <= TaskState.RUNNING);

async function deploy(c: TestCluster, s: ServiceSpec): Promise<ServiceSpec> {
  await c.api.createService({ spec: s });
  await agents(c);
  return service(c, s.name).spec;
}

describe('updater', () => {
  it('parallelism 2 updates 5 tasks in batches of 2, 2 and 1, waiting the delay between batches', async () => {
    const c = await cluster(5);
    const s = await deploy(c, spec('web', { replicated: { replicas: 5 }, update: update({ parallelism: 2, delayMs: 10_000 }) }));
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await settle();
    expect(
      current(c, 'web', 'busybox:2')
        .map((t) => t.slot)
        .sort(),
    ).toEqual([1, 2]);
    await agents(c);
    // The first batch runs; the second waits for the delay.
    expect(current(c, 'web', 'busybox:2')).toHaveLength(2);
    c.clock.advance(10_000);
    await settle();
    expect(
      current(c, 'web', 'busybox:2')
        .map((t) => t.slot)
        .sort(),
    ).toEqual([1, 2, 3, 4]);
    await agents(c);
    c.clock.advance(10_000);
    await agents(c);
    expect(current(c, 'web', 'busybox:2')).toHaveLength(5);
    c.clock.advance(10_000);
    await settle();
    expect(running(c, 'web').every((t) => t.spec?.container?.image === 'busybox:2')).toBe(true);
    expect(service(c, 'web').updateStatus).toMatchObject({ state: UpdateState.COMPLETED, message: 'update completed' });
    expect(service(c, 'web').updateStatus!.completedAt).toBeGreaterThan(0);
  });

  it('stop-first shuts the old task down and starts its successor only once the old one has stopped', async () => {
    const c = await cluster(1);
    const s = await deploy(c, spec('web', { update: update() }));
    const [old] = running(c, 'web');
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await settle();
    expect(tasksOf(c, 'web').find((t) => t.meta.id === old!.meta.id)!.desiredState).toBe(TaskState.SHUTDOWN);
    // Made, scheduled and prepared now, held at READY while the old task still runs.
    const [next] = current(c, 'web', 'busybox:2');
    expect(next!.desiredState).toBe(TaskState.READY);
    await report(c, next!, { state: TaskState.READY });
    c.clock.advance(60_000);
    await settle();
    expect(current(c, 'web', 'busybox:2')[0]!.desiredState).toBe(TaskState.READY);
    await report(c, old!, { state: TaskState.SHUTDOWN });
    expect(current(c, 'web', 'busybox:2')[0]!.desiredState).toBe(TaskState.RUNNING);
    await agents(c);
    expect(running(c, 'web').map((t) => t.spec?.container?.image)).toEqual(['busybox:2']);
  });

  it('stop-first does not wait for an old task whose node is down', async () => {
    const c = await cluster(2);
    const s = await deploy(c, spec('web', { update: update() }));
    const [old] = running(c, 'web');
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await settle();
    expect(current(c, 'web', 'busybox:2')[0]!.desiredState).toBe(TaskState.READY);
    await setNode(c, old!.nodeId, (n) => ({ ...n, status: { ...n.status!, state: NodeState.DOWN } }));
    expect(current(c, 'web', 'busybox:2')[0]!.desiredState).toBe(TaskState.RUNNING);
  });

  it('start-first keeps the old task running until its successor runs', async () => {
    const c = await cluster(1);
    const s = await deploy(c, spec('web', { update: update({ order: UpdateOrder.START_FIRST }) }));
    const [old] = running(c, 'web');
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await settle();
    expect(tasksOf(c, 'web').find((t) => t.meta.id === old!.meta.id)!.desiredState).toBe(TaskState.RUNNING);
    expect(current(c, 'web', 'busybox:2')).toHaveLength(1);
    await agentsStep(c); // the new task runs
    expect(tasksOf(c, 'web').find((t) => t.meta.id === old!.meta.id)!.desiredState).toBe(TaskState.SHUTDOWN);
    await agents(c);
    expect(running(c, 'web').map((t) => t.spec?.container?.image)).toEqual(['busybox:2']);
  });

  it('a failing new version with failure action rollback goes back to the old spec: ROLLBACK_COMPLETED', async () => {
    const c = await cluster(3);
    const s = await deploy(
      c,
      spec('web', {
        replicated: { replicas: 3 },
        update: update({ failureAction: UpdateFailureAction.ROLLBACK, monitorMs: 5000 }),
        rollback: update({ monitorMs: 1000 }),
      }),
    );
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'broken:1'), rollback: false });
    await agents(c, (t) => t.spec?.container?.image === 'broken:1');
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.ROLLBACK_STARTED);
    c.clock.advance(1000);
    await agents(c);
    const svc = service(c, 'web');
    expect(svc.updateStatus!.state).toBe(UpdateState.ROLLBACK_COMPLETED);
    expect(svc.updateStatus!.message).toMatch(
      /^update rolled back due to failure or early termination of task \w+ \(task: non-zero exit \(1\)\)$/,
    );
    expect(svc.spec.task.container.image).toBe('busybox');
    const r = running(c, 'web');
    expect(r).toHaveLength(3);
    expect(r.every((t) => t.spec?.container?.image === 'busybox')).toBe(true);
  });

  it('failure action pause stops the update with a message naming the task and its error', async () => {
    const c = await cluster(3);
    const s = await deploy(c, spec('web', { replicated: { replicas: 3 }, update: update({ monitorMs: 5000 }) }));
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'broken:1'), rollback: false });
    await agents(c, (t) => t.spec?.container?.image === 'broken:1', 2);
    const svc = service(c, 'web');
    expect(svc.updateStatus!.state).toBe(UpdateState.PAUSED);
    const failed = image(c, 'web', 'broken:1')
      .filter((t) => t.status?.state === TaskState.FAILED)
      .map((t) => t.meta.id);
    const m = /^update paused due to failure or early termination of task (\w+) \(task: non-zero exit \(1\)\)$/.exec(
      svc.updateStatus!.message,
    );
    expect(failed).toContain(m?.[1]);
    // Paused: the other slots stay on the old version.
    expect(running(c, 'web').filter((t) => t.spec?.container?.image === 'busybox')).toHaveLength(2);
  });

  it('max failure ratio: one failed task of 4 pauses the update at 0, and is tolerated at 0.5 (the update completes)', async () => {
    const failsOnce = (t: { slot: number; restartAttempt: number; spec?: ServiceSpec['task'] | null }) =>
      t.spec?.container?.image === 'busybox:2' && t.slot === 4 && t.restartAttempt === 0;
    const outcome = async (maxFailureRatio: number): Promise<UpdateState | undefined> => {
      const c = await cluster(4);
      const s = await deploy(c, spec('web', { replicated: { replicas: 4 }, update: update({ monitorMs: 5000, maxFailureRatio }) }));
      await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
      for (let i = 0; i < 6; i++) {
        await agents(c, failsOnce);
        c.clock.advance(5000);
      }
      await agents(c, failsOnce);
      const st = service(c, 'web').updateStatus?.state;
      await teardown();
      return st;
    };
    expect(await outcome(0)).toBe(UpdateState.PAUSED);
    expect(await outcome(0.5)).toBe(UpdateState.COMPLETED);
  });

  it('updating a paused service resumes with the new spec', async () => {
    const c = await cluster(2);
    const s = await deploy(c, spec('web', { replicated: { replicas: 2 }, update: update({ monitorMs: 5000 }) }));
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'broken:1'), rollback: false });
    await agents(c, (t) => t.spec?.container?.image === 'broken:1');
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.PAUSED);
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:3'), rollback: false });
    await agents(c);
    c.clock.advance(5000);
    await agents(c);
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.COMPLETED);
    expect(running(c, 'web').map((t) => t.spec?.container?.image)).toEqual(['busybox:3', 'busybox:3']);
  });

  it('scaling a paused service clears the pause: the update starts again and completes (SwarmKit resets the status)', async () => {
    const c = await cluster(2);
    const s = await deploy(c, spec('web', { replicated: { replicas: 2 }, update: update({ monitorMs: 5000 }) }));
    const flaky = withImage(s, 'flaky:1');
    await c.api.updateService({ ref: 'web', version: 0, spec: flaky, rollback: false });
    await agents(c, (t) => t.spec?.container?.image === 'flaky:1');
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.PAUSED);
    await c.api.updateService({ ref: 'web', version: 0, spec: { ...flaky, replicated: { replicas: 3 } }, rollback: false });
    expect(service(c, 'web').updateStatus ?? null).toBeNull();
    await settle();
    expect(service(c, 'web').updateStatus).toMatchObject({ state: UpdateState.UPDATING, message: 'update in progress' });
    await agents(c);
    c.clock.advance(5000);
    await agents(c);
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.COMPLETED);
    expect(running(c, 'web').map((t) => t.spec?.container?.image)).toEqual(['flaky:1', 'flaky:1', 'flaky:1']);
  });

  it('a failure within the monitor window after the last task started still counts', async () => {
    const c = await cluster(1);
    const s = await deploy(c, spec('web', { update: update({ monitorMs: 5000 }) }));
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await agents(c);
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.UPDATING);
    const [t] = running(c, 'web');
    c.clock.advance(2000);
    await c.store.update((tx) => {
      const cur = tx.tasks.get(t!.meta.id)!;
      tx.tasks.update({ ...cur, status: { ...cur.status, state: TaskState.FAILED, timestamp: c.clock.now(), exitCode: 1 } } as typeof cur);
    });
    await settle();
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.PAUSED);
  });

  it('a task whose runningAt is ahead of the manager’s clock (another clock’s) still ends its monitor: the update completes', async () => {
    const c = await cluster(1);
    const s = await deploy(c, spec('web', { update: update({ monitorMs: 5000 }) }));
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await settle();
    const [next] = current(c, 'web', 'busybox:2');
    // Stamped by a clock an hour ahead of this manager's.
    const ahead = c.clock.now() + 3_600_000;
    await report(c, next!, { state: TaskState.RUNNING, startedAt: ahead, runningAt: ahead, timestamp: ahead });
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.UPDATING);
    c.clock.advance(5000);
    await settle();
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.COMPLETED);
  });

  it('a task without runningAt (no health check) counts its monitor from its container start: failing past the monitor is no failure', async () => {
    const c = await cluster(2);
    const s = await deploy(c, spec('web', { replicated: { replicas: 2 }, update: update({ monitorMs: 5000 }) }));
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await settle();
    const [first] = current(c, 'web', 'busybox:2');
    // Stored RUNNING by a manager that did not stamp runningAt, from an agent that did not send it.
    await report(c, first!, { state: TaskState.RUNNING, startedAt: c.clock.now(), runningAt: 0 });
    c.clock.advance(8000);
    await settle();
    // Its monitor is over: the second slot is being updated.
    expect(current(c, 'web', 'busybox:2')).toHaveLength(2);
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.UPDATING);
    // It fails 8 s after it started, past the 5 s monitor: the update is not paused for it.
    await report(c, first!, { state: TaskState.FAILED, exitCode: 1, err: 'task: non-zero exit (1)' });
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.UPDATING);
  });

  it('a manual rollback runs with the rollback config and completes', async () => {
    const c = await cluster(2);
    const s = await deploy(c, spec('web', { replicated: { replicas: 2 }, update: update(), rollback: update({ parallelism: 0 }) }));
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await agents(c);
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.COMPLETED);
    await c.api.updateService({ ref: 'web', version: 0, spec: service(c, 'web').spec, rollback: true });
    await settle();
    // Parallelism 0: both slots at once.
    expect(current(c, 'web', 'busybox')).toHaveLength(2);
    await agents(c);
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.ROLLBACK_COMPLETED);
    expect(running(c, 'web').map((t) => t.spec?.container?.image)).toEqual(['busybox', 'busybox']);
  });

  it('a new leader continues an update where the old one stopped', async () => {
    const c = await cluster(3);
    const s = await deploy(c, spec('web', { replicated: { replicas: 3 }, update: update() }));
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await agentsStep(c);
    await c.orch.stop();
    const done = image(c, 'web', 'busybox:2').length;
    expect(done).toBeGreaterThanOrEqual(1);
    expect(done).toBeLessThan(3);
    c.orch = startOrchestration({ store: c.store, logger: log, clock: c.clock });
    await agents(c);
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.COMPLETED);
    expect(running(c, 'web').filter((t) => t.spec?.container?.image === 'busybox:2')).toHaveLength(3);
  });
});

describe('health-gated updates (a task is RUNNING once healthy: the agent holds it STARTING until then)', () => {
  const startFirst = (o: Partial<NonNullable<ServiceSpec['update']>> = {}) =>
    update({ order: UpdateOrder.START_FIRST, monitorMs: 5000, ...o });
  const desired = (c: TestCluster, id: string) => tasksOf(c, 'web').find((t) => t.meta.id === id)!.desiredState;
  /** The agent's reports for a task that started its container `ago` ms back and has not passed its check yet. */
  const starting = (c: TestCluster, t: Task, ago = 0) =>
    report(c, t, { state: TaskState.STARTING, health: 'starting', startedAt: c.clock.now() - ago, pid: 42 });
  const unhealthy = (c: TestCluster, t: Task) =>
    report(c, t, {
      state: TaskState.FAILED,
      health: 'unhealthy',
      exitCode: 137,
      pid: 0,
      err: 'task: non-zero exit (137): unhealthy container before it ever passed its health check',
    });
  const healthy = (c: TestCluster, t: Task) => report(c, t, { state: TaskState.RUNNING, health: 'healthy', runningAt: c.clock.now() });

  it('start-first keeps the old task while its successor is STARTING, however long, and shuts it down once the successor is RUNNING', async () => {
    const c = await cluster(1);
    const s = await deploy(c, spec('web', { update: startFirst() }));
    const [old] = running(c, 'web');
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await settle();
    const [next] = current(c, 'web', 'busybox:2');
    await starting(c, next!);
    c.clock.advance(600_000);
    await settle();
    expect(desired(c, old!.meta.id)).toBe(TaskState.RUNNING);
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.UPDATING);
    await healthy(c, next!);
    expect(desired(c, old!.meta.id)).toBe(TaskState.SHUTDOWN);
  });

  it('a successor that fails its health check before it ever runs is a failure, however long ago its container started: the update pauses, the old tasks untouched', async () => {
    const c = await cluster(2);
    const s = await deploy(c, spec('web', { replicated: { replicas: 2 }, update: startFirst() }));
    const old = running(c, 'web').map((t) => t.meta.id);
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'sick:1'), rollback: false });
    await settle();
    const [next] = current(c, 'web', 'sick:1');
    // Its container started 60 s ago, far past the 5 s monitor; it never reached RUNNING, so it ran 0 ms.
    await starting(c, next!, 60_000);
    await unhealthy(c, next!);
    const svc = service(c, 'web');
    expect(svc.updateStatus!.state).toBe(UpdateState.PAUSED);
    expect(svc.updateStatus!.message).toMatch(
      new RegExp(
        `^update paused due to failure or early termination of task ${next!.meta.id} \\(task: non-zero exit \\(137\\): unhealthy container`,
      ),
    );
    expect(old.map((id) => desired(c, id))).toEqual([TaskState.RUNNING, TaskState.RUNNING]);
    // The restart policy replaces the sick task with another of the new spec; the old ones keep serving beside it.
    await agents(c, (t) => t.spec?.container?.image === 'sick:1');
    expect(old.map((id) => desired(c, id))).toEqual([TaskState.RUNNING, TaskState.RUNNING]);
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.PAUSED);
  });

  it('with failure action rollback, an unhealthy successor rolls the service back without the old tasks ever being stopped', async () => {
    const c = await cluster(2);
    const s = await deploy(
      c,
      spec('web', {
        replicated: { replicas: 2 },
        update: startFirst({ failureAction: UpdateFailureAction.ROLLBACK }),
        rollback: startFirst({ monitorMs: 1000 }),
      }),
    );
    const old = running(c, 'web').map((t) => t.meta.id);
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'sick:1'), rollback: false });
    await settle();
    const [next] = current(c, 'web', 'sick:1');
    await starting(c, next!);
    await unhealthy(c, next!);
    await agents(c);
    const svc = service(c, 'web');
    expect(svc.updateStatus!.state).toBe(UpdateState.ROLLBACK_COMPLETED);
    expect(svc.updateStatus!.message).toMatch(
      /^update rolled back due to failure or early termination of task \w+ \(task: non-zero exit \(137\): unhealthy/,
    );
    expect(svc.spec.task.container.image).toBe('busybox');
    expect(old.map((id) => desired(c, id))).toEqual([TaskState.RUNNING, TaskState.RUNNING]);
    expect(
      running(c, 'web')
        .map((t) => t.meta.id)
        .sort(),
    ).toEqual([...old].sort());
    expect(current(c, 'web', 'sick:1')).toEqual([]);
  });

  it('a successor reported unhealthy while STARTING is a failure at once, before its agent has stopped it', async () => {
    const c = await cluster(1);
    const s = await deploy(c, spec('web', { update: startFirst() }));
    const [old] = running(c, 'web');
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'sick:1'), rollback: false });
    await settle();
    const [next] = current(c, 'web', 'sick:1');
    await starting(c, next!);
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.UPDATING);
    await report(c, next!, { state: TaskState.STARTING, health: 'unhealthy', message: 'unhealthy' });
    expect(service(c, 'web').updateStatus).toMatchObject({
      state: UpdateState.PAUSED,
      message: `update paused due to failure or early termination of task ${next!.meta.id} (unhealthy container)`,
    });
    expect(desired(c, old!.meta.id)).toBe(TaskState.RUNNING);
  });

  it('--update-monitor counts from RUNNING (healthy), not from the container start: a failure 3 s after turning healthy still counts', async () => {
    const c = await cluster(1);
    const s = await deploy(c, spec('web', { update: update({ monitorMs: 5000 }) }));
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await agents(c); // the old task stops, its successor is made and assigned
    const [next] = current(c, 'web', 'busybox:2');
    await starting(c, next!);
    c.clock.advance(20_000); // 20 s to pass its first check
    await healthy(c, next!);
    c.clock.advance(3000);
    await settle();
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.UPDATING);
    await report(c, next!, { state: TaskState.FAILED, exitCode: 1, err: 'task: non-zero exit (1)' });
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.PAUSED);
  });

  it('--update-monitor: an update completes once every new task has been RUNNING for the monitor, counted from healthy', async () => {
    const c = await cluster(1);
    const s = await deploy(c, spec('web', { update: update({ monitorMs: 5000 }) }));
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await agents(c);
    const [next] = current(c, 'web', 'busybox:2');
    await starting(c, next!);
    c.clock.advance(20_000);
    await settle();
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.UPDATING);
    await healthy(c, next!);
    // The harness clock is real time plus what the test advanced: a margin for the real part.
    c.clock.advance(4000);
    await settle();
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.UPDATING);
    c.clock.advance(1000);
    await settle();
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.COMPLETED);
  });

  it('a new task that turns unhealthy while RUNNING within the monitor is a failure', async () => {
    const c = await cluster(1);
    const s = await deploy(c, spec('web', { update: startFirst() }));
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await settle();
    const [next] = current(c, 'web', 'busybox:2');
    await healthy(c, next!);
    c.clock.advance(1000);
    await report(c, next!, { state: TaskState.RUNNING, health: 'unhealthy' });
    expect(service(c, 'web').updateStatus!.state).toBe(UpdateState.PAUSED);
  });

  it.each([
    [0.5, 'COMPLETED'],
    [0.4, 'PAUSED'],
  ] as const)('an unhealthy new task counts against --update-max-failure-ratio (1 of 2 failed, ratio %s: %s)', async (ratio, end) => {
    const c = await cluster(2);
    const s = await deploy(c, spec('web', { replicated: { replicas: 2 }, update: startFirst({ parallelism: 0, maxFailureRatio: ratio }) }));
    await c.api.updateService({ ref: 'web', version: 0, spec: withImage(s, 'busybox:2'), rollback: false });
    await settle();
    const [a, b] = current(c, 'web', 'busybox:2');
    await starting(c, a!);
    await starting(c, b!);
    await healthy(c, a!);
    await unhealthy(c, b!);
    // The sick one's replacement (the restart policy) passes its check.
    await agents(c);
    c.clock.advance(5000);
    await agents(c);
    expect(UpdateState[service(c, 'web').updateStatus!.state]).toBe(end);
  });
});
