// A container's attachment to a bridge: a veth pair whose host end is a port
// of the bridge (named after the address, so the kernel itself records which
// addresses are in use) and whose other end is created straight inside the
// container as ethN, with the address, the MAC derived from it and, for the
// egress bridge, the default route. planAttach(desired, actual) → lines; pure.
import { UsageError } from '../../lib/errors.js';
import type { LinkState } from './types.js';

export interface EndpointDevices {
  /** Host end of the pair, a port of `bridge`. */
  hostIf: string;
  bridge: string;
  /** Container end. */
  ifName: string;
  ip: string;
  prefixLen: number;
  mac: string;
  mtu: number;
  /** Path of the container's namespace (for `netns PATH`). */
  containerNetns: string;
  /** Egress ports cannot talk to each other (bridge port isolation). */
  isolated?: boolean;
  /** The default route's gateway, on the egress attachment only. */
  defaultVia?: string;
}

export interface EndpointActual {
  /** The host end, looked up by name in the bridge's namespace. */
  hostLink?: LinkState;
  containerLinks: LinkState[];
  /** `via` of the container's current default route, if any. */
  defaultVia?: string;
}

/** `bridgeNs` runs where the bridge is (the network's namespace, or the host's for egress); `container` inside the container. */
export interface EndpointProgram {
  bridgeNs: string[];
  container: string[];
}

export function planAttach(d: EndpointDevices, a: EndpointActual): EndpointProgram {
  const p: EndpointProgram = { bridgeNs: [], container: [] };
  const cl = a.containerLinks.find((l) => l.name === d.ifName);
  const ours = cl !== undefined && cl.mac === d.mac;
  if (cl && !ours) {
    throw new UsageError(
      `ifName ${d.ifName} already exists in ${d.containerNetns} (MAC ${cl.mac}, not ${d.mac} of ${d.ip}): give this attachment the next free ethN`,
      { field: 'ifName' },
    );
  }
  let host = a.hostLink;
  if (!host && ours) {
    throw new UsageError(
      `${d.ifName} in ${d.containerNetns} carries ${d.ip}'s MAC but ${d.hostIf} is missing: detach it (or remove the interface) and attach again`,
      { field: 'ifName' },
    );
  }
  if (host && !ours) {
    // The host end is joined to another container (an earlier holder of the address): take it back.
    p.bridgeNs.push(`link del ${d.hostIf}`);
    host = undefined;
  }
  if (!host) {
    p.bridgeNs.push(
      `link add ${d.hostIf} mtu ${d.mtu} type veth peer name ${d.ifName} mtu ${d.mtu} address ${d.mac} netns ${d.containerNetns}`,
    );
  } else if (host.mtu !== d.mtu) p.bridgeNs.push(`link set ${d.hostIf} mtu ${d.mtu}`);
  if (host?.master !== d.bridge) p.bridgeNs.push(`link set ${d.hostIf} master ${d.bridge}`);
  if (d.isolated && !host?.isolated) p.bridgeNs.push(`link set ${d.hostIf} type bridge_slave isolated on`);
  if (!host?.up) p.bridgeNs.push(`link set ${d.hostIf} up`);

  const fresh = !host;
  const c = fresh ? undefined : cl;
  const lo = a.containerLinks.find((l) => l.name === 'lo');
  if (lo && !lo.up) p.container.push('link set lo up');
  if (c && c.mtu !== d.mtu) p.container.push(`link set ${d.ifName} mtu ${d.mtu}`);
  const addr = `${d.ip}/${d.prefixLen}`;
  for (const x of c?.addrs ?? []) if (x !== addr) p.container.push(`addr del ${x} dev ${d.ifName}`);
  if (!c?.addrs.includes(addr)) p.container.push(`addr replace ${addr} dev ${d.ifName}`);
  if (!c?.up) p.container.push(`link set ${d.ifName} up`);
  if (d.defaultVia && (fresh || a.defaultVia !== d.defaultVia))
    p.container.push(`route replace default via ${d.defaultVia} dev ${d.ifName}`);
  return p;
}

/** Deleting the host end removes the pair, the container end with it. Nothing to do when it is gone. */
export function planDetach(hostIf: string, hostLink: LinkState | undefined): string[] {
  return hostLink ? [`link del ${hostIf}`] : [];
}
