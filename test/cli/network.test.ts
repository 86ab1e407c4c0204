// The network CLI and the service network flags: command lines to specs
// (pure), then the commands against NetworkApi/ServiceApi over a real gRPC
// server on a unix socket, with the allocator running on the same store.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { networkCommand, networkCreateSpec, networkRows } from '../../cli/network.js';
import { parseCreateArgv, parseNetworkFlag, parsePublish, parseUpdateArgv, serviceCommand } from '../../cli/service.js';
import { unary } from '../../lib/grpc.js';
import { silentLogger } from '../../lib/log.js';
import { Allocator, ensureIngressNetwork } from '../../manager/allocator/index.js';
import { NetworkApi, ServiceApi } from '../../manager/controlapi/index.js';
import { localStore } from '../../manager/store/index.js';
import { ControlService } from '../../proto/gen/control.js';
import { EndpointMode, PortProtocol, PublishMode, ServiceSpec, TaskSpec } from '../../proto/gen/objects.js';
import { runCommand } from './run-command.js';
import { thrownMessage } from '../errors.js';

const msg = thrownMessage;

describe('network and port flags to specs', () => {
  it('network create: overlay by default, with subnet, gateway, attachable, labels', () => {
    expect(
      networkCreateSpec({ subnet: '10.9.0.0/24', gateway: '10.9.0.254', attachable: true, label: ['tier=db'] }, ['backend']),
    ).toMatchObject({
      name: 'backend',
      driver: 'overlay',
      subnet: '10.9.0.0/24',
      gateway: '10.9.0.254',
      attachable: true,
      labels: { tier: 'db' },
    });
  });

  it('network create: --opt encrypted is refused saying the kernel lacks IPsec ESP and WireGuard', () => {
    const m = msg(() => networkCreateSpec({ opt: ['encrypted'] }, ['secure']));
    expect(m).toMatch(/^--opt encrypted: encrypted overlays are not available yet: this kernel has neither IPsec ESP nor WireGuard/);
  });

  it('network create: refuses another driver and a missing name', () => {
    expect(msg(() => networkCreateSpec({ driver: 'bridge' }, ['n']))).toMatch(/^--driver must be one of overlay \(got "bridge"\)/);
    expect(msg(() => networkCreateSpec({}, []))).toMatch(/give exactly one network name/);
  });

  it('--publish long and short forms', () => {
    expect(parsePublish('--publish', 'published=8080,target=80')).toEqual({
      name: '',
      protocol: PortProtocol.TCP,
      targetPort: 80,
      publishedPort: 8080,
      publishMode: PublishMode.INGRESS,
    });
    expect(parsePublish('--publish', 'published=53,target=53,protocol=udp,mode=host')).toMatchObject({
      protocol: PortProtocol.UDP,
      publishMode: PublishMode.HOST,
      publishedPort: 53,
    });
    expect(parsePublish('-p', '8080:80/udp')).toMatchObject({
      publishedPort: 8080,
      targetPort: 80,
      protocol: PortProtocol.UDP,
      publishMode: PublishMode.INGRESS,
    });
    expect(parsePublish('-p', '80')).toMatchObject({ publishedPort: 0, targetPort: 80 });
  });

  it.each([
    ['published=8080', /^--publish needs target=PORT/],
    ['target=80,mode=bridge', /^--publish mode must be ingress or host \(got "bridge"/],
    ['target=80,protocol=icmp', /^--publish protocol must be tcp, udp or sctp \(got "icmp"/],
    ['target=80,port=1', /^--publish: unknown option "port"/],
    ['70000:80', /^--publish published port must be a port from 1 to 65535 \(got "70000"/],
    ['a:b:c', /^--publish must be published=P,target=T/],
  ])('--publish %s is refused naming the flag', (v, re) => {
    expect(msg(() => parsePublish('--publish', v))).toMatch(re);
  });

  it('--network NAME and name=NAME,alias=A', () => {
    expect(parseNetworkFlag('--network', 'backend')).toEqual({ target: 'backend', aliases: [] });
    expect(parseNetworkFlag('--network', 'name=backend,alias=db,alias=pg')).toEqual({ target: 'backend', aliases: ['db', 'pg'] });
    expect(msg(() => parseNetworkFlag('--network', 'alias=db'))).toMatch(/needs name=NETWORK/);
  });

  it('service create: networks, ports and endpoint mode go into the spec', () => {
    const { spec } = parseCreateArgv([
      '--network',
      'a',
      '--network',
      'b',
      '-p',
      '8080:80',
      '--publish',
      'published=9000,target=90,mode=host',
      '--endpoint-mode',
      'vip',
      'busybox',
    ]);
    expect(spec.task.networks.map((n) => n.target)).toEqual(['a', 'b']);
    expect(spec.endpoint!.mode).toBe(EndpointMode.VIP);
    expect(spec.endpoint!.ports.map((p) => [p.publishedPort, p.targetPort, p.publishMode])).toEqual([
      [8080, 80, PublishMode.INGRESS],
      [9000, 90, PublishMode.HOST],
    ]);
    expect(msg(() => parseCreateArgv(['--endpoint-mode', 'rr', 'busybox']))).toMatch(
      /^--endpoint-mode must be one of vip, dnsrr \(got "rr"\)/,
    );
  });

  it('service create --network none, and service update --network-rm none: the name as it is (no lookup, it names no network object)', () => {
    const { spec } = parseCreateArgv(['--network', 'none', 'busybox']);
    expect(spec.task.networks).toEqual([{ target: 'none', aliases: [] }]);
    // The CLI resolves no id for none (resolveNetworks skips it): the stored target matches by name.
    const back = parseUpdateArgv(['--network-rm', 'none'], spec, {}, new Map());
    expect(back.task.networks).toEqual([]);
  });

  it('service update: --network-add/--network-rm by name or id, --publish-add replaces the same published port, --publish-rm by target', () => {
    const cur = ServiceSpec.create({
      name: 'web',
      task: TaskSpec.create({ networks: [{ target: 'id-a', aliases: [] }] }),
      endpoint: { mode: EndpointMode.VIP, ports: [parsePublish('-p', '8080:80'), parsePublish('-p', '53:53/udp')] },
    });
    const ids = new Map([
      ['a', 'id-a'],
      ['b', 'id-b'],
    ]);
    // The CLI passes the ids it looked up, so names match the stored ids.
    const spec = parseUpdateArgv(
      ['--network-rm', 'a', '--network-add', 'b', '--publish-add', '8080:81', '--publish-rm', '53/udp'],
      cur,
      {},
      ids,
    );
    expect(spec.task.networks.map((n) => n.target)).toEqual(['id-b']);
    expect(spec.endpoint!.ports.map((p) => [p.publishedPort, p.targetPort])).toEqual([[8080, 81]]);
    expect(parseUpdateArgv(['--network-rm', 'id-a'], cur).task.networks).toEqual([]);
    expect(msg(() => parseUpdateArgv(['--publish-rm', '99'], cur))).toMatch(
      /^--publish-rm 99: the service publishes no port with target 99/,
    );
    expect(msg(() => parseUpdateArgv(['--network-rm', 'zzz'], cur))).toMatch(
      /^--network-rm zzz: the service is not attached to network zzz/,
    );
  });

  it('network ls rows show the subnet once allocated, and ingress', () => {
    const rows = networkRows([
      {
        meta: { id: 'abcdefabcdefabcdef', version: 1, createdAt: 0, updatedAt: 0 },
        spec: { name: 'ingress', driver: 'overlay', ingress: true } as never,
        status: { vni: 4096, subnet: '10.0.0.0/24', gateway: '10.0.0.1', message: '' },
      },
      {
        meta: { id: 'bbbbbbbbbbbbbbbbbb', version: 1, createdAt: 0, updatedAt: 0 },
        spec: { name: 'new', driver: 'overlay' } as never,
        status: null,
      },
    ]);
    expect(rows).toEqual([
      ['abcdefabcdef', 'ingress', 'overlay', 'swarm', '10.0.0.0/24', 'ingress'],
      ['bbbbbbbbbbbb', 'new', 'overlay', 'swarm', 'pending', ''],
    ]);
  });
});

const dir = mkdtempSync(join(tmpdir(), 'tss-net-'));
const sock = join(dir, 'tsswarm.sock');
const store = localStore();
const services = new ServiceApi({ store, logger: silentLogger() });
const networks = new NetworkApi({ store, logger: silentLogger() });
const allocator = new Allocator({ store, logger: pino({ level: 'silent' }) });
const server = new grpc.Server();

beforeAll(async () => {
  allocator.start();
  await ensureIngressNetwork(store, pino({ level: 'silent' }));
  const u = <Req, Res>(fn: (r: Req) => Promise<Res>) => unary<Req, Res>((r) => fn(r));
  server.addService(ControlService, {
    createService: u((r: Parameters<ServiceApi['createService']>[0]) => services.createService(r)),
    getService: u((r: Parameters<ServiceApi['getService']>[0]) => services.getService(r)),
    updateService: u((r: Parameters<ServiceApi['updateService']>[0]) => services.updateService(r)),
    createNetwork: u((r: Parameters<NetworkApi['createNetwork']>[0]) => networks.createNetwork(r)),
    getNetwork: u((r: Parameters<NetworkApi['getNetwork']>[0]) => networks.getNetwork(r)),
    listNetworks: u((r: Parameters<NetworkApi['listNetworks']>[0]) => networks.listNetworks(r)),
    removeNetwork: u((r: Parameters<NetworkApi['removeNetwork']>[0]) => networks.removeNetwork(r)),
  });
  await new Promise<void>((res, rej) =>
    server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
  );
});

afterAll(async () => {
  await allocator.stop();
  await new Promise<void>((res) => server.tryShutdown(() => res()));
  rmSync(dir, { recursive: true, force: true });
});

const run = (...argv: string[]) => runCommand({ network: networkCommand, service: serviceCommand }, `unix://${sock}`, argv);
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 2));
    await allocator.idle();
  }
};

describe('network CLI over the Control API', () => {
  it('create prints the id; ls and inspect show the allocated subnet and VNI', async () => {
    const r = await run('network', 'create', '-d', 'overlay', '--subnet', '10.9.0.0/24', 'backend');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const id = store.view((tx) => tx.networks.byName('backend'))!.meta.id;
    expect(r.out).toBe(`${id}\n`);
    await settle();
    const ls = await run('network', 'ls');
    expect(ls.out).toMatch(/^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE\s+SUBNET\s+FLAGS\n/);
    expect(ls.out).toMatch(new RegExp(`${id.slice(0, 12)}\\s+backend\\s+overlay\\s+swarm\\s+10\\.9\\.0\\.0/24`));
    expect(ls.out).toMatch(/ingress\s+overlay\s+swarm\s+10\.0\.0\.0\/24\s+ingress/);
    const [net] = JSON.parse((await run('network', 'inspect', 'backend')).out);
    expect(net.status).toEqual({ vni: 4097, subnet: '10.9.0.0/24', gateway: '10.9.0.1', message: '' });
    expect(net.services).toEqual([]);
  });

  it('a refused create exits 1 with the reason and stores nothing', async () => {
    const before = store.view((tx) => tx.networks.count());
    const enc = await run('network', 'create', '--opt', 'encrypted', 'secure');
    expect(enc.code).toBe(1);
    expect(enc.err).toMatch(/neither IPsec ESP nor WireGuard/);
    const gw = await run('network', 'create', '--gateway', '10.1.1.1', 'nogw');
    expect(gw.code).toBe(1);
    expect(gw.err).toMatch(/^tsswarm: spec.gateway \(--gateway\) needs a subnet/);
    expect(store.view((tx) => tx.networks.count())).toBe(before);
  });

  it('service create --network -p: inspect --pretty shows the VIP and ports; network rm is refused naming the service until it detaches', async () => {
    const c = await run(
      'service',
      'create',
      '-d',
      '--no-resolve-image',
      '--name',
      'web',
      '--network',
      'backend',
      '-p',
      '8080:80',
      '-p',
      '90',
      'busybox',
    );
    expect(c.err).toBe('');
    await settle();
    const svc = store.view((tx) => tx.services.byName('web'))!;
    expect(svc.spec.task.networks[0]!.target).toBe(store.view((tx) => tx.networks.byName('backend'))!.meta.id);
    const pretty = (await run('service', 'inspect', '--pretty', 'web')).out;
    expect(pretty).toMatch(/Networks:\tbackend/);
    expect(pretty).toMatch(/Endpoint Mode:\tvip/);
    expect(pretty).toMatch(/ PublishedPort = 8080\n {2}Protocol = tcp\n {2}TargetPort = 80\n {2}PublishMode = ingress/);
    expect(pretty).toMatch(/ PublishedPort = 30000\n {2}Protocol = tcp\n {2}TargetPort = 90/);
    expect(pretty).toMatch(/Virtual IPs:\n 10\.9\.0\.2\/24\ton backend\n 10\.0\.0\.\d+\/24\ton ingress/);

    const rm = await run('network', 'rm', 'backend');
    expect(rm.code).toBe(1);
    expect(rm.err).toMatch(/network backend is in use by service web/);
    const up = await run('service', 'update', '-d', '--network-rm', 'backend', 'web');
    expect(up.err).toBe('');
    expect(store.view((tx) => tx.services.byName('web'))!.spec.task.networks).toEqual([]);
    const rm2 = await run('network', 'rm', 'backend');
    expect(rm2.code).toBe(0);
    expect(store.view((tx) => tx.networks.byName('backend'))).toBeUndefined();
  });

  it('a published port taken by another service is refused with the field and the other service', async () => {
    const r = await run('service', 'create', '-d', '--name', 'api', '-p', '8080:8000', 'busybox');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /spec.endpoint.ports\[0\].publishedPort \(--publish 8080:8000\/tcp\): port 8080\/tcp is already published by service web/,
    );
  });
});
