// The task reaper: keeps at most the cluster's taskHistoryLimit old tasks per
// slot (per node for a global service), deleting the oldest ended ones, and
// deletes tasks marked REMOVE once nothing runs them any more.
import { type Node, NodeState, type Task, TaskState } from '../../proto/gen/objects.js';
import { isCurrent, isTerminal, type ServiceContext } from './context.js';

/** Old tasks of one slot to delete: no longer wanted, ended (or never placed), beyond the newest `limit`. */
export function reapable(slotTasks: readonly Task[], limit: number, nodes?: Map<string, Node>): Task[] {
  const gone = (t: Task): boolean => {
    const st = t.status?.state ?? 0;
    if (isTerminal(st) || st < TaskState.ASSIGNED) return true;
    const n = nodes?.get(t.nodeId);
    return nodes !== undefined && (!n || n.status?.state === NodeState.DOWN);
  };
  const old = slotTasks
    .filter((t) => !isCurrent(t) && t.desiredState !== TaskState.REMOVE)
    .sort((a, b) => (b.meta?.createdAt ?? 0) - (a.meta?.createdAt ?? 0));
  return old.slice(Math.max(0, limit)).filter(gone);
}

/** A task marked for removal can go once nothing runs it: it ended, was never assigned, or its node is DOWN or gone. */
export function removable(t: Task, node: Node | undefined): boolean {
  if (t.desiredState < TaskState.REMOVE) return false;
  const st = t.status?.state ?? 0;
  return isTerminal(st) || st < TaskState.ASSIGNED || !node || node.status?.state === NodeState.DOWN;
}

/** History beyond the limit, per slot of a live service; a negative limit keeps all of it (SwarmKit). */
export function reapHistory(c: ServiceContext): void {
  if (c.p.history < 0) return;
  const limit = c.p.history;
  for (const list of c.slots.values()) {
    // A slot of at most `limit` tasks has no history beyond it: the common case, skipped without allocating.
    if (list.length <= limit) continue;
    for (const t of reapable(
      list.filter((x) => !c.isFresh(x)).map((x) => c.latest(x)),
      c.p.history,
      c.p.nodes,
    ))
      c.delete(t);
  }
}

/** A deleted service: every task marked REMOVE, and deleted once removable. */
export function removeServiceTasks(c: ServiceContext): void {
  for (const list of c.slots.values()) {
    for (const t of list) {
      if (t.desiredState < TaskState.REMOVE) c.setDesired(t, TaskState.REMOVE);
      else if (removable(t, c.p.nodes.get(t.nodeId))) c.delete(t);
    }
  }
}
