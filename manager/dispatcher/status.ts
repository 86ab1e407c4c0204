// Task status reports from the agents, written in batches: every report that
// arrives within a short window, from all nodes, goes into one store
// transaction. A report is taken only from the node the task is on, and only
// if it moves the task forward (a state never goes backwards; the same state
// may refresh health, message or error).
import type pino from 'pino';
import type { TsswarmError } from '../../lib/errors.js';
import type { MemoryStore } from '../store/index.js';
import { Task, type TaskStatus } from '../../proto/gen/objects.js';

/** How long reports gather before one write (ms). */
export const STATUS_BATCH_MS = 25;

/** Whether `next` may replace `cur` on a task. */
export function movesForward(cur: TaskStatus | null | undefined, next: TaskStatus): boolean {
  const c = cur?.state ?? 0;
  if (next.state !== c) return next.state > c;
  return (
    (cur?.health ?? '') !== next.health ||
    (cur?.message ?? '') !== next.message ||
    (cur?.err ?? '') !== next.err ||
    (cur?.pid ?? 0) !== next.pid ||
    (cur?.containerId ?? '') !== next.containerId ||
    portsKey(cur?.portStatus) !== portsKey(next.portStatus)
  );
}

function portsKey(ps: readonly { protocol: number; targetPort: number; publishedPort: number }[] | undefined): string {
  return (ps ?? []).map((p) => `${p.protocol}/${p.targetPort}/${p.publishedPort}`).join(',');
}

export class StatusWriter {
  /** task id → the latest report and the node it came from. */
  private queue = new Map<string, { nodeId: string; status: TaskStatus }>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly log: pino.Logger;
  written = 0;
  dropped = 0;

  constructor(
    private readonly store: MemoryStore,
    logger: pino.Logger,
  ) {
    this.log = logger.child({ component: 'task-status' });
  }

  push(nodeId: string, updates: readonly { taskId: string; status?: TaskStatus | null }[]): void {
    if (this.closed) return;
    for (const u of updates) if (u.status) this.queue.set(u.taskId, { nodeId, status: u.status });
    if (!this.timer) this.timer = setTimeout(() => this.kick(), STATUS_BATCH_MS);
  }

  private kick(): void {
    this.timer = null;
    this.writing = this.writing.then(() => this.flush());
  }

  /** Writes what is queued; resolves when the store has it. */
  async flush(): Promise<void> {
    const batch = this.queue;
    if (batch.size === 0) return;
    this.queue = new Map();
    for (let attempt = 0; attempt < 5; attempt++) {
      let n = 0;
      try {
        await this.store.update((tx) => {
          n = 0;
          for (const [id, { nodeId, status }] of batch) {
            const t = tx.tasks.get(id);
            if (!t || t.nodeId !== nodeId || !movesForward(t.status, status)) continue;
            tx.tasks.update(Task.create({ ...t, status: { ...status, timestamp: status.timestamp || Date.now() } }));
            n++;
          }
        }, { batch: true }); // every node's reports at once: the store's batch cap (manager/store)
        this.written += n;
        this.dropped += batch.size - n;
        return;
      } catch (e) {
        // Someone wrote one of these tasks between our read and the commit: read again.
        if ((e as TsswarmError).code === 'CONFLICT') continue;
        this.log.warn({ err: e, reports: batch.size }, 'could not write task status reports');
        // Keep them for the next batch unless newer reports replaced them.
        for (const [id, r] of batch) if (!this.queue.has(id)) this.queue.set(id, r);
        if (!this.timer && !this.closed) this.timer = setTimeout(() => this.kick(), 500);
        return;
      }
    }
  }

  /** Drops what is queued (leadership lost: the agents report again to the next leader). */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.clear();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.clear();
  }
}
