// Secondary indexes follow every create, update and delete: names (without
// case) and tasks by service, node, desired state and (service, slot).
import { describe, expect, it } from 'vitest';
import { localStore, type ReadTx, taskSlotKey } from '../../../manager/store/index.js';
import { Network, Node, Secret, Service, Task, TaskState } from '../../../proto/gen/objects.js';
import { ids, network, node, secret, service, task } from './fixtures.js';

describe('store indexes', () => {
  it('tasks are found by service, node, desired state and slot, and follow updates and deletes', async () => {
    const s = localStore();
    await s.update((tx) => {
      tx.tasks.create(task('t1', 's1', 'n1', 1));
      tx.tasks.create(task('t2', 's1', 'n2', 2));
      tx.tasks.create(task('t3', 's2', 'n1', 1));
      tx.tasks.create(task('t4', 's2', '', 2, TaskState.READY));
    });
    const q = (f: (tx: ReadTx) => Array<{ meta?: { id: string } | null }>): string[] => ids(s.view(f));
    expect(q((tx) => tx.tasks.by('service', 's1'))).toEqual(['t1', 't2']);
    expect(q((tx) => tx.tasks.by('node', 'n1'))).toEqual(['t1', 't3']);
    expect(q((tx) => tx.tasks.by('node', ''))).toEqual([]); // unassigned tasks are in no node's list
    expect(q((tx) => tx.tasks.by('desiredState', TaskState.RUNNING))).toEqual(['t1', 't2', 't3']);
    expect(q((tx) => tx.tasks.by('slot', taskSlotKey('s1', 2)))).toEqual(['t2']);

    const t2 = s.view((tx) => tx.tasks.get('t2'))!;
    await s.update((tx) => tx.tasks.update(Task.create({ ...t2, nodeId: 'n1', slot: 3, desiredState: TaskState.SHUTDOWN })));
    expect(q((tx) => tx.tasks.by('node', 'n1'))).toEqual(['t1', 't2', 't3']);
    expect(q((tx) => tx.tasks.by('node', 'n2'))).toEqual([]);
    expect(q((tx) => tx.tasks.by('desiredState', TaskState.SHUTDOWN))).toEqual(['t2']);
    expect(q((tx) => tx.tasks.by('desiredState', TaskState.RUNNING))).toEqual(['t1', 't3']);
    expect(q((tx) => tx.tasks.by('slot', 's1/2'))).toEqual([]);
    expect(q((tx) => tx.tasks.by('slot', 's1/3'))).toEqual(['t2']);

    const t1 = s.view((tx) => tx.tasks.get('t1'))!;
    await s.update((tx) => tx.tasks.delete(t1));
    expect(q((tx) => tx.tasks.by('service', 's1'))).toEqual(['t2']);
    expect(q((tx) => tx.tasks.by('slot', 's1/1'))).toEqual([]);
    expect(q((tx) => tx.tasks.by('node', 'n1'))).toEqual(['t2', 't3']);
  });

  it('index lookups answer in id order, whatever the order of the writes', async () => {
    const s = localStore();
    for (const id of ['t9', 't1', 't5']) await s.update((tx) => tx.tasks.create(task(id, 's1', 'n1', 1)));
    expect(s.view((tx) => tx.tasks.by('service', 's1').map((t) => t.meta.id))).toEqual(['t1', 't5', 't9']);
  });

  it('every named table is found by name, without case, and the name index follows renames and deletes', async () => {
    const s = localStore();
    await s.update((tx) => {
      tx.nodes.create(node('n1', 'host-1'));
      tx.services.create(service('s1', 'web'));
      tx.networks.create(network('w1', 'backend'));
      tx.secrets.create(secret('x1', 'db-pass', [1]));
      tx.configs.create({
        meta: { id: 'c1', version: 0, createdAt: 0, updatedAt: 0 },
        spec: { name: 'nginx.conf', labels: {}, data: new Uint8Array([2]) },
      });
    });
    s.view((tx) => {
      expect(tx.nodes.byName('HOST-1')!.meta.id).toBe('n1');
      expect(tx.services.byName('Web')!.meta.id).toBe('s1');
      expect(tx.networks.byName('backend')!.meta.id).toBe('w1');
      expect(tx.secrets.byName('db-pass')!.meta.id).toBe('x1');
      expect(tx.configs.byName('NGINX.conf')!.meta.id).toBe('c1');
    });
    const [n, sv, nw, sc] = s.view(
      (tx) => [tx.nodes.get('n1')!, tx.services.get('s1')!, tx.networks.get('w1')!, tx.secrets.get('x1')!] as const,
    );
    await s.update((tx) => {
      tx.nodes.update(Node.create({ ...n, spec: { ...n.spec, name: 'host-2' } }));
      tx.services.update(Service.create({ ...sv, spec: { ...sv.spec, name: 'api' } }));
      tx.networks.update(Network.create({ ...nw, spec: { ...nw.spec, name: 'frontend' } }));
      tx.secrets.update(Secret.create({ ...sc, spec: { ...sc.spec, name: 'db-pass-2' } }));
    });
    s.view((tx) => {
      expect(tx.nodes.byName('host-1')).toBeUndefined();
      expect(tx.nodes.byName('host-2')!.meta.id).toBe('n1');
      expect(tx.services.byName('web')).toBeUndefined();
      expect(tx.services.byName('api')!.meta.id).toBe('s1');
      expect(tx.networks.byName('frontend')!.meta.id).toBe('w1');
      expect(tx.secrets.byName('db-pass-2')!.meta.id).toBe('x1');
    });
    const c = s.view((tx) => tx.configs.get('c1'))!;
    await s.update((tx) => tx.configs.delete(c));
    expect(s.view((tx) => tx.configs.byName('nginx.conf'))).toBeUndefined();
    // The freed name can be used again.
    await s.update((tx) => tx.services.create(service('s2', 'web')));
    expect(s.view((tx) => tx.services.byName('web')!.meta.id)).toBe('s2');
  });

  it('asking for an index a table does not have names the indexes it has', () => {
    const s = localStore();
    expect(() => s.view((tx) => tx.tasks.by('nope' as 'node', 'x'))).toThrow(
      'tasks has no index "nope" (its indexes: service, node, desiredState, slot, running, desiredRunning)',
    );
  });
});
