// ServiceLoadBalancer's bookkeeping, with a recording driver around the real
// nft planners (the kernel side is in lb.kernel.test.ts): what each per-service
// call programs, what it refuses, and the fall-back to a read-back when a
// program fails.
import { describe, expect, it } from 'vitest';
import {
  emptyNftState,
  planNft,
  planNftChanges,
  ServiceLoadBalancer,
  type FrontendChange,
  type LbDriver,
  type LbService,
  type NftState,
  type Program,
} from '../../../agent/lb/index.js';

/** Applies nothing; remembers programs; reads back what it was last told the kernel holds. */
class RecordingDriver implements LbDriver<NftState> {
  readonly kind = 'nft';
  programs: string[] = [];
  kernel: NftState = emptyNftState();
  reads = 0;
  failNext = false;
  async read(): Promise<NftState> {
    this.reads++;
    return this.kernel;
  }
  plan(desired: Parameters<typeof planNft>[0], actual: NftState) {
    const p = planNft(desired, actual);
    return p;
  }
  planChanges(changes: FrontendChange[], actual: NftState) {
    return planNftChanges(changes, actual);
  }
  async apply({ program }: Program): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('Could not process rule: No such file or directory');
    }
    if (program) this.programs.push(program);
  }
  distrust(actual: NftState): NftState {
    return { ...actual, table: 'broken' };
  }
  async teardown(): Promise<void> {}
  close(): void {}
}

const svc = (id: string, vip: string, ips: string[]): LbService => ({
  id,
  vip,
  ports: [{ protocol: 'tcp', port: 80 }],
  backends: ips.map((ip) => ({ ip })),
});

describe('ServiceLoadBalancer', () => {
  it('reads the kernel on the first call, then programs only the service that changed', async () => {
    const d = new RecordingDriver();
    const lb = new ServiceLoadBalancer(d as LbDriver<unknown>);
    expect((await lb.upsertService(svc('a', '10.9.0.1', ['10.1.0.1']))).readBack).toBe(true);
    await lb.upsertService(svc('b', '10.9.0.2', ['10.1.0.2']));
    const r = await lb.upsertService(svc('a', '10.9.0.1', ['10.1.0.3']));
    expect(r).toMatchObject({ readBack: false, ops: 2 });
    expect(d.reads).toBe(1);
    expect(d.programs.at(-1)).toBe(
      'delete element ip tss-lb tss-vip-slots { 10.9.0.1 . tcp . 80 . 0 }\nadd element ip tss-lb tss-vip-slots { 10.9.0.1 . tcp . 80 . 0 : 10.1.0.3 . 80 }\n',
    );
  });

  it("re-points a published port when its service's backends change, and removes it with the service", async () => {
    const d = new RecordingDriver();
    const lb = new ServiceLoadBalancer(d as LbDriver<unknown>);
    await lb.upsertService(svc('a', '10.9.0.1', ['10.1.0.1']));
    await lb.setIngress([{ protocol: 'tcp', publishedPort: 8080, targetPort: 80, serviceId: 'a' }]);
    await lb.upsertService(svc('a', '10.9.0.1', ['10.1.0.3']));
    expect(d.programs.at(-1)).toContain('add element ip tss-lb tss-port-slots { tcp . 8080 . 0 : 10.1.0.3 . 80 }');
    await lb.removeService('a');
    expect(d.programs.at(-1)).toContain('delete element ip tss-lb tss-ports { tcp . 8080 }');
    expect(d.programs.at(-1)).toContain('delete element ip tss-lb tss-vips { 10.9.0.1 . tcp . 80 }');
    expect(lb.desired()).toEqual({ services: [], ingress: [] });
  });

  it('refuses a VIP port another service owns and a published port for an unknown service, naming the field', async () => {
    const lb = new ServiceLoadBalancer(new RecordingDriver() as LbDriver<unknown>);
    await lb.upsertService(svc('a', '10.9.0.1', ['10.1.0.1']));
    expect(() => lb.upsertService(svc('b', '10.9.0.1', ['10.1.0.2']))).toThrow('service b: tcp 10.9.0.1:80 already belongs to service a');
    expect(() => lb.setIngress([{ protocol: 'tcp', publishedPort: 8080, targetPort: 80, serviceId: 'zz' }])).toThrow(
      'ingress[0].serviceId "zz" is not a known service',
    );
    expect(() => lb.upsertService(svc('c', '10.9.0.300', []))).toThrow('service c.vip must be an IPv4 address');
  });

  it('programs a service with ports: [] as one every-port VIP, switches it to listed ports and back, and removes it', async () => {
    const d = new RecordingDriver();
    const lb = new ServiceLoadBalancer(d as LbDriver<unknown>);
    await lb.upsertService(svc('x', '10.9.0.7', ['10.1.0.9']));
    await lb.upsertService({ ...svc('a', '10.9.0.1', ['10.1.0.1', '10.1.0.2']), ports: [] });
    expect(d.programs.at(-1)).toBe(
      [
        'add chain ip tss-lb tss-any-2',
        'add rule ip tss-lb tss-any-2 dnat ip to ip daddr . numgen random mod 2 map @tss-any-slots',
        'add element ip tss-lb tss-vip-any { 10.9.0.1 : goto tss-any-2 }',
        'add element ip tss-lb tss-any-slots { 10.9.0.1 . 0 : 10.1.0.1, 10.9.0.1 . 1 : 10.1.0.2 }',
        '',
      ].join('\n'),
    );
    const r = await lb.upsertService(svc('a', '10.9.0.1', ['10.1.0.1', '10.1.0.2']));
    expect(r.readBack).toBe(false);
    expect(d.programs.at(-1)).toContain('delete element ip tss-lb tss-vip-any { 10.9.0.1 }');
    expect(d.programs.at(-1)).toContain('add element ip tss-lb tss-vips { 10.9.0.1 . tcp . 80 : goto tss-vip-2 }');
    await lb.upsertService({ ...svc('a', '10.9.0.1', ['10.1.0.1']), ports: [] });
    expect(d.programs.at(-1)).toContain('add element ip tss-lb tss-vip-any { 10.9.0.1 : goto tss-any-1 }');
    expect(d.programs.at(-1)).toContain('delete element ip tss-lb tss-vips { 10.9.0.1 . tcp . 80 }');
    await lb.removeService('a');
    expect(d.programs.at(-1)).toBe(
      'delete element ip tss-lb tss-vip-any { 10.9.0.1 }\ndelete element ip tss-lb tss-any-slots { 10.9.0.1 . 0 }\ndelete chain ip tss-lb tss-any-1\n',
    );
    expect(d.reads).toBe(1);
  });

  it('refuses to share an every-port VIP with another service, either way round, and frees it on removal', async () => {
    const lb = new ServiceLoadBalancer(new RecordingDriver() as LbDriver<unknown>);
    await lb.upsertService({ ...svc('a', '10.9.0.1', ['10.1.0.1']), ports: [] });
    expect(() => lb.upsertService(svc('b', '10.9.0.1', ['10.1.0.2']))).toThrow(
      'service b.vip: 10.9.0.1 is already used by service a, and a VIP forwarding every port (ports: []) belongs to one service',
    );
    await lb.upsertService(svc('c', '10.9.0.3', ['10.1.0.3']));
    expect(() => lb.upsertService({ ...svc('d', '10.9.0.3', []), ports: [] })).toThrow(
      'service d.vip: 10.9.0.3 is already used by service c',
    );
    // A service moving to another VIP leaves its old one.
    await lb.upsertService({ ...svc('a', '10.9.0.2', ['10.1.0.1']), ports: [] });
    await lb.upsertService(svc('b', '10.9.0.1', ['10.1.0.2']));
    await lb.removeService('c');
    await lb.upsertService({ ...svc('d', '10.9.0.3', []), ports: [] });
    expect(lb.desired().services.map((s) => s.id)).toEqual(['a', 'b', 'd']);
  });

  it('a failed incremental program makes it read the kernel back and reconcile', async () => {
    const d = new RecordingDriver();
    const lb = new ServiceLoadBalancer(d as LbDriver<unknown>);
    await lb.upsertService(svc('a', '10.9.0.1', ['10.1.0.1']));
    d.failNext = true;
    const r = await lb.upsertService(svc('a', '10.9.0.1', ['10.1.0.2']));
    expect(r.readBack).toBe(true);
    expect(d.reads).toBe(2);
  });
});
