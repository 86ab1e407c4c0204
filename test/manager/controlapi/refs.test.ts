// Reference lookup as Docker does it (full id, then name, then unique id
// prefix), for nodes, services, networks and tasks, against a Raft-less store:
// ambiguous names and prefixes list every match, nothing found names the ref.
import { describe, expect, it } from 'vitest';
import { findNetwork, findNode, findService, findTask } from '../../../manager/controlapi/index.js';
import { localStore, type MemoryStore, type ReadTx } from '../../../manager/store/index.js';
import {
  ContainerSpec,
  Meta,
  Network,
  NetworkSpec,
  Node,
  NodeDescription,
  NodeSpec,
  Service,
  ServiceSpec,
  Task,
  TaskSpec,
} from '../../../proto/gen/objects.js';
import { errorOf } from '../../errors.js';

const svc = (id: string, name: string): Service =>
  Service.create({
    meta: Meta.create({ id }),
    spec: ServiceSpec.create({ name, task: TaskSpec.create({ container: ContainerSpec.create({ image: 'busybox' }) }) }),
  });
const net = (id: string, name: string): Network =>
  Network.create({ meta: Meta.create({ id }), spec: NetworkSpec.create({ name, driver: 'overlay' }) });
const node = (id: string, name: string, hostname = name): Node =>
  Node.create({ meta: Meta.create({ id }), spec: NodeSpec.create({ name }), description: NodeDescription.create({ hostname }) });
const task = (id: string, s: Service, slot: number, nodeId = 'n1'): Task =>
  Task.create({ meta: Meta.create({ id }), serviceId: s.meta.id, serviceName: s.spec.name, slot, nodeId });

async function seed(): Promise<MemoryStore> {
  const store = localStore();
  const web = svc('abc111', 'web');
  await store.update((tx) => {
    tx.services.create(web);
    tx.services.create(svc('abc222', 'api'));
    // A service whose name is another's id: the id wins, as in Docker.
    tx.services.create(svc('zzz999', 'abc222'));
    // A name that is also the start of other ids: the name wins over the prefix.
    tx.services.create(svc('qqq000', 'abc'));
    tx.networks.create(net('net111', 'front'));
    tx.networks.create(net('net222', 'back'));
    tx.nodes.create(node('node1aaa', 'worker'));
    tx.nodes.create(node('node1bbb', 'worker'));
    tx.nodes.create(node('node2ccc', 'lonely', 'lonely-host'));
    tx.tasks.create(task('tsk111', web, 1));
    tx.tasks.create(task('tsk112', web, 2));
  });
  return store;
}

const view = <T>(store: MemoryStore, fn: (tx: ReadTx) => T): T => store.view(fn);

describe('reference lookup', () => {
  it('takes a full id before a name that equals it', async () => {
    const store = await seed();
    expect(view(store, (tx) => findService(tx, 'abc222')).spec.name).toBe('api');
  });

  it('takes an exact name (without case for services and networks) before an id prefix', async () => {
    const store = await seed();
    expect(view(store, (tx) => findService(tx, 'abc')).meta.id).toBe('qqq000');
    expect(view(store, (tx) => findService(tx, 'WEB')).meta.id).toBe('abc111');
    expect(view(store, (tx) => findNetwork(tx, 'Front')).meta.id).toBe('net111');
  });

  it('takes a unique id prefix when no id or name matches', async () => {
    const store = await seed();
    expect(view(store, (tx) => findService(tx, 'abc1')).spec.name).toBe('web');
    expect(view(store, (tx) => findNetwork(tx, 'net2')).spec.name).toBe('back');
    expect(view(store, (tx) => findNode(tx, 'node2')).spec.name).toBe('lonely');
    expect(view(store, (tx) => findTask(tx, 'tsk112')).slot).toBe(2);
  });

  it('refuses an ambiguous id prefix, listing every match with its id and name', async () => {
    const store = await seed();
    const e = errorOf(() => view(store, (tx) => findNetwork(tx, 'net')));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/network reference "net" is ambiguous/);
    expect(e.message).toContain('net111 (front)');
    expect(e.message).toContain('net222 (back)');
    const t = errorOf(() => view(store, (tx) => findTask(tx, 'tsk11')));
    expect(t.message).toContain('tsk111 (web.1)');
    expect(t.message).toContain('tsk112 (web.2)');
  });

  it('refuses a node name two nodes share, listing both ids, rather than picking the first', async () => {
    const store = await seed();
    const e = errorOf(() => view(store, (tx) => findNode(tx, 'worker')));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/2 nodes have that name/);
    expect(e.message).toContain('node1aaa (worker)');
    expect(e.message).toContain('node1bbb (worker)');
    // Each stays reachable by id or unique prefix.
    expect(view(store, (tx) => findNode(tx, 'node1b')).meta.id).toBe('node1bbb');
  });

  it('finds a node by its hostname as well as its name', async () => {
    const store = await seed();
    expect(view(store, (tx) => findNode(tx, 'lonely-host')).meta.id).toBe('node2ccc');
  });

  it('finds a task by its Docker name service.slot.id', async () => {
    const store = await seed();
    expect(view(store, (tx) => findTask(tx, 'web.2.tsk112')).meta.id).toBe('tsk112');
  });

  it('answers NOT_FOUND naming the reference when nothing matches, and INVALID_ARGUMENT for an empty one', async () => {
    const store = await seed();
    for (const [what, fn] of [
      ['service', findService],
      ['network', findNetwork],
      ['node', findNode],
      ['task', findTask],
    ] as const) {
      const e = errorOf(() => view(store, (tx) => fn(tx, 'nothing-like-it')));
      expect(e.code).toBe('NOT_FOUND');
      expect(e.message).toContain(`${what} nothing-like-it not found`);
      expect(errorOf(() => view(store, (tx) => fn(tx, ''))).code).toBe('INVALID_ARGUMENT');
    }
  });

  it('lists at most eight matches and counts the rest', async () => {
    const store = localStore();
    await store.update((tx) => {
      for (let i = 0; i < 12; i++) tx.networks.create(net(`many${String(i).padStart(2, '0')}`, `n${i}`));
    });
    const e = errorOf(() => view(store, (tx) => findNetwork(tx, 'many')));
    expect(e.message).toMatch(/12 ids/);
    expect(e.message).toMatch(/and 4 more/);
  });
});
