// Jobs in Docker's words: Mode.ReplicatedJob / Mode.GlobalJob in and out,
// Service.JobStatus, Task.JobIteration, ServiceStatus.CompletedTasks.
import { describe, expect, it } from 'vitest';
import { serviceSpecFromDocker, serviceSpecToDocker, serviceStatusOf, serviceToDocker } from '../../../spec/docker/service.js';
import { taskToDocker } from '../../../spec/docker/task.js';
import { validateServiceSpec } from '../../../spec/validate.js';
import { Meta, Service, Task, TaskState } from '../../../proto/gen/objects.js';

const body = (mode: unknown, extra: Record<string, unknown> = {}) => ({
  Name: 'job',
  TaskTemplate: { ContainerSpec: { Image: 'busybox' } },
  Mode: mode,
  ...extra,
});

describe('jobs through the Engine API', () => {
  it('Mode.ReplicatedJob: each count absent is 1, as moby; GlobalJob chooses a global job', () => {
    expect(serviceSpecFromDocker(body({ ReplicatedJob: {} })).replicatedJob).toEqual({ maxConcurrent: 1, totalCompletions: 1 });
    const s = serviceSpecFromDocker(body({ ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 4 } }));
    expect(s.replicatedJob).toEqual({ maxConcurrent: 2, totalCompletions: 4 });
    expect(s.replicated ?? null).toBeNull();
    expect(serviceSpecFromDocker(body({ GlobalJob: {} })).globalJob).toEqual({});
    expect(() => serviceSpecFromDocker(body({ ReplicatedJob: { TotalCompletions: -1 } }))).toThrow(/Mode\.ReplicatedJob\.TotalCompletions/);
    expect(() => serviceSpecFromDocker(body({ GlobalJob: {}, Global: {} }))).toThrow(/only one service mode/);
  });

  it('a job comes back with its mode and no made-up update config', () => {
    const { spec } = validateServiceSpec(serviceSpecFromDocker(body({ ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 4 } })));
    const d = serviceSpecToDocker(spec, { insertDefaults: true });
    expect(d.Mode).toEqual({ ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 4 } });
    expect(d.UpdateConfig).toBeUndefined();
    expect(d.RollbackConfig).toBeUndefined();
    expect(d.TaskTemplate.RestartPolicy?.Condition).toBe('on-failure');
    expect(serviceSpecToDocker(validateServiceSpec(serviceSpecFromDocker(body({ GlobalJob: {} }))).spec).Mode).toEqual({ GlobalJob: {} });
  });

  it('an UpdateConfig on a job is refused by validation, naming the Docker field through the Control API', () => {
    const spec = serviceSpecFromDocker(body({ GlobalJob: {} }, { UpdateConfig: { Parallelism: 2 } }));
    expect(() => validateServiceSpec(spec)).toThrow(/spec\.update cannot be set for a job/);
  });

  const svc = Service.create({
    meta: Meta.create({ id: 's1', version: 7, createdAt: 0, updatedAt: 0 }),
    spec: validateServiceSpec(serviceSpecFromDocker(body({ ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 4 } }))).spec,
    jobStatus: { jobIteration: 2, lastExecution: Date.UTC(2026, 0, 2) },
  });
  const task = (slot: number, state: TaskState, jobIteration = 2) =>
    Task.create({
      meta: Meta.create({ id: `t${slot}-${jobIteration}` }),
      serviceId: 's1',
      slot,
      desiredState: TaskState.RUNNING,
      jobIteration,
      status: { state, timestamp: 0 },
    } as Partial<Task>);

  it('JobStatus and ServiceStatus: completions of the current iteration only', () => {
    const tasks = [task(1, TaskState.COMPLETE), task(2, TaskState.RUNNING), task(3, TaskState.COMPLETE, 1), task(4, TaskState.COMPLETE, 1)];
    const st = serviceStatusOf(svc, tasks);
    expect(st).toEqual({ RunningTasks: 1, DesiredTasks: 2, CompletedTasks: 1 });
    const d = serviceToDocker(svc, { status: st });
    expect(d.JobStatus).toEqual({ JobIteration: { Index: 2 }, LastExecution: '2026-01-02T00:00:00Z' });
    expect(serviceToDocker(Service.create({ ...svc, jobStatus: null })).JobStatus).toBeUndefined();
  });

  it("a job's task: its iteration, and complete as the desired state (as Swarm's)", () => {
    const d = taskToDocker(task(1, TaskState.RUNNING));
    expect(d.JobIteration).toEqual({ Index: 2 });
    expect(d.DesiredState).toBe('complete');
    const plain = taskToDocker(task(1, TaskState.RUNNING, 0));
    expect(plain.JobIteration).toBeUndefined();
    expect(plain.DesiredState).toBe('running');
  });
});
