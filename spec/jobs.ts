// Counting a job's progress (what `service ls` shows as "N/M (C/T completed)"
// and the Engine API as ServiceStatus): only the tasks of the job's current
// iteration count, each slot (global jobs: each node) once.
import { type Service, type Task, TaskState } from '../proto/gen/objects.js';

export interface JobCounts {
  /** Tasks that may run now: replicated jobs min(max concurrent, completions left); global jobs the unfinished tasks. */
  desired: number;
  /** Slots (nodes) of this iteration whose task completed. */
  completed: number;
  /** Completions the iteration needs: total completions; global jobs the nodes given a task. */
  total: number;
}

/** The iteration a job's tasks belong to; 0 for a service that is not a job. */
export const jobIteration = (s: Service): number => s.jobStatus?.jobIteration ?? 0;

export function jobCounts(s: Service, tasks: Iterable<Task>): JobCounts {
  const it = jobIteration(s);
  const global = !!s.spec.globalJob;
  const done = new Set<string>();
  const open = new Set<string>();
  for (const t of tasks) {
    if (t.jobIteration !== it || t.desiredState > TaskState.COMPLETE) continue;
    const k = global ? t.nodeId : String(t.slot);
    if (t.status?.state === TaskState.COMPLETE) done.add(k);
    else open.add(k);
  }
  for (const k of done) open.delete(k);
  if (global) return { desired: open.size, completed: done.size, total: done.size + open.size };
  const rj = s.spec.replicatedJob;
  const total = rj?.totalCompletions ?? 0;
  return { desired: Math.min(rj?.maxConcurrent ?? 0, Math.max(0, total - done.size)), completed: done.size, total };
}
