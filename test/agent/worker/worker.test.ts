// The worker's task state machine against an in-memory runtime (fake-runtime.ts):
// the walk to RUNNING and what it reports, exits, shutdowns, runtime failures,
// adoption of the containers a previous agent left, and full-set replacement.
// The same orders on real runc containers are in worker.kernel.test.ts.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { containerIdOf, type TaskNetworking } from '../../../agent/worker/task.js';
import { Worker } from '../../../agent/worker/worker.js';
import type { AgentMessage } from '../../../proto/gen/control.js';
import { Task, TaskState, type TaskStatus } from '../../../proto/gen/objects.js';
import { until } from '../../lib/wait.js';
import { FakeRuntime } from './fake-runtime.js';

const log = pino({ level: 'silent' });
const NODE = 'tssnode1';

let seq = 0;
function task(desired: TaskState, o: { observed?: TaskState; image?: string; id?: string } = {}): Task {
  const id = o.id ?? `tssfw${++seq}`;
  return Task.create({
    meta: { id, version: 1, createdAt: 0, updatedAt: 0 },
    serviceId: 'svc1',
    serviceName: 'web',
    slot: seq,
    nodeId: NODE,
    desiredState: desired,
    status: { state: o.observed ?? TaskState.ASSIGNED, timestamp: 0, message: '' } as TaskStatus,
    spec: {
      container: { image: o.image ?? 'tss/busybox:latest', command: ['sleep', '3600'], stopGracePeriodMs: 1234, stopSignal: 'SIGQUIT' },
    } as Task['spec'],
  });
}

const workers: Worker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.close();
});

/** A worker on a fake runtime; `sent` holds what it sent, and `online` says whether a session is open. */
function setup(rt = new FakeRuntime()) {
  const sent: AgentMessage[] = [];
  const link = { online: true };
  const w = new Worker({ runtime: rt.asRuntime(), nodeId: NODE, logger: log, send: (m) => link.online && (sent.push(m), true) });
  w.start();
  workers.push(w);
  const reports = (t: Task): TaskStatus[] =>
    sent
      .flatMap((m) => m.taskStatus?.updates ?? [])
      .filter((u) => u.taskId === t.meta.id)
      .map((u) => u.status!);
  const states = (t: Task): TaskState[] => reports(t).map((s) => s.state);
  const last = (t: Task): TaskStatus | undefined => reports(t).at(-1);
  /** Waits until the latest report for `t` is in `state`, and returns it. */
  const reported = (t: Task, state: TaskState): Promise<TaskStatus> =>
    until(
      `${t.meta.id} reported ${TaskState[state]} (last: ${TaskState[last(t)?.state ?? 0]})`,
      () => (last(t)?.state === state ? last(t) : undefined),
      { timeoutMs: 5_000, everyMs: 5 },
    );
  /** The runner of `t` once the worker has taken the assignment and every step queued so far is done. */
  const settled = async (t: Task) => {
    const r = await until(`a runner for ${t.meta.id}`, () => w.runner(t.meta.id), { timeoutMs: 5_000, everyMs: 5 });
    await r.settled();
    return r;
  };
  return { rt, w, sent, link, reports, states, last, reported, settled };
}

describe("the worker's task state machine (fake runtime)", () => {
  it('walks a task to RUNNING, reporting PREPARING while its container is created and RUNNING with pid and container id once started', async () => {
    const { rt, w, states, reported } = setup();
    const t = task(TaskState.RUNNING);
    const cid = containerIdOf(t);
    rt.hold('create');
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    const prep = await reported(t, TaskState.PREPARING);
    expect(prep).toMatchObject({ message: 'preparing', containerId: cid });
    expect(rt.waitingAt('create', cid)).toBe(true);
    expect(rt.status(cid)).toBe('gone');
    rt.release('create');
    const run = await reported(t, TaskState.RUNNING);
    expect(run).toMatchObject({ message: 'started', containerId: cid, err: '' });
    expect(run.pid).toBe((await rt.inspect(cid))!.pid);
    expect(run.pid).toBeGreaterThan(0);
    expect(rt.status(cid)).toBe('running');
    // Only ever forwards, and the container got the task's label and image.
    const seen = states(t);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    expect(rt.config(cid)).toMatchObject({
      image: 'tss/busybox:latest',
      command: ['sleep', '3600'],
      labels: { 'tsswarm.task.id': t.meta.id },
    });
    expect(rt.calls.filter((c) => c.startsWith('create') || c.startsWith('start'))).toEqual([`create ${cid}`, `start ${cid}`]);
  });

  it('a desired state of READY prepares the container but does not start it; RUNNING later starts it', async () => {
    const { rt, w, reported } = setup();
    const t = task(TaskState.READY);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await reported(t, TaskState.READY);
    await w.runner(t.meta.id)!.settled();
    expect(rt.status(containerIdOf(t))).toBe('created');
    w.assignments({ full: false, tasks: [{ ...t, desiredState: TaskState.RUNNING }], removedTaskIds: [] });
    await reported(t, TaskState.RUNNING);
    expect(rt.status(containerIdOf(t))).toBe('running');
  });

  it('a container that exits 0 makes the task COMPLETE; one that exits non-zero makes it FAILED with the code', async () => {
    const { rt, w, reported } = setup();
    const ok = task(TaskState.RUNNING);
    const bad = task(TaskState.RUNNING);
    w.assignments({ full: true, tasks: [ok, bad], removedTaskIds: [] });
    await reported(ok, TaskState.RUNNING);
    await reported(bad, TaskState.RUNNING);
    rt.exit(containerIdOf(ok), 0);
    rt.exit(containerIdOf(bad), 3);
    expect(await reported(ok, TaskState.COMPLETE)).toMatchObject({ message: 'finished', exitCode: 0, err: '', pid: 0 });
    expect(await reported(bad, TaskState.FAILED)).toMatchObject({ exitCode: 3, err: 'task: non-zero exit (3)', pid: 0 });
    // An ended task is not restarted by the agent (the orchestrator makes a new task).
    await w.runner(bad.meta.id)!.settled();
    expect(rt.count('start', containerIdOf(bad))).toBe(1);
    expect(w.runner(bad.meta.id)!.state).toBe(TaskState.FAILED);
  });

  it("desired SHUTDOWN stops the container with the task's grace period and signal, reports SHUTDOWN with the exit code, and keeps the container until the task is removed", async () => {
    const { rt, w, reported } = setup();
    const t = task(TaskState.RUNNING);
    const cid = containerIdOf(t);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await reported(t, TaskState.RUNNING);
    w.assignments({ full: false, tasks: [{ ...t, desiredState: TaskState.SHUTDOWN }], removedTaskIds: [] });
    expect(await reported(t, TaskState.SHUTDOWN)).toMatchObject({ message: 'shutdown', exitCode: 137 });
    expect(rt.stops.get(cid)).toEqual({ graceMs: 1234, signal: 'SIGQUIT' });
    expect(rt.status(cid)).toBe('stopped');
    expect(rt.count('remove', cid)).toBe(0);
    w.assignments({ full: false, tasks: [], removedTaskIds: [t.meta.id] });
    await until('the container removed and the runner forgotten', () => rt.status(cid) === 'gone' && !w.runner(t.meta.id), {
      timeoutMs: 5_000,
      everyMs: 5,
    });
  });

  it('a task shut down before it started never gets a container started', async () => {
    const { rt, w, reported } = setup();
    const t = task(TaskState.SHUTDOWN);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await reported(t, TaskState.SHUTDOWN);
    expect(rt.calls).toEqual([]);
  });

  it("a create that fails rejects the task with the runtime's reason and cleans up what was made", async () => {
    const rt = new FakeRuntime();
    rt.failing.set('create', 'no space left on device');
    const { w, reported } = setup(rt);
    const t = task(TaskState.RUNNING);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    const s = await reported(t, TaskState.REJECTED);
    expect(s).toMatchObject({ message: 'rejected', err: 'creating the container failed: no space left on device' });
    expect(rt.calls).toEqual([`create ${containerIdOf(t)}`, `remove ${containerIdOf(t)}`]);
  });

  it("a start that fails makes the task FAILED with the runtime's reason", async () => {
    const rt = new FakeRuntime();
    rt.failing.set('start', 'runc: exec format error');
    const { w, reported } = setup(rt);
    const t = task(TaskState.RUNNING);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    expect(await reported(t, TaskState.FAILED)).toMatchObject({
      message: 'failed',
      err: 'starting the container failed: runc: exec format error',
    });
  });

  it('a start that fails after the container joined its networks leaves them (no endpoint or host-port forward stays behind)', async () => {
    const rt = new FakeRuntime();
    rt.failing.set('start', 'runc: exec format error');
    const calls: string[] = [];
    const network: TaskNetworking = {
      uses: () => true,
      behindVip: () => false,
      resolvConf: () => undefined,
      attach: async (t) => void calls.push(`attach ${t.meta.id}`),
      detach: async (t) => void calls.push(`detach ${t.meta.id}`),
    };
    const sent: AgentMessage[] = [];
    const w = new Worker({ runtime: rt.asRuntime(), nodeId: NODE, logger: log, network, send: (m) => (sent.push(m), true) });
    w.start();
    workers.push(w);
    const t = task(TaskState.RUNNING);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await until(
      'the task reported FAILED',
      () => sent.flatMap((m) => m.taskStatus?.updates ?? []).some((u) => u.taskId === t.meta.id && u.status?.state === TaskState.FAILED),
      { timeoutMs: 5_000, everyMs: 5 },
    );
    expect(calls).toEqual([`attach ${t.meta.id}`, `detach ${t.meta.id}`]);
  });

  it('an image missing on the node is pulled first; one that cannot be pulled rejects the task naming the image and the fix', async () => {
    const rt = new FakeRuntime();
    const { w, reported } = setup(rt);
    const pulled = task(TaskState.RUNNING, { image: 'tss/pullable:1' });
    w.assignments({ full: true, tasks: [pulled], removedTaskIds: [] });
    await reported(pulled, TaskState.RUNNING);
    expect(rt.calls.indexOf('pull tss/pullable:1')).toBeLessThan(rt.calls.indexOf(`create ${containerIdOf(pulled)}`));

    rt.failing.set('pull', 'manifest unknown');
    const missing = task(TaskState.RUNNING, { image: 'tss/nowhere:2' });
    w.assignments({ full: false, tasks: [missing], removedTaskIds: [] });
    const s = await reported(missing, TaskState.REJECTED);
    expect(s.err).toMatch(
      /^image tss\/nowhere:2 is not on node tssnode1 and could not be pulled \(manifest unknown\): load it on every node with `tsswarm image load -i FILE`$/,
    );
    expect(rt.count('create', containerIdOf(missing))).toBe(0);
  });

  it('a hostname template that expands to no valid hostname rejects the task with the reason, before any container is made', async () => {
    const { rt, w, reported } = setup();
    const t = task(TaskState.RUNNING);
    t.spec.container.hostname = '{{.Service.Name}}_{{.Task.Slot}}';
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    const s = await reported(t, TaskState.REJECTED);
    expect(s.err).toMatch(/^--hostname .* expands to "web_\d+" on this node, which is not a valid hostname/);
    expect(rt.calls).toEqual([]);
  });
});

/** A task whose container has a health check probing every few ms, failing `retries` times in a row before it is unhealthy. */
function checked(retries: number, o: Parameters<typeof task>[1] = {}): Task {
  const t = task(TaskState.RUNNING, o);
  t.spec.container.healthcheck = { test: ['CMD', 'ready'], intervalMs: 5, timeoutMs: 1000, retries, startPeriodMs: 0, startIntervalMs: 0 };
  return t;
}

describe("health-gated RUNNING (as Docker's executor)", () => {
  it('a task with a health check stays STARTING until its check first passes, then is RUNNING, healthy, with the time it got there', async () => {
    const { rt, w, reported, states, last, settled } = setup();
    const t = checked(1_000_000);
    const cid = containerIdOf(t);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    const starting = await reported(t, TaskState.STARTING);
    await until('its container started', () => rt.status(cid) === 'running', { timeoutMs: 5_000, everyMs: 5 });
    expect(starting).toMatchObject({ message: 'waiting for the container to be healthy', health: 'starting' });
    expect(starting.runningAt ?? 0).toBe(0);
    // Checks run and fail; the task stays STARTING however many there are, and a newer copy from
    // the managers neither restarts nor re-reports it.
    await until('three failed checks', () => (rt.probes.get(cid) ?? 0) >= 3, { timeoutMs: 5_000, everyMs: 5 });
    const before = states(t).length;
    w.assignments({ full: false, tasks: [{ ...t, meta: { ...t.meta, version: 2 } }], removedTaskIds: [] });
    await settled(t);
    expect(last(t)!.state).toBe(TaskState.STARTING);
    expect(states(t)).toHaveLength(before);
    expect(rt.count('start', cid)).toBe(1);
    const t0 = Date.now();
    rt.probeExit.set(cid, 0);
    const run = await reported(t, TaskState.RUNNING);
    expect(run).toMatchObject({ message: 'started', health: 'healthy', containerId: cid });
    expect(run.pid).toBeGreaterThan(0);
    expect(run.runningAt).toBeGreaterThanOrEqual(t0);
    expect(run.startedAt).toBeLessThanOrEqual(run.runningAt);
    const seen = states(t);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
  });

  it('a task without a health check is RUNNING as soon as its container started', async () => {
    const { w, reported } = setup();
    const t = task(TaskState.RUNNING);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    const run = await reported(t, TaskState.RUNNING);
    expect(run.health ?? '').toBe('');
    expect(run.runningAt).toBeGreaterThan(0);
  });

  it('a task whose check fails `retries` times before ever passing is FAILED as an unhealthy container, stopped, never RUNNING', async () => {
    const { rt, w, reported, states, last } = setup();
    const t = checked(2);
    const cid = containerIdOf(t);
    rt.hold('stop');
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    // Said unhealthy before the stop, so the managers know at once.
    await until('unhealthy reported while STARTING', () => rt.waitingAt('stop', cid), { timeoutMs: 5_000, everyMs: 5 });
    const sick = await until('the unhealthy report sent', () => (last(t)?.health === 'unhealthy' ? last(t) : undefined), {
      timeoutMs: 5_000,
      everyMs: 5,
    });
    expect(sick).toMatchObject({ state: TaskState.STARTING, message: 'unhealthy' });
    rt.release('stop');
    const failed = await reported(t, TaskState.FAILED);
    expect(failed.err).toMatch(
      /^task: non-zero exit \(137\): unhealthy container before it ever passed its health check \(last check said: "ready: not ready"\)$/,
    );
    expect(failed).toMatchObject({ message: 'failed', exitCode: 137, pid: 0, health: 'unhealthy' });
    expect(failed.runningAt ?? 0).toBe(0);
    expect(states(t)).not.toContain(TaskState.RUNNING);
    expect(rt.status(cid)).toBe('stopped');
    expect(rt.count('stop', cid)).toBe(1);
  });

  it('a RUNNING task that stops passing its check is reported unhealthy at once, then FAILED with its container stopped', async () => {
    const { rt, w, reported, last } = setup();
    const t = checked(2);
    const cid = containerIdOf(t);
    rt.probeExit.set(cid, 0);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await reported(t, TaskState.RUNNING);
    rt.hold('stop');
    rt.probeExit.set(cid, 1);
    await until('the stop begun', () => rt.waitingAt('stop', cid), { timeoutMs: 5_000, everyMs: 5 });
    const sick = await until('the unhealthy report sent', () => (last(t)?.health === 'unhealthy' ? last(t) : undefined), {
      timeoutMs: 5_000,
      everyMs: 5,
    });
    expect(sick.state).toBe(TaskState.RUNNING);
    rt.release('stop');
    const failed = await reported(t, TaskState.FAILED);
    expect(failed.err).toMatch(/^task: non-zero exit \(137\): unhealthy container \(last check said: "ready: not ready"\)$/);
    expect(rt.status(cid)).toBe('stopped');
  });

  it('a task whose container exits while STARTING is FAILED with its exit code, and its check stops', async () => {
    const { rt, w, reported } = setup();
    const t = checked(1_000_000);
    const cid = containerIdOf(t);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await reported(t, TaskState.STARTING);
    await until('its container started', () => rt.status(cid) === 'running', { timeoutMs: 5_000, everyMs: 5 });
    rt.exit(cid, 4);
    expect(await reported(t, TaskState.FAILED)).toMatchObject({ exitCode: 4, err: 'task: non-zero exit (4)' });
    const n = rt.probes.get(cid) ?? 0;
    await new Promise((r) => setImmediate(r));
    await until(
      'no probe for a while',
      async () => {
        const before = rt.probes.get(cid) ?? 0;
        await new Promise((r) => setTimeout(r, 30));
        return (rt.probes.get(cid) ?? 0) === before;
      },
      { timeoutMs: 5_000, everyMs: 5 },
    );
    expect(rt.probes.get(cid) ?? 0).toBeLessThanOrEqual(n + 1);
  });

  it('a task adopted RUNNING keeps RUNNING while its check starts over (no STARTING, no "starting" report)', async () => {
    const rt = new FakeRuntime();
    const t = checked(1_000_000, { observed: TaskState.RUNNING });
    t.status!.health = 'healthy';
    const cid = containerIdOf(t);
    rt.seed(cid, t.meta.id, 'running');
    const { w, reports, settled } = setup(rt);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await settled(t);
    await until('three failed checks', () => (rt.probes.get(cid) ?? 0) >= 3, { timeoutMs: 5_000, everyMs: 5 });
    await settled(t);
    expect(w.runner(t.meta.id)!.state).toBe(TaskState.RUNNING);
    expect(reports(t)).toEqual([]);
  });
});

describe('adoption of the containers a previous agent left (live restore)', () => {
  it('adopts the running container of an assigned task without making it again, and still sees it exit', async () => {
    const rt = new FakeRuntime();
    const t = task(TaskState.RUNNING, { observed: TaskState.RUNNING });
    const cid = containerIdOf(t);
    rt.seed(cid, t.meta.id, 'running');
    const { w, reported, settled, reports } = setup(rt);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    expect((await settled(t)).state).toBe(TaskState.RUNNING);
    expect(rt.calls).toEqual([]);
    expect(reports(t)).toEqual([]);
    rt.exit(cid, 2);
    expect(await reported(t, TaskState.FAILED)).toMatchObject({ exitCode: 2, err: 'task: non-zero exit (2)' });
  });

  it('removes a container whose task is in no assignment (deleted while the agent was away), and leaves containers that are not tsswarm tasks', async () => {
    const rt = new FakeRuntime();
    const kept = task(TaskState.RUNNING, { observed: TaskState.RUNNING });
    rt.seed(containerIdOf(kept), kept.meta.id, 'running');
    rt.seed('tss-web.9.tssgone', 'tssgone', 'running');
    rt.seed('tss-other', '', 'running');
    rt.containers.get('tss-other')!.state.labels = {};
    const { w } = setup(rt);
    w.assignments({ full: true, tasks: [kept], removedTaskIds: [] });
    await until('the orphan removed', () => rt.status('tss-web.9.tssgone') === 'gone', { timeoutMs: 5_000, everyMs: 5 });
    await w.runner(kept.meta.id)!.settled();
    expect(rt.status(containerIdOf(kept))).toBe('running');
    expect(rt.status('tss-other')).toBe('running');
    expect(rt.calls).toEqual(['remove tss-web.9.tssgone']);
  });

  it("starts an adopted task's container that was created but not started (the agent died between the two)", async () => {
    const rt = new FakeRuntime();
    const t = task(TaskState.RUNNING, { observed: TaskState.STARTING });
    rt.seed(containerIdOf(t), t.meta.id, 'created');
    const { w, reported } = setup(rt);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await reported(t, TaskState.RUNNING);
    expect(rt.calls).toEqual([`start ${containerIdOf(t)}`]);
  });

  it('makes again the container of a task adopted at STARTING whose container was never created', async () => {
    const rt = new FakeRuntime();
    const t = task(TaskState.RUNNING, { observed: TaskState.STARTING });
    const { w, reported } = setup(rt);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await reported(t, TaskState.RUNNING);
    expect(rt.calls).toEqual([`create ${containerIdOf(t)}`, `start ${containerIdOf(t)}`]);
  });

  it('reports an adopted RUNNING task whose container is gone as FAILED, and one whose container exited while nobody watched by its exit code', async () => {
    const rt = new FakeRuntime();
    const gone = task(TaskState.RUNNING, { observed: TaskState.RUNNING });
    const done = task(TaskState.RUNNING, { observed: TaskState.RUNNING });
    rt.seed(containerIdOf(done), done.meta.id, 'stopped', 0);
    const { w, reported } = setup(rt);
    w.assignments({ full: true, tasks: [gone, done], removedTaskIds: [] });
    expect(await reported(gone, TaskState.FAILED)).toMatchObject({ err: 'the container is gone (removed outside tsswarm?)' });
    expect(await reported(done, TaskState.COMPLETE)).toMatchObject({ exitCode: 0 });
    expect(rt.calls.filter((c) => c.startsWith('create') || c.startsWith('start'))).toEqual([]);
  });

  it("stops the still-running container of a task the managers' copy says has ended", async () => {
    const rt = new FakeRuntime();
    const t = task(TaskState.SHUTDOWN, { observed: TaskState.FAILED });
    rt.seed(containerIdOf(t), t.meta.id, 'running');
    const { w } = setup(rt);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await until('the container stopped', () => rt.status(containerIdOf(t)) === 'stopped', { timeoutMs: 5_000, everyMs: 5 });
    expect(w.runner(t.meta.id)!.state).toBe(TaskState.FAILED);
  });
});

describe('assignments and reports', () => {
  it("a full set replaces the node's set: a task left out is stopped, reported SHUTDOWN, its container removed and its runner dropped", async () => {
    const { rt, w, reported } = setup();
    const a = task(TaskState.RUNNING);
    const b = task(TaskState.RUNNING);
    w.assignments({ full: true, tasks: [a, b], removedTaskIds: [] });
    await reported(a, TaskState.RUNNING);
    await reported(b, TaskState.RUNNING);
    w.assignments({ full: true, tasks: [b], removedTaskIds: [] });
    await reported(a, TaskState.SHUTDOWN);
    await until('a forgotten', () => !w.runner(a.meta.id) && rt.status(containerIdOf(a)) === 'gone', { timeoutMs: 5_000, everyMs: 5 });
    expect(w.taskCount).toBe(1);
    expect(rt.status(containerIdOf(b))).toBe('running');
    expect(rt.count('stop', containerIdOf(b))).toBe(0);
  });

  it('an incremental message adds tasks and removes only those it names', async () => {
    const { rt, w, reported } = setup();
    const a = task(TaskState.RUNNING);
    const b = task(TaskState.RUNNING);
    w.assignments({ full: true, tasks: [a], removedTaskIds: [] });
    await reported(a, TaskState.RUNNING);
    w.assignments({ full: false, tasks: [b], removedTaskIds: [] });
    await reported(b, TaskState.RUNNING);
    expect(rt.status(containerIdOf(a))).toBe('running');
    w.assignments({ full: false, tasks: [], removedTaskIds: [a.meta.id] });
    await until('a removed', () => rt.status(containerIdOf(a)) === 'gone' && !w.runner(a.meta.id), { timeoutMs: 5_000, everyMs: 5 });
    expect(rt.status(containerIdOf(b))).toBe('running');
  });

  it('reports made with no session open wait, and the latest state of every task goes when one opens', async () => {
    const { rt, w, link, sent, reports, reported } = setup();
    link.online = false;
    const a = task(TaskState.RUNNING);
    w.assignments({ full: true, tasks: [a], removedTaskIds: [] });
    await until('a running', () => rt.status(containerIdOf(a)) === 'running' && w.runner(a.meta.id)!.state === TaskState.RUNNING, {
      timeoutMs: 5_000,
      everyMs: 5,
    });
    rt.exit(containerIdOf(a), 0);
    await until('a complete', () => w.runner(a.meta.id)!.state === TaskState.COMPLETE, { timeoutMs: 5_000, everyMs: 5 });
    w.flush();
    expect(sent).toEqual([]);
    link.online = true;
    w.sessionOpened();
    await reported(a, TaskState.COMPLETE);
    // One batch carrying only the latest state, not the walk that led there.
    expect(reports(a)).toHaveLength(1);
    // A later session sends it again (the managers drop what they already have).
    w.sessionOpened();
    expect(reports(a).map((s) => s.state)).toEqual([TaskState.COMPLETE, TaskState.COMPLETE]);
  });

  it('the SHUTDOWN of a task removed while no session is open is still reported when one opens, though its runner is gone', async () => {
    const { rt, w, link, sent, reported } = setup();
    const a = task(TaskState.RUNNING);
    w.assignments({ full: true, tasks: [a], removedTaskIds: [] });
    await reported(a, TaskState.RUNNING);
    link.online = false;
    w.assignments({ full: false, tasks: [], removedTaskIds: [a.meta.id] });
    await until('a removed', () => rt.status(containerIdOf(a)) === 'gone' && !w.runner(a.meta.id), { timeoutMs: 5_000, everyMs: 5 });
    w.flush();
    const before = sent.length;
    link.online = true;
    w.sessionOpened();
    expect(sent.length).toBe(before + 1);
    expect(await reported(a, TaskState.SHUTDOWN)).toMatchObject({ message: 'shutdown', containerId: containerIdOf(a) });
  });

  it('after close, exits are no longer seen and nothing more is sent; containers stay (live restore)', async () => {
    const { rt, w, sent, reported } = setup();
    const a = task(TaskState.RUNNING);
    w.assignments({ full: true, tasks: [a], removedTaskIds: [] });
    await reported(a, TaskState.RUNNING);
    await w.close();
    const before = sent.length;
    rt.exit(containerIdOf(a), 1);
    w.assignments({ full: true, tasks: [], removedTaskIds: [] });
    w.flush();
    expect(sent.length).toBe(before);
    expect(rt.calls.filter((c) => c.startsWith('stop') || c.startsWith('remove'))).toEqual([]);
  });
});
