// The orchestrator, on the leader, level-triggered: after any change to a
// service, its tasks or the nodes, the service is reconciled against the store
// in one transaction together with every other service that changed (up to
// BATCH_BYTES: what does not fit goes to the next pass, at once), phase by
// phase (each in its own file):
// - replicated.ts / global.ts: one current task per slot, or per eligible node;
// - jobs.ts: replicated and global jobs, tasks that run to completion;
// - restart.ts: ended, unhealthy, lost or drained tasks replaced per policy;
// - update.ts: rolling updates and rollbacks;
// - reaper.ts: old tasks beyond the history limit, removed services' tasks.
// One transaction per pass keeps the phases from racing each other for the
// same tasks. Everything is derived from the store and the clock, so a new
// leader carries on where the old one stopped.
import type pino from 'pino';
import type { TsswarmError } from '../../lib/errors.js';
import { BATCH_BYTES, EntryTooLargeError, type MemoryStore, type StoreEvent, type Subscription } from '../store/index.js';
import { CREATE_CHUNK } from './chunk.js';
import { type Clock, type Pass, ServiceContext, systemClock } from './context.js';
import { taskHistoryLimit } from '../../spec/cluster.js';
import { type FailureAction, ReconcileLoop } from '../reconciler.js';
import { reconcileGlobal } from './global.js';
import { reconcileGlobalJob, reconcileReplicatedJob } from './jobs.js';
import { reapHistory, removeServiceTasks } from './reaper.js';
import { reconcileReplicated } from './replicated.js';
import { orphanLostTasks } from './restart.js';
import { rollingUpdate } from './update.js';

export { CREATE_CHUNK };

export interface OrchestratorOptions {
  store: MemoryStore;
  logger: pino.Logger;
  /** Injected time (tests); default the system clock. */
  clock?: Clock;
}

/** Pause after a failed pass before the next one (ms). */
const RETRY_MS = 50;

export class Orchestrator {
  private readonly store: MemoryStore;
  private readonly log: pino.Logger;
  private readonly clock: Clock;
  private sub: Subscription | null = null;
  private dirty = new Set<string>();
  private all = true;
  private readonly loop: ReconcileLoop;
  /** Bytes a pass may write; halved while the store refuses passes as too large (the estimate missed something). */
  private budget = BATCH_BYTES;
  /** service id → the service version its oversized writes were reported for: reported once, not at every pass. */
  private readonly reported = new Map<string, number>();

  constructor(o: OrchestratorOptions) {
    this.store = o.store;
    this.log = o.logger.child({ component: 'orchestrator' });
    this.clock = o.clock ?? systemClock;
    this.loop = new ReconcileLoop({
      name: 'orchestration',
      log: this.log,
      clock: this.clock,
      gatherMs: 1,
      retryMs: RETRY_MS,
      pass: () => this.run(),
      onError: (err) => this.failed(err),
      // Restart delays, update delays and monitors: every service is looked at again.
      onWake: () => {
        this.all = true;
      },
    });
  }

  /** Passes run (tests, metrics). */
  get passes(): number {
    return this.loop.passes;
  }

  start(): void {
    this.all = true;
    this.sub = this.store.subscribe((e) => this.onEvent(e), { tables: ['services', 'tasks', 'nodes', 'cluster'], commits: 'none' });
    this.loop.start();
  }

  private onEvent(e: StoreEvent): void {
    if (e.kind === 'commit') return;
    if (e.table === 'services') this.dirty.add(e.object.meta.id);
    else if (e.table === 'tasks') {
      // The allocator's and the scheduler's moves (NEW → PENDING → ASSIGNED) change nothing here.
      if (
        e.kind === 'update' &&
        e.old.desiredState === e.object.desiredState &&
        stateOnlyAdvancedBeforeRun(e.old.status?.state ?? 0, e.object.status?.state ?? 0) &&
        e.old.status?.health === e.object.status?.health
      )
        return;
      this.dirty.add(e.object.serviceId);
    } else if (e.table === 'nodes') {
      // Readiness, availability, labels, role and removal change where tasks may run.
      const o = e.kind === 'update' ? e.old : undefined;
      const n = e.object;
      if (
        !o ||
        o.status?.state !== n.status?.state ||
        o.spec?.availability !== n.spec?.availability ||
        JSON.stringify(o.spec?.labels) !== JSON.stringify(n.spec?.labels) ||
        o.spec?.role !== n.spec?.role
      )
        this.all = true;
    } else this.all = true;
    this.kick();
  }

  private kick(): void {
    this.loop.kick();
  }

  private failed(err: unknown): FailureAction {
    this.all = true;
    if (err instanceof EntryTooLargeError && this.budget > 1) {
      // Smaller passes, at once: each makes progress, and one object alone never reaches here (flush leaves it out).
      this.budget = Math.max(1, this.budget >> 1);
      this.log.warn({ bytes: err.bytes, budget: this.budget }, 'orchestration pass too large for one transaction; writing smaller ones');
      return 'now';
    }
    return (err as TsswarmError).code === 'CONFLICT' ? 'quiet' : 'warn';
  }

  /** One pass; resolves true when services are left for the next (a chunk limit, a write too large). */
  private async run(): Promise<boolean> {
    const store = this.store;
    const ids = this.all
      ? store.view((tx) => [...new Set([...tx.services.list().map((s) => s.meta.id), ...tx.tasks.list().map((t) => t.serviceId)])])
      : [...this.dirty];
    this.all = false;
    this.dirty = new Set();
    const p: Pass = {
      now: this.clock.now(),
      nodes: new Map(store.view((tx) => tx.nodes.list()).map((n) => [n.meta.id, n])),
      // The cluster's setting at each pass: `swarm update --task-history-limit` applies from the next one.
      history: taskHistoryLimit(store.view((tx) => tx.cluster.list()[0]?.spec)),
      created: 0,
      more: [],
      bytes: 0,
      budget: this.budget,
      oversized: [],
      wake: Infinity,
    };
    const left: string[] = [];
    await store.update((tx) => {
      for (const id of ids) {
        if (p.created >= CREATE_CHUNK || p.bytes >= p.budget) {
          left.push(id);
          continue;
        }
        const svc = tx.services.get(id);
        const c = new ServiceContext(tx, id, svc, tx.tasks.by('service', id), p);
        if (!svc) removeServiceTasks(c);
        else {
          if (svc.spec.replicatedJob) reconcileReplicatedJob(c);
          else if (svc.spec.globalJob) reconcileGlobalJob(c);
          else {
            if (c.global) reconcileGlobal(c);
            else reconcileReplicated(c);
            rollingUpdate(c);
          }
          orphanLostTasks(c);
          reapHistory(c);
        }
        c.flush();
      }
    });
    this.budget = BATCH_BYTES;
    this.reportOversized(p.oversized);
    for (const id of [...left, ...p.more]) this.dirty.add(id);
    if (p.wake < Infinity) this.loop.wake(p.wake);
    return this.all || this.dirty.size > 0;
  }

  /**
   * Writes no transaction can hold (a task of a spec stored before specs were
   * capped, at or near 1.5 MiB): left out, logged once per service version.
   * The service is not queued again for them; a change to it tries again.
   */
  private reportOversized(list: Pass['oversized']): void {
    for (const o of list) {
      const version = this.store.view((tx) => tx.services.get(o.serviceId)?.meta?.version ?? 0);
      if (this.reported.get(o.serviceId) === version) continue;
      this.reported.set(o.serviceId, version);
      this.log.error(
        { service: o.serviceId, [o.table === 'tasks' ? 'task' : 'object']: o.id, bytes: o.bytes },
        `a ${o.table === 'tasks' ? 'task' : o.table} of this service is ${o.bytes} bytes encoded, over the store's limit per object; it is not written: make the service's spec smaller (service update)`,
      );
    }
  }

  async stop(): Promise<void> {
    this.sub?.close();
    this.sub = null;
    await this.loop.stop();
  }

  /** Resolves when no pass is running or due (tests, benchmarks). */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Whether a pass runs or is due. */
  get due(): boolean {
    return this.loop.due;
  }

  /** Whether anything is left running (tests check stop()). */
  get busy(): boolean {
    return !!this.sub || this.loop.busy;
  }
}

/** NEW → PENDING → ASSIGNED → ... up to RUNNING: progress the orchestrator need not look at. */
function stateOnlyAdvancedBeforeRun(from: number, to: number): boolean {
  return from === to || (to < 5 /* READY */ && to > from);
}
