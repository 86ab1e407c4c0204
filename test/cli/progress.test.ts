// cli/progress.ts: the progress display decided from task lists and an
// injected clock: convergence after the stability window, unplaceable tasks,
// paused and rolled-back updates, global services, and the two renderers.
import { describe, expect, it } from 'vitest';
import {
  bar,
  lineRenderer,
  NO_NODE_MS,
  ProgressTracker,
  type Snapshot,
  STABILITY_MS,
  ttyRenderer,
  watchProgress,
} from '../../cli/progress.js';
import {
  ContainerSpec,
  Meta,
  Service,
  ServiceSpec,
  type Task,
  TaskSpec,
  TaskState,
  TaskStatus,
  UpdateState,
  type UpdateStatus,
} from '../../proto/gen/objects.js';

const taskSpec = (image = 'nginx'): TaskSpec => TaskSpec.create({ container: ContainerSpec.create({ image }) });

function service(o: { replicas?: number; global?: boolean; image?: string; updateStatus?: UpdateStatus | null } = {}): Service {
  return Service.create({
    meta: Meta.create({ id: 'svc1' }),
    spec: ServiceSpec.create({
      name: 'web',
      task: taskSpec(o.image),
      ...(o.global ? { global: {} } : { replicated: { replicas: o.replicas ?? 3 } }),
    }),
    updateStatus: o.updateStatus ?? null,
  });
}

let seq = 0;
function task(
  slot: number,
  state: TaskState,
  o: { desired?: TaskState; err?: string; image?: string; node?: string; created?: number } = {},
): Task {
  return {
    meta: Meta.create({ id: `t${++seq}`, createdAt: o.created ?? seq }),
    serviceId: 'svc1',
    slot,
    nodeId: o.node ?? 'n1',
    desiredState: o.desired ?? TaskState.RUNNING,
    status: TaskStatus.create({ state, err: o.err ?? '' }),
    spec: taskSpec(o.image),
    serviceVersion: 1,
    networks: [],
    serviceName: 'web',
    restartAttempt: 0,
    jobIteration: 0,
    hostPorts: [],
    serviceLabels: {},
  };
}

const texts = (r: { lines: { text: string }[] }): string[] => r.lines.map((l) => l.text);
const FULL = `[${'='.repeat(50)}>]`;

describe('ProgressTracker', () => {
  it('draws docker-style bars for task states', () => {
    expect(bar(TaskState.RUNNING)).toBe(FULL);
    expect(bar(TaskState.NEW)).toBe(`[=====>${' '.repeat(45)}]`);
    expect(bar(TaskState.FAILED)).toBe(`[>${' '.repeat(50)}]`);
  });

  it('a replicated service converges once its tasks stay running for the stability window', () => {
    const p = new ProgressTracker('create');
    const svc = service();
    const r1 = p.step({ service: svc, tasks: [task(1, TaskState.RUNNING), task(2, TaskState.STARTING), task(3, TaskState.PENDING)] }, 0);
    expect(texts(r1)).toEqual([
      'overall progress: 1 out of 3 tasks',
      `1/3: running   ${FULL}`,
      `2/3: starting  [${'='.repeat(44)}>${' '.repeat(6)}]`,
      `3/3: pending   [${'='.repeat(16)}>${' '.repeat(34)}]`,
    ]);
    expect(r1.done).toBeUndefined();
    const all = [task(1, TaskState.RUNNING), task(2, TaskState.RUNNING), task(3, TaskState.RUNNING)];
    const r2 = p.step({ service: svc, tasks: all }, 200);
    expect(texts(r2)[0]).toBe('overall progress: 3 out of 3 tasks');
    expect(texts(r2).at(-1)).toBe('verify: Waiting 1 seconds to verify that tasks are stable...');
    expect(r2.done).toBeUndefined();
    // A task that stops running restarts the window.
    expect(
      p.step({ service: svc, tasks: [all[0]!, all[1]!, task(3, TaskState.FAILED, { err: 'task: non-zero exit (1)' })] }, 600).lines.at(-1)!
        .text,
    ).toBe(`3/3: failed    [>${' '.repeat(50)}] task: non-zero exit (1)`);
    expect(p.step({ service: svc, tasks: all }, 800).done).toBeUndefined();
    expect(p.step({ service: svc, tasks: all }, 800 + STABILITY_MS - 1).done).toBeUndefined();
    const r3 = p.step({ service: svc, tasks: all }, 800 + STABILITY_MS);
    expect(texts(r3).at(-1)).toBe('verify: Service converged');
    expect(r3.done).toEqual({ ok: true, message: '' });
  });

  it('tasks of the old spec, or extra tasks, are not converged yet', () => {
    const p = new ProgressTracker('update', { state: UpdateState.UPDATING, startedAt: 1, completedAt: 0, message: '' });
    const svc = service({
      replicas: 1,
      image: 'nginx:2',
      updateStatus: { state: UpdateState.COMPLETED, startedAt: 1, completedAt: 2, message: '' },
    });
    const r = p.step({ service: svc, tasks: [task(1, TaskState.RUNNING)] }, 0);
    expect(texts(r)[0]).toBe('overall progress: 0 out of 1 tasks');
    const mixed = [task(1, TaskState.RUNNING, { image: 'nginx:2' }), task(2, TaskState.RUNNING, { image: 'nginx:2' })];
    expect(p.step({ service: svc, tasks: mixed }, 0).lines.some((l) => l.key === 'verify')).toBe(false);
    // Still updating: not converged even with every task running.
    const busy = service({
      replicas: 1,
      image: 'nginx:2',
      updateStatus: { state: UpdateState.UPDATING, startedAt: 1, completedAt: 0, message: '' },
    });
    expect(
      p.step({ service: busy, tasks: [task(1, TaskState.RUNNING, { image: 'nginx:2' })] }, 5000).lines.some((l) => l.key === 'verify'),
    ).toBe(false);
  });

  it('fails with the scheduler explanation when every waiting task has no suitable node for 3 s', () => {
    const p = new ProgressTracker('create');
    const svc = service({ replicas: 2 });
    const err = 'no suitable node (scheduling constraints not satisfied on 3 nodes)';
    const tasks = [task(1, TaskState.RUNNING), task(2, TaskState.PENDING, { err })];
    const r1 = p.step({ service: svc, tasks }, 1000);
    expect(texts(r1)[2]).toBe(`2/2: pending   [${'='.repeat(16)}>${' '.repeat(34)}] ${err}`);
    expect(r1.done).toBeUndefined();
    expect(p.step({ service: svc, tasks }, 1000 + NO_NODE_MS - 1).done).toBeUndefined();
    const r2 = p.step({ service: svc, tasks }, 1000 + NO_NODE_MS);
    expect(r2.done).toEqual({
      ok: false,
      message: `${err}\nthe service was created; fix the constraints with \`tsswarm service update\` or remove it`,
    });
  });

  it("fails with the allocator's reason when every waiting task cannot get its addresses for 3 s", () => {
    const p = new ProgressTracker('create');
    const svc = service({ replicas: 1 });
    const err = 'network allocation failed: spec.endpoint.ports[0]: port 8080/tcp is already published by service web';
    const tasks = [task(1, TaskState.NEW, { err })];
    expect(p.step({ service: svc, tasks }, 0).done).toBeUndefined();
    const r = p.step({ service: svc, tasks }, NO_NODE_MS);
    expect(r.done).toEqual({
      ok: false,
      message: `${err}\nthe service was created; fix its networks or published ports with \`tsswarm service update\` or remove it`,
    });
  });

  it('a task that gets placed in time resets the no-suitable-node clock', () => {
    const p = new ProgressTracker('create');
    const svc = service({ replicas: 1 });
    const stuck = [task(1, TaskState.PENDING, { err: 'no suitable node (insufficient resources on 2 nodes)' })];
    p.step({ service: svc, tasks: stuck }, 0);
    p.step({ service: svc, tasks: [task(1, TaskState.ASSIGNED)] }, 2000);
    expect(p.step({ service: svc, tasks: stuck }, 3500).done).toBeUndefined();
  });

  it('a paused update fails with its message', () => {
    const p = new ProgressTracker('update', { state: UpdateState.UPDATING, startedAt: 1, completedAt: 0, message: '' });
    const svc = service({
      replicas: 1,
      image: 'bad',
      updateStatus: {
        state: UpdateState.PAUSED,
        startedAt: 1,
        completedAt: 0,
        message: 'update paused due to failure or early termination of task t9',
      },
    });
    const r = p.step({ service: svc, tasks: [task(1, TaskState.FAILED, { image: 'bad', err: 'image not found' })] }, 0);
    expect(r.done?.ok).toBe(false);
    expect(r.done?.message).toMatch(
      /^update paused due to failure or early termination of task t9\nfix the service with `tsswarm service update`/,
    );
  });

  it('a stale PAUSED status does not fail a scale that started no update', () => {
    const paused = { state: UpdateState.PAUSED, startedAt: 1, completedAt: 0, message: 'old' };
    const p = new ProgressTracker('scale', paused);
    const svc = service({ replicas: 1, updateStatus: paused });
    expect(p.step({ service: svc, tasks: [task(1, TaskState.RUNNING)] }, 0).done).toBeUndefined();
    expect(p.step({ service: svc, tasks: [task(1, TaskState.RUNNING)] }, STABILITY_MS).done).toEqual({ ok: true, message: '' });
  });

  it('an update that was rolled back fails with "rolled back: <message>"', () => {
    const p = new ProgressTracker('update', { state: UpdateState.UPDATING, startedAt: 1, completedAt: 0, message: '' });
    const svc = service({
      replicas: 1,
      updateStatus: { state: UpdateState.ROLLBACK_COMPLETED, startedAt: 1, completedAt: 2, message: 'update rolled back due to failure' },
    });
    const r = p.step({ service: svc, tasks: [task(1, TaskState.RUNNING)] }, 0);
    expect(texts(r)[0]).toBe('rollback: update rolled back due to failure');
    expect(r.done).toEqual({ ok: false, message: 'rolled back: update rolled back due to failure' });
  });

  it('a requested rollback converges when its tasks run', () => {
    const p = new ProgressTracker('rollback', {
      state: UpdateState.ROLLBACK_STARTED,
      startedAt: 1,
      completedAt: 0,
      message: 'manually requested rollback',
    });
    const done = service({
      replicas: 1,
      updateStatus: { state: UpdateState.ROLLBACK_COMPLETED, startedAt: 1, completedAt: 2, message: 'manually requested rollback' },
    });
    p.step({ service: done, tasks: [task(1, TaskState.RUNNING)] }, 0);
    const r = p.step({ service: done, tasks: [task(1, TaskState.RUNNING)] }, STABILITY_MS);
    expect(texts(r)).toEqual([
      'rollback: manually requested rollback',
      'overall progress: 1 out of 1 tasks',
      `1/1: running   ${FULL}`,
      'verify: Service converged',
    ]);
    expect(r.done?.ok).toBe(true);
  });

  it('a global service has one line per node, by hostname', () => {
    const p = new ProgressTracker('create');
    const snap: Snapshot = {
      service: service({ global: true }),
      tasks: [
        task(0, TaskState.RUNNING, { node: 'nodeB' }),
        task(0, TaskState.PREPARING, { node: 'nodeA' }),
        task(0, TaskState.SHUTDOWN, { node: 'nodeC', desired: TaskState.SHUTDOWN }),
      ],
      nodeNames: new Map([
        ['nodeA', 'alpha'],
        ['nodeB', 'beta'],
      ]),
    };
    expect(texts(p.step(snap, 0))).toEqual([
      'overall progress: 1 out of 2 tasks',
      `alpha: preparing [${'='.repeat(33)}>${' '.repeat(17)}]`,
      `beta: running   ${FULL}`,
    ]);
  });

  it('scaling to zero converges when no task should run', () => {
    const p = new ProgressTracker('scale');
    const svc = service({ replicas: 0 });
    expect(p.step({ service: svc, tasks: [task(1, TaskState.RUNNING)] }, 0).lines.some((l) => l.key === 'verify')).toBe(false);
    const gone = [task(1, TaskState.SHUTDOWN, { desired: TaskState.SHUTDOWN })];
    p.step({ service: svc, tasks: gone }, 100);
    expect(p.step({ service: svc, tasks: gone }, 100 + STABILITY_MS).done?.ok).toBe(true);
  });
});

describe('renderers', () => {
  it('without a terminal a line is printed only when it changed', () => {
    let out = '';
    const r = lineRenderer({ write: (s: string) => (out += s) });
    r.draw([
      { key: 'overall', text: 'overall progress: 0 out of 1 tasks' },
      { key: 'slot 1', text: '1/1: pending' },
    ]);
    r.draw([
      { key: 'overall', text: 'overall progress: 0 out of 1 tasks' },
      { key: 'slot 1', text: '1/1: running' },
    ]);
    r.draw([
      { key: 'overall', text: 'overall progress: 0 out of 1 tasks' },
      { key: 'slot 1', text: '1/1: running' },
    ]);
    expect(out).toBe('overall progress: 0 out of 1 tasks\n1/1: pending\n1/1: running\n');
  });

  it('on a terminal the frame is redrawn in place', () => {
    let out = '';
    const r = ttyRenderer({ write: (s: string) => (out += s) });
    r.draw([
      { key: 'a', text: 'one' },
      { key: 'b', text: 'two' },
    ]);
    r.draw([{ key: 'a', text: 'three' }]);
    expect(out).toBe('one\ntwo\n\x1b[2A\x1b[Jthree\n');
  });
});

describe('watchProgress', () => {
  it('polls until converged, with injected time', async () => {
    let now = 0;
    const snaps: Snapshot[] = [
      { service: service({ replicas: 1 }), tasks: [task(1, TaskState.PENDING)] },
      { service: service({ replicas: 1 }), tasks: [task(1, TaskState.RUNNING)] },
    ];
    let calls = 0;
    let out = '';
    const r = await watchProgress({
      op: 'create',
      fetch: async () => snaps[Math.min(calls++, 1)]!,
      out: { write: (s: string) => (out += s) },
      isTTY: false,
      now: () => now,
      sleep: async (ms) => void (now += ms),
    });
    expect(r).toEqual({ ok: true, message: '' });
    expect(out.split('\n').filter(Boolean)).toEqual([
      'overall progress: 0 out of 1 tasks',
      `1/1: pending   [${'='.repeat(16)}>${' '.repeat(34)}]`,
      'overall progress: 1 out of 1 tasks',
      `1/1: running   ${FULL}`,
      'verify: Waiting 1 seconds to verify that tasks are stable...',
      'verify: Service converged',
    ]);
  });

  it('stops (null) when its signal aborts, without waiting', async () => {
    const ac = new AbortController();
    const started = Date.now();
    const p = watchProgress({
      op: 'create',
      fetch: async () => ({ service: service({ replicas: 1 }), tasks: [] }),
      out: { write: () => true },
      isTTY: false,
      signal: ac.signal,
      pollMs: 60_000,
    });
    setTimeout(() => ac.abort(), 20);
    expect(await p).toBeNull();
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
