// What each connected node is told to run. A node gets its whole set of
// tasks when its session opens, then only the changes, one message per store
// transaction that touched its tasks: a task that became ASSIGNED to it, a
// desired-state change, a task deleted or moved away. The agent's own status
// reports are not echoed back.
//
// With the tasks go the secrets and configs they use, as SwarmKit's
// assignment set sends them: each node's set counts, for every secret and
// config id, the node's tasks that reference it and are between ASSIGNED and
// RUNNING. The first such task sends the whole object (value included), the
// last one to end or leave sends its removal, so a value reaches only the
// nodes that run a task using it. Values are never logged, ids at most.
import type pino from 'pino';
import type { MemoryStore, StoreEvent, Subscription, Watch } from '../store/index.js';
import { type Config, type Secret, type Task, TaskState } from '../../proto/gen/objects.js';
import type { AssignedDependencies, Assignments } from '../../proto/gen/control.js';

export type SendAssignments = (a: Assignments) => void;

/** A task a node must know about: placed on it and past the scheduler. */
export function assignedTo(t: Task | undefined, nodeId: string): boolean {
  return !!t && t.nodeId === nodeId && (t.status?.state ?? TaskState.NEW) >= TaskState.ASSIGNED;
}

/**
 * Whether an update changes what the agent must do (its status reports are not such a change).
 * A task's spec never changes after creation (an update makes new tasks), so it is not compared.
 */
function changesOrders(old: Task, next: Task): boolean {
  return (
    old.desiredState !== next.desiredState ||
    old.serviceVersion !== next.serviceVersion ||
    JSON.stringify(old.networks) !== JSON.stringify(next.networks)
  );
}

/**
 * Whether a task on its node holds the secrets and configs it references:
 * from its assignment until it has run (ASSIGNED..RUNNING), as in SwarmKit.
 * A task that has ended keeps its container until it is removed, but the
 * container's files went with its end (agent/runtime/files.ts).
 */
export function holdsDependencies(t: Task): boolean {
  const s = t.status?.state ?? TaskState.NEW;
  return s >= TaskState.ASSIGNED && s <= TaskState.RUNNING;
}

/** The secret and config ids a task's spec references, each once. */
export function taskDependencies(t: Task): { secrets: string[]; configs: string[] } {
  const c = t.spec?.container;
  return {
    secrets: [...new Set((c?.secrets ?? []).map((r) => r.secretId).filter(Boolean))],
    configs: [...new Set((c?.configs ?? []).map((r) => r.configId).filter(Boolean))],
  };
}

type Kind = 'secrets' | 'configs';

/** One node's secrets and configs, each counted by the tasks that hold it. */
class NodeDependencies {
  private readonly byTask = new Map<string, { secrets: string[]; configs: string[] }>();
  readonly counts: Record<Kind, Map<string, number>> = { secrets: new Map(), configs: new Map() };

  /** The task holds its dependencies from now on (idempotent); calls `added` for each id it is the first to need. */
  hold(t: Task, added: (kind: Kind, id: string) => void): void {
    const c = t.spec?.container;
    // Most tasks use none: no work for them on every status report.
    if (!c?.secrets?.length && !c?.configs?.length) return;
    const id = t.meta.id;
    if (this.byTask.has(id)) return;
    const deps = taskDependencies(t);
    if (deps.secrets.length === 0 && deps.configs.length === 0) return;
    this.byTask.set(id, deps);
    for (const kind of ['secrets', 'configs'] as const) {
      const m = this.counts[kind];
      for (const d of deps[kind]) {
        const n = m.get(d) ?? 0;
        m.set(d, n + 1);
        if (n === 0) added(kind, d);
      }
    }
  }

  /** The task holds nothing any more (idempotent); calls `removed` for each id no other task of the node needs. */
  release(taskId: string, removed: (kind: Kind, id: string) => void): void {
    const deps = this.byTask.get(taskId);
    if (!deps) return;
    this.byTask.delete(taskId);
    for (const kind of ['secrets', 'configs'] as const) {
      const m = this.counts[kind];
      for (const d of deps[kind]) {
        const n = (m.get(d) ?? 1) - 1;
        if (n > 0) m.set(d, n);
        else {
          m.delete(d);
          removed(kind, d);
        }
      }
    }
  }
}

interface Pending {
  tasks: Map<string, Task>;
  removed: Set<string>;
  /** Dependencies the node now needs (sent whole), and those it no longer needs. */
  add: Record<Kind, Set<string>>;
  drop: Record<Kind, Set<string>>;
}

export class AssignmentFeed {
  private readonly nodes = new Map<string, SendAssignments>();
  private pending = new Map<string, Pending>();
  /** Each attached node's secrets and configs, reference-counted by its tasks. */
  private readonly deps = new Map<string, NodeDependencies>();
  private sub: Subscription | null = null;
  /** Matches nothing: it ends only when the store closes its watchers (a snapshot replaced the state). */
  private resetWatch: Watch | null = null;
  private readonly log: pino.Logger;

  constructor(
    private readonly store: MemoryStore,
    logger: pino.Logger,
  ) {
    this.log = logger.child({ component: 'assignments' });
  }

  /** The node's session is open: it gets its full set now and changes from then on. Returns the detach function. */
  attach(nodeId: string, send: SendAssignments): () => void {
    this.ensureSubscribed();
    this.nodes.set(nodeId, send);
    this.pending.delete(nodeId);
    send(this.full(nodeId));
    return () => {
      if (this.nodes.get(nodeId) === send) {
        this.nodes.delete(nodeId);
        this.pending.delete(nodeId);
        this.deps.delete(nodeId);
      }
      if (this.nodes.size === 0) this.unsubscribe();
    };
  }

  /** The node's whole set; its dependency counts start again from it. */
  private full(nodeId: string): Assignments {
    const tasks = this.store.view((tx) => tx.tasks.by('node', nodeId)).filter((t) => assignedTo(t, nodeId));
    const nd = new NodeDependencies();
    const ids: Record<Kind, string[]> = { secrets: [], configs: [] };
    for (const t of tasks) if (holdsDependencies(t)) nd.hold(t, (kind, id) => ids[kind].push(id));
    this.deps.set(nodeId, nd);
    const a: Assignments = { full: true, tasks, removedTaskIds: [] };
    if (ids.secrets.length || ids.configs.length) a.dependencies = this.objects(nodeId, ids, { secrets: [], configs: [] });
    return a;
  }

  /** The objects to send for `add` (read now: secrets and configs never change) and the removals. */
  private objects(nodeId: string, add: Record<Kind, Iterable<string>>, drop: Record<Kind, Iterable<string>>): AssignedDependencies {
    const missing: string[] = [];
    const { secrets, configs } = this.store.view((tx) => ({
      secrets: [...add.secrets].flatMap((id): Secret[] => {
        const s = tx.secrets.get(id);
        if (!s) missing.push(`secret ${id}`);
        return s ? [s] : [];
      }),
      configs: [...add.configs].flatMap((id): Config[] => {
        const c = tx.configs.get(id);
        if (!c) missing.push(`config ${id}`);
        return c ? [c] : [];
      }),
    }));
    // The node's task then waits for it and fails saying which (agent/worker/task.ts).
    if (missing.length)
      this.log.warn({ node: nodeId, missing }, 'a task on the node references a secret or config that is not in the store');
    return { secrets, configs, removedSecretIds: [...drop.secrets], removedConfigIds: [...drop.configs] };
  }

  private ensureSubscribed(): void {
    if (this.sub && !this.sub.closed) return;
    const wasBroken = this.sub !== null;
    this.sub = this.store.subscribe((e) => this.onEvent(e), { tables: ['tasks'], commits: 'relevant' });
    this.watchForReset();
    if (wasBroken) {
      // The feed broke (a store reset): every node gets its whole set again.
      this.log.warn('task feed restarted: sending every node its full assignment set');
      for (const [n, send] of this.nodes) this.deliver(n, send, () => this.full(n));
    }
  }

  /**
   * A store reset closes the subscription without a word: without this, every attached node
   * would stop hearing of its tasks (a shutdown, a removal) until some node attached again.
   */
  private watchForReset(): void {
    if (this.resetWatch && !this.resetWatch.closed) return;
    const w = this.store.watch({ tables: ['tasks'], match: () => false, commits: 'none' });
    this.resetWatch = w;
    void (async () => {
      try {
        for await (const _ of w) void _;
      } catch {
        /* WatchResetError: handled below, like any end we did not ask for */
      }
      if (this.resetWatch !== w) return;
      this.resetWatch = null;
      if (this.nodes.size > 0) this.ensureSubscribed();
    })();
  }

  private unsubscribe(): void {
    this.sub?.close();
    this.sub = null;
    const w = this.resetWatch;
    this.resetWatch = null;
    w?.close();
    this.pending.clear();
  }

  /** One node's message; a send that throws costs that node its message, never the others their feed. */
  private deliver(nodeId: string, send: SendAssignments, make: () => Assignments): void {
    try {
      send(make());
    } catch (err) {
      this.log.error({ err, node: nodeId }, 'sending assignments failed');
    }
  }

  private slot(nodeId: string): Pending | undefined {
    if (!this.nodes.has(nodeId)) return undefined;
    let p = this.pending.get(nodeId);
    if (!p)
      this.pending.set(
        nodeId,
        (p = {
          tasks: new Map(),
          removed: new Set(),
          add: { secrets: new Set(), configs: new Set() },
          drop: { secrets: new Set(), configs: new Set() },
        }),
      );
    return p;
  }

  /** Counts the task's dependencies on its node as they stand after this event. */
  private track(nodeId: string, t: Task | undefined, taskId: string): void {
    const nd = this.deps.get(nodeId);
    if (!nd) return;
    const added = (kind: Kind, id: string): void => {
      const p = this.slot(nodeId);
      p?.drop[kind].delete(id);
      p?.add[kind].add(id);
    };
    const removed = (kind: Kind, id: string): void => {
      const p = this.slot(nodeId);
      p?.add[kind].delete(id);
      p?.drop[kind].add(id);
    };
    if (t && assignedTo(t, nodeId) && holdsDependencies(t)) nd.hold(t, added);
    else nd.release(taskId, removed);
  }

  private onEvent(e: StoreEvent): void {
    if (e.kind === 'commit') {
      this.flush();
      return;
    }
    if (e.table !== 'tasks') return;
    const t = e.object;
    const id = t.meta.id;
    if (e.kind === 'delete') {
      this.track(t.nodeId, undefined, id);
      if (assignedTo(t, t.nodeId)) {
        const p = this.slot(t.nodeId);
        p?.tasks.delete(id);
        p?.removed.add(id);
      }
      return;
    }
    const old = e.kind === 'update' ? e.old : undefined;
    if (old && old.nodeId !== t.nodeId) this.track(old.nodeId, undefined, id);
    // Before the filter below: a status report that ends the task (past RUNNING) is no order, but it frees the task's secrets.
    this.track(t.nodeId, t, id);
    if (old && old.nodeId !== t.nodeId && assignedTo(old, old.nodeId)) {
      const p = this.slot(old.nodeId);
      p?.tasks.delete(id);
      p?.removed.add(id);
    }
    if (!assignedTo(t, t.nodeId)) return;
    if (old && assignedTo(old, t.nodeId) && !changesOrders(old, t)) return;
    const p = this.slot(t.nodeId);
    if (!p) return;
    p.removed.delete(id);
    p.tasks.set(id, t);
  }

  private flush(): void {
    const pending = this.pending;
    this.pending = new Map();
    for (const [nodeId, p] of pending) {
      const send = this.nodes.get(nodeId);
      const deps = p.add.secrets.size + p.add.configs.size + p.drop.secrets.size + p.drop.configs.size > 0;
      if (!send || (p.tasks.size === 0 && p.removed.size === 0 && !deps)) continue;
      this.deliver(nodeId, send, () => {
        const a: Assignments = { full: false, tasks: [...p.tasks.values()], removedTaskIds: [...p.removed] };
        if (deps) a.dependencies = this.objects(nodeId, p.add, p.drop);
        return a;
      });
    }
  }

  /** The secret and config ids a node holds now (tests, diagnostics). */
  held(nodeId: string): { secrets: string[]; configs: string[] } {
    const nd = this.deps.get(nodeId);
    return { secrets: [...(nd?.counts.secrets.keys() ?? [])].sort(), configs: [...(nd?.counts.configs.keys() ?? [])].sort() };
  }

  close(): void {
    this.unsubscribe();
    this.nodes.clear();
    this.deps.clear();
  }
}
