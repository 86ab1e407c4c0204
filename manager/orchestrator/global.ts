// Global services: one current task per eligible node (READY or not yet seen
// DOWN, availability ACTIVE, constraints satisfied), its node preset on the
// task. Tasks on nodes that are drained, removed or no longer eligible are
// shut down; a node that joins, comes back or gets a matching label gets one.
// A paused node keeps the tasks it runs, as SwarmKit's global orchestrator:
// it gets no new one, no update, and a task that ends there is not restarted.
import { Node, NodeAvailability, NodeState, type ServiceSpec, TaskState } from '../../proto/gen/objects.js';
import { matchConstraint, parseConstraint } from '../scheduler/index.js';
import { CREATE_CHUNK } from './chunk.js';
import type { ServiceContext } from './context.js';
import { superviseRestarts } from './restart.js';

/** Whether a global service wants a task on this node. */
export function eligibleNode(n: Node | undefined, spec: ServiceSpec): boolean {
  if (!n || n.spec?.availability !== NodeAvailability.ACTIVE || n.status?.state === NodeState.DOWN) return false;
  try {
    return (spec.task?.placement?.constraints ?? []).every((c) => matchConstraint(n, parseConstraint(c)));
  } catch {
    return false;
  }
}

/** Whether the node is paused (PAUSE availability): its global tasks stay, nothing new goes there. */
export const pausedNode = (n: Node | undefined): boolean => n?.spec?.availability === NodeAvailability.PAUSE;

/**
 * Whether a global service keeps the task it has on this node: an eligible
 * node, or a paused one that is up and still matches the constraints (only
 * drain, DOWN, removal or a constraint stops a global task, as in SwarmKit).
 */
export function keepsGlobalTask(n: Node | undefined, spec: ServiceSpec): boolean {
  if (!pausedNode(n)) return eligibleNode(n, spec);
  return eligibleNode(Node.create({ ...n!, spec: { ...n!.spec!, availability: NodeAvailability.ACTIVE } }), spec);
}

export function reconcileGlobal(c: ServiceContext): void {
  const spec = c.spec;
  const wanted = (k: string): boolean => keepsGlobalTask(c.p.nodes.get(k), spec);
  superviseRestarts(c, wanted);
  for (const k of c.slots.keys()) {
    if (wanted(k)) continue;
    const n = c.p.nodes.get(k);
    const why =
      !n || n.status?.state === NodeState.DOWN
        ? 'node down'
        : n.spec?.availability === NodeAvailability.DRAIN
          ? 'node drained'
          : 'node no longer eligible';
    for (const t of c.current(k)) c.setDesired(t, TaskState.SHUTDOWN, why);
  }
  for (const [id, n] of c.p.nodes) {
    if (!eligibleNode(n, spec) || c.current(id).length) continue;
    if (c.p.created >= CREATE_CHUNK) {
      c.p.more.push(c.serviceId);
      break;
    }
    c.newTask(0, id, TaskState.RUNNING, 0);
  }
}
