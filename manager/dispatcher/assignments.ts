// What each connected node is told to run. A node gets its whole set of
// tasks when its session opens, then only the changes, one message per store
// transaction that touched its tasks: a task that became ASSIGNED to it, a
// desired-state change, a task deleted or moved away. The agent's own status
// reports are not echoed back.
import type pino from 'pino';
import type { MemoryStore, StoreEvent, Subscription, Watch } from '../store/index.js';
import { type Task, TaskState } from '../../proto/gen/objects.js';
import type { Assignments } from '../../proto/gen/control.js';

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

interface Pending {
  tasks: Map<string, Task>;
  removed: Set<string>;
}

export class AssignmentFeed {
  private readonly nodes = new Map<string, SendAssignments>();
  private pending = new Map<string, Pending>();
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
      }
      if (this.nodes.size === 0) this.unsubscribe();
    };
  }

  private full(nodeId: string): Assignments {
    const tasks = this.store.view((tx) => tx.tasks.by('node', nodeId)).filter((t) => assignedTo(t, nodeId));
    return { full: true, tasks, removedTaskIds: [] };
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
    if (!p) this.pending.set(nodeId, (p = { tasks: new Map(), removed: new Set() }));
    return p;
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
      if (assignedTo(t, t.nodeId)) {
        const p = this.slot(t.nodeId);
        p?.tasks.delete(id);
        p?.removed.add(id);
      }
      return;
    }
    const old = e.kind === 'update' ? e.old : undefined;
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
      if (!send || (p.tasks.size === 0 && p.removed.size === 0)) continue;
      this.deliver(nodeId, send, () => ({ full: false, tasks: [...p.tasks.values()], removedTaskIds: [...p.removed] }));
    }
  }

  close(): void {
    this.unsubscribe();
    this.nodes.clear();
  }
}
