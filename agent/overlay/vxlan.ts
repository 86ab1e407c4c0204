// One overlay network on one host: a namespace holding a bridge (with the
// network's gateway address) and a VXLAN device enslaved to it. The VXLAN
// device is created in the host namespace, where its UDP socket must live,
// and then moved in. planNetwork(desired, actual) → lines; pure.
import { bridgeName, vxlanName } from './names.js';
import type { LinkState } from './types.js';

export interface NetworkDevices {
  vni: number;
  /** `10.0.1.1/24`: the gateway with the subnet's prefix length. */
  gatewayAddr: string;
  /**
   * The bridge's MAC, fixed (from the gateway address): left alone, a bridge
   * takes the lowest MAC of its ports and changes it when that port leaves,
   * and containers keep sending to the old one.
   */
  bridgeMac: string;
  vtep: string;
  port: number;
  /** Overlay MTU (underlay − 50). */
  mtu: number;
  /** The network's namespace name. */
  netns: string;
}

export interface NetworkActual {
  netnsExists: boolean;
  hostLinks: LinkState[];
  /** Empty when the namespace does not exist. */
  overlayLinks: LinkState[];
}

/** Run in order: create the namespace, `overlayPre` in it, `host` in the host namespace, `overlay` in it. */
export interface NetworkProgram {
  createNetns: boolean;
  overlayPre: string[];
  host: string[];
  overlay: string[];
}

export const isEmptyProgram = (p: NetworkProgram): boolean =>
  !p.createNetns && p.overlayPre.length + p.host.length + p.overlay.length === 0;

/** The VXLAN device is ours as it stands only with these settings; anything else is recreated. */
function vxlanMatches(l: LinkState, d: NetworkDevices): boolean {
  const v = l.vxlan;
  return l.kind === 'vxlan' && v !== undefined && v.vni === d.vni && v.local === d.vtep && v.port === d.port && !v.learning && v.proxy;
}

export function planNetwork(d: NetworkDevices, a: NetworkActual): NetworkProgram {
  const br = bridgeName(d.vni);
  const vx = vxlanName(d.vni);
  const p: NetworkProgram = { createNetns: !a.netnsExists, overlayPre: [], host: [], overlay: [] };
  const ov = new Map(a.netnsExists ? a.overlayLinks.map((l) => [l.name, l]) : []);

  // The VXLAN device: ours and in place, or made again from the host namespace.
  let vxl = ov.get(vx);
  if (vxl && !vxlanMatches(vxl, d)) {
    p.overlayPre.push(`link del ${vx}`);
    vxl = undefined;
  }
  // A device left in the host namespace by a creation cut short holds the VNI's socket.
  if (a.hostLinks.some((l) => l.name === vx)) p.host.push(`link del ${vx}`);
  if (!vxl) {
    p.host.push(`link add ${vx} mtu ${d.mtu} type vxlan id ${d.vni} dstport ${d.port} local ${d.vtep} nolearning proxy`);
    p.host.push(`link set ${vx} netns ${d.netns}`);
  }

  // The bridge, with the gateway address and the overlay MTU set before any port joins.
  let brl = ov.get(br);
  if (brl && brl.kind !== 'bridge') {
    p.overlayPre.push(`link del ${br}`);
    brl = undefined;
  }
  if (!brl) p.overlay.push(`link add ${br} address ${d.bridgeMac} mtu ${d.mtu} type bridge`);
  else {
    if (brl.mac !== d.bridgeMac) p.overlay.push(`link set ${br} address ${d.bridgeMac}`);
    if (brl.mtu !== d.mtu) p.overlay.push(`link set ${br} mtu ${d.mtu}`);
  }
  for (const addr of brl?.addrs ?? []) if (addr !== d.gatewayAddr) p.overlay.push(`addr del ${addr} dev ${br}`);
  if (!brl?.addrs.includes(d.gatewayAddr)) p.overlay.push(`addr replace ${d.gatewayAddr} dev ${br}`);

  if (vxl && vxl.mtu !== d.mtu) p.overlay.push(`link set ${vx} mtu ${d.mtu}`);
  if (vxl?.master !== br) p.overlay.push(`link set ${vx} master ${br}`);
  if (!vxl?.up) p.overlay.push(`link set ${vx} up`);
  if (!brl?.up) p.overlay.push(`link set ${br} up`);
  return p;
}

// --- reading the kernel ------------------------------------------------------

interface JsonLink {
  ifindex?: number;
  ifname?: string;
  flags?: string[];
  mtu?: number;
  address?: string;
  master?: string;
  linkinfo?: {
    info_kind?: string;
    info_data?: { id?: number; local?: string; port?: number; learning?: boolean; proxy?: boolean };
    info_slave_data?: { isolated?: boolean };
  };
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

/** Links from `ip -json -d addr show`. */
export function parseLinks(json: string): LinkState[] {
  const rows = (json.trim() ? JSON.parse(json) : []) as JsonLink[];
  return rows.map((r) => {
    const l: LinkState = {
      name: r.ifname ?? '',
      ifindex: r.ifindex ?? 0,
      kind: r.linkinfo?.info_kind ?? '',
      up: (r.flags ?? []).includes('UP'),
      mtu: r.mtu ?? 0,
      mac: (r.address ?? '').toLowerCase(),
      addrs: (r.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    };
    if (r.master !== undefined) l.master = r.master;
    const sd = r.linkinfo?.info_slave_data;
    if (sd?.isolated !== undefined) l.isolated = sd.isolated;
    const v = r.linkinfo?.info_data;
    if (l.kind === 'vxlan' && v) {
      l.vxlan = { vni: v.id ?? -1, port: v.port ?? 0, learning: v.learning ?? true, proxy: v.proxy ?? false };
      if (v.local !== undefined) l.vxlan.local = v.local;
    }
    return l;
  });
}
