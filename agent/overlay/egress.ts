// The containers' way out of the cluster, as Swarm's docker_gwbridge: one
// bridge per host (tss_gwbridge) in the host namespace carrying the gateway
// address, each container's default route through a port of it, ports
// isolated from each other (so overlay networks stay apart), and a private
// nftables table that masquerades what leaves by another interface and drops
// what would be routed from one egress port to another. Pure planners.
// The VXLAN device lives in the host namespace and its socket listens on all
// host addresses: the table also keeps containers from sending VXLAN packets
// (to this host or, through the masquerade, to another), which would inject
// frames into any overlay network, and from calling the node's control plane.
import { UsageError } from '../../lib/errors.js';
import { EGRESS_BRIDGE, EGRESS_TABLE, formatIp, ipOfVethName, macOf, parsePrefix, type Prefix } from './names.js';
import type { LinkState } from './types.js';

export interface EgressNet {
  prefix: Prefix;
  /** The first address of the subnet, on the bridge. */
  gateway: string;
  /** `172.30.0.1/16` */
  gatewayAddr: string;
  subnet: string;
}

export function egressNet(subnet: string): EgressNet {
  const prefix = parsePrefix('egressSubnet', subnet);
  if (prefix.bits > 30 || prefix.base !== prefix.ip)
    throw UsageError.invalid('egressSubnet', 'a subnet of /30 or larger written with its network address, such as 172.30.0.0/16', subnet);
  const gateway = formatIp(prefix.base + 1);
  return { prefix, gateway, gatewayAddr: `${gateway}/${prefix.bits}`, subnet: `${formatIp(prefix.base)}/${prefix.bits}` };
}

/** Lines (host namespace) that make the bridge exist with the gateway address, up. */
export function planEgressBridge(net: EgressNet, mtu: number, actual: LinkState | undefined): string[] {
  const out: string[] = [];
  let br = actual;
  if (br && br.kind !== 'bridge') {
    out.push(`link del ${EGRESS_BRIDGE}`);
    br = undefined;
  }
  // A fixed MAC: a bridge left alone takes its lowest port's and changes it when that port leaves.
  const mac = macOf(net.gateway);
  if (!br) out.push(`link add ${EGRESS_BRIDGE} address ${mac} mtu ${mtu} type bridge`);
  else {
    if (br.mac !== mac) out.push(`link set ${EGRESS_BRIDGE} address ${mac}`);
    if (br.mtu !== mtu) out.push(`link set ${EGRESS_BRIDGE} mtu ${mtu}`);
  }
  for (const a of br?.addrs ?? []) if (a !== net.gatewayAddr) out.push(`addr del ${a} dev ${EGRESS_BRIDGE}`);
  if (!br?.addrs.includes(net.gatewayAddr)) out.push(`addr replace ${net.gatewayAddr} dev ${EGRESS_BRIDGE}`);
  if (!br?.up) out.push(`link set ${EGRESS_BRIDGE} up`);
  return out;
}

export interface EgressGuard {
  /** The VXLAN UDP port (4789 unless configured): no container reaches it on this host or another. */
  vxlanPort: number;
  /** TCP ports of this host a container may not open through the gateway (the node's gRPC port, the Engine API's TCP port). */
  hostTcpPorts?: readonly number[];
}

/**
 * The egress table as one `nft -f` transaction. Creating, flushing and
 * deleting the table first makes the whole file replace whatever was there.
 */
export function egressRuleset(net: EgressNet, guard: EgressGuard): string {
  const ports = [...new Set(guard.hostTcpPorts ?? [])].sort((a, b) => a - b);
  for (const p of [guard.vxlanPort, ...ports])
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw UsageError.invalid('port', 'a port from 1 to 65535', p);
  return [
    `add table ip ${EGRESS_TABLE}`,
    `delete table ip ${EGRESS_TABLE}`,
    `table ip ${EGRESS_TABLE} {`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority 100; policy accept;`,
    `    ip saddr ${net.subnet} oifname != "${EGRESS_BRIDGE}" masquerade`,
    `  }`,
    // What a container sends to the host itself (the gateway, or any other address of the host).
    `  chain input {`,
    `    type filter hook input priority 0; policy accept;`,
    `    iifname "${EGRESS_BRIDGE}" udp dport ${guard.vxlanPort} drop`,
    ...(ports.length ? [`    iifname "${EGRESS_BRIDGE}" tcp dport { ${ports.join(', ')} } drop`] : []),
    `  }`,
    `  chain forward {`,
    `    type filter hook forward priority 0; policy accept;`,
    `    iifname "${EGRESS_BRIDGE}" oifname "${EGRESS_BRIDGE}" drop`,
    `    ip saddr ${net.subnet} udp dport ${guard.vxlanPort} drop`,
    `  }`,
    `}`,
    '',
  ].join('\n');
}

/** Addresses taken on the bridge: the gateway and one per port (ports are named after their address). */
export function egressInUse(net: EgressNet, hostLinks: readonly LinkState[]): Set<string> {
  const used = new Set([net.gateway]);
  for (const l of hostLinks) {
    const ip = ipOfVethName(l.name, 'egress');
    if (ip) used.add(ip);
  }
  return used;
}

/** The lowest free address of the subnet (network and broadcast addresses excluded). */
export function allocateEgressIp(net: EgressNet, inUse: ReadonlySet<string>): string {
  for (let n = net.prefix.base + 1; n < net.prefix.base + net.prefix.size - 1; n++) {
    const ip = formatIp(n);
    if (!inUse.has(ip)) return ip;
  }
  throw new UsageError(
    `egressSubnet ${net.subnet} has no free address left (${inUse.size} in use): give the agent a larger egress subnet`,
    { field: 'egressSubnet' },
  );
}
