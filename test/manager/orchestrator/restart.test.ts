// The restart supervisor: restart conditions, delays, attempts, lost and drained nodes, health.
import { afterEach, describe, expect, it } from 'vitest';
import { startOrchestration } from '../../../manager/orchestrator/index.js';
import { Node, NodeAvailability, NodeState, RestartCondition, TaskState } from '../../../proto/gen/objects.js';
import { agents, cluster, log, report, running, setNode, settle, spec, tasksOf, teardown, withTask } from './harness.js';

afterEach(teardown);

const policy = (condition: RestartCondition, delayMs = 0, maxAttempts = 0, windowMs = 0) => ({
  restart: { condition, delayMs, maxAttempts, windowMs },
});

describe('restart supervisor', () => {
  it('condition any: a failed task is shut down and replaced in its slot with restartAttempt + 1', async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: spec('web') });
    await agents(c);
    const [w] = running(c, 'web');
    await report(c, w!, { state: TaskState.FAILED, exitCode: 137 });
    await agents(c);
    const ts = tasksOf(c, 'web');
    expect(ts).toHaveLength(2);
    expect(ts.find((t) => t.meta.id === w!.meta.id)!.desiredState).toBe(TaskState.SHUTDOWN);
    expect(running(c, 'web')[0]).toMatchObject({ slot: 1, restartAttempt: 1 });
  });

  it('condition any: a task that completes with exit 0 is replaced too', async () => {
    const c = await cluster(1);
    await c.api.createService({ spec: spec('web') });
    await agents(c);
    const [w] = running(c, 'web');
    await report(c, w!, { state: TaskState.COMPLETE, exitCode: 0 });
    await agents(c);
    expect(tasksOf(c, 'web')).toHaveLength(2);
    expect(running(c, 'web')).toHaveLength(1);
  });

  it('condition on-failure: exit 1 is replaced, exit 0 is not', async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: withTask(spec('bad'), policy(RestartCondition.ON_FAILURE)) });
    await c.api.createService({ spec: withTask(spec('ok'), policy(RestartCondition.ON_FAILURE)) });
    await agents(c);
    await report(c, running(c, 'bad')[0]!, { state: TaskState.FAILED, exitCode: 1 });
    await report(c, running(c, 'ok')[0]!, { state: TaskState.COMPLETE, exitCode: 0 });
    await agents(c);
    expect(tasksOf(c, 'bad')).toHaveLength(2);
    expect(running(c, 'bad')).toHaveLength(1);
    const ok = tasksOf(c, 'ok');
    expect(ok).toHaveLength(1);
    expect(ok[0]).toMatchObject({ desiredState: TaskState.RUNNING, status: { state: TaskState.COMPLETE } });
  });

  it('condition none: a failed task is not replaced', async () => {
    const c = await cluster(1);
    await c.api.createService({ spec: withTask(spec('once'), policy(RestartCondition.NONE)) });
    await agents(c);
    await report(c, running(c, 'once')[0]!, { state: TaskState.FAILED, exitCode: 2 });
    await agents(c);
    expect(tasksOf(c, 'once')).toHaveLength(1);
  });

  it('a restart delay makes the replacement READY at once and RUNNING when the delay is over', async () => {
    const c = await cluster(1);
    await c.api.createService({ spec: withTask(spec('web'), policy(RestartCondition.ANY, 10_000)) });
    await agents(c);
    const [w] = running(c, 'web');
    await report(c, w!, { state: TaskState.FAILED, exitCode: 1 });
    const next = tasksOf(c, 'web').find((t) => t.meta.id !== w!.meta.id)!;
    expect(next.desiredState).toBe(TaskState.READY);
    expect(next.status?.state).toBe(TaskState.ASSIGNED); // scheduled during the delay
    // The manual clock adds its offset to real time, so real time passing also
    // counts towards the delay: halfway leaves a loaded machine 5 s of slack.
    c.clock.advance(5_000);
    await settle();
    expect(tasksOf(c, 'web').find((t) => t.meta.id === next.meta.id)!.desiredState).toBe(TaskState.READY);
    c.clock.advance(5_100);
    await settle();
    expect(tasksOf(c, 'web').find((t) => t.meta.id === next.meta.id)!.desiredState).toBe(TaskState.RUNNING);
  });

  it('a new leader recomputes a pending restart delay from the task creation time', async () => {
    const c = await cluster(1);
    await c.api.createService({ spec: withTask(spec('web'), policy(RestartCondition.ANY, 10_000)) });
    await agents(c);
    await report(c, running(c, 'web')[0]!, { state: TaskState.FAILED, exitCode: 1 });
    await c.orch.stop();
    c.clock.advance(11_000);
    c.orch = startOrchestration({ store: c.store, logger: log, clock: c.clock });
    await settle();
    expect(tasksOf(c, 'web').filter((t) => t.desiredState === TaskState.RUNNING)).toHaveLength(1);
  });

  it('max attempts stops restarting a slot', async () => {
    const c = await cluster(1);
    await c.api.createService({ spec: withTask(spec('web'), policy(RestartCondition.ANY, 0, 2)) });
    await agents(c, () => true);
    const ts = tasksOf(c, 'web');
    expect(ts).toHaveLength(3); // the first run and two restarts
    expect(ts.every((t) => t.status?.state === TaskState.FAILED)).toBe(true);
    expect(ts.map((t) => t.restartAttempt).sort()).toEqual([0, 1, 2]);
  });

  it('max attempts counts only the restarts within the window', async () => {
    const c = await cluster(1);
    await c.api.createService({ spec: withTask(spec('web'), policy(RestartCondition.ANY, 0, 1, 60_000)) });
    await agents(c);
    await report(c, running(c, 'web')[0]!, { state: TaskState.FAILED, exitCode: 1 });
    await agents(c);
    expect(tasksOf(c, 'web')).toHaveLength(2);
    // A second failure within the window: no more attempts.
    await report(c, running(c, 'web')[0]!, { state: TaskState.FAILED, exitCode: 1 });
    await agents(c);
    expect(tasksOf(c, 'web')).toHaveLength(2);
    // Once the window has passed, the slot is restarted again.
    c.clock.advance(61_000);
    await c.api.updateService({
      ref: 'web',
      version: 0,
      spec: { ...withTask(spec('web'), policy(RestartCondition.ANY, 0, 1, 60_000)), labels: { touched: '1' } },
      rollback: false,
    });
    await agents(c);
    expect(running(c, 'web')).toHaveLength(1);
  });

  it('a task on a DOWN node is replaced on another node at once and marked "node down"', async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: withTask(spec('web'), policy(RestartCondition.ANY, 30_000)) });
    await agents(c);
    const [w] = running(c, 'web');
    await setNode(c, w!.nodeId, (n) => Node.create({ ...n, status: { ...n.status, state: NodeState.DOWN } }));
    await agents(c);
    const old = tasksOf(c, 'web').find((t) => t.meta.id === w!.meta.id)!;
    expect(old.desiredState).toBe(TaskState.SHUTDOWN);
    expect(old.status?.message).toBe('node down');
    const r = running(c, 'web');
    expect(r).toHaveLength(1);
    expect(r[0]!.nodeId).not.toBe(w!.nodeId);
  });

  it('draining a node moves its tasks to the other nodes', async () => {
    const c = await cluster(3);
    await c.api.createService({ spec: spec('web', { replicated: { replicas: 3 } }) });
    await agents(c);
    await setNode(c, 'n3', (n) => Node.create({ ...n, spec: { ...n.spec, availability: NodeAvailability.DRAIN } }));
    await agents(c);
    const r = running(c, 'web');
    expect(r).toHaveLength(3);
    expect(r.some((t) => t.nodeId === 'n3')).toBe(false);
    expect(
      tasksOf(c, 'web')
        .filter((t) => t.nodeId === 'n3')
        .every((t) => t.status?.state === TaskState.SHUTDOWN),
    ).toBe(true);
  });

  it('an unhealthy running task is treated as failed and replaced', async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: withTask(spec('web'), policy(RestartCondition.ON_FAILURE)) });
    await agents(c);
    const [w] = running(c, 'web');
    await report(c, w!, { health: 'unhealthy' });
    await agents(c);
    expect(tasksOf(c, 'web').find((t) => t.meta.id === w!.meta.id)!.desiredState).toBe(TaskState.SHUTDOWN);
    expect(running(c, 'web')).toHaveLength(1);
    expect(running(c, 'web')[0]!.meta.id).not.toBe(w!.meta.id);
  });
});
