// Task status reports from the agents, written in batches: every report that
// arrives within a short window, from all nodes, goes into one store
// transaction, or several when they hold more than BATCH_BYTES. A report is taken only from the node the task is on, and only
// if it moves the task forward (a state never goes backwards; the same state
// may refresh health, message or error). The times the manager decides by
// (timestamp, runningAt) are stamped here with the manager's clock: an
// agent's clock may run ahead or behind, and a rolling update's delay and
// monitor count from them.
import type pino from 'pino';
import { TsswarmError } from '../../lib/errors.js';
import { chunkByBytes, encodedSize, EntryTooLargeError, fitsAlone, type MemoryStore, writeSplitting } from '../store/index.js';
import { Task, TaskState, type TaskStatus } from '../../proto/gen/objects.js';

/** How long reports gather before one write (ms). */
export const STATUS_BATCH_MS = 25;
/** Pause before a batch that failed is written again (ms). */
export const STATUS_RETRY_MS = 500;
/**
 * The longest one batch may hold the writer's chain: past it the batch counts
 * as failed and is kept for the next one (a report already written is
 * skipped then, as it no longer moves its task forward). Above the store's own bound.
 */
export const STATUS_WRITE_TIMEOUT_MS = 45_000;

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

/**
 * The status written for a report that moves a task forward, with the
 * manager's clock `now`: timestamp is when the manager recorded it; runningAt
 * is when the manager first recorded the task RUNNING, and stays so after
 * (the agent's own runningAt is taken only as a sign that the task ran, when
 * its RUNNING report was replaced by a later one in the same batch).
 */
export function stampStatus(cur: TaskStatus | null | undefined, next: TaskStatus, now: number): TaskStatus {
  const was = cur?.state ?? 0;
  let runningAt = 0;
  if (was >= TaskState.RUNNING) runningAt = cur?.runningAt ?? 0;
  else if (next.state === TaskState.RUNNING || (next.state > TaskState.RUNNING && (next.runningAt ?? 0) > 0)) runningAt = now;
  return { ...next, timestamp: now, runningAt };
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
  /** Bumped by clear(): a batch that was being written before it is not kept for later. */
  private generation = 0;
  private readonly log: pino.Logger;
  private readonly retryMs: number;
  private readonly writeTimeoutMs: number;
  /** The manager's clock (unix ms), which stamps timestamp and runningAt. */
  private readonly now: () => number;
  written = 0;
  dropped = 0;
  /** Batches that failed (refused, unknown outcome, timed out) and were kept for the next one. */
  failed = 0;

  constructor(
    private readonly store: MemoryStore,
    logger: pino.Logger,
    o: { retryMs?: number; writeTimeoutMs?: number; now?: () => number } = {},
  ) {
    this.now = o.now ?? Date.now;
    this.log = logger.child({ component: 'task-status' });
    this.retryMs = o.retryMs ?? STATUS_RETRY_MS;
    this.writeTimeoutMs = o.writeTimeoutMs ?? STATUS_WRITE_TIMEOUT_MS;
  }

  push(nodeId: string, updates: readonly { taskId: string; status?: TaskStatus | null }[]): void {
    if (this.closed) return;
    for (const u of updates) if (u.status) this.queue.set(u.taskId, { nodeId, status: u.status });
    if (!this.timer) this.timer = setTimeout(() => this.kick(), STATUS_BATCH_MS);
  }

  private kick(): void {
    this.timer = null;
    // flush() never rejects; the catch only guards the chain, which must never stay rejected or pending.
    this.writing = this.writing.then(() => this.flush()).catch((err: unknown) => this.log.error({ err }, 'task status writer failed'));
  }

  /** Writes what is queued; resolves when the store has it. */
  async flush(): Promise<void> {
    const all = this.queue;
    if (all.size === 0) return;
    this.queue = new Map();
    // Each report rewrites its whole task, spec included: cut by bytes, and drop a report its task cannot hold.
    const sizes = new Map<string, number>();
    this.store.view((tx) => {
      for (const [id, { status }] of all) {
        const t = tx.tasks.get(id);
        sizes.set(id, t ? encodedSize('tasks', Task.create({ ...t, status })) : 0);
      }
    });
    const reports: Array<[string, { nodeId: string; status: TaskStatus }]> = [];
    for (const [id, r] of all) {
      if (fitsAlone(sizes.get(id)!)) reports.push([id, r]);
      else this.tooLarge(id, r.nodeId, sizes.get(id)!);
    }
    for (const chunk of chunkByBytes(reports, ([id]) => sizes.get(id)!)) {
      await writeSplitting(
        chunk,
        (part) => this.write(new Map(part)),
        ([id, r], e) => this.tooLarge(id, r.nodeId, e.largest.bytes),
      );
    }
  }

  private tooLarge(taskId: string, nodeId: string, bytes: number): void {
    this.dropped++;
    this.log.warn(
      { task: taskId, node: nodeId, bytes },
      `task status report dropped: the task would be ${bytes} bytes encoded with it, over the store's limit per object`,
    );
  }

  /** One transaction of reports; a batch that fails for any reason but its size is kept for a later one. */
  private async write(batch: Map<string, { nodeId: string; status: TaskStatus }>): Promise<void> {
    const generation = this.generation;
    let lastErr: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      let n = 0;
      try {
        await this.bounded(
          this.store.update((tx) => {
            n = 0;
            for (const [id, { nodeId, status }] of batch) {
              const t = tx.tasks.get(id);
              if (!t || t.nodeId !== nodeId || !movesForward(t.status, status)) continue;
              tx.tasks.update(Task.create({ ...t, status: stampStatus(t.status, status, this.now()) }));
              n++;
            }
          }),
        );
        this.written += n;
        this.dropped += batch.size - n;
        return;
      } catch (e) {
        // Too large: the caller splits it; kept, it would be refused again forever.
        if (e instanceof EntryTooLargeError) throw e;
        lastErr = e;
        // Someone wrote one of these tasks between our read and the commit: read again.
        if ((e as TsswarmError).code === 'CONFLICT') continue;
        break;
      }
    }
    // Refused, outcome unknown, timed out, or conflicting every time: keep the reports for a later
    // batch (unless newer ones replaced them). One that did apply no longer moves its task forward then.
    this.failed++;
    this.log.warn({ err: lastErr, reports: batch.size }, 'could not write task status reports; trying again');
    if (this.closed || generation !== this.generation) return;
    for (const [id, r] of batch) if (!this.queue.has(id)) this.queue.set(id, r);
    if (!this.timer) this.timer = setTimeout(() => this.kick(), this.retryMs);
  }

  private bounded<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TsswarmError('DEADLINE_EXCEEDED', `a task status batch took over ${this.writeTimeoutMs} ms to write`)),
        this.writeTimeoutMs,
      );
    });
    return Promise.race([p, bound]).finally(() => clearTimeout(timer));
  }

  /** Drops what is queued (leadership lost: the agents report again to the next leader). */
  clear(): void {
    this.generation++;
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
