// The scheduler's pure core: from the nodes, the tasks already placed and the
// tasks waiting, decide where each waiting task goes, or say why it cannot
// go anywhere. Filters first (node ready and active, constraints, reserved
// resources (CPU, memory, generic resources such as gpu=2), platform, max replicas per node, host-mode ports already taken on
// the node, a global task's own node), then
// spread: the node with the fewest tasks of the service, then the fewest tasks
// overall, after balancing over placement-preference label values. Tasks of
// one service share one heap of candidate nodes, so placing T tasks on N nodes
// costs about T log N.
import { type Node, NodeAvailability, NodeState, type Task, TaskState } from '../../proto/gen/objects.js';
import { type Constraint, matchConstraint, parseConstraint, parseSpreadPreference } from './constraint.js';
import { protocolName } from '../../lib/ports.js';

export interface ScheduleResult {
  /** task id → node id */
  assignments: Map<string, string>;
  /** task id → why no node fits (`no suitable node (...)`) */
  unschedulable: Map<string, string>;
}

interface NodeLoad {
  node: Node;
  total: number;
  byService: Map<string, number>;
  cpu: number;
  mem: number;
  /** Generic resources not yet reserved, by kind (what the node advertises minus its tasks' reservations). */
  generic: Map<string, number>;
  /** Ports published in host mode by the tasks on the node (`tcp/8080`). */
  hostPorts: Set<string>;
}

/** The host-mode ports a task publishes on its node, as `protocol/port`. */
function hostPortsOf(t: Task): string[] {
  return t.hostPorts.filter((p) => p.publishedPort > 0).map((p) => `${protocolName(p.protocol)}/${p.publishedPort}`);
}

/** Tasks that hold a place on their node (count for spread and reservations). */
export function holdsNode(t: Task): boolean {
  return (
    !!t.nodeId &&
    t.desiredState <= TaskState.RUNNING &&
    (t.status?.state ?? 0) >= TaskState.ASSIGNED &&
    (t.status?.state ?? 0) <= TaskState.RUNNING
  );
}

/** A binary min-heap over nodes by (tasks of the service, tasks overall, id). */
class NodeHeap {
  private a: NodeLoad[] = [];
  constructor(private readonly svc: string) {}
  private less(x: NodeLoad, y: NodeLoad): boolean {
    const sx = x.byService.get(this.svc) ?? 0;
    const sy = y.byService.get(this.svc) ?? 0;
    if (sx !== sy) return sx < sy;
    if (x.total !== y.total) return x.total < y.total;
    return x.node.meta.id < y.node.meta.id;
  }
  get size(): number {
    return this.a.length;
  }
  push(n: NodeLoad): void {
    const a = this.a;
    a.push(n);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): NodeLoad | undefined {
    const a = this.a;
    if (!a.length) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

type Verdict = { ok: true } | { ok: false; why: string };

function nodeName(n: Node): string {
  return n.description?.hostname || n.spec?.name || n.meta.id.slice(0, 12);
}

/** Why a filter excluded nodes, in the order the filters run (the explanation lists them so). */
export const NOT_AVAILABLE = 'not available for new tasks';
const rank = (why: string): number =>
  why === NOT_AVAILABLE
    ? 0
    : why.startsWith('not the node')
      ? 1
      : why.startsWith('constraint')
        ? 2
        : why.startsWith('platform')
          ? 3
          : why.startsWith('insufficient')
            ? 4
            : 5;

/**
 * The scheduler's message for a task no node takes, naming each filter and how
 * many nodes it excluded, with their hostnames when there are 5 or fewer:
 * `no suitable node (2 nodes not available for new tasks (h1, h2); 1 node: constraint node.labels.zone==east not satisfied (h3))`.
 */
export function explainUnschedulable(excluded: ReadonlyMap<string, readonly string[]>): string {
  const parts = [...excluded]
    .filter(([, nodes]) => nodes.length > 0)
    .sort((a, b) => rank(a[0]) - rank(b[0]))
    .map(([why, nodes]) => {
      const names = nodes.length <= 5 ? ` (${[...nodes].sort().join(', ')})` : '';
      const count = `${nodes.length} node${nodes.length === 1 ? '' : 's'}`;
      return why === NOT_AVAILABLE ? `${count} ${why}${names}` : `${count}: ${why}${names}`;
    });
  return `no suitable node (${parts.join('; ') || 'no nodes in the cluster'})`;
}

/**
 * Places `pending` tasks: `placed` are the tasks already on nodes (a list, or
 * lists by node id); only those that hold their node (holdsNode) count.
 */
export function schedule(
  nodes: readonly Node[],
  placed: ReadonlyMap<string, readonly Task[]> | readonly Task[],
  pending: readonly Task[],
): ScheduleResult {
  const loads = new Map<string, NodeLoad>();
  for (const n of nodes) {
    const res = n.description?.resources;
    loads.set(n.meta.id, {
      node: n,
      total: 0,
      byService: new Map(),
      cpu: res?.nanoCpus ?? 0,
      mem: res?.memoryBytes ?? 0,
      generic: new Map((res?.generic ?? []).map((g) => [g.kind, g.value])),
      hostPorts: new Set(),
    });
  }
  const all: Iterable<Task> = Array.isArray(placed)
    ? (placed as readonly Task[])
    : [...(placed as ReadonlyMap<string, readonly Task[]>).values()].flat();
  for (const t of all) {
    const l = loads.get(t.nodeId);
    if (!l || !holdsNode(t)) continue;
    l.total++;
    l.byService.set(t.serviceId, (l.byService.get(t.serviceId) ?? 0) + 1);
    const r = t.spec?.resources?.reservations;
    l.cpu -= r?.nanoCpus ?? 0;
    l.mem -= r?.memoryBytes ?? 0;
    for (const g of r?.generic ?? []) l.generic.set(g.kind, (l.generic.get(g.kind) ?? 0) - g.value);
    for (const p of hostPortsOf(t)) l.hostPorts.add(p);
  }
  const out: ScheduleResult = { assignments: new Map(), unschedulable: new Map() };
  // Tasks of one service with one spec share their filtering and heap.
  const groups = new Map<string, Task[]>();
  for (const t of pending) {
    const key = `${t.serviceId}\0${t.serviceVersion}\0${t.nodeId}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(t);
  }
  for (const group of groups.values()) scheduleGroup(group, loads, out);
  return out;
}

function scheduleGroup(group: Task[], loads: Map<string, NodeLoad>, out: ScheduleResult): void {
  const t0 = group[0]!;
  const svc = t0.serviceId;
  const placement = t0.spec?.placement;
  let constraints: Constraint[] = [];
  try {
    constraints = (placement?.constraints ?? []).map((c) => parseConstraint(c));
  } catch (e) {
    for (const t of group) out.unschedulable.set(t.meta.id, `no suitable node (${(e as Error).message})`);
    return;
  }
  const rsv = t0.spec?.resources?.reservations;
  const needCpu = rsv?.nanoCpus ?? 0;
  const needMem = rsv?.memoryBytes ?? 0;
  const needGeneric = (rsv?.generic ?? []).filter((g) => g.value > 0);
  const maxReplicas = placement?.maxReplicas ?? 0;
  const platforms = placement?.platforms ?? [];
  const hostPorts = hostPortsOf(t0);
  const verdict = (l: NodeLoad): Verdict => {
    const n = l.node;
    if (t0.nodeId && n.meta.id !== t0.nodeId) return { ok: false, why: 'not the node of this global task' };
    if (n.status?.state !== NodeState.READY || n.spec?.availability !== NodeAvailability.ACTIVE) return { ok: false, why: NOT_AVAILABLE };
    for (const c of constraints)
      if (!matchConstraint(n, c)) return { ok: false, why: `constraint ${c.key}${c.op}${c.value} not satisfied` };
    if (
      platforms.length &&
      !platforms.some(
        (p) =>
          (!p.os || sameWord(p.os, n.description?.platform?.os)) &&
          (!p.architecture || goArchOf(p.architecture) === goArchOf(n.description?.platform?.architecture ?? '')),
      )
    ) {
      return { ok: false, why: 'platform not supported' };
    }
    if ((needCpu && l.cpu < needCpu) || (needMem && l.mem < needMem))
      return {
        ok: false,
        why: `insufficient resources (needs ${[needCpu ? `${needCpu / 1e9} CPU` : '', needMem ? `${Math.round(needMem / 2 ** 20)} MiB memory` : ''].filter(Boolean).join(' and ')})`,
      };
    const short = needGeneric.filter((g) => (l.generic.get(g.kind) ?? 0) < g.value).map((g) => g.kind);
    if (short.length) return { ok: false, why: `insufficient generic resources ${short.join(', ')}` };
    if (maxReplicas && (l.byService.get(svc) ?? 0) >= maxReplicas)
      return { ok: false, why: `max replicas per node (${maxReplicas}) reached` };
    const taken = hostPorts.find((p) => l.hostPorts.has(p));
    if (taken) return { ok: false, why: `host-mode port ${taken} already published on the node` };
    return { ok: true };
  };
  const candidates: NodeLoad[] = [];
  const excluded = new Map<string, string[]>();
  for (const l of loads.values()) {
    const v = verdict(l);
    if (v.ok) candidates.push(l);
    else {
      let e = excluded.get(v.why);
      if (!e) excluded.set(v.why, (e = []));
      e.push(nodeName(l.node));
    }
  }
  const prefs = (placement?.preferences ?? [])
    .map((p) => {
      try {
        return parseSpreadPreference(p.spread);
      } catch {
        return '';
      }
    })
    .filter(Boolean);
  // Placement preferences: a tree of label values, one level per preference (a missing label is
  // its own value); each task walks down to the subtree holding the fewest of the service's tasks.
  const root = newBranch();
  for (const l of candidates) {
    let b = root;
    const path = [root];
    for (const k of prefs) {
      const v = l.node.spec?.labels?.[k] ?? '';
      let next = b.children.get(v);
      if (!next) b.children.set(v, (next = newBranch()));
      b = next;
      path.push(b);
    }
    if (!b.heap) b.heap = new NodeHeap(svc);
    b.heap.push(l);
    const n = l.byService.get(svc) ?? 0;
    for (const x of path) {
      x.size++;
      x.count += n;
    }
  }
  for (const t of group) {
    let chosen: NodeLoad | undefined;
    let path: Branch[] = [];
    while (root.size > 0) {
      path = [root];
      let b = root;
      while (!b.heap) {
        let best: Branch | undefined;
        for (const c of b.children.values()) if (c.size > 0 && (!best || c.count < best.count)) best = c;
        b = best!;
        path.push(b);
      }
      const l = b.heap.pop()!;
      const v = verdict(l);
      if (v.ok) {
        chosen = l;
        break;
      }
      // It filled up (resources, max replicas) while placing this group: it leaves the tree.
      for (const x of path) x.size--;
      let e = excluded.get(v.why);
      if (!e) excluded.set(v.why, (e = []));
      e.push(nodeName(l.node));
    }
    if (!chosen) {
      out.unschedulable.set(t.meta.id, explainUnschedulable(excluded));
      continue;
    }
    out.assignments.set(t.meta.id, chosen.node.meta.id);
    // It was popped: back into its heap with its new load.
    const leaf = path[path.length - 1]!;
    chosen.total++;
    chosen.byService.set(svc, (chosen.byService.get(svc) ?? 0) + 1);
    chosen.cpu -= needCpu;
    chosen.mem -= needMem;
    for (const g of needGeneric) chosen.generic.set(g.kind, (chosen.generic.get(g.kind) ?? 0) - g.value);
    for (const p of hostPorts) chosen.hostPorts.add(p);
    leaf.heap!.push(chosen);
    for (const x of path) x.count++;
  }
}

interface Branch {
  /** Tasks of the service on the nodes below. */
  count: number;
  /** Candidate nodes below. */
  size: number;
  children: Map<string, Branch>;
  heap: NodeHeap | null;
}

function newBranch(): Branch {
  return { count: 0, size: 0, children: new Map(), heap: null };
}

const sameWord = (a: string, b: string | undefined): boolean => a.toLowerCase() === (b ?? '').toLowerCase();

/**
 * An architecture in Go's words, as SwarmKit's platform filter compares them: the docker CLI pins
 * `amd64`/`arm64` (from the registry) while nodes report the kernel's `x86_64`/`aarch64`.
 */
export function goArchOf(arch: string): string {
  const a = arch.toLowerCase();
  return a === 'x86_64' ? 'amd64' : a === 'aarch64' ? 'arm64' : a;
}
