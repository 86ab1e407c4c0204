// How the leader's batch writers (orchestrator, scheduler, allocator, status
// reports) stay under the store's per-transaction cap: they size what they
// write, cut it into transactions of BATCH_BYTES, and split again on refusal.
import { Task, TaskState } from '../../proto/gen/objects.js';
import { EntryTooLargeError, MAX_TRANSACTION_BYTES } from './errors.js';
import type { MemoryStore } from './store.js';

/**
 * What a batch writer puts in one transaction before it starts the next: two
 * thirds of MAX_TRANSACTION_BYTES, so the framing of thousands of actions and
 * the one object that crosses the line still leave the entry under the cap.
 */
export const BATCH_BYTES = 1 << 20;

/** Framing of one action around its object (tags, lengths, kind), counted generously. */
const ACTION_OVERHEAD = 32;

/** Bytes one object takes in a transaction, given its encoded size (see encodedSize). */
export function actionBytes(objectBytes: number): number {
  return objectBytes + ACTION_OVERHEAD;
}

/** Whether an object of this encoded size can be written at all, alone in its transaction. */
export function fitsAlone(objectBytes: number): boolean {
  // The request id and its framing take 18 bytes more.
  return actionBytes(objectBytes) + 32 <= MAX_TRANSACTION_BYTES;
}

/** Cuts `items` in order into runs of at most `budget` bytes and `maxItems` items (a run holds at least one item). */
export function chunkByBytes<T>(items: readonly T[], size: (t: T) => number, budget = BATCH_BYTES, maxItems = Infinity): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const it of items) {
    const n = actionBytes(size(it));
    if (cur.length > 0 && (bytes + n > budget || cur.length >= maxItems)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(it);
    bytes += n;
  }
  if (cur.length) out.push(cur);
  return out;
}

/**
 * Writes `items` with `write` (one transaction per call). When the store
 * refuses a part as too large (the estimate missed something), it is split in
 * half and each half written; an item refused alone is handed to `tooLarge`
 * and never written, so no batch is retried forever. Other errors propagate.
 */
export async function writeSplitting<T>(
  items: readonly T[],
  write: (part: readonly T[]) => Promise<void>,
  tooLarge: (item: T, e: EntryTooLargeError) => void | Promise<void>,
): Promise<void> {
  if (items.length === 0) return;
  try {
    await write(items);
  } catch (e) {
    if (!(e instanceof EntryTooLargeError)) throw e;
    if (items.length === 1) return tooLarge(items[0]!, e);
    const mid = items.length >> 1;
    await writeSplitting(items.slice(0, mid), write, tooLarge);
    await writeSplitting(items.slice(mid), write, tooLarge);
  }
}

/**
 * Ends a task whose next write alone is over the store's cap: REJECTED, with
 * the size in its error, written over the stored task (which fits, as it is
 * stored) only if nobody changed it meanwhile. Resolves false when it could
 * not be written; the caller logs it and moves on.
 */
export async function rejectOversizedTask(store: MemoryStore, task: Task, e: EntryTooLargeError, now: number): Promise<boolean> {
  const id = task.meta.id;
  // Short: the rejection must fit where the write it replaces did not.
  const err = `task would be ${e.largest.bytes} bytes encoded, over the store's limit of ${MAX_TRANSACTION_BYTES} per object: make the service's spec smaller`;
  try {
    await store.update((tx) => {
      const cur = tx.tasks.get(id);
      if (!cur || cur.meta.version !== task.meta.version || (cur.status?.state ?? 0) > TaskState.RUNNING) return;
      tx.tasks.update(
        Task.create({
          ...cur,
          status: { ...cur.status, state: TaskState.REJECTED, timestamp: now, message: 'rejected', err, portStatus: [] },
        }),
      );
    });
    return true;
  } catch {
    return false;
  }
}
