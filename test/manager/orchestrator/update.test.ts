// Rolling updates and rollbacks.
import { afterEach, describe, expect, it } from 'vitest';
import { startOrchestration } from '../../../manager/orchestrator/index.js';
import { NodeState, type ServiceSpec, TaskState, UpdateFailureAction, UpdateOrder, UpdateState } from '../../../proto/gen/objects.js';
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
