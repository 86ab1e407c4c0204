// The times the manager decides by are its own: a task status report's
// timestamp and runningAt are stamped with the manager's clock when the report
// is written, whatever the agent's clock said, so a rolling update's delay and
// monitor hold when an agent's clock runs ahead or behind.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { StatusWriter } from '../../../manager/dispatcher/status.js';
import { localStore } from '../../../manager/store/local.js';
import type { MemoryStore } from '../../../manager/store/index.js';
import { Meta, Task, type TaskStatus, TaskState } from '../../../proto/gen/objects.js';

const log = pino({ level: 'silent' });
const HOUR = 3_600_000;
let writers: StatusWriter[] = [];
afterEach(() => {
  for (const w of writers) w.close();
  writers = [];
});

async function setup(...ids: string[]): Promise<{ store: MemoryStore; w: StatusWriter; clock: { t: number } }> {
  const store = localStore();
  await store.update((tx) => {
    for (const id of ids)
      tx.tasks.create(
        Task.create({
          meta: Meta.create({ id }),
          nodeId: 'n1',
          serviceId: 's1',
          slot: 1,
          desiredState: TaskState.RUNNING,
          status: { state: TaskState.ASSIGNED } as TaskStatus,
        }),
      );
  });
  const clock = { t: 1_000_000 };
  const w = new StatusWriter(store, log, { now: () => clock.t });
  writers.push(w);
  return { store, w, clock };
}

const status = (s: MemoryStore, id: string): TaskStatus => s.view((tx) => tx.tasks.get(id))!.status!;
const report = (over: Partial<TaskStatus>): TaskStatus =>
  ({ state: TaskState.RUNNING, timestamp: 0, message: '', err: '', health: '', runningAt: 0, startedAt: 0, ...over }) as TaskStatus;

describe('task status times are the manager’s clock', () => {
  it('runningAt is the manager’s time of the first RUNNING report, whether the agent’s clock is ahead or behind, and stays so after', async () => {
    const { store, w, clock } = await setup('ahead', 'behind');
    const agentAhead = clock.t + HOUR;
    const agentBehind = clock.t - HOUR;
    w.push('n1', [
      { taskId: 'ahead', status: report({ startedAt: agentAhead, runningAt: agentAhead, timestamp: agentAhead }) },
      { taskId: 'behind', status: report({ startedAt: agentBehind, runningAt: agentBehind, timestamp: agentBehind }) },
    ]);
    await w.flush();
    for (const id of ['ahead', 'behind']) expect(status(store, id)).toMatchObject({ runningAt: 1_000_000, timestamp: 1_000_000 });
    // The agent's container start is kept as it said (shown by `service ps`).
    expect(status(store, 'ahead').startedAt).toBe(agentAhead);

    // A health refresh, then the end: runningAt stays the first one, timestamp moves on.
    clock.t = 2_000_000;
    w.push('n1', [{ taskId: 'ahead', status: report({ health: 'healthy', runningAt: agentAhead + 5, timestamp: agentAhead + 5 }) }]);
    await w.flush();
    expect(status(store, 'ahead')).toMatchObject({ health: 'healthy', runningAt: 1_000_000, timestamp: 2_000_000 });
    clock.t = 3_000_000;
    w.push('n1', [{ taskId: 'ahead', status: report({ state: TaskState.FAILED, runningAt: agentAhead, timestamp: agentAhead + 9 }) }]);
    await w.flush();
    expect(status(store, 'ahead')).toMatchObject({ state: TaskState.FAILED, runningAt: 1_000_000, timestamp: 3_000_000 });
  });

  it('a task that never ran keeps runningAt 0; one whose RUNNING report was replaced in its batch by its end ran from the manager’s time', async () => {
    const { store, w } = await setup('never', 'brief', 'old-agent');
    w.push('n1', [
      { taskId: 'never', status: report({ state: TaskState.STARTING, health: 'starting', startedAt: 5 }) },
      { taskId: 'brief', status: report({ state: TaskState.FAILED, startedAt: 5, runningAt: 7, timestamp: 9 }) },
      // An agent that sends no runningAt: RUNNING is stamped all the same.
      { taskId: 'old-agent', status: report({ startedAt: 5, timestamp: 9 }) },
    ]);
    await w.flush();
    expect(status(store, 'never')).toMatchObject({ state: TaskState.STARTING, runningAt: 0, timestamp: 1_000_000 });
    expect(status(store, 'brief')).toMatchObject({ state: TaskState.FAILED, runningAt: 1_000_000 });
    expect(status(store, 'old-agent')).toMatchObject({ state: TaskState.RUNNING, runningAt: 1_000_000 });
    w.push('n1', [{ taskId: 'never', status: report({ state: TaskState.FAILED, health: 'unhealthy', startedAt: 5, timestamp: 9 }) }]);
    await w.flush();
    expect(status(store, 'never')).toMatchObject({ state: TaskState.FAILED, runningAt: 0 });
  });
});
