// NetworkApi and the network checks of services on a Raft-less store: each bad
// field is refused naming it (and nothing is stored), --opt encrypted is
// refused saying why, rm is refused while services use the network, names
// given to --network are stored as ids, a published port is one service's.
import { describe, expect, it } from 'vitest';
import { ensureIngressNetwork } from '../../../manager/allocator/index.js';
import { needsAllocation } from '../../../manager/orchestrator/context.js';
import { NetworkApi, ServiceApi } from '../../../manager/controlapi/index.js';
import { validateNetworkSpec, validateServiceSpec } from '../../../spec/index.js';
import { localStore, type MemoryStore } from '../../../manager/store/index.js';
import { silentLogger } from '../../../lib/log.js';
import {
  ContainerSpec,
  EndpointMode,
  Meta,
  NetworkSpec,
  PortProtocol,
  PublishMode,
  ServiceSpec,
  Task,
  TaskSpec,
  TaskState,
  TaskStatus,
} from '../../../proto/gen/objects.js';

function setup(): { store: MemoryStore; nets: NetworkApi; svcs: ServiceApi } {
  const store = localStore();
  return {
    store,
    nets: new NetworkApi({ store, logger: silentLogger(), now: () => 1_000 }),
    svcs: new ServiceApi({ store, logger: silentLogger() }),
  };
}

const nspec = (name: string, o: Partial<NetworkSpec> = {}): NetworkSpec => NetworkSpec.create({ name, ...o });

const port = (published: number, target: number, o: { protocol?: PortProtocol; mode?: PublishMode } = {}) => ({
  name: '',
  protocol: o.protocol ?? PortProtocol.TCP,
  targetPort: target,
  publishedPort: published,
  publishMode: o.mode ?? PublishMode.INGRESS,
});

const sspec = (name: string, networks: string[] = [], ports: ReturnType<typeof port>[] = [], mode = EndpointMode.VIP): ServiceSpec =>
  ServiceSpec.create({
    name,
    task: TaskSpec.create({
      container: ContainerSpec.create({ image: 'busybox' }),
      networks: networks.map((target) => ({ target, aliases: [] })),
    }),
    endpoint: ports.length || mode !== EndpointMode.VIP ? { mode, ports } : null,
  });

async function refused(p: Promise<unknown> | (() => unknown)): Promise<{ code: string; message: string }> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
  throw new Error('expected a refusal');
}

describe('validateNetworkSpec', () => {
  it('defaults the driver to overlay and keeps the rest', () => {
    const s = validateNetworkSpec(nspec('backend', { subnet: '10.20.0.0/16', gateway: '10.20.0.254', attachable: true }));
    expect(s).toMatchObject({ name: 'backend', driver: 'overlay', subnet: '10.20.0.0/16', gateway: '10.20.0.254', attachable: true });
  });

  it.each([
    [nspec(''), /^spec.name is required/],
    [nspec('bad name'), /^spec.name "bad name" is not valid/],
    [nspec('ingress'), /^spec.name "ingress" is kept for the routing mesh's network: add --ingress/],
    [nspec('n', { driver: 'bridge' }), /^spec.driver "bridge" is not supported: cluster networks are overlays \(-d overlay\)/],
    [nspec('none'), /^spec.name "none" is a pre-defined network name \(none, host and bridge name each node's own networks/],
    [nspec('Host'), /^spec.name "Host" is a pre-defined network name/],
    [nspec('bridge'), /^spec.name "bridge" is a pre-defined network name/],
    [nspec('n', { driverOpts: { mtu: '1400' } }), /^spec.driverOpts.mtu \(--opt mtu\): unknown option/],
    [nspec('n', { subnet: '10.0.0.0' }), /^spec.subnet \(--subnet\) "10.0.0.0" is not an IPv4 subnet/],
    [
      nspec('n', { subnet: '10.0.0.5/24' }),
      /^spec.subnet \(--subnet\) "10.0.0.5\/24" has host bits set: write the network address, 10.0.0.0\/24/,
    ],
    [nspec('n', { subnet: '10.0.0.0/30' }), /prefix length must be from \/8 to \/29/],
    [nspec('n', { gateway: '10.0.0.1' }), /^spec.gateway \(--gateway\) needs a subnet: give --subnet too/],
    [
      nspec('n', { subnet: '10.0.0.0/24', gateway: '10.0.1.1' }),
      /^spec.gateway \(--gateway\) 10.0.1.1 is not inside the subnet 10.0.0.0\/24/,
    ],
    [
      nspec('n', { subnet: '10.0.0.0/24', gateway: '10.0.0.255' }),
      /is the broadcast address of 10.0.0.0\/24: give a host address, e.g. 10.0.0.1/,
    ],
    [nspec('n', { subnet: '10.0.0.0/24', gateway: 'ten' }), /^spec.gateway \(--gateway\) "ten" is not an IPv4 address/],
    [nspec('n', { vni: 2 ** 24 }), /^spec.vni must be from 1 to 16777215/],
    [nspec('ingress', { ingress: true, attachable: true }), /^spec.attachable \(--attachable\) cannot be set on the ingress network/],
  ])('refuses %j naming the field', async (s, re) => {
    const e = await refused(() => validateNetworkSpec(s));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(re);
  });

  it('refuses --opt encrypted saying the kernel has neither IPsec ESP nor WireGuard and encryption comes later', async () => {
    const e = await refused(() => validateNetworkSpec(nspec('secure', { driverOpts: { encrypted: '' } })));
    expect(e.message).toMatch(/^spec.driverOpts.encrypted \(--opt encrypted\): /);
    expect(e.message).toMatch(/neither IPsec ESP nor WireGuard/);
    expect(e.message).toMatch(/later release/);
  });
});

describe('NetworkApi', () => {
  it('creates a network with an id and finds it by name, id prefix and id', async () => {
    const { nets } = setup();
    const r = await nets.createNetwork({ spec: nspec('backend') });
    const id = r.network.meta.id;
    expect(id).toMatch(/^[0-9a-z]{25}$/);
    expect(r.network.spec.driver).toBe('overlay');
    expect(r.services).toEqual([]);
    for (const ref of ['backend', 'BACKEND', id, id.slice(0, 6)]) expect((await nets.getNetwork({ ref })).network.meta.id).toBe(id);
    expect((await refused(nets.getNetwork({ ref: 'nope' }))).message).toMatch(/network nope not found: see `tsswarm network ls`/);
  });

  it('stores nothing for a refused request', async () => {
    const { store, nets } = setup();
    await refused(nets.createNetwork({ spec: nspec('secure', { driverOpts: { encrypted: 'true' } }) }));
    await refused(nets.createNetwork({ spec: nspec('x', { subnet: 'nonsense' }) }));
    await refused(nets.createNetwork({ spec: null }));
    expect(store.view((tx) => tx.networks.count())).toBe(0);
  });

  it('refuses a name taken, a subnet overlapping another network, a second ingress', async () => {
    const { store, nets } = setup();
    await nets.createNetwork({ spec: nspec('a', { subnet: '10.30.0.0/16' }) });
    expect((await refused(nets.createNetwork({ spec: nspec('A') }))).code).toBe('ALREADY_EXISTS');
    const ov = await refused(nets.createNetwork({ spec: nspec('b', { subnet: '10.30.5.0/24' }) }));
    expect(ov.message).toMatch(/^spec.subnet \(--subnet 10.30.5.0\/24\): overlaps 10.30.0.0\/16 of network a/);
    await ensureIngressNetwork(store, silentLogger());
    const ing = await refused(nets.createNetwork({ spec: nspec('ingress', { ingress: true }) }));
    expect(ing.message).toMatch(/already has an ingress network \(ingress/);
    expect(store.view((tx) => tx.networks.count())).toBe(2);
  });

  it('lists networks by name', async () => {
    const { nets } = setup();
    for (const n of ['zeta', 'alpha', 'mid']) await nets.createNetwork({ spec: nspec(n) });
    expect((await nets.listNetworks()).networks.map((n) => n.spec.name)).toEqual(['alpha', 'mid', 'zeta']);
  });

  it('refuses rm while services use the network, naming them, and removes it once they are gone', async () => {
    const { store, nets, svcs } = setup();
    await nets.createNetwork({ spec: nspec('backend') });
    await svcs.createService({ spec: sspec('web', ['backend']) });
    await svcs.createService({ spec: sspec('api', ['backend']) });
    const e = await refused(nets.removeNetwork({ ref: 'backend' }));
    expect(e.code).toBe('FAILED_PRECONDITION');
    expect(e.message).toMatch(
      /network backend is in use by services api, web: remove them, or detach them \(`tsswarm service update --network-rm backend SERVICE`\)/,
    );
    expect((await nets.getNetwork({ ref: 'backend' })).services).toEqual(['api', 'web']);
    for (const s of ['web', 'api']) await svcs.removeService({ ref: s });
    await nets.removeNetwork({ ref: 'backend' });
    expect(store.view((tx) => tx.networks.count())).toBe(0);
  });

  it('refuses rm while a task still holds an address on the network', async () => {
    const { store, nets } = setup();
    const id = (await nets.createNetwork({ spec: nspec('backend') })).network.meta.id;
    await store.update((tx) =>
      tx.tasks.create(
        Task.create({
          meta: Meta.create({ id: 't1' }),
          desiredState: TaskState.SHUTDOWN,
          status: TaskStatus.create({ state: TaskState.RUNNING }),
          networks: [{ networkId: id, addresses: ['10.0.0.3/24'], aliases: [] }],
        }),
      ),
    );
    expect((await refused(nets.removeNetwork({ ref: 'backend' }))).message).toMatch(
      /still has 1 task attached \(shutting down\): retry in a moment/,
    );
  });

  it('removes the ingress network only while no service publishes through it', async () => {
    const { store, nets, svcs } = setup();
    await ensureIngressNetwork(store, silentLogger());
    await svcs.createService({ spec: sspec('web', [], [port(8080, 80)]) });
    const e = await refused(nets.removeNetwork({ ref: 'ingress' }));
    expect(e.message).toMatch(/network ingress is in use by service web: remove them or stop publishing their ports in ingress mode first/);
    await svcs.removeService({ ref: 'web' });
    await nets.removeNetwork({ ref: 'ingress' });
    expect(store.view((tx) => tx.networks.count())).toBe(0);
  });
});

describe('services on networks', () => {
  it('stores the ids of the networks named by --network', async () => {
    const { nets, svcs } = setup();
    const a = (await nets.createNetwork({ spec: nspec('a') })).network.meta.id;
    const b = (await nets.createNetwork({ spec: nspec('b') })).network.meta.id;
    const r = await svcs.createService({ spec: sspec('web', ['a', b.slice(0, 8)]) });
    expect(r.service.spec.task.networks.map((n) => n.target)).toEqual([a, b]);
  });

  it.each([
    [['missing'], /^spec.task.networks\[0\].target \(--network missing\): network missing not found/],
    [['a', 'A'], /^spec.task.networks\[1\].target "A" is also networks\[0\]/],
    [['ingress'], /^spec.task.networks\[0\].target \(--network ingress\): the ingress network carries the routing mesh only/],
    [['none', 'a'], /^spec.task.networks\[0\].target \(--network none\) cannot be combined with other networks \(networks\[1\] is "a"\)/],
    [['a', 'none'], /^spec.task.networks\[1\].target \(--network none\) cannot be combined with other networks \(networks\[0\] is "a"\)/],
    [
      ['host'],
      /^spec.task.networks\[0\].target \(--network host\): tsswarm does not run tasks in their node's network namespace: publish .* --publish mode=host/,
    ],
    [
      ['bridge'],
      /^spec.task.networks\[0\].target \(--network bridge\): a service with no --network is already on its node's default bridge .*leave --network out/,
    ],
  ])('refuses networks %j naming the field and stores nothing', async (targets, re) => {
    const { store, nets, svcs } = setup();
    await nets.createNetwork({ spec: nspec('a') });
    await ensureIngressNetwork(store, silentLogger());
    const e = await refused(svcs.createService({ spec: sspec('web', targets) }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(re);
    expect(store.view((tx) => tx.services.count())).toBe(0);
  });

  it('stores --network none as Docker writes it (target "none", no network object) and allocates no address for it', async () => {
    const { store, svcs } = setup();
    await ensureIngressNetwork(store, silentLogger());
    const r = await svcs.createService({ spec: sspec('quiet', ['None']) });
    expect(r.service.spec.task.networks).toEqual([{ target: 'none', aliases: [] }]);
    expect(needsAllocation(r.service.spec)).toBe(false);
    expect(needsAllocation(sspec('web', ['a']))).toBe(true);
    // An update to another network must drop none first.
    const e = await refused(svcs.updateService({ ref: 'quiet', version: 0, spec: sspec('quiet', ['none', 'ingress']), rollback: false }));
    expect(e.message).toMatch(/cannot be combined with other networks/);
  });

  it('refuses aliases on none: there is no address to name', async () => {
    const { svcs } = setup();
    const s = sspec('quiet', ['none']);
    s.task.networks[0]!.aliases = ['q'];
    const e = await refused(svcs.createService({ spec: s }));
    expect(e.message).toMatch(/^spec.task.networks\[0\].aliases \(--network name=none,alias=...\) cannot be set on none/);
  });

  it('refuses a published port on a service on none: nothing could reach it', async () => {
    const { store, svcs } = setup();
    const e = await refused(svcs.createService({ spec: sspec('quiet', ['none'], [port(8080, 80, { mode: PublishMode.HOST })]) }));
    expect(e.message).toMatch(/^spec.endpoint.ports \(--publish\) cannot be used with --network none/);
    expect(store.view((tx) => tx.services.count())).toBe(0);
  });

  it('refuses a published port another service has, on create and on update', async () => {
    const { store, svcs } = setup();
    await ensureIngressNetwork(store, silentLogger());
    await svcs.createService({ spec: sspec('web', [], [port(8080, 80)]) });
    const e = await refused(svcs.createService({ spec: sspec('api', [], [port(8080, 8000)]) }));
    expect(e.message).toMatch(
      /^spec.endpoint.ports\[0\].publishedPort \(--publish 8080:8000\/tcp\): port 8080\/tcp is already published by service web/,
    );
    // Another protocol, or host mode, is another port.
    await svcs.createService({
      spec: sspec('dns', [], [port(8080, 53, { protocol: PortProtocol.UDP }), port(8080, 80, { mode: PublishMode.HOST })]),
    });
    await svcs.createService({ spec: sspec('api', [], [port(8081, 8000)]) });
    const u = await refused(svcs.updateService({ ref: 'api', version: 0, spec: sspec('api', [], [port(8080, 8000)]), rollback: false }));
    expect(u.message).toMatch(/port 8080\/tcp is already published by service web/);
    // A service keeps its own port across an update.
    await svcs.updateService({ ref: 'web', version: 0, spec: sspec('web', [], [port(8080, 81)]), rollback: false });
  });

  it('warns when ports are published in ingress mode and the cluster has no ingress network', async () => {
    const { svcs } = setup();
    const r = await svcs.createService({ spec: sspec('web', [], [port(0, 80)]) });
    expect(r.warnings.join('\n')).toMatch(/no ingress network/);
  });
});

describe('validateServiceSpec: endpoint', () => {
  const fails = async (s: ServiceSpec, re: RegExp): Promise<void> => {
    const e = await refused(() => validateServiceSpec(s));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(re);
  };

  it('refuses each bad endpoint field naming it', async () => {
    await fails(
      sspec('w', [], [port(8080, 80)], EndpointMode.DNSRR),
      /^spec.endpoint.mode dnsrr cannot be used with ports published in ingress mode/,
    );
    await fails(
      sspec('w', [], [port(8080, 80), port(8080, 81)]),
      /^spec.endpoint.ports\[1\].publishedPort 8080\/tcp is also published by ports\[0\]/,
    );
    await fails(sspec('w', [], [port(0, 0)]), /^spec.endpoint.ports\[0\].targetPort must be from 1 to 65535/);
    await fails(sspec('w', [], [port(70000, 80)]), /^spec.endpoint.ports\[0\].publishedPort must be from 1 to 65535, or 0/);
    await fails(
      sspec('w', [], [{ ...port(80, 80), protocol: 7 as PortProtocol }]),
      /^spec.endpoint.ports\[0\].protocol must be tcp, udp or sctp/,
    );
    await fails(
      sspec('w', [], [{ ...port(80, 80), protocol: PortProtocol.SCTP }]),
      /^spec.endpoint.ports\[0\].protocol sctp cannot be published: the routing mesh and host-mode ports forward tcp and udp only/,
    );
    await fails(
      sspec('w', [], [{ ...port(80, 80), publishMode: 5 as PublishMode }]),
      /^spec.endpoint.ports\[0\].publishMode must be ingress or host/,
    );
    await fails(
      ServiceSpec.create({ ...sspec('w'), endpoint: { mode: 9 as EndpointMode, ports: [] } }),
      /^spec.endpoint.mode must be vip or dnsrr/,
    );
    const badAlias = sspec('w', ['a']);
    badAlias.task.networks[0]!.aliases = ['no spaces'];
    await fails(badAlias, /^spec.task.networks\[0\].aliases\[0\] "no spaces" is not a valid DNS name/);
  });

  it('a port published in host mode may leave its published number out (each node picks one), but not its target', () => {
    expect(() => validateServiceSpec(sspec('w', [], [port(0, 80, { mode: PublishMode.HOST })]))).not.toThrow();
    expect(() => validateServiceSpec(sspec('w', [], [port(0, 0, { mode: PublishMode.HOST })]))).toThrow(
      /^spec.endpoint.ports\[0\].targetPort must be from 1 to 65535/,
    );
  });

  it('accepts dnsrr with host-mode ports and the same port on two protocols', () => {
    expect(() => validateServiceSpec(sspec('w', [], [port(53, 53, { mode: PublishMode.HOST })], EndpointMode.DNSRR))).not.toThrow();
    expect(() => validateServiceSpec(sspec('w', [], [port(53, 53), port(53, 53, { protocol: PortProtocol.UDP })]))).not.toThrow();
  });
});
