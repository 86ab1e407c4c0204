// The scheduler's shell, on the leader: gathers PENDING tasks as they appear
// (a burst of thousands becomes one pass), runs the pure `schedule`, and
// writes the decisions in transactions cut by count and by bytes. A task no
// node fits keeps waiting with the reason in its status, rewritten only when
// the reason changes; any change to nodes or placed tasks triggers another pass.
import type pino from 'pino';
import type { TsswarmError } from '../../lib/errors.js';
import {
  BATCH_BYTES,
  chunkByBytes,
  encodedSize,
  type MemoryStore,
  rejectOversizedTask,
  type StoreEvent,
  type Subscription,
  writeSplitting,
} from '../store/index.js';
import { Task, TaskState } from '../../proto/gen/objects.js';
import { holdsNode, schedule } from './schedule.js';
import { type Clock, ReconcileLoop } from '../reconciler.js';

/** Decisions per store transaction, at most (and at most BATCH_BYTES of them). */
export const SCHEDULE_CHUNK = 5000;
/** How long a pass waits for more work after the first event (ms). */
const GATHER_MS = 5;

export interface SchedulerOptions {
  store: MemoryStore;
  logger: pino.Logger;
  /** Injected time for status timestamps and the pass timers (tests); default the system clock. */
  clock?: Clock;
}

const waiting = (t: Task): boolean => t.status?.state === TaskState.PENDING && t.desiredState <= TaskState.RUNNING;

export class Scheduler {
  private sub: Subscription | null = null;
  private readonly loop: ReconcileLoop;
  private readonly log: pino.Logger;
  /** Passes that had tasks to place, and tasks assigned, for metrics and tests. */
  passes = 0;
  assigned = 0;

  private readonly now: () => number;

  constructor(private readonly o: SchedulerOptions) {
    this.log = o.logger.child({ component: 'scheduler' });
    this.now = o.clock ? () => o.clock!.now() : Date.now;
    this.loop = new ReconcileLoop({ name: 'scheduling', log: this.log, clock: o.clock, gatherMs: GATHER_MS, pass: () => this.run() });
  }

  start(): void {
    this.sub = this.o.store.subscribe((e) => this.onEvent(e), { tables: ['tasks', 'nodes'], commits: 'none' });
    this.loop.start();
  }

  private onEvent(e: StoreEvent): void {
    if (e.kind === 'commit') return;
    if (e.table === 'nodes') return this.kick();
    if (e.table !== 'tasks') return;
    const t = e.object;
    // New work, or a place freed that a waiting task may take.
    const freed = e.kind === 'delete' ? holdsNode(t) : e.kind === 'update' && holdsNode(e.old) && !holdsNode(t);
    if (waiting(t) || freed) this.kick();
  }

  private kick(): void {
    this.loop.kick();
  }

  /** One pass: resolves when its decisions are committed. */
  private async run(): Promise<boolean> {
    const store = this.o.store;
    const { nodes, placed, pending } = store.view((tx) => {
      const all = tx.tasks.list();
      return {
        nodes: tx.nodes.list(),
        placed: all.filter(holdsNode),
        pending: all.filter(waiting),
      };
    });
    if (!pending.length) return false;
    this.passes++;
    const r = schedule(nodes, placed, pending);
    const now = this.now();
    const writes: Task[] = [];
    for (const t of pending) {
      const id = t.meta.id;
      const nodeId = r.assignments.get(id);
      if (nodeId) {
        writes.push(
          Task.create({
            ...t,
            nodeId,
            status: { ...t.status, state: TaskState.ASSIGNED, timestamp: now, message: 'scheduler assigned task to node', err: '' },
          }),
        );
        continue;
      }
      const why = r.unschedulable.get(id);
      if (why && why !== t.status?.err)
        writes.push(Task.create({ ...t, status: { ...t.status, timestamp: now, message: 'pending task scheduling', err: why } }));
    }
    let conflicts = 0;
    // Cut by bytes as well as by count: every task carries its service's spec, so 5,000 of them can be megabytes.
    for (const chunk of chunkByBytes(writes, (w) => encodedSize('tasks', w), BATCH_BYTES, SCHEDULE_CHUNK)) {
      try {
        await writeSplitting(
          chunk,
          async (part) => {
            await store.update((tx) => {
              for (const w of part) {
                const cur = tx.tasks.get(w.meta.id);
                // Changed meanwhile (removed, shut down, already placed): the next pass looks again.
                if (!cur || cur.meta.version !== w.meta.version || cur.status?.state !== TaskState.PENDING) continue;
                tx.tasks.update(w);
              }
            });
            for (const w of part) if (w.status?.state === TaskState.ASSIGNED) this.assigned++;
          },
          async (w, e) => {
            // Alone over the store's cap: retrying can never succeed, so the task ends here with the reason.
            const ok = await rejectOversizedTask(store, w, e, now);
            this.log.warn(
              { task: w.meta.id, service: w.serviceId, bytes: e.largest.bytes, rejected: ok },
              'task too large to store; rejected',
            );
          },
        );
      } catch (e) {
        if ((e as TsswarmError).code !== 'CONFLICT') throw e;
        conflicts++;
      }
    }
    if (r.unschedulable.size) this.log.debug({ waiting: r.unschedulable.size }, 'tasks wait for a suitable node');
    // A chunk that met another writer's change is placed by the next pass.
    return conflicts > 0;
  }

  /** Resolves when no pass is running or due (tests, benchmarks). */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Whether a pass runs or is due. */
  get due(): boolean {
    return this.loop.due;
  }

  async stop(): Promise<void> {
    this.sub?.close();
    this.sub = null;
    await this.loop.stop();
  }
}
