// The store's one-pass normalizer must keep exactly what the reference path
// (protobufjs toObject with defaults, then a frozen deep copy) keeps, for
// objects of every table decoded from the wire as apply sees them.
import { describe, expect, it } from 'vitest';
import { normalize, normalizeByToObject, tableDefs, type TableName, type Tables } from '../../../manager/store/schema.js';
import { Cluster, Meta, Network, Node, NodeRole, Secret, Service, Task, TaskState } from '../../../proto/gen/objects.js';

function deepFrozen(v: unknown): boolean {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return true;
  return Object.isFrozen(v) && Object.values(v).every(deepFrozen);
}

const samples: { [T in TableName]?: Tables[T] } = {
  cluster: Cluster.create({
    meta: Meta.create({ id: 'c', version: 7, createdAt: 1_700_000_000_123 }),
    spec: { name: 'default' } as Cluster['spec'],
  }),
  nodes: Node.create({
    meta: Meta.create({ id: 'n' }),
    spec: { name: 'h1', role: NodeRole.MANAGER, labels: { zone: 'a', rack: '2' } } as unknown as Node['spec'],
  }),
  services: Service.create({
    meta: Meta.create({ id: 's' }),
    spec: {
      name: 'web',
      labels: { a: 'b' },
      replicated: { replicas: 3 },
      task: { container: { image: 'busybox', args: ['sleep', '1d'], env: ['A=1'] }, networks: [{ target: 'n1', aliases: ['x'] }] },
      update: { parallelism: 2, delayMs: 5000, maxFailureRatio: 0.1 },
    } as unknown as Service['spec'],
  }),
  tasks: Task.create({
    meta: Meta.create({ id: 't' }),
    serviceId: 's',
    nodeId: 'n',
    slot: 4,
    desiredState: TaskState.RUNNING,
    status: { state: TaskState.FAILED, message: 'exit 1', exitCode: 1 } as Task['status'],
    networks: [{ networkId: 'n1', addresses: ['10.0.1.5/24'] }] as Task['networks'],
  }),
  networks: Network.create({
    meta: Meta.create({ id: 'w' }),
    spec: { name: 'ov', driver: 'overlay', subnet: '10.0.9.0/24', driverOpts: { mtu: '1450' } } as unknown as Network['spec'],
  }),
  secrets: Secret.create({ meta: Meta.create({ id: 'x' }), spec: { name: 'pw', data: new Uint8Array([1, 2, 3]) } as Secret['spec'] }),
};

describe('store normalize', () => {
  for (const [table, obj] of Object.entries(samples) as Array<[TableName, Tables[TableName]]>) {
    it(`keeps a decoded ${table} object exactly as toObject with defaults would, deeply frozen`, () => {
      const codec = tableDefs[table].codec as unknown as { encode(o: unknown): Uint8Array; decode(b: Uint8Array): Tables[TableName] };
      const decoded = codec.decode(codec.encode(obj));
      const fast = normalize(table, decoded);
      expect(fast).toStrictEqual(normalizeByToObject(table, decoded));
      expect(deepFrozen(fast)).toBe(true);
    });
  }

  it('fills every default of an empty task: always-set sub-messages filled, the others null', () => {
    const decoded = Task.decode(Task.encode(Task.create({ meta: Meta.create({ id: 'e' }) })));
    const t = normalize('tasks', decoded);
    expect(t).toStrictEqual(normalizeByToObject('tasks', decoded));
    expect(t.meta.id).toBe('e');
    expect(t.status.state).toBe(TaskState.NEW);
    expect(t.spec.resources).toBeNull();
    expect(t.networks).toEqual([]);
    expect(t.slot).toBe(0);
  });

  it('rounds a float field as the wire does, so the proposing and the following stores agree', () => {
    const s = samples.services!;
    const direct = normalize('services', s);
    const viaWire = normalize('services', Service.decode(Service.encode(s)));
    expect(direct.spec.update!.maxFailureRatio).toBe(viaWire.spec.update!.maxFailureRatio);
  });
});
