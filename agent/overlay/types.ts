// The overlay's vocabulary: what the agent asks for (a host, its
// networks, container attachments, the peer table) and what the kernel is
// read back as (links, FDB and neighbor entries). Plain data, no behaviour.

/**
 * A network namespace: a name under /run/netns (`tss-h1`), a path
 * (`/proc/1234/ns/net`, `/run/netns/x`), or undefined for the agent's own
 * namespace (production: the root namespace).
 */
export type NetnsRef = string | undefined;

/** One host's place on the underlay. */
export interface HostConfig {
  /** The host's network namespace: undefined in production; `tss-hK` in the sandbox. */
  hostNetns?: string;
  /** This host's underlay address: the source of every VXLAN packet (its VTEP). */
  vtep: string;
  /** MTU of the underlay interface; overlay interfaces get 50 bytes less (VXLAN over IPv4). */
  underlayMtu: number;
  /** VXLAN UDP port, 4789 unless the cluster says otherwise. */
  vxlanPort?: number;
  /**
   * Makes this host's per-network namespace names unique on a machine that
   * runs several hosts (the sandbox). Default: the host namespace's name
   * without a leading `tss-`, or `host` for the agent's own namespace.
   */
  nameTag?: string;
  /** The egress bridge's subnet (containers' way out, NATed). Default 172.30.0.0/16. */
  egressSubnet?: string;
  /** TCP ports of this host containers may not reach through the egress bridge (the node's control plane). */
  hostTcpPorts?: number[];
  /**
   * Also program a flood entry (00:00:00:00:00:00 → VTEP) per remote host, so
   * broadcasts and unknown unicasts reach every host of the network. Off by
   * default: ARP is answered from the neighbor table by the VXLAN device
   * (`proxy`), so IPv4 between endpoints needs no flooding.
   */
  flood?: boolean;
}

/** An overlay network as the manager allocated it. */
export interface NetworkSpec {
  id: string;
  /** VXLAN network identifier, 1..16777215. */
  vni: number;
  /** `10.0.1.0/24` */
  subnet: string;
  /** `10.0.1.1`: carried by the network's bridge on every host. */
  gateway: string;
}

/** One container joining one overlay network. */
export interface AttachSpec {
  networkId: string;
  /** The container's namespace: `/proc/PID/ns/net`, `/run/netns/X` or a /run/netns name. */
  containerNetns: string;
  /** The interface name inside the container: eth0, eth1, ... */
  ifName: string;
  /** The task's address with its prefix length: `10.0.1.5/24`. */
  address: string;
}

/** A container's attachment as programmed. */
export interface Endpoint {
  ifName: string;
  ip: string;
  prefixLen: number;
  /** Derived from the IP (02:42 then the four address bytes). */
  mac: string;
  /** The host end of the veth pair (in the network's namespace, or the host's for egress). */
  hostIf: string;
}

/** The egress attachment: an interface on the host's NAT bridge and the default route through it. */
export interface EgressSpec {
  containerNetns: string;
  ifName: string;
}

/** A remote endpoint of a network: where its IP and MAC live on the underlay. */
export interface Peer {
  ip: string;
  mac: string;
  /** The underlay address of the host running it. */
  vtep: string;
}

/** A static FDB entry on a VXLAN device (`self`): frames for `mac` go to `dst`. */
export interface FdbEntry {
  mac: string;
  dst: string;
}

/** A neighbor entry on a VXLAN device: `ip` is at `mac`. */
export interface NeighEntry {
  ip: string;
  mac: string;
  permanent: boolean;
}

/** What a VXLAN device holds that the peer table decides. */
export interface PeerState {
  fdb: FdbEntry[];
  neigh: NeighEntry[];
}

/** The `bridge -batch` and `ip -batch` lines that take a device from one PeerState to another. */
export interface PeerProgram {
  fdb: string[];
  neigh: string[];
}

/** What setPeers did. */
export interface PeerSyncResult {
  /** Lines sent to the kernel (0 when it already matched). */
  fdbLines: number;
  neighLines: number;
  /** Entries programmed and removed, FDB and neighbor together. */
  added: number;
  removed: number;
}

/** A link as `ip -json -d addr show` describes it, reduced to what the planners look at. */
export interface LinkState {
  name: string;
  ifindex: number;
  kind: string;
  up: boolean;
  mtu: number;
  mac: string;
  master?: string;
  /** IPv4 addresses with prefix: `10.0.1.1/24`. */
  addrs: string[];
  /** Bridge port flag (`bridge link set ... isolated on`). */
  isolated?: boolean;
  vxlan?: { vni: number; local?: string; port: number; learning: boolean; proxy: boolean };
}
