// The dispatcher's network feed on a store without Raft: a node gets the full
// state of the networks its tasks use (endpoints cluster-wide with their VTEPs,
// services with VIPs), then only changes, and a removal when it no longer
// needs a network; the ingress network goes to every node while a service
// publishes through the routing mesh.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { NetworkFeed, macOfIp } from '../../../manager/dispatcher/networks.js';
import { localStore, type MemoryStore } from '../../../manager/store/index.js';
import type { NetworkUpdate } from '../../../proto/gen/netfeed.js';
import { EndpointMode, Meta, Network, Node, PublishMode, Service, Task, TaskState, TaskStatus } from '../../../proto/gen/objects.js';

const log = pino({ level: 'silent' });

const node = (id: string, addr: string): Node =>
  Node.create({ meta: Meta.create({ id }), status: { state: 1, message: '', addr } as Node['status'] });
const net = (id: string, subnet: string, ingress = false): Network =>
  Network.create({
    meta: Meta.create({ id }),
    spec: { name: id, driver: 'overlay', ingress } as unknown as Network['spec'],
    status: { vni: 4096, subnet, gateway: subnet.replace(/0\/24$/, '1'), message: '' },
  });
const svc = (id: string, vips: Array<[string, string]>, opts: { dnsrr?: boolean; publish?: number } = {}): Service =>
  Service.create({
    meta: Meta.create({ id }),
    spec: {
      name: id,
      endpoint: { mode: opts.dnsrr ? EndpointMode.DNSRR : EndpointMode.VIP, ports: [] },
      task: { networks: vips.map(([n]) => ({ target: n, aliases: [] })) },
    } as unknown as Service['spec'],
    endpoint: {
      spec: null,
      ports: opts.publish ? [{ name: '', protocol: 0, targetPort: 80, publishedPort: opts.publish, publishMode: PublishMode.INGRESS }] : [],
      virtualIps: vips.map(([networkId, addr]) => ({ networkId, addr })),
    } as unknown as Service['endpoint'],
  });
const task = (id: string, service: string, nodeId: string, addrs: Array<[string, string]>, state = TaskState.RUNNING): Task =>
  Task.create({
    meta: Meta.create({ id }),
    serviceId: service,
    serviceName: service,
    nodeId,
    slot: 1,
    desiredState: TaskState.RUNNING,
    status: TaskStatus.create({ state }),
    networks: addrs.map(([networkId, a]) => ({ networkId, addresses: [a], aliases: [] })),
  });

async function setup(): Promise<{ store: MemoryStore; feed: NetworkFeed; got: Map<string, NetworkUpdate[]> }> {
  const store = localStore();
  await store.update((tx) => {
    tx.nodes.create(node('n1', '10.77.0.1:4242'));
    tx.nodes.create(node('n2', '10.77.0.2:4242'));
    tx.nodes.create(node('n3', '10.77.0.3:4242'));
    tx.networks.create(net('front', '10.0.1.0/24'));
    tx.networks.create(net('back', '10.0.2.0/24'));
    tx.services.create(svc('web', [['front', '10.0.1.2/24']]));
    tx.tasks.create(task('w1', 'web', 'n1', [['front', '10.0.1.3/24']]));
    tx.tasks.create(task('w2', 'web', 'n2', [['front', '10.0.1.4/24']]));
  });
  const feed = new NetworkFeed(store, log);
  const got = new Map<string, NetworkUpdate[]>();
  for (const n of ['n1', 'n2', 'n3']) {
    got.set(n, []);
    feed.attach(n, (u) => got.get(n)!.push(u));
  }
  return { store, feed, got };
}

describe('network feed', () => {
  it('sends a node the whole state of the networks its tasks use, and nothing to a node without tasks there', async () => {
    const { got } = await setup();
    const first = got.get('n1')![0]!;
    expect(first.reset).toBe(true);
    expect(first.networks.map((n) => n.network!.meta!.id)).toEqual(['front']);
    const front = first.networks[0]!;
    expect(front.full).toBe(true);
    expect(front.endpoints.map((e) => [e.taskId, e.ip, e.mac, e.vtep, e.serving])).toEqual([
      ['w1', '10.0.1.3', '02:42:0a:00:01:03', '10.77.0.1', true],
      ['w2', '10.0.1.4', '02:42:0a:00:01:04', '10.77.0.2', true],
    ]);
    expect(front.services.map((s) => [s.serviceId, s.vip])).toEqual([['web', '10.0.1.2']]);
    expect(got.get('n3')![0]!.networks).toEqual([]);
  });

  it('a task being shut down stops serving at once but stays programmed until its container has stopped', async () => {
    const { store, got } = await setup();
    const w2 = store.view((tx) => tx.tasks.get('w2'))!;
    await store.update((tx) => tx.tasks.update(Task.create({ ...w2, desiredState: TaskState.SHUTDOWN })));
    for (const n of ['n1', 'n2']) {
      const u = got.get(n)!.at(-1)!;
      expect(u.reset).toBe(false);
      expect(u.removedNetworks).toEqual([]);
      expect(u.networks).toHaveLength(1);
      expect(u.networks[0]!.full).toBe(false);
      expect(u.networks[0]!.endpoints.map((e) => [e.taskId, e.serving])).toEqual([['w2', false]]);
    }
    const w2b = store.view((tx) => tx.tasks.get('w2'))!;
    await store.update((tx) => tx.tasks.update(Task.create({ ...w2b, status: TaskStatus.create({ state: TaskState.SHUTDOWN }) })));
    expect(got.get('n1')!.at(-1)!.networks[0]!.removedEndpoints).toEqual(['w2']);
    expect(got.get('n2')!.at(-1)!.removedNetworks).toEqual(['front']);
    expect(got.get('n3')!).toHaveLength(1);
  });

  it('a task waiting for its first healthy check (STARTING) is programmed but no VIP backend; it serves once RUNNING healthy, and stops serving when unhealthy', async () => {
    const { store, got } = await setup();
    const status = (state: TaskState, health: string) => TaskStatus.create({ state, health });
    const n2 = got.get('n2')!;
    const w3 = task('w3', 'web', 'n2', [['front', '10.0.1.5/24']], TaskState.STARTING);
    await store.update((tx) => tx.tasks.create(Task.create({ ...w3, status: status(TaskState.STARTING, 'starting') })));
    expect(n2.at(-1)!.networks[0]!.endpoints.map((e) => [e.taskId, e.ip, e.serving])).toEqual([['w3', '10.0.1.5', false]]);
    // A STARTING task found unhealthy (its container about to stop) still is not one.
    const write = async (s: TaskStatus) => {
      const cur = store.view((tx) => tx.tasks.get('w3'))!;
      await store.update((tx) => tx.tasks.update(Task.create({ ...cur, status: s })));
      return n2.at(-1)!.networks[0]!.endpoints.map((e) => [e.taskId, e.serving]);
    };
    expect(await write(status(TaskState.STARTING, 'unhealthy'))).toEqual([['w3', false]]);
    expect(await write(status(TaskState.RUNNING, 'healthy'))).toEqual([['w3', true]]);
    expect(await write(status(TaskState.RUNNING, 'unhealthy'))).toEqual([['w3', false]]);
  });

  it('tells a node to remove a network once its last task there ends, and sends the full state to a node whose first task arrives', async () => {
    const { store, got } = await setup();
    const w2 = store.view((tx) => tx.tasks.get('w2'))!;
    await store.update((tx) => {
      tx.tasks.update(Task.create({ ...w2, status: TaskStatus.create({ state: TaskState.FAILED }) }));
      tx.tasks.create(task('w3', 'web', 'n3', [['front', '10.0.1.5/24']], TaskState.ASSIGNED));
    });
    const n2 = got.get('n2')!.at(-1)!;
    expect(n2.removedNetworks).toEqual(['front']);
    const n3 = got.get('n3')!.at(-1)!;
    expect(n3.networks[0]!.full).toBe(true);
    expect(n3.networks[0]!.endpoints.map((e) => [e.taskId, e.serving])).toEqual([
      ['w1', true],
      ['w3', false],
    ]);
    const n1 = got.get('n1')!.at(-1)!;
    expect(n1.networks[0]!.removedEndpoints).toEqual(['w2']);
    expect(n1.networks[0]!.endpoints.map((e) => e.taskId)).toEqual(['w3']);
  });

  it('moves the endpoints of a node whose address changed', async () => {
    const { store, got } = await setup();
    const n2 = store.view((tx) => tx.nodes.get('n2'))!;
    await store.update((tx) => tx.nodes.update(Node.create({ ...n2, status: { ...n2.status, addr: '10.77.0.9:4242' } })));
    const u = got.get('n1')!.at(-1)!;
    expect(u.networks[0]!.endpoints.map((e) => [e.taskId, e.vtep])).toEqual([['w2', '10.77.0.9']]);
  });

  it('sends the ingress network to every node once a service publishes a port through the mesh', async () => {
    const { store, got } = await setup();
    await store.update((tx) => {
      tx.networks.create(net('ingress', '10.0.0.0/24', true));
      tx.services.create(svc('api', [['ingress', '10.0.0.2/24']], { publish: 8080 }));
    });
    for (const n of ['n1', 'n2', 'n3']) {
      const u = got.get(n)!.at(-1)!;
      const ing = u.networks.find((x) => x.network!.meta!.id === 'ingress')!;
      expect(ing.full).toBe(true);
      expect(ing.services.map((s) => [s.serviceId, s.vip, s.ports[0]!.publishedPort])).toEqual([['api', '10.0.0.2', 8080]]);
    }
  });

  it("sends each node's ingress address as an endpoint of the ingress network, so the mesh's replies find their way back", async () => {
    const { store, got } = await setup();
    await store.update((tx) => {
      tx.networks.create(net('ingress', '10.0.0.0/24', true));
      tx.services.create(svc('api', [['ingress', '10.0.0.2/24']], { publish: 8080 }));
      const n3 = tx.nodes.get('n3')!;
      tx.nodes.update(Node.create({ ...n3, attachments: [{ networkId: 'ingress', addresses: ['10.0.0.250/24'], aliases: [] }] }));
    });
    const ing = got
      .get('n1')!
      .at(-1)!
      .networks.find((x) => x.network!.meta!.id === 'ingress')!;
    expect(ing.endpoints.map((e) => [e.taskId, e.ip, e.vtep, e.serving])).toEqual([['node:n3', '10.0.0.250', '10.77.0.3', false]]);
  });

  it('gives a dnsrr service no VIP, and drops a removed service from its networks', async () => {
    const { store, got } = await setup();
    await store.update((tx) => tx.services.create(svc('rr', [['front', '10.0.1.9/24']], { dnsrr: true })));
    const u = got.get('n1')!.at(-1)!;
    expect(u.networks[0]!.services.map((s) => [s.serviceId, s.vip, s.mode])).toEqual([['rr', '', EndpointMode.DNSRR]]);
    const rr = store.view((tx) => tx.services.get('rr'))!;
    await store.update((tx) => tx.services.delete(rr));
    expect(got.get('n1')!.at(-1)!.networks[0]!.removedServices).toEqual(['rr']);
  });

  it('derives MACs as the agents do', () => {
    expect(macOfIp('10.0.1.255')).toBe('02:42:0a:00:01:ff');
  });
});
