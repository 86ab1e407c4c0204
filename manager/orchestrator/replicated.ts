// Replicated services: one current task per slot, `replicas` slots. Missing
// slots get a task (the lowest free slot numbers); on scale-down the slots to
// drop are chosen as SwarmKit does: tasks not running first, then those on the
// nodes running most of the service's tasks, then the highest slot.
import { TaskState } from '../../proto/gen/objects.js';
import { CREATE_CHUNK } from './chunk.js';
import type { ServiceContext } from './context.js';
import { superviseRestarts } from './restart.js';

/** Restarts, scale up and scale down of one replicated service. */
export function reconcileReplicated(c: ServiceContext): void {
  const want = c.spec.replicated?.replicas ?? 0;
  const live = [...c.slots.keys()].filter((k) => c.current(k).length > 0);
  let keep = new Set(live);
  if (live.length > want) keep = chooseSurvivors(c, live, want);
  superviseRestarts(c, (k) => keep.has(k));
  for (const k of live) if (!keep.has(k)) for (const t of c.current(k)) c.setDesired(t, TaskState.SHUTDOWN, 'service scaled down');
  // Missing slots: the lowest numbers not in use.
  let missing = want - keep.size;
  for (let s = 1; missing > 0; s++) {
    if (keep.has(String(s))) continue;
    if (c.p.created >= CREATE_CHUNK) {
      c.p.more.push(c.serviceId);
      break;
    }
    c.newTask(s, '', TaskState.RUNNING, 0);
    keep.add(String(s));
    missing--;
  }
}

function chooseSurvivors(c: ServiceContext, live: string[], want: number): Set<string> {
  const load = new Map<string, number>();
  const info = live.map((k) => {
    const ts = c.current(k);
    const running = ts.some((t) => t.status?.state === TaskState.RUNNING);
    const node = ts.find((t) => t.nodeId)?.nodeId ?? '';
    if (node) load.set(node, (load.get(node) ?? 0) + 1);
    return { k, running, node, slot: Number(k) };
  });
  if (want <= 0) return new Set();
  const keep = new Set(live);
  let drop = live.length - want;
  // Not running first (highest slot first among them).
  for (const x of [...info].filter((x) => !x.running).sort((a, b) => b.slot - a.slot)) {
    if (drop === 0) break;
    keep.delete(x.k);
    if (x.node) load.set(x.node, load.get(x.node)! - 1);
    drop--;
  }
  // Then, one at a time, the highest slot on the most loaded node.
  while (drop > 0) {
    let best: (typeof info)[number] | undefined;
    for (const x of info) {
      if (!keep.has(x.k)) continue;
      const lx = load.get(x.node) ?? 0;
      const lb = best ? (load.get(best.node) ?? 0) : -1;
      if (!best || lx > lb || (lx === lb && x.slot > best.slot)) best = x;
    }
    keep.delete(best!.k);
    if (best!.node) load.set(best!.node, load.get(best!.node)! - 1);
    drop--;
  }
  return keep;
}
