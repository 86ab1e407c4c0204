// The allocator on a Raft-less store: networks get VNI/subnet/gateway, services
// VIPs and ingress ports, NEW tasks addresses before they go PENDING; failures
// (pool exhausted, port taken) stay on the task, which stays NEW until the
// cause goes away; releases on removal; state rebuilt by a new allocator.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Allocator, ALLOCATION_FAILED, type AllocatorOptions, ensureIngressNetwork, parseCidr } from '../../../manager/allocator/index.js';
import { localStore, type MemoryStore } from '../../../manager/store/index.js';
import {
  ContainerSpec,
  EndpointMode,
  Meta,
  Network,
  NetworkSpec,
  Node,
  PortProtocol,
  PublishMode,
  Service,
  ServiceSpec,
  Task,
  TaskSpec,
  TaskState,
} from '../../../proto/gen/objects.js';

const log = pino({ level: 'silent' });
const running: Allocator[] = [];

afterEach(async () => {
  for (const a of running.splice(0)) await a.stop();
});

async function start(store: MemoryStore, o: Partial<AllocatorOptions> = {}): Promise<Allocator> {
  const a = new Allocator({ store, logger: log, ...o });
  running.push(a);
  a.start();
  await settle(a);
  return a;
}

async function settle(a: Allocator): Promise<void> {
  await a.idle();
}

async function addNetwork(store: MemoryStore, name: string, spec: Partial<NetworkSpec> = {}): Promise<string> {
  const id = `net-${name}`;
  await store.update((tx) =>
    tx.networks.create(Network.create({ meta: Meta.create({ id }), spec: NetworkSpec.create({ name, driver: 'overlay', ...spec }) })),
  );
  return id;
}

async function addService(
  store: MemoryStore,
  name: string,
  networks: string[],
  endpoint: ServiceSpec['endpoint'] = null,
): Promise<Service> {
  const s = Service.create({
    meta: Meta.create({ id: `svc-${name}` }),
    spec: ServiceSpec.create({
      name,
      task: TaskSpec.create({
        container: ContainerSpec.create({ image: 'busybox' }),
        networks: networks.map((target) => ({ target, aliases: [] })),
      }),
      endpoint,
    }),
  });
  await store.update((tx) => tx.services.create(s));
  return s;
}

async function addTasks(store: MemoryStore, svc: Service, n: number, from = 1): Promise<string[]> {
  const ids: string[] = [];
  await store.update((tx) => {
    for (let i = from; i < from + n; i++) {
      const id = `${svc.meta.id}-t${i}`;
      ids.push(id);
      tx.tasks.create(
        Task.create({
          meta: Meta.create({ id }),
          serviceId: svc.meta.id,
          serviceName: svc.spec.name,
          slot: i,
          desiredState: TaskState.RUNNING,
          status: { state: TaskState.NEW },
          spec: svc.spec.task,
        } as Partial<Task>),
      );
    }
  });
  return ids;
}

const task = (store: MemoryStore, id: string): Task => store.view((tx) => tx.tasks.get(id))!;
const net = (store: MemoryStore, id: string): Network => store.view((tx) => tx.networks.get(id))!;
const svc = (store: MemoryStore, id: string): Service => store.view((tx) => tx.services.get(id))!;
const ingress = (
  ports: Array<{ published?: number; target: number; protocol?: PortProtocol; mode?: PublishMode }>,
  mode = EndpointMode.VIP,
): ServiceSpec['endpoint'] => ({
  mode,
  ports: ports.map((p) => ({
    name: '',
    protocol: p.protocol ?? PortProtocol.TCP,
    targetPort: p.target,
    publishedPort: p.published ?? 0,
    publishMode: p.mode ?? PublishMode.INGRESS,
  })),
});

describe('network allocation', () => {
  it('gives a new network a VNI from 4096, the first free /24 of 10.0.0.0/8 and its first address as gateway', async () => {
    const store = localStore();
    const a = await start(store);
    const id = await addNetwork(store, 'backend');
    await settle(a);
    expect(net(store, id).status).toEqual({ vni: 4096, subnet: '10.0.0.0/24', gateway: '10.0.0.1', message: '' });
    const id2 = await addNetwork(store, 'front');
    await settle(a);
    expect(net(store, id2).status).toEqual({ vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1', message: '' });
  });

  it('honours a given subnet and gateway, and skips them for later default subnets', async () => {
    const store = localStore();
    const a = await start(store);
    const given = await addNetwork(store, 'given', { subnet: '10.0.0.0/16', gateway: '10.0.0.254' });
    const other = await addNetwork(store, 'other');
    await settle(a);
    expect(net(store, given).status).toMatchObject({ subnet: '10.0.0.0/16', gateway: '10.0.0.254' });
    expect(net(store, other).status!.subnet).toBe('10.1.0.0/24');
  });

  it('shows a failed network allocation in status.message, writes it once, and allocates when a subnet is freed', async () => {
    const store = localStore();
    const a = await start(store, { pool: parseCidr('pool', '10.9.0.0/24'), subnetBits: 24 });
    const first = await addNetwork(store, 'first');
    await settle(a);
    const second = await addNetwork(store, 'second');
    await settle(a);
    const st = net(store, second).status!;
    expect(st.vni).toBe(0);
    expect(st.message).toMatch(/allocation failed: the default address pool 10.9.0.0\/24 has no free \/24 subnet left/);
    const index = store.appliedIndex;
    await settle(a);
    expect(store.appliedIndex).toBe(index);
    await store.update((tx) => tx.networks.delete(net(store, first)));
    await settle(a);
    expect(net(store, second).status).toMatchObject({ subnet: '10.9.0.0/24', message: '' });
  });
});

describe('service and task allocation', () => {
  it('gives the service a VIP and each NEW task an address on its network before PENDING', async () => {
    const store = localStore();
    const a = await start(store);
    const nid = await addNetwork(store, 'backend');
    await settle(a);
    const s = await addService(store, 'web', [nid]);
    const ids = await addTasks(store, s, 3);
    await settle(a);
    const vips = svc(store, s.meta.id).endpoint!.virtualIps;
    expect(vips).toEqual([{ networkId: nid, addr: '10.0.0.2/24' }]);
    const addrs = ids
      .map((id) => task(store, id))
      .map((t) => {
        expect(t.status.state).toBe(TaskState.PENDING);
        expect(t.networks).toHaveLength(1);
        expect(t.networks[0]!.networkId).toBe(nid);
        return t.networks[0]!.addresses[0];
      });
    expect(new Set([...addrs, '10.0.0.1/24', '10.0.0.2/24']).size).toBe(5);
    expect(addrs.every((x) => /^10\.0\.0\.\d+\/24$/.test(x!))).toBe(true);
  });

  it('a service without networks or ports gets no endpoint and its tasks go PENDING without attachments', async () => {
    const store = localStore();
    const a = await start(store);
    const s = await addService(store, 'plain', []);
    const [id] = await addTasks(store, s, 1);
    await settle(a);
    expect(svc(store, s.meta.id).endpoint ?? null).toBeNull();
    expect(task(store, id!).status.state).toBe(TaskState.PENDING);
    expect(task(store, id!).networks).toEqual([]);
  });

  it('dnsrr services get no VIP', async () => {
    const store = localStore();
    const a = await start(store);
    const nid = await addNetwork(store, 'backend');
    await settle(a);
    const s = await addService(store, 'db', [nid], { mode: EndpointMode.DNSRR, ports: [] });
    await addTasks(store, s, 1);
    await settle(a);
    expect(svc(store, s.meta.id).endpoint!.virtualIps).toEqual([]);
  });

  it('an ingress-published port gets a port from 30000 when none is given, a VIP on ingress, and its tasks join ingress', async () => {
    const store = localStore();
    const a = await start(store);
    const ing = (await ensureIngressNetwork(store, log))!;
    const nid = await addNetwork(store, 'backend');
    await settle(a);
    expect(net(store, ing.meta!.id).status!.subnet).toBe('10.0.0.0/24');
    const s = await addService(
      store,
      'web',
      [nid],
      ingress([
        { target: 80 },
        { published: 8080, target: 81, protocol: PortProtocol.UDP },
        { published: 9000, target: 90, mode: PublishMode.HOST },
      ]),
    );
    const [tid] = await addTasks(store, s, 1);
    await settle(a);
    const ep = svc(store, s.meta.id).endpoint!;
    expect(ep.ports.map((p) => [p.publishedPort, p.targetPort, p.protocol, p.publishMode])).toEqual([
      [30000, 80, PortProtocol.TCP, PublishMode.INGRESS],
      [8080, 81, PortProtocol.UDP, PublishMode.INGRESS],
      [9000, 90, PortProtocol.TCP, PublishMode.HOST],
    ]);
    expect(ep.virtualIps.map((v) => v.networkId)).toEqual([nid, ing.meta.id]);
    expect(task(store, tid!).networks.map((n) => n.networkId)).toEqual([nid, ing.meta.id]);
    // The service written again with the same spec keeps its dynamic port.
    await store.update((tx) => tx.services.update(Service.create({ ...svc(store, s.meta.id), spec: { ...s.spec, labels: { x: '1' } } })));
    await settle(a);
    expect(svc(store, s.meta.id).endpoint!.ports[0]!.publishedPort).toBe(30000);
  });

  it('a published port taken by another service leaves the tasks NEW with the reason, until the other service goes', async () => {
    const store = localStore();
    const a = await start(store);
    await ensureIngressNetwork(store, log);
    await settle(a);
    const first = await addService(store, 'first', [], ingress([{ published: 8080, target: 80 }]));
    await settle(a);
    const second = await addService(store, 'second', [], ingress([{ published: 8080, target: 80 }]));
    const [tid] = await addTasks(store, second, 1);
    await settle(a);
    const t = task(store, tid!);
    expect(t.status.state).toBe(TaskState.NEW);
    expect(t.status.message).toBe(ALLOCATION_FAILED);
    expect(t.status.err).toMatch(/service second: published port 8080\/tcp is already in use by service first/);
    await store.update((tx) => tx.services.delete(svc(store, first.meta.id)));
    await settle(a);
    expect(task(store, tid!).status).toMatchObject({ state: TaskState.PENDING, err: '' });
    expect(svc(store, second.meta.id).endpoint!.ports[0]!.publishedPort).toBe(8080);
  });

  it("an exhausted subnet leaves the extra task NEW with the reason, and a dead task's address goes to it", async () => {
    const store = localStore();
    const a = await start(store);
    // /29: 6 usable addresses: the gateway, the VIP and 4 tasks.
    const nid = await addNetwork(store, 'small', { subnet: '10.50.0.0/29' });
    await settle(a);
    const s = await addService(store, 'web', [nid]);
    const ids = await addTasks(store, s, 5);
    await settle(a);
    const states = ids.map((id) => task(store, id).status.state);
    expect(states.filter((x) => x === TaskState.PENDING)).toHaveLength(4);
    const stuck = ids.find((id) => task(store, id).status.state === TaskState.NEW)!;
    expect(task(store, stuck).status.err).toMatch(/no free address left/);
    const index = store.appliedIndex;
    await settle(a);
    expect(store.appliedIndex, 'a failure is written once, not in a loop').toBe(index);
    // One task ends for good: its address is free for the waiting one.
    const gone = task(store, ids.find((id) => id !== stuck)!);
    await store.update((tx) =>
      tx.tasks.update(Task.create({ ...gone, desiredState: TaskState.SHUTDOWN, status: { ...gone.status, state: TaskState.SHUTDOWN } })),
    );
    await settle(a);
    const now = task(store, stuck);
    expect(now.status.state).toBe(TaskState.PENDING);
    expect(now.networks[0]!.addresses[0]).toBe(gone.networks[0]!.addresses[0]);
  });

  it("a new leader (another store restored from this one's snapshot) rebuilds what is handed out and never hands an address out twice", async () => {
    const old = localStore();
    const a = await start(old);
    const nid = await addNetwork(old, 'backend');
    await settle(a);
    const s = await addService(old, 'web', [nid], ingress([{ target: 80 }]));
    await ensureIngressNetwork(old, log);
    const first = await addTasks(old, s, 3);
    await settle(a);
    await a.stop();
    const store = localStore();
    store.restore(old.snapshot(), old.appliedIndex);
    const b = await start(store);
    const s2 = await addService(store, 'api', [nid], ingress([{ target: 80 }]));
    const second = await addTasks(store, s2, 3);
    await settle(b);
    const addrs = [...first, ...second].flatMap((id) => task(store, id).networks.flatMap((n) => n.addresses));
    const vips = [s, s2].flatMap((x) => svc(store, x.meta.id).endpoint!.virtualIps.map((v) => v.addr));
    expect(addrs).toHaveLength(12);
    expect(new Set([...addrs, ...vips]).size).toBe(addrs.length + vips.length);
    expect(new Set([s, s2].map((x) => svc(store, x.meta.id).endpoint!.ports[0]!.publishedPort)).size).toBe(2);
    expect(b.allocations.network(nid)!.used).toBe(1 + 2 + 6);
  });

  it("gives back a removed service's VIP and ports and a deleted task's address", async () => {
    const store = localStore();
    const a = await start(store);
    await ensureIngressNetwork(store, log);
    const nid = await addNetwork(store, 'backend');
    await settle(a);
    const s = await addService(store, 'web', [nid], ingress([{ published: 8080, target: 80 }]));
    const [tid] = await addTasks(store, s, 1);
    await settle(a);
    expect(a.allocations.network(nid)!.used).toBe(3);
    await store.update((tx) => tx.tasks.delete(task(store, tid!)));
    expect(a.allocations.network(nid)!.used).toBe(2);
    await store.update((tx) => tx.services.delete(svc(store, s.meta.id)));
    expect(a.allocations.network(nid)!.used).toBe(1);
    expect(a.allocations.ports[PortProtocol.TCP].owner(8080)).toBeUndefined();
  });

  it('a task whose network was removed stays NEW naming it', async () => {
    const store = localStore();
    const a = await start(store);
    const s = await addService(store, 'web', ['nowhere']);
    const [tid] = await addTasks(store, s, 1);
    await settle(a);
    expect(task(store, tid!).status).toMatchObject({ state: TaskState.NEW, message: ALLOCATION_FAILED });
    expect(task(store, tid!).status.err).toMatch(/network "nowhere" not found/);
  });
});

describe('ingress network', () => {
  it('is created once, as an overlay flagged ingress', async () => {
    const store = localStore();
    const n = await ensureIngressNetwork(store, log);
    await ensureIngressNetwork(store, log);
    expect(store.view((tx) => tx.networks.list())).toHaveLength(1);
    expect(n!.spec).toMatchObject({ name: 'ingress', driver: 'overlay', ingress: true });
  });
});

describe('node ingress endpoints', () => {
  it('every node gets its own address on the ingress network, kept across a new leader and given back when the node is removed', async () => {
    const store = localStore();
    await store.update((tx) => {
      for (const id of ['n1', 'n2']) tx.nodes.create(Node.create({ meta: Meta.create({ id }) }));
    });
    const ing = (await ensureIngressNetwork(store, log))!;
    const a = await start(store);
    const addr = (id: string): string | undefined =>
      store.view((tx) => tx.nodes.get(id))!.attachments.find((x) => x.networkId === ing.meta.id)?.addresses[0];
    const [a1, a2] = [addr('n1'), addr('n2')];
    expect(a1).toMatch(/^10\.0\.0\.\d+\/24$/);
    expect(a2).toMatch(/^10\.0\.0\.\d+\/24$/);
    expect(a1).not.toBe(a2);
    // A task on ingress never gets a node's address.
    const svc = await addService(store, 'api', [], ingress([{ target: 80 }]));
    const [tid] = await addTasks(store, svc, 1);
    await settle(a);
    const taskAddr = task(store, tid!).networks.find((x) => x.networkId === ing.meta.id)!.addresses[0];
    expect([a1, a2]).not.toContain(taskAddr);
    // A new leader keeps them (no change), and a removed node's address is free again.
    await a.stop();
    const b = await start(store);
    expect([addr('n1'), addr('n2')]).toEqual([a1, a2]);
    const used = b.allocations.network(ing.meta.id)!.used;
    const n2 = store.view((tx) => tx.nodes.get('n2'))!;
    await store.update((tx) => tx.nodes.delete(n2));
    await settle(b);
    expect(b.allocations.network(ing.meta.id)!.used).toBe(used - 1);
  });
});
