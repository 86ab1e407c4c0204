// Jobs, as SwarmKit defines them: tasks that run to completion. A replicated
// job makes `totalCompletions` successful tasks, each in its own slot (0 to
// totalCompletions-1, as SwarmKit numbers them), at most
// `maxConcurrent` of them unfinished at a time; a global job makes one per
// eligible node (a node that joins or becomes eligible later gets one). A task
// that completed is never run again; a failed one is replaced in its slot per
// the restart policy (restart.ts; on-failure for jobs). Every update of the
// spec starts a new iteration (the service's jobStatus): the tasks of the
// previous one still unfinished are shut down and the job runs again.
import { TaskState } from '../../proto/gen/objects.js';
import { jobIteration } from '../../spec/jobs.js';
import { CREATE_CHUNK } from './chunk.js';
import { isTerminal, type ServiceContext } from './context.js';
import { eligibleNode, keepsGlobalTask } from './global.js';
import { superviseRestarts } from './restart.js';

/** Shuts down the unfinished tasks of earlier iterations; the slots (nodes) that completed or hold a task of this one. */
function currentIteration(c: ServiceContext): { done: Set<string>; open: Set<string> } {
  const it = jobIteration(c.svc!);
  const done = new Set<string>();
  const open = new Set<string>();
  for (const k of [...c.slots.keys()]) {
    for (const t of c.current(k)) {
      if (t.jobIteration !== it) c.setDesired(t, TaskState.SHUTDOWN, 'a new iteration of the job began');
      else if (t.status?.state === TaskState.COMPLETE) {
        // Done for good: desired COMPLETE, as SwarmKit's (`service ps` shows Complete, not Running).
        c.setDesired(t, TaskState.COMPLETE);
        done.add(k);
      } else open.add(k);
    }
  }
  for (const k of done) open.delete(k);
  return { done, open };
}

/** Whether slot k's task of this iteration has ended and will not be replaced (it completed, or its policy gave up). */
function settled(c: ServiceContext, k: string): boolean {
  const cur = c.current(k);
  return cur.length > 0 && cur.every((t) => isTerminal(t.status?.state));
}

export function reconcileReplicatedJob(c: ServiceContext): void {
  const rj = c.spec.replicatedJob!;
  currentIteration(c);
  superviseRestarts(c, () => true);
  // Counted after the restarts: a failed task's successor holds its slot.
  const { done, open } = currentIteration(c);
  const unfinished = [...open].filter((k) => !settled(c, k)).length;
  const left = rj.totalCompletions - done.size - open.size;
  let add = Math.min(rj.maxConcurrent - unfinished, left);
  // Slots 0..total-1, as SwarmKit's (the docker CLI's job progress reads them so).
  for (let s = 0; add > 0 && s < rj.totalCompletions; s++) {
    const k = String(s);
    if (done.has(k) || open.has(k)) continue;
    if (c.p.created >= CREATE_CHUNK) {
      c.p.more.push(c.serviceId);
      break;
    }
    c.newTask(s, '', TaskState.RUNNING, 0);
    open.add(k);
    add--;
  }
}

export function reconcileGlobalJob(c: ServiceContext): void {
  const spec = c.spec;
  currentIteration(c);
  // A paused node keeps its task (SwarmKit's global job reconciler removes tasks of invalid nodes only).
  superviseRestarts(c, (k) => keepsGlobalTask(c.p.nodes.get(k), spec));
  const { done, open } = currentIteration(c);
  // An unfinished task on a node that is no longer eligible stops; one that completed stays as it is.
  for (const k of open) {
    if (keepsGlobalTask(c.p.nodes.get(k), spec)) continue;
    for (const t of c.current(k)) if (!isTerminal(t.status?.state)) c.setDesired(t, TaskState.SHUTDOWN, 'node no longer eligible');
  }
  for (const [id, n] of c.p.nodes) {
    if (done.has(id) || open.has(id) || !eligibleNode(n, spec)) continue;
    if (c.p.created >= CREATE_CHUNK) {
      c.p.more.push(c.serviceId);
      break;
    }
    c.newTask(0, id, TaskState.RUNNING, 0);
  }
}
