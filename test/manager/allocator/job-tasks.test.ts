// When a task gives its network addresses back: a job's task once it completed
// (its desired state stays RUNNING here, where Swarm's is COMPLETE).
import { describe, expect, it } from 'vitest';
import { taskDead } from '../../../manager/allocator/index.js';
import { Meta, Task, TaskState } from '../../../proto/gen/objects.js';

const task = (desiredState: TaskState, state: TaskState, jobIteration = 0): Task =>
  Task.create({ meta: Meta.create({ id: 't' }), desiredState, jobIteration, status: { state, timestamp: 0 } } as Partial<Task>);

describe('taskDead', () => {
  it("a job's completed task frees its addresses; a running one and a service's completed one keep them", () => {
    expect(taskDead(task(TaskState.RUNNING, TaskState.COMPLETE, 1))).toBe(true);
    expect(taskDead(task(TaskState.RUNNING, TaskState.RUNNING, 1))).toBe(false);
    // A job's failed task waits for the orchestrator's shutdown, as a service's.
    expect(taskDead(task(TaskState.RUNNING, TaskState.FAILED, 1))).toBe(false);
    expect(taskDead(task(TaskState.RUNNING, TaskState.COMPLETE))).toBe(false);
    expect(taskDead(task(TaskState.SHUTDOWN, TaskState.COMPLETE))).toBe(true);
  });
});
