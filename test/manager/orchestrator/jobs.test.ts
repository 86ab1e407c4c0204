// Jobs: replicated jobs (total completions, at most max-concurrent at once)
// and global jobs (one completion per eligible node), iterations.
import { afterEach, describe, expect, it } from 'vitest';
import { Node, NodeAvailability, RestartCondition, type ServiceSpec, type Task, TaskState } from '../../../proto/gen/objects.js';
import { agents, cluster, nodeObject, report, service, settle, spec, type TestCluster, tasksOf, teardown, withTask } from './harness.js';

afterEach(teardown);

const job = (name: string, total: number, concurrent: number, over: Partial<ServiceSpec> = {}) =>
  spec(name, { replicated: undefined, replicatedJob: { totalCompletions: total, maxConcurrent: concurrent }, ...over });
const globalJob = (name: string) => spec(name, { replicated: undefined, globalJob: {} });

const isRunning = (t: Task) => t.status?.state === TaskState.RUNNING && t.desiredState === TaskState.RUNNING;
const completed = (c: TestCluster, name: string) => tasksOf(c, name).filter((t) => t.status?.state === TaskState.COMPLETE);

/** The agents' part: every running task of the service ends, with exit code 0 (or 1 where `fail` says). */
async function finishRunning(c: TestCluster, name: string, fail: (t: Task) => boolean = () => false): Promise<number> {
  const ts = tasksOf(c, name).filter(isRunning);
  for (const t of ts)
    await report(
      c,
      t,
      fail(t) ? { state: TaskState.FAILED, exitCode: 1, err: 'task: non-zero exit (1)' } : { state: TaskState.COMPLETE, exitCode: 0 },
    );
  await agents(c);
  return ts.length;
}

describe('replicated job orchestrator', () => {
  it('makes the total completions, never more than max-concurrent unfinished at once, and none after', async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: job('batch', 5, 2) });
    await agents(c);
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      seen.push(tasksOf(c, 'batch').filter((t) => t.status?.state !== TaskState.COMPLETE).length);
      await finishRunning(c, 'batch');
    }
    expect(seen).toEqual([2, 2, 1, 0, 0]);
    expect(
      completed(c, 'batch')
        .map((t) => t.slot)
        .sort(),
    ).toEqual([0, 1, 2, 3, 4]);
    expect(tasksOf(c, 'batch')).toHaveLength(5);
    const list = await c.api.listServices();
    expect(list.services[0]).toMatchObject({ running: 0, desired: 0, completed: 5 });
  });

  it('counts progress as service ls shows it', async () => {
    const c = await cluster(1);
    await c.api.createService({ spec: job('batch', 4, 2) });
    await agents(c);
    expect((await c.api.listServices()).services[0]).toMatchObject({ running: 2, desired: 2, completed: 0 });
    await finishRunning(c, 'batch');
    await finishRunning(c, 'batch', (t) => t.slot === 3);
    // Slot 3 failed and was replaced (on-failure): 3 completed, one running.
    expect((await c.api.listServices()).services[0]).toMatchObject({ running: 1, desired: 1, completed: 3 });
  });

  it('retries a failed task in its slot (on-failure) and never re-runs one that completed', async () => {
    const c = await cluster(1);
    await c.api.createService({ spec: job('batch', 2, 2) });
    await agents(c);
    await finishRunning(c, 'batch', (t) => t.slot === 1);
    const ts = tasksOf(c, 'batch');
    expect(ts).toHaveLength(3);
    const slot2 = ts.filter((t) => t.slot === 1).sort((a, b) => a.restartAttempt - b.restartAttempt);
    expect(slot2.map((t) => [t.status?.state, t.desiredState, t.restartAttempt])).toEqual([
      [TaskState.FAILED, TaskState.SHUTDOWN, 0],
      [TaskState.RUNNING, TaskState.RUNNING, 1],
    ]);
    // Desired COMPLETE once it completed, as SwarmKit's job orchestrators set it.
    expect(ts.find((t) => t.slot === 0)).toMatchObject({ status: { state: TaskState.COMPLETE }, desiredState: TaskState.COMPLETE });
    await finishRunning(c, 'batch');
    await agents(c);
    expect(
      completed(c, 'batch')
        .map((t) => t.slot)
        .sort(),
    ).toEqual([0, 1]);
    expect(tasksOf(c, 'batch')).toHaveLength(3);
  });

  it('a failed task whose restart policy gave up frees its share of max-concurrent; its slot stays failed', async () => {
    const none = { condition: RestartCondition.NONE, delayMs: 0, maxAttempts: 0, windowMs: 0 };
    const c = await cluster(1);
    await c.api.createService({ spec: withTask(job('batch', 3, 1), { restart: none }) });
    await agents(c);
    expect(tasksOf(c, 'batch').map((t) => t.slot)).toEqual([0]);
    await finishRunning(c, 'batch', () => true);
    // Slot 0 failed for good (condition none): slot 1 runs in its place, then slot 2.
    expect(
      tasksOf(c, 'batch')
        .filter(isRunning)
        .map((t) => t.slot),
    ).toEqual([1]);
    await finishRunning(c, 'batch');
    expect(
      tasksOf(c, 'batch')
        .filter(isRunning)
        .map((t) => t.slot),
    ).toEqual([2]);
    await finishRunning(c, 'batch');
    const ts = tasksOf(c, 'batch');
    expect(ts).toHaveLength(3);
    expect(ts.find((t) => t.slot === 0)?.status?.state).toBe(TaskState.FAILED);
    expect((await c.api.listServices()).services[0]).toMatchObject({ running: 0, completed: 2 });
  });

  it('stores on-failure as the restart condition of a job, with a warning for any', async () => {
    const c = await cluster(1);
    const r = await c.api.createService({ spec: job('batch', 1, 1) });
    expect(r.service.spec.task.restart?.condition).toBe(RestartCondition.ON_FAILURE);
    expect(r.warnings.join()).toMatch(/"any" is "on-failure" for a job/);
    expect(r.service.spec.update).toBeNull();
    expect(r.service.jobStatus).toMatchObject({ jobIteration: 1 });
  });

  it('refuses update configs, a max-concurrent of 0 and a change of mode', async () => {
    const c = await cluster(1);
    const upd = { parallelism: 1, delayMs: 0, failureAction: 0, monitorMs: 0, maxFailureRatio: 0, order: 0 };
    await expect(c.api.createService({ spec: job('a', 2, 1, { update: upd } as Partial<ServiceSpec>) })).rejects.toThrow(
      /spec.update cannot be set for a job/,
    );
    await expect(c.api.createService({ spec: job('b', 2, 0) })).rejects.toThrow(/maxConcurrent must be at least 1/);
    await expect(
      c.api.createService({ spec: spec('c', { global: {}, replicated: undefined, globalJob: {} } as Partial<ServiceSpec>) }),
    ).rejects.toThrow(/sets global and globalJob/);
    await c.api.createService({ spec: job('d', 1, 1) });
    await expect(c.api.updateService({ ref: 'd', version: 0, rollback: false, spec: spec('d') })).rejects.toThrow(
      /is replicated-job and cannot become replicated/,
    );
  });

  it('an update (service update --force) starts a new iteration; unfinished tasks of the last one are shut down', async () => {
    const c = await cluster(1);
    const s = job('batch', 3, 2);
    await c.api.createService({ spec: s });
    await agents(c);
    await finishRunning(c, 'batch');
    // Slots 0 and 1 completed, slot 2 runs: a forced update now.
    await c.api.updateService({ ref: 'batch', version: 0, rollback: false, spec: withTask(s, { forceUpdate: 1 }) });
    await agents(c);
    expect(service(c, 'batch').jobStatus).toMatchObject({ jobIteration: 2 });
    const ts = tasksOf(c, 'batch');
    const old = ts.filter((t) => t.jobIteration === 1);
    expect(old.filter((t) => t.status?.state === TaskState.COMPLETE)).toHaveLength(2);
    expect(old.find((t) => t.slot === 2)).toMatchObject({ desiredState: TaskState.SHUTDOWN, status: { state: TaskState.SHUTDOWN } });
    expect(
      ts
        .filter((t) => t.jobIteration === 2 && isRunning(t))
        .map((t) => t.slot)
        .sort(),
    ).toEqual([0, 1]);
    await finishRunning(c, 'batch');
    await finishRunning(c, 'batch');
    expect(tasksOf(c, 'batch').filter((t) => t.jobIteration === 2 && t.status?.state === TaskState.COMPLETE)).toHaveLength(3);
    expect((await c.api.listServices()).services[0]).toMatchObject({ completed: 3, desired: 0 });
  });
});

describe('global job orchestrator', () => {
  it('runs one task per eligible node, not again once it completed; a node that joins gets one', async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: globalJob('setup') });
    await agents(c);
    expect(
      tasksOf(c, 'setup')
        .map((t) => t.nodeId)
        .sort(),
    ).toEqual(['n1', 'n2']);
    expect(await finishRunning(c, 'setup')).toBe(2);
    await settle();
    expect(tasksOf(c, 'setup')).toHaveLength(2);
    expect((await c.api.listServices()).services[0]).toMatchObject({ running: 0, desired: 0, completed: 2 });
    await c.store.update((tx) => tx.nodes.create(nodeObject(3)));
    await agents(c);
    const ts = tasksOf(c, 'setup');
    expect(ts).toHaveLength(3);
    expect(ts.find((t) => t.nodeId === 'n3')).toMatchObject({ status: { state: TaskState.RUNNING }, slot: 0 });
    await finishRunning(c, 'setup');
    expect(
      completed(c, 'setup')
        .map((t) => t.nodeId)
        .sort(),
    ).toEqual(['n1', 'n2', 'n3']);
  });

  it('retries a failed task on its own node and runs every node again on a new iteration', async () => {
    const c = await cluster(2);
    const s = globalJob('setup');
    await c.api.createService({ spec: s });
    await agents(c);
    await finishRunning(c, 'setup', (t) => t.nodeId === 'n2');
    const n2 = tasksOf(c, 'setup').filter((t) => t.nodeId === 'n2');
    expect(n2.map((t) => t.status?.state).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([TaskState.RUNNING, TaskState.FAILED]);
    await finishRunning(c, 'setup');
    await c.api.updateService({ ref: 'setup', version: 0, rollback: false, spec: withTask(s, { forceUpdate: 1 }) });
    await agents(c);
    const fresh = tasksOf(c, 'setup').filter((t) => t.jobIteration === 2);
    expect(fresh.map((t) => t.nodeId).sort()).toEqual(['n1', 'n2']);
    expect(fresh.every(isRunning)).toBe(true);
  });

  it('a paused node keeps its unfinished task (only drain stops it) and gets none of a new job', async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: globalJob('setup') });
    await agents(c);
    await c.store.update((tx) => {
      const n = tx.nodes.get('n2')!;
      tx.nodes.update(Node.create({ ...n, spec: { ...n.spec!, availability: NodeAvailability.PAUSE } }));
    });
    await c.api.createService({ spec: globalJob('later') });
    await agents(c);
    expect(
      tasksOf(c, 'setup')
        .filter(isRunning)
        .map((t) => t.nodeId)
        .sort(),
    ).toEqual(['n1', 'n2']);
    expect(tasksOf(c, 'later').map((t) => t.nodeId)).toEqual(['n1']);
  });

  it('a task that fails on a paused node is not restarted there until the node is active again', async () => {
    const c = await cluster(2);
    await c.api.createService({ spec: globalJob('setup') });
    await agents(c);
    await c.store.update((tx) => {
      const n = tx.nodes.get('n2')!;
      tx.nodes.update(Node.create({ ...n, spec: { ...n.spec!, availability: NodeAvailability.PAUSE } }));
    });
    await agents(c);
    await finishRunning(c, 'setup', (t) => t.nodeId === 'n2');
    const onN2 = () => tasksOf(c, 'setup').filter((t) => t.nodeId === 'n2');
    expect(onN2()).toHaveLength(1);
    expect(onN2()[0]!.desiredState).toBe(TaskState.SHUTDOWN);
    await c.store.update((tx) => {
      const n = tx.nodes.get('n2')!;
      tx.nodes.update(Node.create({ ...n, spec: { ...n.spec!, availability: NodeAvailability.ACTIVE } }));
    });
    await agents(c);
    expect(onN2().filter(isRunning)).toHaveLength(1);
  });
});
