// OverlayPlane, the overlay of one host: turns ensureNetwork / attach / setPeers
// calls into the pure planners' lines and applies each program in one batch
// per namespace, reading the kernel before (to plan against what is there)
// and, for peers, after (to prove it took). Calls run one at a time.
import { readdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { TsswarmError, UsageError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/log.js';
import { isEmptyProgram, planNetwork } from './vxlan.js';
import { allocateEgressIp, egressInUse, egressNet, egressRuleset, planEgressBridge, type EgressNet } from './egress.js';
import { planAttach, planDetach, type EndpointDevices } from './veth.js';
import { batch, netnsAdd, netnsDel, netnsExists, nft, readDefaultVia, readFdb, readLinks, readNeigh, sysctl } from './kernel.js';
import {
  DEFAULT_EGRESS_SUBNET,
  EGRESS_BRIDGE,
  EGRESS_TABLE,
  MAX_VNI,
  NETNS_DIR,
  VXLAN_OVERHEAD,
  VXLAN_PORT,
  bridgeName,
  checkIfName,
  defaultNameTag,
  egressVethName,
  formatIp,
  inPrefix,
  ipOfVethName,
  macOf,
  netnsPath,
  overlayNetnsName,
  overlayVethName,
  parseIp,
  parsePrefix,
  vniOfNetnsName,
  vxlanName,
  type Prefix,
} from './names.js';
import { desiredPeerState, planPeers, programCounts } from './fdb.js';
import type { AttachSpec, EgressSpec, Endpoint, HostConfig, NetworkSpec, Peer, PeerState, PeerSyncResult } from './types.js';

interface KnownNetwork {
  spec: NetworkSpec;
  subnet: Prefix;
  netns: string;
  /** The last peer table asked for, replayed by reconcile(). */
  peers?: readonly Peer[];
  /** Attachments by address, replayed by reconcile() while their container lives. */
  attached: Map<string, AttachSpec>;
}

export class OverlayPlane {
  readonly vtep: string;
  readonly hostNetns: string | undefined;
  /** MTU of every overlay interface: the underlay's less the VXLAN encapsulation. */
  readonly overlayMtu: number;
  readonly underlayMtu: number;
  readonly tag: string;
  private readonly port: number;
  private readonly flood: boolean;
  private readonly egress: EgressNet;
  private readonly hostTcpPorts: number[];
  private readonly log: Logger;
  private readonly networks = new Map<string, KnownNetwork>();
  private egressReady = false;
  /** Egress attachments by container namespace path, replayed by reconcile(). */
  private readonly egressAttached = new Map<string, EgressSpec>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(host: HostConfig, o: { log?: Logger } = {}) {
    parseIp('vtep', host.vtep);
    if (!Number.isInteger(host.underlayMtu) || host.underlayMtu < 576 + VXLAN_OVERHEAD || host.underlayMtu > 65535) {
      throw UsageError.invalid(
        'underlayMtu',
        `a whole number from ${576 + VXLAN_OVERHEAD} to 65535 (the underlay interface's MTU)`,
        host.underlayMtu,
      );
    }
    const port = host.vxlanPort ?? VXLAN_PORT;
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw UsageError.invalid('vxlanPort', 'a UDP port from 1 to 65535 (4789 by default)', port);
    const tag = host.nameTag ?? defaultNameTag(host.hostNetns);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(tag)) throw UsageError.invalid('nameTag', 'letters, digits, "_", "." or "-" (at most 64)', tag);
    this.vtep = host.vtep;
    this.hostNetns = host.hostNetns || undefined;
    this.underlayMtu = host.underlayMtu;
    this.overlayMtu = host.underlayMtu - VXLAN_OVERHEAD;
    this.port = port;
    this.tag = tag;
    this.flood = host.flood ?? false;
    this.egress = egressNet(host.egressSubnet ?? DEFAULT_EGRESS_SUBNET);
    this.hostTcpPorts = host.hostTcpPorts ?? [];
    for (const p of this.hostTcpPorts)
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw UsageError.invalid('hostTcpPorts', 'TCP ports from 1 to 65535', p);
    this.log = (o.log ?? silentLogger()).child({ component: 'network' });
  }

  /** The egress bridge's address: the default route of every container on it. */
  get egressGateway(): string {
    return this.egress.gateway;
  }

  /** The namespace name a network gets on this host. */
  netnsOf(vni: number): string {
    return overlayNetnsName(vni, this.tag);
  }

  /** Runs calls one at a time: each plans against the kernel state the previous one left. */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.queue.then(f, f);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private known(networkId: string): KnownNetwork {
    const n = this.networks.get(networkId);
    if (!n)
      throw new TsswarmError(
        'FAILED_PRECONDITION',
        `network ${networkId} is not set up on this host: call ensureNetwork before attaching or programming peers`,
      );
    return n;
  }

  /** Creates (or repairs) the network's namespace, bridge and VXLAN device. Idempotent. */
  ensureNetwork(spec: NetworkSpec): Promise<void> {
    return this.serial(() => this.ensureNetworkNow(spec));
  }

  private async ensureNetworkNow(spec: NetworkSpec): Promise<void> {
    if (!spec.id) throw UsageError.invalid('id', 'the network ID', spec.id);
    if (!Number.isInteger(spec.vni) || spec.vni < 1 || spec.vni > MAX_VNI)
      throw UsageError.invalid('vni', `a whole number from 1 to ${MAX_VNI}`, spec.vni);
    const subnet = parsePrefix('subnet', spec.subnet);
    if (subnet.base !== subnet.ip || subnet.bits > 30)
      throw UsageError.invalid('subnet', 'a subnet of /30 or larger written with its network address, such as 10.0.1.0/24', spec.subnet);
    const gw = parseIp('gateway', spec.gateway);
    if (!inPrefix(subnet, gw)) throw UsageError.invalid('gateway', `an address inside ${spec.subnet}`, spec.gateway);
    for (const [id, n] of this.networks) {
      if (id !== spec.id && n.spec.vni === spec.vni)
        throw new UsageError(
          `vni ${spec.vni} of network ${spec.id} is already used by network ${id} on this host: every network needs its own VNI`,
          { field: 'vni' },
        );
    }
    const netns = this.netnsOf(spec.vni);
    const [hostLinks, overlayLinks] = await Promise.all([readLinks(this.hostNetns), readLinks(netns)]);
    if (!hostLinks) throw new TsswarmError('FAILED_PRECONDITION', `the host namespace ${this.hostNetns} does not exist`);
    const p = planNetwork(
      {
        vni: spec.vni,
        gatewayAddr: `${spec.gateway}/${subnet.bits}`,
        bridgeMac: macOf(spec.gateway),
        vtep: this.vtep,
        port: this.port,
        mtu: this.overlayMtu,
        netns,
      },
      { netnsExists: overlayLinks !== undefined, hostLinks, overlayLinks: overlayLinks ?? [] },
    );
    const prev = this.networks.get(spec.id);
    this.networks.set(spec.id, {
      spec,
      subnet,
      netns,
      attached: prev?.attached ?? new Map(),
      ...(prev?.peers ? { peers: prev.peers } : {}),
    });
    if (isEmptyProgram(p)) return;
    const what = `network ${spec.id} (vni ${spec.vni})`;
    this.log.info(
      { network: spec.id, vni: spec.vni, netns, lines: p.overlayPre.length + p.host.length + p.overlay.length, create: p.createNetns },
      'programming network devices',
    );
    if (p.createNetns) await netnsAdd(netns);
    await batch('ip', netns, p.overlayPre, what);
    await batch('ip', this.hostNetns, p.host, what);
    await batch('ip', netns, p.overlay, what);
  }

  /** Removes the network's namespace (its bridge, VXLAN device and veth ends go with it). Idempotent. */
  removeNetwork(networkId: string): Promise<void> {
    return this.serial(async () => {
      const n = this.networks.get(networkId);
      if (!n) return;
      await this.removeNetns(n.spec.vni);
      this.networks.delete(networkId);
      this.log.info({ network: networkId, vni: n.spec.vni }, 'network removed');
    });
  }

  private async removeNetns(vni: number): Promise<void> {
    await netnsDel(this.netnsOf(vni));
    // A VXLAN device left in the host namespace by a creation cut short.
    const host = await readLinks(this.hostNetns);
    if (host?.some((l) => l.name === vxlanName(vni)))
      await batch('ip', this.hostNetns, [`link del ${vxlanName(vni)}`], `removing vni ${vni}`);
  }

  /**
   * Removes this host's network namespaces that no ensureNetwork of this
   * process asked for (left by an earlier agent life). Returns their names.
   */
  prune(): Promise<string[]> {
    return this.serial(async () => {
      const keep = new Set([...this.networks.values()].map((n) => n.spec.vni));
      let names: string[] = [];
      try {
        names = readdirSync(NETNS_DIR);
      } catch {
        // no /run/netns: nothing of ours either
      }
      const gone: string[] = [];
      for (const name of names) {
        const vni = vniOfNetnsName(name, this.tag);
        if (vni === undefined || keep.has(vni)) continue;
        await this.removeNetns(vni);
        gone.push(name);
      }
      if (gone.length) this.log.info({ removed: gone }, 'pruned stale network namespaces');
      return gone;
    });
  }

  /** Joins a container to a network: veth pair, MAC from the address, address up. Idempotent. */
  attach(spec: AttachSpec): Promise<Endpoint> {
    return this.serial(() => this.attachNow(spec));
  }

  private async attachNow(spec: AttachSpec): Promise<Endpoint> {
    const n = this.known(spec.networkId);
    const ifName = checkIfName('ifName', spec.ifName);
    const addr = parsePrefix('address', spec.address);
    if (addr.bits !== n.subnet.bits || !inPrefix(n.subnet, addr.ip))
      throw UsageError.invalid('address', `an address inside ${n.spec.subnet} written with /${n.subnet.bits}`, spec.address);
    const ip = formatIp(addr.ip);
    const d: EndpointDevices = {
      hostIf: overlayVethName(ip),
      bridge: bridgeName(n.spec.vni),
      ifName,
      ip,
      prefixLen: addr.bits,
      mac: macOf(ip),
      mtu: this.overlayMtu,
      containerNetns: netnsPath(spec.containerNetns),
    };
    await this.applyAttach(n.netns, d, `attaching ${ip} to network ${spec.networkId}`);
    n.attached.set(ip, spec);
    return { ifName, ip, prefixLen: addr.bits, mac: d.mac, hostIf: d.hostIf };
  }

  private async applyAttach(bridgeNs: string | undefined, d: EndpointDevices, what: string): Promise<void> {
    const [bridgeLinks, containerLinks, defaultVia] = await Promise.all([
      readLinks(bridgeNs),
      readLinks(d.containerNetns),
      d.defaultVia ? readDefaultVia(d.containerNetns).catch(() => undefined) : Promise.resolve(undefined),
    ]);
    if (!containerLinks)
      throw UsageError.invalid('containerNetns', 'an existing network namespace (/proc/PID/ns/net or /run/netns/NAME)', d.containerNetns);
    const hostLink = bridgeLinks?.find((l) => l.name === d.hostIf);
    const p = planAttach(d, { ...(hostLink ? { hostLink } : {}), containerLinks, ...(defaultVia ? { defaultVia } : {}) });
    await batch('ip', bridgeNs, p.bridgeNs, what);
    await batch('ip', d.containerNetns, p.container, what);
    if (p.bridgeNs.length + p.container.length)
      this.log.debug({ ip: d.ip, ifName: d.ifName, lines: p.bridgeNs.length + p.container.length }, 'endpoint programmed');
  }

  /** Takes the endpoint with this address off the network (the container's interface goes too). Idempotent. */
  detach(networkId: string, ip: string): Promise<void> {
    return this.serial(async () => {
      const n = this.known(networkId);
      parseIp('ip', ip);
      const hostIf = overlayVethName(ip);
      const links = await readLinks(n.netns);
      await batch(
        'ip',
        n.netns,
        planDetach(
          hostIf,
          links?.find((l) => l.name === hostIf),
        ),
        `detaching ${ip} from network ${networkId}`,
      );
      n.attached.delete(ip);
    });
  }

  /** Addresses attached to the network on this host, as the kernel shows them. */
  endpoints(networkId: string): Promise<string[]> {
    return this.serial(async () => {
      const n = this.known(networkId);
      const links = (await readLinks(n.netns)) ?? [];
      return links.map((l) => ipOfVethName(l.name, 'overlay')).filter((x): x is string => x !== undefined);
    });
  }

  /**
   * Gives a container its way out: a port on the host's egress bridge, an
   * address from the egress subnet, and its default route. Sets up the
   * bridge, the NAT table and forwarding on first use. Idempotent.
   */
  attachEgress(spec: EgressSpec): Promise<Endpoint> {
    return this.serial(() => this.attachEgressNow(spec));
  }

  private async attachEgressNow(spec: EgressSpec): Promise<Endpoint> {
    const ifName = checkIfName('ifName', spec.ifName);
    const containerNetns = netnsPath(spec.containerNetns);
    const [hostLinks, containerLinks] = await Promise.all([readLinks(this.hostNetns), readLinks(containerNetns)]);
    if (!hostLinks) throw new TsswarmError('FAILED_PRECONDITION', `the host namespace ${this.hostNetns} does not exist`);
    if (!containerLinks)
      throw UsageError.invalid(
        'containerNetns',
        'an existing network namespace (/proc/PID/ns/net or /run/netns/NAME)',
        spec.containerNetns,
      );
    await batch(
      'ip',
      this.hostNetns,
      planEgressBridge(
        this.egress,
        this.underlayMtu,
        hostLinks.find((l) => l.name === EGRESS_BRIDGE),
      ),
      'egress bridge',
    );
    if (!this.egressReady) {
      await nft(this.hostNetns, egressRuleset(this.egress, { vxlanPort: this.port, hostTcpPorts: this.hostTcpPorts }), 'egress NAT table');
      await sysctl(this.hostNetns, 'net.ipv4.ip_forward', '1');
      this.egressReady = true;
    }
    // Already attached: keep its address.
    const existing = containerLinks
      .find((l) => l.name === ifName)
      ?.addrs.map((a) => parsePrefix('address', a))
      .find((a) => inPrefix(this.egress.prefix, a.ip));
    const ip = existing ? formatIp(existing.ip) : allocateEgressIp(this.egress, egressInUse(this.egress, hostLinks));
    const d: EndpointDevices = {
      hostIf: egressVethName(ip),
      bridge: EGRESS_BRIDGE,
      ifName,
      ip,
      prefixLen: this.egress.prefix.bits,
      mac: macOf(ip),
      mtu: this.underlayMtu,
      containerNetns,
      isolated: true,
      defaultVia: this.egress.gateway,
    };
    await this.applyAttach(this.hostNetns, d, `attaching ${containerNetns} to ${EGRESS_BRIDGE}`);
    this.egressAttached.set(containerNetns, spec);
    return { ifName, ip, prefixLen: d.prefixLen, mac: d.mac, hostIf: d.hostIf };
  }

  /** Removes the container's egress port (nothing to do once its namespace is gone: the kernel removed the pair). */
  detachEgress(containerNetns: string): Promise<void> {
    return this.serial(async () => {
      this.egressAttached.delete(netnsPath(containerNetns));
      const links = await readLinks(netnsPath(containerNetns));
      if (!links) return;
      const ips = links
        .flatMap((l) => l.addrs)
        .map((a) => parsePrefix('address', a))
        .filter((a) => inPrefix(this.egress.prefix, a.ip));
      const host = (await readLinks(this.hostNetns)) ?? [];
      const lines = ips.flatMap((a) => {
        const hostIf = egressVethName(formatIp(a.ip));
        return planDetach(
          hostIf,
          host.find((l) => l.name === hostIf),
        );
      });
      await batch('ip', this.hostNetns, lines, `detaching ${containerNetns} from ${EGRESS_BRIDGE}`);
    });
  }

  /** Removes the egress bridge and NAT table; refused while containers are on it unless `force`. */
  removeEgress(o: { force?: boolean } = {}): Promise<void> {
    return this.serial(async () => {
      const host = (await readLinks(this.hostNetns)) ?? [];
      const ports = host.filter((l) => l.master === EGRESS_BRIDGE);
      if (ports.length && !o.force)
        throw new TsswarmError(
          'FAILED_PRECONDITION',
          `${ports.length} containers are still on ${EGRESS_BRIDGE} (${ports.map((l) => l.name).join(' ')}): detach them first or pass force`,
        );
      const lines = [
        ...ports.map((l) => `link del ${l.name}`),
        ...(host.some((l) => l.name === EGRESS_BRIDGE) ? [`link del ${EGRESS_BRIDGE}`] : []),
      ];
      await batch('ip', this.hostNetns, lines, 'removing the egress bridge');
      await nft(this.hostNetns, `add table ip ${EGRESS_TABLE}\ndelete table ip ${EGRESS_TABLE}\n`, 'removing the egress NAT table');
      this.egressReady = false;
    });
  }

  /**
   * Makes the network's VXLAN device hold exactly the entries `peers` call
   * for: static FDB (MAC → VTEP) and permanent neighbor (IP → MAC) entries
   * for every remote endpoint, plus flood entries when configured. Reads the
   * kernel, applies the difference in one `bridge` and one `ip` batch, reads
   * back and throws if anything is still off. Stale entries are deleted.
   */
  setPeers(networkId: string, peers: readonly Peer[]): Promise<PeerSyncResult> {
    return this.serial(async () => {
      const n = this.known(networkId);
      const desired = desiredPeerState(peers, this.vtep, { flood: this.flood });
      const r = await this.syncPeers(n, desired);
      n.peers = peers;
      return r;
    });
  }

  private async readPeers(n: KnownNetwork): Promise<PeerState> {
    const dev = vxlanName(n.spec.vni);
    const [fdb, neigh] = await Promise.all([readFdb(n.netns, dev), readNeigh(n.netns, dev)]);
    return { fdb, neigh };
  }

  private async syncPeers(n: KnownNetwork, desired: PeerState): Promise<PeerSyncResult> {
    if (!netnsExists(n.netns))
      throw new TsswarmError('FAILED_PRECONDITION', `namespace ${n.netns} of network ${n.spec.id} is missing: call ensureNetwork again`);
    const dev = vxlanName(n.spec.vni);
    const program = planPeers(dev, desired, await this.readPeers(n));
    const counts = programCounts(program);
    const result: PeerSyncResult = { fdbLines: program.fdb.length, neighLines: program.neigh.length, ...counts };
    if (program.fdb.length + program.neigh.length === 0) return result;
    const what = `peers of network ${n.spec.id}`;
    const [fr, nr] = await Promise.all([
      batch('bridge', n.netns, program.fdb, what, { force: true }),
      batch('ip', n.netns, program.neigh, what, { force: true }),
    ]);
    const left = planPeers(dev, desired, await this.readPeers(n));
    if (left.fdb.length + left.neigh.length > 0) {
      const first = [...left.fdb, ...left.neigh].slice(0, 3).join('; ');
      const err = [fr.stderr.trim(), nr.stderr.trim()].filter(Boolean).join(' | ').slice(0, 400);
      throw new TsswarmError(
        'INTERNAL',
        `${what}: ${left.fdb.length + left.neigh.length} entries still differ after programming (${first})${err ? `: ${err}` : ''}`,
      );
    }
    this.log.info({ network: n.spec.id, ...counts }, 'peers programmed');
    return result;
  }

  /**
   * Re-applies everything this plane was asked for against the kernel: each
   * network's devices, its endpoints whose containers still live, its last
   * peer table, and the egress attachments. What a periodic check runs (and
   * what a restarted agent gets by repeating its calls) to put back deleted
   * devices and entries and drop stale ones. Attachments of containers that
   * are gone are forgotten.
   */
  reconcile(): Promise<Map<string, PeerSyncResult>> {
    return this.serial(async () => {
      const out = new Map<string, PeerSyncResult>();
      const failed: string[] = [];
      for (const n of [...this.networks.values()]) {
        // Each network on its own: one that cannot be repaired leaves the others repaired.
        try {
          await this.ensureNetworkNow(n.spec);
          for (const [ip, a] of [...n.attached]) {
            if (netnsExists(netnsPath(a.containerNetns))) await this.attachNow(a);
            else n.attached.delete(ip);
          }
          if (n.peers) out.set(n.spec.id, await this.syncPeers(n, desiredPeerState(n.peers, this.vtep, { flood: this.flood })));
        } catch (err) {
          this.log.error({ err, network: n.spec.id, vni: n.spec.vni }, 'reconciling the network failed; going on with the others');
          failed.push(`${n.spec.id}: ${(err as Error).message}`);
        }
      }
      if (this.egressAttached.size) this.egressReady = false;
      for (const [path, e] of [...this.egressAttached]) {
        if (netnsExists(path)) await this.attachEgressNow(e);
        else this.egressAttached.delete(path);
      }
      if (failed.length)
        throw new TsswarmError(
          'INTERNAL',
          `reconciling ${failed.length} of ${this.networks.size} networks failed (the others are reconciled): ${failed.join('; ')}`,
        );
      return out;
    });
  }
}
