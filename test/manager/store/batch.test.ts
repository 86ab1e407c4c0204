// The batch writers' helpers: an object's encoded size as the store counts it,
// cutting a list into transactions by bytes, and splitting a refused write in
// half down to the one object that can never be written.
import { describe, expect, it } from 'vitest';
import {
  actionBytes,
  BATCH_BYTES,
  chunkByBytes,
  encodedSize,
  type EntryTooLargeError,
  fitsAlone,
  MAX_TRANSACTION_BYTES,
  type Tables,
  writeSplitting,
} from '../../../manager/store/index.js';
import { Service, ServiceSpec } from '../../../proto/gen/objects.js';
import { recordingStore, service } from './fixtures.js';

/** `service(id, name)` with about `bytes` of env. */
function withEnv(id: string, bytes: number): Service {
  const s = service(id, `svc-${id}`);
  const env = Array.from({ length: Math.ceil(bytes / 1024) }, (_, i) => `V${i}=${'x'.repeat(1020)}`);
  return Service.create({
    ...s,
    spec: ServiceSpec.create({ ...s.spec, task: { ...s.spec.task, container: { ...s.spec.task.container, env } } }),
  });
}

describe('batch writers’ sizing', () => {
  it('an object’s encoded size plus its action’s allowance covers the whole log entry of a one-object transaction', async () => {
    const { store, log } = recordingStore();
    for (const [i, bytes] of [0, 10_000, 900_000].entries()) {
      const s = withEnv(`s${i}`, bytes);
      await store.update((tx) => tx.services.create(s));
      const stored = store.view((tx) => tx.services.get(`s${i}`))!;
      const n = encodedSize('services', stored);
      expect(n).toBeGreaterThan(bytes);
      expect(log[i]!.length).toBeLessThanOrEqual(actionBytes(n) + 32);
      expect(log[i]!.length).toBeGreaterThan(n);
    }
  });

  it('fitsAlone draws the line just under the store’s cap', () => {
    expect(fitsAlone(1000)).toBe(true);
    expect(fitsAlone(MAX_TRANSACTION_BYTES - 100)).toBe(true);
    expect(fitsAlone(MAX_TRANSACTION_BYTES - 10)).toBe(false);
    expect(fitsAlone(MAX_TRANSACTION_BYTES + 1)).toBe(false);
  });

  it('chunkByBytes keeps the order, holds each run to the budget and the item count, and gives an oversized item a run of its own', () => {
    const sizes = [400, 400, 400, 2000, 100, 100, 100, 100, 100];
    const runs = chunkByBytes(sizes, (n) => n, 1000);
    expect(runs.flat()).toEqual(sizes);
    expect(runs).toEqual([[400, 400], [400], [2000], [100, 100, 100, 100, 100]]);
    for (const r of runs) if (r.length > 1) expect(r.reduce((a, n) => a + actionBytes(n), 0)).toBeLessThanOrEqual(1000);
    expect(chunkByBytes(sizes.slice(4), (n) => n, 1000, 2)).toEqual([[100, 100], [100, 100], [100]]);
    expect(chunkByBytes([], (n: number) => n)).toEqual([]);
    expect(BATCH_BYTES).toBeLessThan(MAX_TRANSACTION_BYTES);
  });

  it('writeSplitting halves a write the store refuses until it fits, and hands over the one object that never fits; everything else is written', async () => {
    const { store, log } = recordingStore();
    // Five 400 KB services (2 MB: refused in one transaction), and one of 1.6 MB (refused alone).
    const items = [
      ...[0, 1, 2].map((i) => withEnv(`s${i}`, 400_000)),
      withEnv('big', 1_600_000),
      ...[3, 4].map((i) => withEnv(`s${i}`, 400_000)),
    ];
    const refused: Array<{ id: string; e: EntryTooLargeError }> = [];
    let writes = 0;
    await writeSplitting(
      items,
      async (part) => {
        writes++;
        await store.update((tx) => part.forEach((s: Tables['services']) => tx.services.create(s)));
      },
      (s, e) => {
        refused.push({ id: s.meta.id, e });
      },
    );
    expect(refused.map((r) => r.id)).toEqual(['big']);
    expect(refused[0]!.e.largest.bytes).toBeGreaterThan(MAX_TRANSACTION_BYTES);
    expect(
      store.view((tx) =>
        tx.services
          .list()
          .map((s) => s.meta.id)
          .sort(),
      ),
    ).toEqual(['s0', 's1', 's2', 's3', 's4']);
    expect(writes).toBeGreaterThan(2);
    for (const entry of log) expect(entry.length).toBeLessThanOrEqual(MAX_TRANSACTION_BYTES);
  });

  it('writeSplitting passes any other error through at once', async () => {
    const boom = new Error('unavailable');
    await expect(
      writeSplitting(
        [1, 2, 3],
        () => Promise.reject(boom),
        () => undefined,
      ),
    ).rejects.toBe(boom);
  });
});
