// The replicated store: transactions are atomic and refused whole on a stale
// version or a taken name, every replica applying the same entries ends
// identical, watchers see committed changes in order, snapshots round-trip.
import { describe, expect, it } from 'vitest';
import { LocalProposer, MemoryStore } from '../../../manager/store/index.js';
import { Meta, Node, NodeRole, NodeSpec, Task, TaskState } from '../../../proto/gen/objects.js';

function newStore(): MemoryStore {
  const p = new LocalProposer();
  const s = new MemoryStore(p);
  p.store = s;
  return s;
}

const node = (id: string, name: string): Node => Node.create({ meta: Meta.create({ id }), spec: NodeSpec.create({ name, role: NodeRole.WORKER }) });

describe('store', () => {
  it('a transaction of several creates commits them all, with the log index as version', async () => {
    const s = newStore();
    const index = await s.update((tx) => {
      tx.nodes.create(node('a', 'h1'));
      tx.nodes.create(node('b', 'h2'));
    });
    expect(s.view((tx) => tx.nodes.list().map((n) => [n.meta!.id, n.meta!.version]))).toEqual([
      ['a', index],
      ['b', index],
    ]);
    expect(s.view((tx) => tx.nodes.byName('h2')?.meta?.id)).toBe('b');
  });

  it('a stale version refuses the whole transaction and changes nothing', async () => {
    const s = newStore();
    await s.update((tx) => tx.nodes.create(node('a', 'h1')));
    const read = s.view((tx) => tx.nodes.get('a'))!;
    await s.update((tx) => tx.nodes.update(Node.create({ ...read, spec: { ...read.spec!, name: 'h1b' } })));
    await expect(
      s.update((tx) => {
        tx.nodes.create(node('c', 'h3'));
        tx.nodes.update(Node.create({ ...read, spec: { ...read.spec!, name: 'stale' } }));
      }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(s.view((tx) => tx.nodes.get('a')!.spec!.name)).toBe('h1b');
    expect(s.view((tx) => tx.nodes.get('c'))).toBeUndefined();
  });

  it('a name already in use is refused with an error naming it', async () => {
    const s = newStore();
    await s.update((tx) => tx.nodes.create(node('a', 'h1')));
    await expect(s.update((tx) => tx.nodes.create(node('b', 'h1')))).rejects.toThrow(/"h1" is already in use/);
  });

  it('objects read back have every field at its default and cannot be mutated', async () => {
    const s = newStore();
    await s.update((tx) => tx.nodes.create(node('a', 'h1')));
    const n = s.view((tx) => tx.nodes.get('a'))!;
    expect(n.spec!.labels).toEqual({});
    expect(n.spec!.availability).toBe(0);
    expect(() => {
      (n.spec as { name: string }).name = 'x';
    }).toThrow();
  });

  it('two replicas applying the same entries, including a refused one, end identical', async () => {
    const entries: Uint8Array[] = [];
    const leader = new MemoryStore({
      propose: async (d) => {
        entries.push(d);
        leader.apply(d, entries.length);
        return entries.length;
      },
    });
    await leader.update((tx) => tx.nodes.create(node('a', 'h1')));
    const v = leader.view((tx) => tx.nodes.get('a'))!;
    await leader.update((tx) => tx.nodes.update(Node.create({ ...v, spec: { ...v.spec!, labels: { k: 'v' } } })));
    await leader.update((tx) => tx.nodes.update(Node.create({ ...v, spec: { ...v.spec!, labels: { k: 'stale' } } }))).catch(() => undefined);
    const follower = new MemoryStore({ propose: () => Promise.reject(new Error('not leader')) });
    entries.forEach((d, i) => follower.apply(d, i + 1));
    expect(follower.snapshot()).toEqual(leader.snapshot());
    expect(follower.view((tx) => tx.nodes.get('a')!.spec!.labels)).toEqual({ k: 'v' });
  });

  it('a snapshot restores the same tables', async () => {
    const s = newStore();
    await s.update((tx) => {
      tx.nodes.create(node('a', 'h1'));
      tx.nodes.create(node('b', 'h2'));
    });
    const r = newStore();
    r.restore(s.snapshot(), 7);
    expect(r.view((tx) => tx.nodes.list())).toEqual(s.view((tx) => tx.nodes.list()));
    expect(r.appliedIndex).toBe(7);
  });

  it('watchers get committed changes in commit order, and nothing for a refused transaction', async () => {
    const s = newStore();
    const seen: string[] = [];
    const stop = s.watch((evs) => seen.push(evs.map((e) => `${e.kind}:${e.object.meta!.id}`).join(',')));
    await s.update((tx) => tx.nodes.create(node('a', 'h1')));
    await s.update((tx) => tx.nodes.create(node('b', 'h1'))).catch(() => undefined);
    const a = s.view((tx) => tx.nodes.get('a'))!;
    await s.update((tx) => tx.nodes.delete('a', a.meta!.version));
    stop();
    await s.update((tx) => tx.nodes.create(node('c', 'h3')));
    expect(seen).toEqual(['create:a', 'delete:a']);
  });

  it('task indexes by service, node, desired state and slot follow creates, updates and deletes, and survive a snapshot', async () => {
    const s = newStore();
    const task = (id: string, svc: string, node: string, slot: number): Task =>
      Task.create({ meta: Meta.create({ id }), serviceId: svc, nodeId: node, slot, desiredState: TaskState.RUNNING });
    await s.update((tx) => {
      tx.tasks.create(task('t1', 's1', 'n1', 1));
      tx.tasks.create(task('t2', 's1', 'n2', 2));
      tx.tasks.create(task('t3', 's2', 'n1', 1));
    });
    const ids = (f: (tx: Parameters<Parameters<MemoryStore['view']>[0]>[0]) => Task[]): string[] => s.view((tx) => f(tx).map((t) => t.meta!.id).sort());
    expect(ids((tx) => tx.tasks.by('service', 's1'))).toEqual(['t1', 't2']);
    expect(ids((tx) => tx.tasks.by('node', 'n1'))).toEqual(['t1', 't3']);
    expect(ids((tx) => tx.tasks.by('slot', 's1/2'))).toEqual(['t2']);
    const t2 = s.view((tx) => tx.tasks.get('t2'))!;
    await s.update((tx) => tx.tasks.update(Task.create({ ...t2, nodeId: 'n1', desiredState: TaskState.SHUTDOWN })));
    expect(ids((tx) => tx.tasks.by('node', 'n1'))).toEqual(['t1', 't2', 't3']);
    expect(ids((tx) => tx.tasks.by('node', 'n2'))).toEqual([]);
    expect(ids((tx) => tx.tasks.by('desiredState', String(TaskState.SHUTDOWN)))).toEqual(['t2']);
    const t1 = s.view((tx) => tx.tasks.get('t1'))!;
    await s.update((tx) => tx.tasks.delete('t1', t1.meta!.version));
    expect(ids((tx) => tx.tasks.by('service', 's1'))).toEqual(['t2']);
    const r = newStore();
    r.restore(s.snapshot(), 9);
    expect(r.view((tx) => tx.tasks.by('node', 'n1').map((t) => t.meta!.id).sort())).toEqual(['t2', 't3']);
    expect(() => s.view((tx) => tx.tasks.by('nope', 'x'))).toThrow(/no index "nope"/);
  });
});
