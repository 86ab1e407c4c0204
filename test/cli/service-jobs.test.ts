// The job flags of `service create|update` (--mode replicated-job|global-job,
// --replicas, --max-concurrent), the REPLICAS column of jobs and the job
// progress display.
import { describe, expect, it } from 'vitest';
import { ProgressTracker } from '../../cli/progress.js';
import { parseCreateArgv, parseUpdateArgv, prettyService, replicasColumn } from '../../cli/service.js';
import { Meta, RestartCondition, Service, type ServiceSpec, Task, TaskState } from '../../proto/gen/objects.js';
import { validateServiceSpec } from '../../spec/index.js';

const msgOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return '';
};

const created = (...argv: string[]): ServiceSpec =>
  validateServiceSpec({ ...parseCreateArgv([...argv, 'busybox']).spec, name: 'job' }).spec;

describe('service create --mode replicated-job|global-job', () => {
  it('a replicated job: --replicas is the total completions, --max-concurrent defaults to it, each 1 when left out', () => {
    expect(parseCreateArgv(['--mode', 'replicated-job', 'busybox']).spec.replicatedJob).toEqual({ totalCompletions: 1, maxConcurrent: 1 });
    expect(parseCreateArgv(['--mode', 'replicated-job', '--replicas', '4', 'busybox']).spec.replicatedJob).toEqual({
      totalCompletions: 4,
      maxConcurrent: 4,
    });
    const s = parseCreateArgv(['--mode', 'replicated-job', '--replicas', '4', '--max-concurrent', '2', 'busybox']).spec;
    expect(s.replicatedJob).toEqual({ totalCompletions: 4, maxConcurrent: 2 });
    expect(s.replicated ?? null).toBeNull();
  });

  it('a global job; jobs restart on failure only and carry no update config', () => {
    const g = created('--mode', 'global-job');
    expect(g.globalJob).toEqual({});
    expect(g.global ?? null).toBeNull();
    expect(g.update).toBeNull();
    expect(g.rollback).toBeNull();
    expect(g.task.restart?.condition).toBe(RestartCondition.ON_FAILURE);
  });

  it('refuses flags a job cannot honour, naming them', () => {
    expect(msgOf(() => parseCreateArgv(['--mode', 'global-job', '--replicas', '2', 'busybox']))).toBe(
      '--replicas can only be used with replicated or replicated-job mode (--mode global-job)',
    );
    expect(msgOf(() => parseCreateArgv(['--max-concurrent', '2', 'busybox']))).toBe(
      '--max-concurrent can only be used with replicated-job mode (service  is replicated)',
    );
    expect(msgOf(() => parseCreateArgv(['--mode', 'replicated-job', '--update-parallelism', '2', 'busybox']))).toBe(
      '--update-parallelism cannot be used with jobs (--mode replicated-job): every update of a job starts a new iteration of it',
    );
    expect(msgOf(() => parseCreateArgv(['--mode', 'global-job', '--rollback-order', 'start-first', 'busybox']))).toMatch(
      /^--rollback-order cannot be used with jobs/,
    );
    expect(msgOf(() => parseCreateArgv(['--mode', 'replicated-job', '--max-concurrent', 'x', 'busybox']))).toMatch(
      /^--max-concurrent must be a whole number/,
    );
    expect(msgOf(() => created('--mode', 'replicated-job', '--replicas', '3', '--max-concurrent', '0'))).toMatch(
      /maxConcurrent must be at least 1/,
    );
  });

  it('service update: --replicas sets the completions, --max-concurrent the concurrency, --force bumps the spec', () => {
    const cur = created('--mode', 'replicated-job', '--replicas', '4', '--max-concurrent', '2');
    expect(parseUpdateArgv(['--replicas', '6', 'job'], cur).replicatedJob).toEqual({ totalCompletions: 6, maxConcurrent: 2 });
    expect(parseUpdateArgv(['--max-concurrent', '3', 'job'], cur).replicatedJob).toEqual({ totalCompletions: 4, maxConcurrent: 3 });
    expect(parseUpdateArgv(['--force', 'job'], cur).task.forceUpdate).toBe(1);
    expect(msgOf(() => parseUpdateArgv(['--update-delay', '1s', 'job'], cur))).toMatch(
      /^--update-delay cannot be used with jobs \(service job is replicated-job\)/,
    );
    const g = created('--mode', 'global-job');
    expect(msgOf(() => parseUpdateArgv(['--max-concurrent', '3', 'job'], g))).toBe(
      '--max-concurrent can only be used with replicated-job mode (service job is global-job)',
    );
  });
});

const svcOf = (spec: ServiceSpec): Service =>
  Service.create({ meta: Meta.create({ id: 'abcdefghijklmnop', version: 3 }), spec, jobStatus: { jobIteration: 1, lastExecution: 0 } });

describe('service ls and inspect of jobs', () => {
  it('REPLICAS shows running/desired and the completions, as docker', () => {
    const rj = svcOf(created('--mode', 'replicated-job', '--replicas', '4', '--max-concurrent', '2'));
    expect(replicasColumn({ service: rj, running: 2, desired: 2, completed: 1 })).toBe('2/2 (1/4 completed)');
    expect(replicasColumn({ service: rj, running: 0, desired: 0, completed: 4 })).toBe('0/0 (4/4 completed)');
    const gj = svcOf(created('--mode', 'global-job'));
    expect(replicasColumn({ service: gj, running: 1, desired: 1, completed: 2 })).toBe('1/1 (2/3 completed)');
    expect(replicasColumn({ service: svcOf(created()), running: 1, desired: 1, completed: 0 })).toBe('1/1');
  });

  it('inspect --pretty names the job mode and its numbers', () => {
    const out = prettyService(svcOf(created('--mode', 'replicated-job', '--replicas', '4', '--max-concurrent', '2')));
    expect(out).toMatch(/Service Mode:\tReplicatedJob\n Max Concurrent:\t2\n Total Completions:\t4\n/);
  });
});

describe('job progress', () => {
  const task = (slot: number, state: TaskState, o: Partial<Task> = {}): Task =>
    Task.create({
      meta: Meta.create({ id: `t${slot}${state}` }),
      slot,
      desiredState: TaskState.RUNNING,
      jobIteration: 1,
      status: { state, timestamp: 0, message: '', err: state === TaskState.FAILED ? 'task: non-zero exit (1)' : '' },
      ...o,
    } as Partial<Task>);
  const rj = svcOf(created('--mode', 'replicated-job', '--replicas', '3', '--max-concurrent', '2'));

  it('counts completions of the current iteration and ends when all are made', () => {
    const p = new ProgressTracker('create');
    const mid = p.step(
      { service: rj, tasks: [task(1, TaskState.COMPLETE), task(2, TaskState.RUNNING), task(3, TaskState.COMPLETE, { jobIteration: 0 })] },
      0,
    );
    expect(mid.lines.map((l) => l.text)).toEqual(['job progress: 1 out of 3 complete', 'active tasks: 1 out of 2 tasks']);
    expect(mid.done).toBeUndefined();
    const end = p.step({ service: rj, tasks: [1, 2, 3].map((s) => task(s, TaskState.COMPLETE)) }, 1);
    expect(end.lines.at(-1)!.text).toBe('job complete');
    expect(end.done).toEqual({ ok: true, message: '' });
  });

  it('fails once a task stays failed (its restart policy gave up), not at the first sight of it', () => {
    const p = new ProgressTracker('create');
    const snap = { service: rj, tasks: [task(1, TaskState.FAILED), task(2, TaskState.RUNNING)] };
    expect(p.step(snap, 0).done).toBeUndefined();
    const r = p.step(snap, 10_000);
    expect(r.done?.ok).toBe(false);
    expect(r.done?.message).toMatch(/^task: non-zero exit \(1\)\nthe job cannot complete/);
  });
});
