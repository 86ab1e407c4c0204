// Watchers get change events after apply, in commit order, with a commit
// marker per transaction; filters; closing by close(), signal or break; a
// watcher that falls behind, or a store replaced by a snapshot, ends it with an error.
import { describe, expect, it } from 'vitest';
import { localStore, type MemoryStore, type StoreEvent, WatchOverflowError, WatchResetError } from '../../../manager/store/index.js';
import { Node, Task, TaskState } from '../../../proto/gen/objects.js';
import { node, secret, task } from './fixtures.js';

const show = (e: StoreEvent): string => (e.kind === 'commit' ? `commit@${e.index}` : `${e.kind}:${e.table}/${e.object.meta.id}@${e.index}`);

async function take(w: AsyncIterator<StoreEvent>, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await w.next();
    if (r.done) break;
    out.push(show(r.value));
  }
  return out;
}

async function churn(s: MemoryStore): Promise<void> {
  await s.update((tx) => {
    tx.nodes.create(node('n1', 'h1'));
    tx.tasks.create(task('t1', 's1', 'n1', 1));
  });
  await s.update((tx) => tx.nodes.create(node('n2', 'h1'))); // same hostname: allowed
  // Built together, both reach the log (3, 4); the second is refused at apply: no events.
  await Promise.allSettled([s.update((tx) => tx.nodes.create(node('n3', 'h3'))), s.update((tx) => tx.nodes.create(node('n3', 'again')))]);
  const t = s.view((tx) => tx.tasks.get('t1'))!;
  await s.update((tx) => tx.tasks.update(Task.create({ ...t, desiredState: TaskState.SHUTDOWN })));
  await s.update((tx) => tx.tasks.delete(s.view((v) => v.tasks.get('t1'))!));
}

describe('store watch', () => {
  it('events arrive in commit order, each transaction closed by a commit marker, nothing for a refused one', async () => {
    const s = localStore();
    const w = s.watch();
    await churn(s);
    expect(await take(w, 11)).toEqual([
      'create:nodes/n1@1',
      'create:tasks/t1@1',
      'commit@1',
      'create:nodes/n2@2',
      'commit@2',
      'create:nodes/n3@3',
      'commit@3',
      'update:tasks/t1@5',
      'commit@5',
      'delete:tasks/t1@6',
      'commit@6',
    ]);
    expect(s.lastOutcome).toEqual({ index: 6, error: null });
    expect(w.pending).toBe(0);
    w.close();
  });

  it('an update event carries the old object, a delete event the object as it was removed', async () => {
    const s = localStore();
    const w = s.watch({ tables: ['tasks'], commits: 'none' });
    await churn(s);
    const evs: StoreEvent[] = [];
    for (let i = 0; i < 3; i++) evs.push((await w.next()).value as StoreEvent);
    const [, upd, del] = evs;
    expect(upd).toMatchObject({
      kind: 'update',
      old: { desiredState: TaskState.RUNNING, meta: { version: 1 } },
      object: { desiredState: TaskState.SHUTDOWN, meta: { version: 5 } },
    });
    expect(del).toMatchObject({ kind: 'delete', index: 6, object: { desiredState: TaskState.SHUTDOWN, meta: { version: 5 } } });
    w.close();
  });

  it('a filter on tables, kinds and a predicate passes only matching changes, with markers only for transactions that matched', async () => {
    const s = localStore();
    const w = s.watch({ tables: ['tasks'], kinds: ['update', 'delete'] });
    const onlyN2 = s.watch({ match: (e) => e.table === 'nodes' && e.object.meta.id === 'n2' });
    const all = s.watch({ tables: ['nodes'], commits: 'all' });
    await churn(s);
    expect(await take(w, 4)).toEqual(['update:tasks/t1@5', 'commit@5', 'delete:tasks/t1@6', 'commit@6']);
    expect(await take(onlyN2, 2)).toEqual(['create:nodes/n2@2', 'commit@2']);
    expect(onlyN2.pending).toBe(0);
    // 'all': a marker after every log entry, the refused one included.
    expect(await take(all, 9)).toEqual([
      'create:nodes/n1@1',
      'commit@1',
      'create:nodes/n2@2',
      'commit@2',
      'create:nodes/n3@3',
      'commit@3',
      'commit@4',
      'commit@5',
      'commit@6',
    ]);
    for (const x of [w, onlyN2, all]) x.close();
  });

  it('a watcher started by viewAndWatch sees exactly the changes after what it read', async () => {
    const s = localStore();
    await s.update((tx) => tx.nodes.create(node('n1', 'h1')));
    const { value, watch } = s.viewAndWatch((tx) => tx.nodes.list().length, { commits: 'none' });
    await s.update((tx) => tx.nodes.create(node('n2', 'h2')));
    expect(value).toBe(1);
    expect(await take(watch, 1)).toEqual(['create:nodes/n2@2']);
    watch.close();
  });

  it('close() ends a waiting iteration and stops delivery; events after it are not kept', async () => {
    const s = localStore();
    const w = s.watch();
    const pending = w.next();
    w.close();
    await expect(pending).resolves.toEqual({ value: undefined, done: true });
    await s.update((tx) => tx.nodes.create(node('n1', 'h1')));
    expect(w.pending).toBe(0);
    await expect(w.next()).resolves.toMatchObject({ done: true });
  });

  it('an aborted signal ends the watch, and breaking out of for-await closes it', async () => {
    const s = localStore();
    const ac = new AbortController();
    const w = s.watch({}, ac.signal);
    setTimeout(() => ac.abort(), 1);
    const seen: string[] = [];
    for await (const e of w) seen.push(show(e));
    expect(seen).toEqual([]);
    expect(w.closed).toBe(true);

    const w2 = s.watch({ commits: 'none' });
    void (async () => {
      await s.update((tx) => tx.nodes.create(node('n1', 'h1')));
      await s.update((tx) => tx.nodes.create(node('n2', 'h2')));
    })();
    for await (const e of w2) {
      seen.push(show(e));
      break;
    }
    expect(seen).toEqual(['create:nodes/n1@1']);
    expect(w2.closed).toBe(true);
  });

  it('a watcher that falls more than maxQueue events behind is closed with WatchOverflowError and holds nothing', async () => {
    const s = localStore();
    const slow = s.watch({ maxQueue: 5 });
    const fine = s.watch({ maxQueue: 100 });
    for (let i = 0; i < 4; i++) await s.update((tx) => tx.nodes.create(node(`n${i}`, `h${i}`)));
    expect(slow.closed).toBe(true);
    expect(slow.pending).toBe(0);
    const err = await slow.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WatchOverflowError);
    expect((err as Error).message).toMatch(/fell more than 5 events behind .*watch again/);
    // The error is given once; then the stream is done.
    await expect(slow.next()).resolves.toMatchObject({ done: true });
    expect(fine.closed).toBe(false);
    expect(fine.pending).toBe(8);
    fine.close();
  });

  it('restoring a snapshot closes watchers with WatchResetError (their view of the state is gone)', async () => {
    const s = localStore();
    const w = s.watch();
    const sub = s.subscribe(() => undefined);
    const waiting = w.next();
    s.restore(new Uint8Array(0), 10);
    await expect(waiting).rejects.toBeInstanceOf(WatchResetError);
    expect(sub.closed).toBe(true);
    expect(sub.error).toBeInstanceOf(WatchResetError);
  });

  it('a subscription gets events synchronously after apply; a throwing callback closes only its own subscription', async () => {
    const s = localStore();
    const seen: string[] = [];
    const sub = s.subscribe((e) => seen.push(show(e)), { tables: ['nodes'] });
    const bad = s.subscribe(() => {
      throw new Error('boom');
    });
    await s.update((tx) => tx.nodes.create(node('n1', 'h1')));
    expect(seen).toEqual(['create:nodes/n1@1', 'commit@1']);
    expect(bad.closed).toBe(true);
    expect(bad.error?.message).toBe('boom');
    sub.close();
    const n = s.view((tx) => tx.nodes.get('n1'))!;
    await s.update((tx) => tx.nodes.update(Node.create({ ...n, spec: { ...n.spec, labels: { a: 'b' } } })));
    expect(seen).toHaveLength(2);
  });

  it('a filter predicate that throws closes that watcher with the error', async () => {
    const s = localStore();
    const w = s.watch({
      match: () => {
        throw new Error('bad filter');
      },
    });
    await s.update((tx) => tx.nodes.create(node('n1', 'h1')));
    await expect(w.next()).rejects.toThrow('bad filter');
  });

  it('events of tables holding bytes carry copies, so a watcher cannot change the stored data', async () => {
    const s = localStore();
    const w = s.watch({ commits: 'none' });
    await s.update((tx) => tx.secrets.create(secret('x1', 'pw', [7])));
    const e = (await w.next()).value as StoreEvent;
    if (e.kind !== 'create' || e.table !== 'secrets') throw new Error(`unexpected ${show(e)}`);
    e.object.spec.data[0] = 0;
    expect([...s.view((tx) => tx.secrets.get('x1'))!.spec.data]).toEqual([7]);
    w.close();
  });
});
