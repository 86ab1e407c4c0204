// What every orchestration phase shares while it reconciles one service inside
// the pass's transaction: the service's tasks grouped by slot (by node for a
// global service), the writes made so far (a task written twice is written
// once, in its latest form), and the clock.
import { newId } from '../../lib/ids.js';
import { clusterAttachments } from '../../spec/predefined-networks.js';
import { actionBytes, encodedSize, fitsAlone, type TableName, type Tables, type WriteTx } from '../store/index.js';
import { Meta, type Node, PublishMode, type Service, type ServiceSpec, Task, TaskState } from '../../proto/gen/objects.js';

export { type Clock, systemClock } from '../reconciler.js';

export const DEFAULT_HISTORY = 5;

/** A removal's share of a transaction: its action holds the id and version only. */
const DELETE_BYTES = 64;

export const isTerminal = (s: TaskState | undefined): boolean => (s ?? 0) > TaskState.RUNNING;
/**
 * The task should run (or get ready to), or is a job's task that completed
 * (desired COMPLETE, as SwarmKit's job orchestrators set it): the "current"
 * task of its slot. Only jobs' tasks are ever desired COMPLETE.
 */
export const isCurrent = (t: Task): boolean => t.desiredState <= TaskState.COMPLETE;
export const isGlobal = (s: ServiceSpec | null | undefined): boolean => s?.global !== null && s?.global !== undefined;
/** One task per node, the node preset on the task: global services and global jobs. */
const perNode = (s: ServiceSpec | null | undefined): boolean => isGlobal(s) || (s?.globalJob !== null && s?.globalJob !== undefined);

/** Whether a service's tasks need the allocator (network addresses, or ports published through the mesh). */
export function needsAllocation(spec: ServiceSpec | null | undefined): boolean {
  return clusterAttachments(spec?.task).length > 0 || (spec?.endpoint?.ports?.length ?? 0) > 0;
}

/** One orchestration pass (one transaction) over every service that changed. */
export interface Pass {
  now: number;
  nodes: Map<string, Node>;
  /** Ended tasks kept per slot (the cluster's setting); negative: all. */
  history: number;
  /** Tasks created so far in this pass (all services). */
  created: number;
  /** Services that still need tasks or writes after this pass's share was used up. */
  more: string[];
  /** Bytes this pass's transaction holds so far, and the most it may (see BATCH_BYTES). */
  bytes: number;
  budget: number;
  /** Writes left out because the object alone is over the store's cap: never retried as they are. */
  oversized: Array<{ serviceId: string; table: TableName; id: string; bytes: number }>;
  /** Earliest time something becomes due (restart delay, update delay or monitor). */
  wake: number;
}

/** One service's tasks and pending writes within a pass. */
export class ServiceContext {
  readonly global: boolean;
  /** slot number (global: node id) → every task of it, newest last. */
  readonly slots = new Map<string, Task[]>();
  private readonly writes = new Map<string, Task>();
  private readonly fresh = new Map<string, Task>();
  private service: Service | null = null;

  constructor(
    readonly tx: WriteTx,
    readonly serviceId: string,
    readonly svc: Service | undefined,
    tasks: readonly Task[],
    readonly p: Pass,
  ) {
    this.global = perNode(svc?.spec);
    for (const t of tasks) this.addToSlot(t);
  }

  get spec(): ServiceSpec {
    return this.svc!.spec;
  }

  key(t: Task): string {
    return this.global ? t.nodeId : String(t.slot);
  }

  private addToSlot(t: Task): void {
    const k = this.key(t);
    let l = this.slots.get(k);
    if (!l) this.slots.set(k, (l = []));
    l.push(t);
  }

  isFresh(t: Task): boolean {
    return this.fresh.has(t.meta.id);
  }

  /** The task as this pass last wrote it. */
  latest(t: Task): Task {
    const id = t.meta.id;
    return this.fresh.get(id) ?? this.writes.get(id) ?? t;
  }

  /** Current tasks of a slot (desired ≤ RUNNING, or a job's COMPLETE), as last written. */
  current(k: string): Task[] {
    const l = this.slots.get(k);
    if (!l) return [];
    // Called for every slot in every phase: no intermediate arrays.
    const out: Task[] = [];
    for (const t of l) {
      const x = this.latest(t);
      if (isCurrent(x)) out.push(x);
    }
    return out;
  }

  private put(t: Task): void {
    (this.fresh.has(t.meta.id) ? this.fresh : this.writes).set(t.meta.id, t);
  }

  /** Raises a task's desired state (READY → RUNNING is the one allowed step that is not up). */
  setDesired(t: Task, d: TaskState, message?: string): void {
    const cur = this.latest(t);
    if (cur.desiredState >= d && !(d === TaskState.RUNNING && cur.desiredState === TaskState.READY)) return;
    this.put(
      Task.create({
        ...cur,
        desiredState: d,
        status: message && !isTerminal(cur.status?.state) ? { ...cur.status, message } : cur.status,
      }),
    );
  }

  /** Rewrites a task's observed status (only for states no agent reports any more, e.g. ORPHANED). */
  setStatus(t: Task, status: Partial<NonNullable<Task['status']>>): void {
    const cur = this.latest(t);
    this.put(Task.create({ ...cur, status: { ...cur.status, ...status } }));
  }

  /** A new task of this service's current spec, state NEW (the allocator takes it from there). */
  newTask(slot: number, nodeId: string, desired: TaskState, restartAttempt: number): Task {
    const svc = this.svc!;
    const now = this.p.now;
    const t = Task.create({
      meta: Meta.create({ id: newId(), createdAt: now, updatedAt: now }),
      serviceId: this.serviceId,
      slot,
      nodeId,
      desiredState: desired,
      // A task with nothing to allocate (no networks, no published ports) starts PENDING: the
      // allocator's NEW → PENDING write would change nothing else, and a third of the store
      // writes of a big scale-up went to it. Tasks that need addresses start NEW, for the allocator.
      status: (needsAllocation(svc.spec)
        ? { state: TaskState.NEW, timestamp: now, message: 'created' }
        : { state: TaskState.PENDING, timestamp: now, message: 'pending task scheduling' }) as Task['status'],
      spec: svc.spec.task,
      serviceVersion: svc.meta.version,
      serviceName: svc.spec.name,
      serviceLabels: { ...svc.spec.labels },
      restartAttempt,
      jobIteration: svc.jobStatus?.jobIteration ?? 0,
      hostPorts: (svc.spec.endpoint?.ports ?? []).filter((p) => p.publishMode === PublishMode.HOST),
    });
    this.fresh.set(t.meta.id, t);
    this.p.created++;
    this.addToSlot(t);
    return t;
  }

  /** Rewrites the service (its update status, or its spec for a rollback); written before its tasks. */
  updateService(s: Service): void {
    this.service = s;
  }

  /** Deletes a task read from the store (and forgets any write to it). */
  delete(t: Task): void {
    this.writes.delete(t.meta.id);
    this.tx.tasks.delete(t);
    this.p.bytes += DELETE_BYTES;
  }

  /**
   * Puts this service's writes into the transaction, as many as the pass's
   * budget takes: the rest is left out and the service reconciled again by
   * the next pass, which recomputes it from the store. The service's own
   * write goes first, then task updates (shutdowns), then new tasks, so a cut
   * leaves a slot short of a task (the next pass creates it), never doubled.
   */
  flush(): void {
    const p = this.p;
    let cut = false;
    const put = <T extends TableName>(table: T, o: Tables[T], write: () => void): void => {
      if (cut) return;
      const n = encodedSize(table, o);
      if (!fitsAlone(n)) {
        p.oversized.push({ serviceId: this.serviceId, table, id: o.meta.id, bytes: n });
        return;
      }
      if (p.bytes > 0 && p.bytes + actionBytes(n) > p.budget) {
        cut = true;
        p.more.push(this.serviceId);
        return;
      }
      p.bytes += actionBytes(n);
      write();
    };
    const s = this.service;
    if (s) put('services', s, () => this.tx.services.update(s));
    for (const t of this.writes.values()) put('tasks', t, () => this.tx.tasks.update(t));
    for (const t of this.fresh.values()) put('tasks', t, () => this.tx.tasks.create(t));
  }
}
