// NetworkAgent, the agent's side of networking: keeps the managers' view of
// the networks this node's tasks use (NetworkUpdate messages on the session)
// and turns it into the node's data plane: the overlay (agent/overlay:
// per-network namespace, bridge, VXLAN device, FDB/neighbor entries for
// remote endpoints, egress NAT, which is also the default bridge of a task
// with no network, as Docker's `bridge`), the service VIP load balancing in each
// container's namespace (agent/lb) and the names each container resolves
// (agent/dns). The worker calls attach() between a container's create and
// start, and detach() once it has stopped. Everything runs in one queue, so
// an update and a container joining never interleave.
import { createSocket } from 'node:dgram';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type pino from 'pino';
import { TsswarmError } from '../lib/errors.js';
import type { NetworkEndpoint, NetworkService, NetworkUpdate } from '../proto/gen/netfeed.js';
import { EndpointMode, type Network, PortConfig, PortProtocol, PublishMode, type Task } from '../proto/gen/objects.js';
import { onNoNetwork } from '../spec/predefined-networks.js';
import {
  bridgeResolvConf,
  containerResolvConf,
  EmbeddedDns,
  hostResolvConfForBridge,
  SYSTEMD_RESOLVED_STUB,
  SYSTEMD_RESOLVED_UPSTREAMS,
  type ServiceRecord,
} from './dns/index.js';
import { type LbService, type LbTable, mustRunIn, ServiceLoadBalancer } from './lb/index.js';
import { OverlayPlane, type Peer } from './overlay/index.js';
import { defaultNameTag } from './overlay/names.js';

export interface NetworkAgentOptions {
  nodeId: string;
  /** This node's underlay address (its VTEP): the host part of its advertise address. */
  vtep: string;
  logger: pino.Logger;
  /** `--lb-backend`: nft | iptables | ipvs; default detected. */
  lbBackend?: string;
  /**
   * Distinguishes this node's per-network namespaces from other nodes' on the
   * same machine; default: made from the name of the namespace the daemon
   * runs in (the sandbox's host namespaces), else `host`.
   */
  nameTag?: string;
  /** The namespace holding the underlay (the VTEP's interface); default: this process's. Tests run a node in a tss namespace. */
  hostNetns?: string;
  /** The host's resolv.conf, whose reachable resolvers default-bridge containers get; default /etc/resolv.conf. */
  hostResolvConf?: string;
  /** systemd-resolved's list of upstream servers, read when the host's resolv.conf names only its stub; default /run/systemd/resolve/resolv.conf. */
  systemdResolvConf?: string;
  /** This node's control-plane TCP ports (its gRPC port, the Engine API's TCP port), which tasks may not open through the egress gateway. */
  hostTcpPorts?: number[];
}

interface NetView {
  network: Network;
  endpoints: Map<string, NetworkEndpoint>;
  services: Map<string, NetworkService>;
  ensured: boolean;
  /** Why the last attempt to program it failed (cleared by a success): what its tasks fail with. */
  error?: string;
}

interface LocalTask {
  task: Task;
  netns: string;
  /** network id → this task's address on it (no prefix) */
  ips: Map<string, string>;
  lb: ServiceLoadBalancer | null;
  /** Its address on the egress bridge (host-mode ports are forwarded there). */
  egressIp?: string;
  /** Its interface on the egress bridge, which is the node's default bridge. */
  egress?: { ip: string; prefixLen: number; mac: string; gateway: string };
  /** Its ports published in host mode, each with the node port it has here (picked when the spec left it out). */
  hostPorts: PortConfig[];
}

/**
 * The name under /run/netns of the namespace this process runs in (the
 * sandbox runs each host's daemon in one), or undefined (production: the
 * root namespace has no name). It tags this node's per-network namespaces.
 */
export function ownNetnsName(): string | undefined {
  try {
    const own = statSync('/proc/self/ns/net').ino;
    for (const n of readdirSync('/run/netns')) {
      try {
        if (statSync(`/run/netns/${n}`).ino === own) return n;
      } catch {
        /* vanished */
      }
    }
  } catch {
    /* no /run/netns */
  }
  return undefined;
}

/** The interface carrying `ip` in this namespace, and its MTU (1500 when it cannot be found). */
async function underlayMtu(ip: string): Promise<number> {
  try {
    const links = JSON.parse(await mustRunIn(undefined, 'ip', ['-j', 'addr', 'show'])) as Array<{
      mtu: number;
      addr_info?: Array<{ local: string }>;
    }>;
    for (const l of links) if (l.addr_info?.some((a) => a.local === ip)) return l.mtu;
  } catch {
    /* fall through */
  }
  return 1500;
}

const onOverlay = (t: Task): boolean => t.networks.some((a) => a.addresses.length > 0);

/** The load balancer's name for a port's protocol; undefined for one it cannot forward (SCTP, refused when a spec is stored). */
const lbProtocol = (p: PortProtocol): 'tcp' | 'udp' | undefined =>
  p === PortProtocol.UDP ? 'udp' : p === PortProtocol.TCP ? 'tcp' : undefined;
/** A port the load balancer can forward, with its protocol's name. */
const lbPorts = <P extends { protocol: PortProtocol }>(ports: P[]): Array<P & { lb: 'tcp' | 'udp' }> =>
  ports.flatMap((p) => {
    const lb = lbProtocol(p.protocol);
    return lb ? [{ ...p, lb }] : [];
  });

/** The host's interface on the ingress network, and the nft table that masquerades mesh traffic through it. */
export const MESH_IF = 'tss_ingress';
export const MESH_TABLE = 'tss-mesh';

/** One transaction that (re)creates the mesh's source NAT: idempotent. */
export function meshNatProgram(ingressSubnet: string): string {
  return [
    `add table ip ${MESH_TABLE}`,
    `delete table ip ${MESH_TABLE}`,
    `table ip ${MESH_TABLE} {`,
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "${MESH_IF}" ip saddr != ${ingressSubnet} masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export class NetworkAgent {
  private readonly log: pino.Logger;
  private plane: OverlayPlane | null = null;
  readonly dns: EmbeddedDns;
  private readonly nets = new Map<string, NetView>();
  private readonly tasks = new Map<string, LocalTask>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** The routing mesh on this host: its ingress network and address. */
  private mesh: { networkId: string; address: string } | null = null;
  /** What the mesh wants programmed in the host namespace. */
  private meshTable: LbTable = { services: [], ingress: [] };
  /** The load balancer of the host namespace: published ports, of the mesh and of host mode. */
  private hostLb: ServiceLoadBalancer | null = null;

  constructor(private readonly o: NetworkAgentOptions) {
    this.log = o.logger.child({ component: 'networking' });
    this.dns = new EmbeddedDns({ log: this.log, redirect: true });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new TsswarmError('UNAVAILABLE', 'networking is shut down'));
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /**
   * Reads the kernel back and repairs what drifted (an FDB or neighbor entry,
   * a VIP table element or a published port deleted by hand or by another
   * program), every TSSWARM_DATAPLANE_REPAIR_MS (default 30 s; 0: only at
   * start and on changes, which reconcile too).
   */
  private startRepair(): void {
    const ms = Number(process.env.TSSWARM_DATAPLANE_REPAIR_MS ?? 30_000);
    if (!(ms > 0) || this.repairTimer) return;
    this.repairTimer = setInterval(() => {
      void this.repair().catch((err: unknown) => this.log.warn({ err }, 'data plane repair failed'));
    }, ms);
    this.repairTimer.unref();
  }

  private repairTimer: NodeJS.Timeout | null = null;

  /** One repair pass over every network, container VIP table and published port of this host. */
  repair(): Promise<void> {
    return this.serial(async () => {
      const plane = await this.planeOf();
      // A network that failed is tried again here; it still never holds up the others.
      for (const [id, v] of this.nets) if (v.ensured || v.error) await this.programOne(plane, id, v);
      for (const lt of this.tasks.values()) {
        if (lt.lb)
          await lt.lb
            .reconcile(this.lbTable(lt))
            .catch((err: unknown) => this.log.warn({ err, task: lt.task.meta.id }, 'repairing a VIP table failed'));
      }
      await this.programHost(true);
    });
  }

  private async planeOf(): Promise<OverlayPlane> {
    if (!this.plane) {
      this.startRepair();
      const mtu = await underlayMtu(this.o.vtep);
      const nameTag = this.o.nameTag ?? defaultNameTag(ownNetnsName());
      this.plane = new OverlayPlane(
        {
          vtep: this.o.vtep,
          underlayMtu: mtu,
          nameTag,
          ...(this.o.hostNetns ? { hostNetns: this.o.hostNetns } : {}),
          ...(this.o.hostTcpPorts ? { hostTcpPorts: this.o.hostTcpPorts } : {}),
        },
        { log: this.log },
      );
      await this.dns.loadResolvConf();
      this.log.info({ vtep: this.o.vtep, underlayMtu: mtu }, 'overlay data plane ready');
    }
    return this.plane;
  }

  /**
   * Whether the task needs attach/detach: every task but one on `none`
   * (loopback only). A task with no network is on the node's default bridge,
   * as Docker's `bridge` network: the egress interface alone.
   */
  uses(t: Task): boolean {
    return !onNoNetwork(t.spec);
  }

  /** Whether the task can be a VIP backend: it is on overlay networks (its stop waits for the other hosts to drop it). */
  behindVip(t: Task): boolean {
    return onOverlay(t);
  }

  /**
   * The resolv.conf of a task's container: the embedded server's when it is
   * on overlay networks; otherwise the host's resolvers a container can reach
   * (Docker's default bridge and `none` get the same).
   */
  resolvConf(t: Task): string | undefined {
    if (onOverlay(t)) return containerResolvConf({});
    const read = (path: string): string | undefined => {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return undefined;
      }
    };
    // None at all: Docker's defaults. Behind systemd-resolved's stub: the servers it forwards to.
    const etc = read(this.o.hostResolvConf ?? '/etc/resolv.conf') ?? '';
    const resolved = etc.includes(SYSTEMD_RESOLVED_STUB) ? read(this.o.systemdResolvConf ?? SYSTEMD_RESOLVED_UPSTREAMS) : undefined;
    return bridgeResolvConf(hostResolvConfForBridge(etc, resolved));
  }

  /** A NetworkUpdate from the managers. */
  apply(u: NetworkUpdate): Promise<void> {
    return this.serial(async () => {
      const plane = await this.planeOf();
      const seen = new Set<string>();
      for (const st of u.networks) {
        const net = st.network!;
        const id = net.meta!.id;
        seen.add(id);
        let v = this.nets.get(id);
        if (!v || st.full) {
          const fresh: NetView = { network: net, endpoints: new Map(), services: new Map(), ensured: v?.ensured ?? false };
          v = fresh;
          this.nets.set(id, v);
        }
        v.network = net;
        for (const e of st.endpoints) v.endpoints.set(e.taskId, e);
        for (const t of st.removedEndpoints) v.endpoints.delete(t);
        for (const s of st.services) v.services.set(s.serviceId, s);
        for (const s of st.removedServices) v.services.delete(s);
        await this.programOne(plane, id, v);
      }
      const gone = [...u.removedNetworks];
      if (u.reset) for (const id of this.nets.keys()) if (!seen.has(id)) gone.push(id);
      for (const id of gone) await this.dropNetwork(plane, id);
      await this.refreshLb();
      await this.refreshMesh(plane).catch((err: unknown) => this.log.error({ err }, 'programming the routing mesh failed'));
    });
  }

  /**
   * Programs one network, keeping its failure to itself: a bad subnet, a
   * kernel error or a VNI another device holds is logged with the network id
   * and kept as the reason its tasks fail with, and the caller goes on with
   * the other networks.
   */
  private async programOne(plane: OverlayPlane, id: string, v: NetView): Promise<void> {
    try {
      await this.program(plane, id, v);
      if (v.error) this.log.info({ network: id }, 'network programmed after an earlier failure');
      v.error = undefined;
    } catch (err) {
      v.error = (err as Error).message;
      this.log.error(
        { err, network: id, name: v.network.spec?.name, vni: v.network.status?.vni },
        'programming the network failed; other networks are unaffected',
      );
    }
  }

  /**
   * The routing mesh: while this host holds the ingress network and its own
   * address on it, the host namespace joins ingress (`tss_ingress`), published
   * ports are DNATed to a serving task anywhere in the cluster, and traffic
   * leaving through `tss_ingress` from outside the ingress subnet is
   * masqueraded to this host's ingress address, so the task's reply comes back
   * through this host (the task then sees this host's ingress address, not the
   * client's: docs/networking.md says when the source is kept).
   */
  private async refreshMesh(plane: OverlayPlane): Promise<void> {
    const ing = [...this.nets.entries()].find(([, v]) => v.network.spec?.ingress && v.ensured);
    const mine = ing?.[1].endpoints.get(`node:${this.o.nodeId}`);
    if (!ing || !mine) {
      if (this.mesh) await this.stopMesh();
      return;
    }
    const [networkId, v] = ing;
    const bits = (v.network.status?.subnet ?? '/24').split('/')[1];
    const address = `${mine.ip}/${bits}`;
    if (!this.mesh || this.mesh.address !== address) {
      if (this.mesh) await this.stopMesh();
      await plane.attach({ networkId, containerNetns: `/proc/${process.pid}/ns/net`, ifName: MESH_IF, address });
      // Published-port traffic is routed from the underlay interface into tss_ingress (Docker enables forwarding too).
      writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
      await mustRunIn(undefined, 'nft', ['-f', '-'], meshNatProgram(v.network.status!.subnet));
      this.mesh = { networkId, address };
      this.log.info({ address }, 'routing mesh: this host joined the ingress network');
    }
    const services: LbService[] = [];
    const ingress: LbTable['ingress'] = [];
    for (const s of v.services.values()) {
      const published = lbPorts(s.ports.filter((p) => p.publishMode === PublishMode.INGRESS && p.publishedPort > 0 && p.targetPort > 0));
      if (!published.length || !s.vip) continue;
      const backends = [...v.endpoints.values()].filter((e) => e.serviceId === s.serviceId && e.serving).map((e) => ({ ip: e.ip }));
      services.push({ id: s.serviceId, vip: s.vip, ports: published.map((p) => ({ protocol: p.lb, port: p.targetPort })), backends });
      for (const p of published)
        ingress.push({ protocol: p.lb, publishedPort: p.publishedPort, targetPort: p.targetPort, serviceId: s.serviceId });
    }
    this.meshTable = { services, ingress };
    await this.programHost();
  }

  /**
   * The host namespace's published ports: the mesh's, and host mode's (a
   * local task's port on this node, DNATed to its egress address: no source
   * NAT, so the task sees the client's address).
   */
  private async programHost(readBack = false): Promise<void> {
    const services = [...this.meshTable.services];
    const ingress = [...this.meshTable.ingress];
    for (const lt of this.tasks.values()) {
      const ports = lbPorts(lt.hostPorts.filter((p) => p.publishedPort > 0 && p.targetPort > 0));
      if (!lt.egressIp || ports.length === 0) continue;
      const id = `host:${lt.task.meta.id}`;
      services.push({
        id,
        vip: lt.egressIp,
        ports: ports.map((p) => ({ protocol: p.lb, port: p.targetPort })),
        backends: [{ ip: lt.egressIp }],
      });
      for (const p of ports) ingress.push({ protocol: p.lb, publishedPort: p.publishedPort, targetPort: p.targetPort, serviceId: id });
    }
    if (!this.hostLb && services.length === 0) return;
    try {
      this.hostLb ??= await ServiceLoadBalancer.open({ lbBackend: this.o.lbBackend, log: this.log });
      if (services.length === 0) {
        await this.hostLb.teardown();
        await this.hostLb.close();
        this.hostLb = null;
        return;
      }
      if (readBack) await this.hostLb.reconcile({ services, ingress });
      else await this.hostLb.update({ services, ingress });
    } catch (err) {
      this.log.warn({ err }, 'programming the published ports failed');
    }
  }

  private async stopMesh(): Promise<void> {
    const m = this.mesh;
    this.mesh = null;
    if (!m) return;
    this.meshTable = { services: [], ingress: [] };
    await this.programHost();
    await mustRunIn(undefined, 'nft', ['-f', '-'], `add table ip ${MESH_TABLE}\ndelete table ip ${MESH_TABLE}\n`).catch(() => undefined);
    await this.plane?.detach(m.networkId, m.address.replace(/\/\d+$/, '')).catch(() => undefined);
    this.log.info('routing mesh: this host left the ingress network');
  }

  private async program(plane: OverlayPlane, id: string, v: NetView): Promise<void> {
    const s = v.network.status;
    if (!s?.vni || !s.subnet) {
      this.log.warn({ network: id }, 'network not allocated yet; waiting');
      return;
    }
    try {
      await plane.ensureNetwork({ id, vni: s.vni, subnet: s.subnet, gateway: s.gateway });
    } catch (err) {
      // Its devices may be half made: no container joins it until an ensure succeeds.
      v.ensured = false;
      throw err;
    }
    v.ensured = true;
    const peers: Peer[] = [];
    for (const e of v.endpoints.values()) if (e.nodeId !== this.o.nodeId && e.vtep) peers.push({ ip: e.ip, mac: e.mac, vtep: e.vtep });
    await plane.setPeers(id, peers);
    this.dns.table.setNetwork(id, this.dnsRecords(v));
  }

  private dnsRecords(v: NetView): ServiceRecord[] {
    const ips = new Map<string, string[]>();
    for (const e of v.endpoints.values()) {
      if (!e.serving) continue;
      let l = ips.get(e.serviceId);
      if (!l) ips.set(e.serviceId, (l = []));
      l.push(e.ip);
    }
    return [...v.services.values()].map((s) => ({
      name: s.name,
      endpointMode: s.mode === EndpointMode.DNSRR ? 'dnsrr' : 'vip',
      vip: s.vip || undefined,
      taskIps: ips.get(s.serviceId) ?? [],
    }));
  }

  private async dropNetwork(plane: OverlayPlane, id: string): Promise<void> {
    this.nets.delete(id);
    this.dns.table.removeNetwork(id);
    await plane.removeNetwork(id).catch((err: unknown) => this.log.warn({ err, network: id }, 'removing the network failed'));
  }

  /** The VIP table of one container: every service with a VIP on its networks, backends serving on that network. */
  private lbTable(lt: LocalTask, serving = new Map<string, Map<string, Array<{ ip: string }>>>()): LbTable {
    const services: LbService[] = [];
    const seenVip = new Set<string>();
    for (const netId of lt.ips.keys()) {
      const v = this.nets.get(netId);
      if (!v) continue;
      // One pass over the network's endpoints, shared by the containers of one refresh (not one pass per service).
      let byService = serving.get(netId);
      if (!byService) {
        serving.set(netId, (byService = new Map()));
        for (const e of v.endpoints.values()) {
          if (!e.serving) continue;
          const l = byService.get(e.serviceId);
          if (l) l.push({ ip: e.ip });
          else byService.set(e.serviceId, [{ ip: e.ip }]);
        }
      }
      for (const s of v.services.values()) {
        if (!s.vip || seenVip.has(s.vip)) continue;
        seenVip.add(s.vip);
        const backends = [...(byService.get(s.serviceId) ?? [])];
        // As in Swarm, a VIP forwards every TCP and UDP port to the same port of a task (ports: []).
        services.push({ id: `${s.serviceId}@${netId}`, vip: s.vip, ports: [], backends });
      }
    }
    return { services, ingress: [] };
  }

  private async refreshLb(): Promise<void> {
    const serving = new Map<string, Map<string, Array<{ ip: string }>>>();
    for (const lt of this.tasks.values()) {
      if (!lt.lb) continue;
      try {
        await lt.lb.update(this.lbTable(lt, serving));
      } catch (err) {
        this.log.warn({ err, task: lt.task.meta.id }, 'programming the VIP load balancer failed');
      }
    }
  }

  /**
   * Joins a created (not yet started) container to its task's networks: one
   * veth per network (eth0, eth1, ... in the task's order), an egress
   * interface for traffic leaving the cluster (the only one of a task with no
   * network: the node's default bridge), the DNS server at 127.0.0.11
   * and the VIP load balancer in its namespace. Idempotent: an adopted
   * running container is joined again without change. Returns the task's
   * host-mode ports as bound here, with any port this node picked (its status
   * reports them).
   */
  attach(t: Task, pid: number, hostname?: string): Promise<PortConfig[]> {
    return this.serial(async () => {
      const plane = await this.planeOf();
      const netns = `/proc/${pid}/ns/net`;
      const ips = new Map<string, string>();
      const endpoints: Array<{ network: string; ip: string }> = [];
      let i = 0;
      for (const a of t.networks) {
        const address = a.addresses[0];
        if (!address) continue;
        const v = this.nets.get(a.networkId);
        if (v?.error && !v.ensured) {
          throw new TsswarmError(
            'FAILED_PRECONDITION',
            `network ${v.network.spec?.name || a.networkId.slice(0, 12)} (${a.networkId.slice(0, 12)}) could not be set up on this node: ${v.error}`,
          );
        }
        if (!v?.ensured) {
          throw new TsswarmError(
            'FAILED_PRECONDITION',
            `network ${a.networkId.slice(0, 12)} is not programmed on this node yet (no state from the managers)`,
          );
        }
        const ip = address.replace(/\/\d+$/, '');
        await plane.attach({ networkId: a.networkId, containerNetns: netns, ifName: `eth${i++}`, address });
        ips.set(a.networkId, ip);
        endpoints.push({ network: a.networkId, ip });
      }
      // `none`: loopback only (the worker does not call attach for it; an adopted one stays so).
      if (onNoNetwork(t.spec)) return [];
      const egress = await plane.attachEgress({ containerNetns: netns, ifName: `eth${i}` });
      const prev = this.tasks.get(t.meta.id);
      const hostPorts = await this.hostPortsFor(t, prev?.hostPorts);
      const lt: LocalTask = {
        task: t,
        netns,
        ips,
        lb: prev?.netns === netns ? prev.lb : null,
        egressIp: egress.ip,
        egress: { ip: egress.ip, prefixLen: egress.prefixLen, mac: egress.mac, gateway: plane.egressGateway },
        hostPorts,
      };
      this.tasks.set(t.meta.id, lt);
      if (ips.size > 0) {
        // The container's own name answers in DNS: its expanded hostname, not the template.
        await this.dns.attach(netns, {
          hostname: hostname || t.spec?.container?.hostname || t.meta.id.slice(0, 12),
          endpoints,
          // The service's --dns servers take external names for this container, as Docker's embedded DNS does.
          upstreams: (t.spec?.container?.dnsConfig?.nameservers ?? []).map((address) => ({ address, port: 53 })),
        });
        if (!lt.lb) lt.lb = await ServiceLoadBalancer.open({ netns, lbBackend: this.o.lbBackend, log: this.log });
        await lt.lb.update(this.lbTable(lt));
      }
      if (t.hostPorts.length > 0) await this.programHost();
      return hostPorts;
    });
  }

  /**
   * The node ports of a task's host-mode ports. A port the spec left out (as
   * `docker service create --publish mode=host,target=80` allows) gets a free
   * one from the kernel's ephemeral range, above the routing mesh's
   * 30000-32767; a task that had one already (this agent's earlier attach, or
   * its reported status after an agent restart) keeps it.
   */
  private async hostPortsFor(t: Task, had: PortConfig[] | undefined): Promise<PortConfig[]> {
    const out: PortConfig[] = [];
    // protocol/port of every node port given out: other tasks', and this task's as they are settled.
    const taken = new Set<string>();
    const key = (protocol: PortProtocol, port: number): string => `${protocol}/${port}`;
    for (const lt of this.tasks.values())
      if (lt.task.meta.id !== t.meta.id) for (const p of lt.hostPorts) taken.add(key(p.protocol, p.publishedPort));
    for (const p of t.hostPorts) if (p.publishedPort > 0) taken.add(key(p.protocol, p.publishedPort));
    const earlier = [...(had ?? []), ...(t.status?.portStatus ?? [])];
    for (const p of t.hostPorts) {
      let port = p.publishedPort;
      if (port === 0) {
        const same = earlier.find(
          (q) =>
            q.protocol === p.protocol &&
            q.targetPort === p.targetPort &&
            q.publishedPort > 0 &&
            !taken.has(key(q.protocol, q.publishedPort)),
        );
        port = same?.publishedPort ?? (await freePort(p.protocol, (n) => taken.has(key(p.protocol, n))));
        taken.add(key(p.protocol, port));
      }
      out.push(PortConfig.create({ ...p, publishedPort: port }));
    }
    return out;
  }

  /** The task's container has stopped (or is being removed): release its DNS sockets and forget its load balancer. */
  detach(t: Task): Promise<void> {
    return this.serial(async () => {
      const lt = this.tasks.get(t.meta.id);
      if (!lt) return;
      this.tasks.delete(t.meta.id);
      await this.dns.detach(lt.netns).catch(() => undefined);
      // The container's namespace goes with its process: its veths and rules with it.
      await lt.lb?.close().catch(() => undefined);
      await this.plane?.detachEgress(lt.netns).catch(() => undefined);
      if (lt.task.hostPorts.length > 0) await this.programHost();
    });
  }

  /** A task's address on the node's default bridge (container inspect shows it as Docker's `bridge` network). */
  bridgeAddress(taskId: string): { ip: string; prefixLen: number; gateway: string; mac: string } | undefined {
    const lt = this.tasks.get(taskId);
    return lt?.egress ? { ...lt.egress } : undefined;
  }

  /** What this node holds (tests, `network inspect --dataplane`). */
  view(): Array<{ id: string; endpoints: number; services: number; ensured: boolean; error?: string }> {
    return [...this.nets].map(([id, v]) => ({
      id,
      endpoints: v.endpoints.size,
      services: v.services.size,
      ensured: v.ensured,
      ...(v.error ? { error: v.error } : {}),
    }));
  }

  /**
   * The expected state of one network on this node, as the managers describe
   * it, and the containers attached to it here with the VIP table each
   * should hold: what `network inspect --dataplane` compares with the kernel.
   */
  expected(networkId: string):
    | {
        network: Network;
        /** The host's per-network namespace (bridge + VXLAN device), when programmed. */
        netns: string | undefined;
        vni: number;
        /** Remote endpoints: the FDB (mac → vtep) and neighbor (ip → mac) entries the VXLAN device must hold. */
        peers: Peer[];
        /** Local containers on this network: their namespace and the VIP table it must hold. */
        containers: Array<{ taskId: string; netns: string; table: LbTable }>;
      }
    | undefined {
    const v = this.nets.get(networkId);
    if (!v) return undefined;
    const vni = v.network.status?.vni ?? 0;
    const peers: Peer[] = [];
    for (const e of v.endpoints.values()) if (e.nodeId !== this.o.nodeId && e.vtep) peers.push({ ip: e.ip, mac: e.mac, vtep: e.vtep });
    const containers = [...this.tasks.values()]
      .filter((lt) => lt.ips.has(networkId))
      .map((lt) => ({ taskId: lt.task.meta.id, netns: lt.netns, table: this.lbTable(lt) }));
    return { network: v.network, netns: v.ensured && this.plane ? this.plane.netnsOf(vni) : undefined, vni, peers, containers };
  }

  /** The name of a network this node holds (container inspect keys its networks by name). */
  networkName(id: string): string | undefined {
    return this.nets.get(id)?.network.spec?.name || undefined;
  }

  /** The networks this node holds. */
  networks(): Network[] {
    return [...this.nets.values()].map((v) => v.network);
  }

  /** The ids of the networks this node holds. */
  networkIds(): string[] {
    return [...this.nets.keys()];
  }

  async close(): Promise<void> {
    if (this.repairTimer) clearInterval(this.repairTimer);
    this.repairTimer = null;
    await this.queue;
    this.closed = true;
    for (const lt of this.tasks.values()) await lt.lb?.close().catch(() => undefined);
    this.tasks.clear();
    // Published ports stay programmed while the daemon restarts; only handles close.
    await this.hostLb?.close().catch(() => undefined);
    this.hostLb = null;
    this.mesh = null;
    await this.dns.close();
  }
}

/**
 * A port no socket of this host holds: the kernel's pick for a bind to port 0
 * (its ephemeral range), tried again when `taken` (ports given to other tasks,
 * which no socket holds: they are NAT rules) has it.
 */
async function freePort(protocol: PortProtocol, taken: (port: number) => boolean): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = protocol === PortProtocol.UDP ? await udpPort() : await tcpPort();
    if (!taken(port)) return port;
  }
  throw new TsswarmError('UNAVAILABLE', 'no free host port found for a port published in host mode: give one with published=PORT');
}

function tcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '0.0.0.0', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function udpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    sock.once('error', reject);
    sock.bind(0, '0.0.0.0', () => {
      const port = sock.address().port;
      sock.close(() => resolve(port));
    });
  });
}
