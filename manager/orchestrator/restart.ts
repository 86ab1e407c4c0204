// The restart supervisor, shared by replicated and global services: a current
// task that ended, turned unhealthy, lost its node (DOWN or removed) or whose
// node was drained is shut down and, per its restart policy, replaced in the
// same slot. A delayed replacement is created READY (it can be scheduled and
// prepared meanwhile) and flipped to RUNNING when its delay, counted from its
// creation time, is over, so a new leader recomputes every delay from the store.
import { type Node, NodeAvailability, NodeState, RestartCondition, type Task, TaskState } from '../../proto/gen/objects.js';
import { isCurrent, isTerminal, type ServiceContext } from './context.js';

export const DEFAULT_RESTART_DELAY_MS = 5000;
/** How long the tasks of a DOWN node stay as they were reported before they are marked ORPHANED (SwarmKit: 24 h). */
export const ORPHAN_AFTER_MS = 24 * 3600 * 1000;

export type ReplaceReason = 'failed' | 'node-down' | 'drained';

/** Why a current task must be replaced; null while it is fine. */
export function replaceReason(t: Task, node: Node | undefined): ReplaceReason | null {
  if (isTerminal(t.status?.state)) return 'failed';
  if (t.status?.health === 'unhealthy' && t.status?.state === TaskState.RUNNING) return 'failed';
  if (t.nodeId && (t.status?.state ?? 0) >= TaskState.ASSIGNED) {
    if (!node || node.status?.state === NodeState.DOWN) return 'node-down';
    if (node.spec?.availability === NodeAvailability.DRAIN) return 'drained';
  }
  return null;
}

/** Whether a task that ended gets a successor per its restart policy (node loss and drains always do). */
export function shouldRestart(t: Task, reason: ReplaceReason, slotHistory: readonly Task[], now: number): boolean {
  if (reason !== 'failed') return true;
  // A job's task that completed is done, whatever the policy says.
  if (t.jobIteration > 0 && t.status?.state === TaskState.COMPLETE) return false;
  const p = t.spec?.restart;
  const cond = p?.condition ?? RestartCondition.ANY;
  if (cond === RestartCondition.NONE) return false;
  if (cond === RestartCondition.ON_FAILURE) {
    const st = t.status?.state;
    const failed =
      st === TaskState.FAILED || st === TaskState.REJECTED || (t.status?.exitCode ?? 0) !== 0 || t.status?.health === 'unhealthy';
    if (!failed) return false;
  }
  const max = p?.maxAttempts ?? 0;
  if (max > 0) {
    const window = p?.windowMs ?? 0;
    // Restarts already made for this slot: within the window, the tasks of the slot created in it
    // before this one; without a window, the attempt counter carried from task to task.
    const attempts =
      window > 0 ? slotHistory.filter((h) => (h.meta?.createdAt ?? 0) >= now - window && h.meta.id !== t.meta.id).length : t.restartAttempt;
    if (attempts >= max) return false;
  }
  return true;
}

/** A task of the slot that is being shut down but may still run: assigned, not yet reported ended, its node up. */
function predecessorRunning(o: Task, nodes: ReadonlyMap<string, Node>): boolean {
  if (o.desiredState <= TaskState.RUNNING) return false;
  const st = o.status?.state ?? 0;
  if (st < TaskState.ASSIGNED || st > TaskState.RUNNING || !o.nodeId) return false;
  const node = nodes.get(o.nodeId);
  return !!node && node.status?.state !== NodeState.DOWN;
}

/** The restart delay of a task's policy (ms); a spec without a policy gets Swarm's 5 s. */
export function restartDelay(t: Task): number {
  const p = t.spec?.restart;
  return p ? Math.max(0, p.delayMs) : DEFAULT_RESTART_DELAY_MS;
}

/**
 * Shuts down and replaces the current tasks that need it; flips READY
 * replacements whose delay is over to RUNNING. `wanted(k)` says whether slot
 * `k` should exist at all (a slot that goes away is not restarted).
 */
export function superviseRestarts(c: ServiceContext, wanted: (k: string) => boolean): void {
  const p = c.p;
  for (const [k, list] of [...c.slots]) {
    for (const t of list) {
      if (c.isFresh(t) || !isCurrent(c.latest(t))) continue;
      const node = t.nodeId ? p.nodes.get(t.nodeId) : undefined;
      const reason = replaceReason(t, node);
      if (!reason) {
        if (t.desiredState === TaskState.READY) {
          // A stop-first successor starts once the task it replaces has stopped (as SwarmKit's
          // updater): both never run at once, even for a moment. A predecessor on a node that is
          // down or gone will not report; it is not waited for.
          if (list.some((o) => o !== t && predecessorRunning(c.latest(o), p.nodes))) continue;
          // Only a restart waits out its policy's delay (an update's successor is attempt 0).
          const due = t.restartAttempt > 0 ? (t.meta?.createdAt ?? 0) + restartDelay(t) : 0;
          if (p.now >= due) c.setDesired(t, TaskState.RUNNING);
          else p.wake = Math.min(p.wake, due);
        }
        continue;
      }
      if (!wanted(k)) continue; // the slot goes away: replicated/global shut it down
      if (!shouldRestart(t, reason, list, p.now)) continue; // it stays, ended: `service ps` shows it
      c.setDesired(t, TaskState.SHUTDOWN, reason === 'node-down' ? 'node down' : reason === 'drained' ? 'node drained' : undefined);
      if (c.global && reason !== 'failed') continue; // a global task never moves to another node
      // A paused node gets no new task of a global service or global job (SwarmKit's global orchestrator
      // shuts the ended one down, no more); one comes once the node is active again.
      if (c.global && node?.spec?.availability === NodeAvailability.PAUSE) continue;
      const delay = reason === 'failed' ? restartDelay(t) : 0;
      c.newTask(
        t.slot,
        c.global ? t.nodeId : '',
        delay > 0 ? TaskState.READY : TaskState.RUNNING,
        t.restartAttempt + (reason === 'failed' ? 1 : 0),
      );
      if (delay > 0) p.wake = Math.min(p.wake, p.now + delay);
    }
  }
}

/** Tasks left on a node that has been DOWN for ORPHAN_AFTER_MS are marked ORPHANED: nothing will report them again. */
export function orphanLostTasks(c: ServiceContext): void {
  const p = c.p;
  for (const list of c.slots.values()) {
    for (const t0 of list) {
      const t = c.latest(t0);
      if (
        c.isFresh(t) ||
        !t.nodeId ||
        isTerminal(t.status?.state) ||
        t.desiredState <= TaskState.RUNNING ||
        (t.status?.state ?? 0) < TaskState.ASSIGNED
      )
        continue;
      const n = p.nodes.get(t.nodeId);
      if (n && n.status?.state !== NodeState.DOWN) continue;
      const since = n?.meta?.updatedAt ?? 0;
      const due = Math.max(since, t.status?.timestamp ?? 0) + ORPHAN_AFTER_MS;
      if (p.now >= due) c.setStatus(t, { state: TaskState.ORPHANED, timestamp: p.now, message: 'node down: task orphaned' });
      else p.wake = Math.min(p.wake, due);
    }
  }
}
