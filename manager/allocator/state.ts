// What the allocator has handed out, in memory, and the pure decisions on top
// of it: a network's VNI, subnet and gateway; a service's VIPs (one per
// network, VIP mode) and ingress-published ports; a task's addresses. The
// state mirrors the store (observe/forget from the leader's view and watch
// events); allocations made while building a transaction are journaled so
// that a refused transaction gives them back (rollback).
import {
  type Endpoint,
  EndpointMode,
  type Network,
  type NetworkAttachment,
  type NetworkStatus,
  type PortConfig,
  PortProtocol,
  PublishMode,
  type Service,
  type Task,
  TaskState,
  type VirtualIP,
  type Node,
} from '../../proto/gen/objects.js';
import { AddressPool, AllocationError, DEFAULT_POOL, DEFAULT_SUBNET_BITS, type IntPool, portPool, SubnetPool, vniPool } from './ipam.js';
import { addrOf, type Cidr, cidrOf, contains, formatCidr, formatIp, parseCidr, parseIp } from '../../lib/ipnet.js';
import { protocolName } from '../../lib/ports.js';

/**
 * A task keeps its addresses until it is both ended and no longer wanted
 * (Swarm's rule). A job's task that completed is not wanted any more: Swarm's
 * desired state for it is COMPLETE, where ours stays RUNNING (orchestrator/jobs.ts).
 */
export const taskDead = (t: Task): boolean => {
  const st = t.status?.state ?? 0;
  return st > TaskState.RUNNING && (t.desiredState > TaskState.RUNNING || (t.jobIteration > 0 && st === TaskState.COMPLETE));
};

export const networkOwner = (n: Network): string => `network ${n.spec?.name ?? ''} (${n.meta.id})`;
export const serviceOwner = (s: Service): string => `service ${s.spec?.name ?? ''} (${s.meta.id})`;
export const taskOwner = (t: Task): string => `task ${t.meta.id}`;
export const nodeOwner = (n: Node): string => `node ${n.meta.id}`;
const GATEWAY = 'gateway';

/** Whether a service publishes a port through the routing mesh (and so joins the ingress network). */
export const publishesIngress = (s: Service): boolean => (s.spec?.endpoint?.ports ?? []).some((p) => p.publishMode === PublishMode.INGRESS);

/** A network as the allocator holds it once allocated. */
interface NetState {
  subnet: Cidr;
  addrs: AddressPool;
  vni: number;
  gateway: number;
  owner: string;
}

export interface AllocatorStateOptions {
  /** The default address pool and the size of subnets carved from it (10.0.0.0/8 in /24s). */
  pool?: Cidr;
  subnetBits?: number;
}

export class AllocatorState {
  readonly subnets: SubnetPool;
  readonly vnis: IntPool = vniPool();
  readonly ports: Record<PortProtocol, IntPool> = {
    [PortProtocol.TCP]: portPool('tcp'),
    [PortProtocol.UDP]: portPool('udp'),
    [PortProtocol.SCTP]: portPool('sctp'),
  };
  private readonly nets = new Map<string, NetState>();
  private journal: Array<() => void> = [];

  constructor(o: AllocatorStateOptions = {}) {
    this.subnets = new SubnetPool(o.pool ?? DEFAULT_POOL, o.subnetBits ?? DEFAULT_SUBNET_BITS);
  }

  // ------------------------------------------------------------ journal

  /** A point to roll back to. */
  mark(): number {
    return this.journal.length;
  }

  /** Gives back everything allocated since `mark` (a refused transaction, a task that could not get all its addresses). */
  rollback(mark = 0): void {
    while (this.journal.length > mark) this.journal.pop()!();
  }

  /** The transaction applied: its allocations are now in the store. */
  commit(): void {
    this.journal = [];
  }

  private took(undo: () => void): void {
    this.journal.push(undo);
  }

  private reserveInt(pool: IntPool, n: number, owner: string): void {
    if (pool.owner(n) === owner) return;
    pool.reserve(n, owner);
    this.took(() => pool.release(n, owner));
  }

  private reserveAddr(pool: AddressPool, ip: number, owner: string): void {
    if (pool.owner(ip) === owner) return;
    pool.reserve(ip, owner);
    this.took(() => pool.release(ip, owner));
  }

  private allocAddr(pool: AddressPool, owner: string): number {
    const ip = pool.allocate(owner);
    this.took(() => pool.release(ip, owner));
    return ip;
  }

  // ------------------------------------------------------------ networks

  /** The allocated network of that id, if the state knows it. */
  network(id: string): { subnet: string; gateway: string; vni: number; used: number; capacity: number } | undefined {
    const n = this.nets.get(id);
    return n && { subnet: formatCidr(n.subnet), gateway: formatIp(n.gateway), vni: n.vni, used: n.addrs.used, capacity: n.addrs.capacity };
  }

  /** Whether the stored network carries an allocation. */
  static allocated(n: Network): boolean {
    return !!(n.status && n.status.vni && n.status.subnet && n.status.gateway);
  }

  /**
   * VNI, subnet and gateway for a new network: as its spec asks, else from the
   * pools (subnets never containing an address of `avoid`, the nodes'). Throws
   * AllocationError and takes nothing when one part cannot be had.
   */
  allocateNetwork(n: Network, avoid: readonly number[] = []): NetworkStatus {
    const owner = networkOwner(n);
    const spec = n.spec;
    const mark = this.mark();
    try {
      let subnet: Cidr;
      if (spec.subnet) {
        subnet = parseCidr('spec.subnet', spec.subnet, { maxBits: 30 });
        this.subnets.reserve(subnet, owner);
        this.took(() => this.subnets.release(subnet, owner));
      } else {
        subnet = this.subnets.allocate(owner, avoid);
        this.took(() => this.subnets.release(subnet, owner));
      }
      let vni: number;
      if (spec.vni) {
        vni = spec.vni;
        this.reserveInt(this.vnis, vni, owner);
      } else {
        vni = this.vnis.allocate(owner);
        this.took(() => this.vnis.release(vni, owner));
      }
      const gateway = spec.gateway ? parseIp('spec.gateway', spec.gateway) : subnet.base + 1;
      if (!contains(subnet, gateway))
        throw new AllocationError(`the gateway ${formatIp(gateway)} is not inside the subnet ${formatCidr(subnet)}`);
      const addrs = new AddressPool(subnet);
      addrs.reserve(gateway, GATEWAY);
      this.setNet(n.meta.id, { subnet, addrs, vni, gateway, owner });
      return { vni, subnet: formatCidr(subnet), gateway: formatIp(gateway), message: '' };
    } catch (e) {
      this.rollback(mark);
      throw e;
    }
  }

  private setNet(id: string, st: NetState): void {
    const prev = this.nets.get(id);
    this.nets.set(id, st);
    this.took(() => (prev ? this.nets.set(id, prev) : this.nets.delete(id)));
  }

  /** Records a stored network's allocation (leader start, watch events); idempotent. Throws AllocationError on a clash with another network. */
  observeNetwork(n: Network): void {
    if (!AllocatorState.allocated(n)) return;
    const id = n.meta.id;
    const st = n.status!;
    const cur = this.nets.get(id);
    if (cur && formatCidr(cur.subnet) === st.subnet && cur.vni === st.vni) return;
    const owner = networkOwner(n);
    const subnet = cidrOf(st.subnet);
    this.subnets.reserve(subnet, owner);
    this.vnis.reserve(st.vni, owner);
    const gateway = parseIp('status.gateway', st.gateway);
    const addrs = new AddressPool(subnet);
    addrs.reserve(gateway, GATEWAY);
    this.nets.set(id, { subnet, addrs, vni: st.vni, gateway, owner });
  }

  /** A network was removed: its subnet and VNI are free again, and its addresses with it. */
  forgetNetwork(n: Network): void {
    const st = this.nets.get(n.meta.id);
    if (!st) return;
    this.subnets.release(st.subnet, st.owner);
    this.vnis.release(st.vni, st.owner);
    this.nets.delete(n.meta.id);
  }

  // ------------------------------------------------------------ services

  /**
   * The endpoint a service should have: its published ports (ingress ports
   * get a port from 30000-32767 when none is given; one already allocated for
   * the same target is kept) and, in VIP mode, one VIP on each network of
   * `networkIds` (kept when it has one). Null when there is nothing to
   * allocate. Throws AllocationError (a port taken, a pool exhausted, a
   * network not allocated yet); what it took before failing is given back.
   */
  serviceEndpoint(s: Service, networkIds: readonly string[]): Endpoint | null {
    const spec = s.spec?.endpoint ?? null;
    const owner = serviceOwner(s);
    const cur = s.endpoint;
    const mark = this.mark();
    try {
      const ports: PortConfig[] = [];
      const reused = new Set<PortConfig>();
      for (const p of spec?.ports ?? []) {
        if (p.publishMode !== PublishMode.INGRESS) {
          ports.push({ ...p });
          continue;
        }
        const pool = this.ports[p.protocol] ?? this.ports[PortProtocol.TCP];
        const proto = protocolName(p.protocol);
        let published = p.publishedPort;
        if (published) {
          const holder = pool.owner(published);
          if (holder !== undefined && holder !== owner)
            throw new AllocationError(
              `published port ${published}/${proto} is already in use by ${holder}: choose another port, or leave published out to get a free one`,
            );
          this.reserveInt(pool, published, owner);
        } else {
          const prev = cur?.ports.find(
            (q) =>
              !reused.has(q) &&
              q.publishMode === PublishMode.INGRESS &&
              q.protocol === p.protocol &&
              q.targetPort === p.targetPort &&
              q.publishedPort &&
              pool.owner(q.publishedPort) === owner &&
              !spec!.ports.some((x) => x.publishedPort === q.publishedPort && x.protocol === q.protocol),
          );
          if (prev) {
            reused.add(prev);
            published = prev.publishedPort;
          } else {
            published = pool.allocate(owner);
            const n = published;
            this.took(() => pool.release(n, owner));
          }
        }
        ports.push({ ...p, publishedPort: published });
      }
      const vips: VirtualIP[] = [];
      if ((spec?.mode ?? EndpointMode.VIP) === EndpointMode.VIP) {
        for (const id of networkIds) {
          const net = this.nets.get(id);
          if (!net)
            throw new AllocationError(
              `network ${id} has no subnet yet (its allocation is pending or failed: see \`tsswarm network inspect ${id}\`)`,
            );
          const prev = cur?.virtualIps.find((v) => v.networkId === id);
          const prevIp = prev ? addrOf(prev.addr) : null;
          if (prevIp !== null && net.addrs.owner(prevIp) === owner) {
            vips.push({ networkId: id, addr: prev!.addr });
            continue;
          }
          const ip = this.allocAddr(net.addrs, owner);
          vips.push({ networkId: id, addr: `${formatIp(ip)}/${net.subnet.bits}` });
        }
      }
      if (!spec && ports.length === 0 && vips.length === 0) return null;
      return { spec, ports, virtualIps: vips };
    } catch (e) {
      this.rollback(mark);
      throw e;
    }
  }

  /** Records a stored service's VIPs and ports (leader start, watch events) and gives back what `old` held that `s` no longer does. */
  observeService(s: Service, old?: Service): string[] {
    const problems: string[] = [];
    const owner = serviceOwner(s);
    if (old) this.releaseEndpoint(old, s.endpoint);
    for (const v of s.endpoint?.virtualIps ?? []) {
      const net = this.nets.get(v.networkId);
      const ip = addrOf(v.addr);
      if (!net || ip === null) continue;
      try {
        if (net.addrs.owner(ip) !== owner) net.addrs.reserve(ip, owner);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    for (const p of s.endpoint?.ports ?? []) {
      if (p.publishMode !== PublishMode.INGRESS || !p.publishedPort) continue;
      const pool = this.ports[p.protocol];
      try {
        if (pool && pool.owner(p.publishedPort) !== owner) pool.reserve(p.publishedPort, owner);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    return problems;
  }

  /** A service was removed: its VIPs and published ports are free again. */
  forgetService(s: Service): void {
    this.releaseEndpoint(s, null);
  }

  private releaseEndpoint(s: Service, keep: Endpoint | null | undefined): void {
    const owner = serviceOwner(s);
    for (const v of s.endpoint?.virtualIps ?? []) {
      if (keep?.virtualIps.some((k) => k.networkId === v.networkId && k.addr === v.addr)) continue;
      const ip = addrOf(v.addr);
      if (ip !== null) this.nets.get(v.networkId)?.addrs.release(ip, owner);
    }
    for (const p of s.endpoint?.ports ?? []) {
      if (p.publishMode !== PublishMode.INGRESS || !p.publishedPort) continue;
      if (
        keep?.ports.some((k) => k.publishMode === PublishMode.INGRESS && k.protocol === p.protocol && k.publishedPort === p.publishedPort)
      )
        continue;
      this.ports[p.protocol]?.release(p.publishedPort, owner);
    }
  }

  // ------------------------------------------------------------ tasks

  /**
   * One address per network for a task (kept where its attachment already
   * has one). All or nothing: throws AllocationError having given back what
   * it took for this task.
   */
  allocateTask(t: Task, networks: ReadonlyArray<{ networkId: string; aliases: string[] }>): NetworkAttachment[] {
    const owner = taskOwner(t);
    const mark = this.mark();
    try {
      return networks.map(({ networkId, aliases }) => {
        const net = this.nets.get(networkId);
        if (!net)
          throw new AllocationError(
            `network ${networkId} has no subnet yet (its allocation is pending or failed: see \`tsswarm network inspect ${networkId}\`)`,
          );
        const prev = t.networks.find((a) => a.networkId === networkId);
        const prevIp = prev?.addresses[0] ? addrOf(prev.addresses[0]) : null;
        if (prevIp !== null && contains(net.subnet, prevIp)) {
          this.reserveAddr(net.addrs, prevIp, owner);
          return { networkId, addresses: [prev!.addresses[0]!], aliases };
        }
        const ip = this.allocAddr(net.addrs, owner);
        return { networkId, addresses: [`${formatIp(ip)}/${net.subnet.bits}`], aliases };
      });
    } catch (e) {
      this.rollback(mark);
      throw e;
    }
  }

  /** Records a stored task's addresses, or gives them back once the task is dead; returns clashes found. */
  observeTask(t: Task): string[] {
    if (taskDead(t)) {
      this.forgetTask(t);
      return [];
    }
    return this.observeAttachments(taskOwner(t), t.networks);
  }

  /** Records stored addresses as `owner`'s; returns the clashes found (an address another owner holds). */
  private observeAttachments(owner: string, attachments: readonly NetworkAttachment[]): string[] {
    const problems: string[] = [];
    for (const a of attachments) {
      const net = this.nets.get(a.networkId);
      if (!net) continue;
      for (const addr of a.addresses) {
        const ip = addrOf(addr);
        if (ip === null || net.addrs.owner(ip) === owner) continue;
        try {
          net.addrs.reserve(ip, owner);
        } catch (e) {
          problems.push(`${owner}: ${(e as Error).message}`);
        }
      }
    }
    return problems;
  }

  /** Gives back `owner`'s addresses. */
  private forgetAttachments(owner: string, attachments: readonly NetworkAttachment[]): void {
    for (const a of attachments) {
      const net = this.nets.get(a.networkId);
      for (const addr of a.addresses) {
        const ip = addrOf(addr);
        if (net && ip !== null) net.addrs.release(ip, owner);
      }
    }
  }

  // ------------------------------------------------------------ nodes

  /**
   * A node's address on a network (the routing mesh's ingress endpoint),
   * kept when it already has one there. Throws AllocationError when the
   * network has no subnet yet or no address left.
   */
  allocateNode(n: Node, networkId: string): NetworkAttachment {
    const net = this.nets.get(networkId);
    if (!net) throw new AllocationError(`network ${networkId} has no subnet yet`);
    const owner = nodeOwner(n);
    const prev = n.attachments.find((a) => a.networkId === networkId);
    const prevIp = prev?.addresses[0] ? addrOf(prev.addresses[0]) : null;
    if (prevIp !== null && contains(net.subnet, prevIp)) {
      this.reserveAddr(net.addrs, prevIp, owner);
      return { networkId, addresses: [prev!.addresses[0]!], aliases: [] };
    }
    const ip = this.allocAddr(net.addrs, owner);
    return { networkId, addresses: [`${formatIp(ip)}/${net.subnet.bits}`], aliases: [] };
  }

  /** Records a stored node's addresses; returns clashes found. */
  observeNode(n: Node): string[] {
    return this.observeAttachments(nodeOwner(n), n.attachments);
  }

  /** A node was removed: its addresses are free again. */
  forgetNode(n: Node): void {
    this.forgetAttachments(nodeOwner(n), n.attachments);
  }

  /** A task ended for good or was deleted: its addresses are free again. */
  forgetTask(t: Task): void {
    this.forgetAttachments(taskOwner(t), t.networks);
  }
}
