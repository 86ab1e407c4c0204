// Names of every kernel object the overlay creates (all `tss`
// prefixed, interface names within the kernel's 15 characters), the MAC an
// address gets, and the small IPv4 arithmetic the planners need. Pure.
import { UsageError } from '../../lib/errors.js';
import { macOfIp } from '../../lib/net.js';

/** Bytes VXLAN over IPv4 adds: inner Ethernet 14 + outer IPv4 20 + UDP 8 + VXLAN 8. */
export const VXLAN_OVERHEAD = 50;
export const VXLAN_PORT = 4789;
export const EGRESS_BRIDGE = 'tss_gwbridge';
export const EGRESS_TABLE = 'tss_egress';
export const DEFAULT_EGRESS_SUBNET = '172.30.0.0/16';
export const NETNS_DIR = '/run/netns';
/** The per-network namespaces of every host on this machine start with this. */
export const OVERLAY_NETNS_PREFIX = 'tss-ov-';
export const MAX_VNI = 0xffffff;

/** The network's bridge, inside its namespace. */
export const bridgeName = (vni: number): string => `tssbr${vni}`;
/** The network's VXLAN device: created in the host namespace under this name, then moved. */
export const vxlanName = (vni: number): string => `tssvx${vni}`;
/** Host end of a container's veth on an overlay bridge: the address in hex (one per IP per network). */
export const overlayVethName = (ip: string): string => `tssv${ipHex(ip)}`;
/** Host end of a container's veth on the egress bridge. */
export const egressVethName = (ip: string): string => `tssg${ipHex(ip)}`;
/** The address a `tssv…`/`tssg…` name encodes, or undefined for any other name. */
export function ipOfVethName(name: string, kind: 'overlay' | 'egress'): string | undefined {
  const m = new RegExp(`^tss${kind === 'overlay' ? 'v' : 'g'}([0-9a-f]{8})$`).exec(name);
  return m ? formatIp(parseInt(m[1]!, 16)) : undefined;
}

/** `tss-h1` → `h1`; `/proc/12/ns/net` → `12-ns-net`; undefined → `host`. Safe inside a file name. */
export function defaultNameTag(hostNetns: string | undefined): string {
  if (!hostNetns) return 'host';
  const base = hostNetns.includes('/') ? hostNetns.replace(/^\/+/, '').replace(/^proc\//, '') : hostNetns;
  return base.replace(/^tss-/, '').replace(/[^A-Za-z0-9_.-]+/g, '-');
}

/** The namespace holding one network's bridge and VXLAN device on one host. */
export const overlayNetnsName = (vni: number, tag: string): string => `${OVERLAY_NETNS_PREFIX}${vni}-${tag}`;

/** The VNI an overlay namespace name of host `tag` carries, or undefined when the name is not one. */
export function vniOfNetnsName(name: string, tag: string): number | undefined {
  if (!name.startsWith(OVERLAY_NETNS_PREFIX) || !name.endsWith(`-${tag}`)) return undefined;
  const v = name.slice(OVERLAY_NETNS_PREFIX.length, name.length - tag.length - 1);
  return /^\d+$/.test(v) ? Number(v) : undefined;
}

/** Path form of a namespace reference (a bare name lives under /run/netns). */
export const netnsPath = (ref: string): string => (ref.includes('/') ? ref : `${NETNS_DIR}/${ref}`);

// --- IPv4 -------------------------------------------------------------------

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function tryParseIp(s: string): number | undefined {
  const p = s.split('.');
  if (p.length !== 4 || !p.every((x) => OCTET.test(x))) return undefined;
  return p.reduce((n, x) => n * 256 + Number(x), 0);
}

export function parseIp(field: string, s: string): number {
  const n = tryParseIp(s);
  if (n === undefined) throw UsageError.invalid(field, 'an IPv4 address such as 10.0.1.5', s);
  return n;
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export const ipHex = (ip: string): string => parseIp('ip', ip).toString(16).padStart(8, '0');

export interface Prefix {
  /** The address as written (host bits may be set: `10.0.1.5/24`). */
  ip: number;
  bits: number;
  base: number;
  size: number;
}

/** `10.0.1.5/24` or `10.0.1.0/24`. */
export function parsePrefix(field: string, s: string): Prefix {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  const ip = m ? tryParseIp(m[1]!) : undefined;
  const bits = m ? Number(m[2]) : NaN;
  if (ip === undefined || !(bits >= 0 && bits <= 32))
    throw UsageError.invalid(field, 'an IPv4 address with its prefix length, such as 10.0.1.5/24', s);
  const size = 2 ** (32 - bits);
  return { ip, bits, base: ip - (ip % size), size };
}

export const inPrefix = (p: Prefix, ip: number): boolean => ip >= p.base && ip < p.base + p.size;

/** 02:42 then the four address bytes (10.0.1.35 → 02:42:0a:00:01:23): locally administered, unique per IP. */
export function macOf(ip: string): string {
  parseIp('ip', ip);
  return macOfIp(ip);
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
export function normalizeMac(field: string, s: string): string {
  const m = s.trim().toLowerCase();
  if (!MAC.test(m)) throw UsageError.invalid(field, 'a MAC address such as 02:42:0a:00:01:05', s);
  return m;
}

/** The interface names a container may get: eth0, eth1, ... */
export function checkIfName(field: string, s: string): string {
  // ethN in containers; a tss-prefixed name for the host's own endpoint (the routing mesh's `tss_ingress`).
  if (!/^eth\d{1,3}$/.test(s) && !/^tss[A-Za-z0-9_]{1,12}$/.test(s))
    throw UsageError.invalid(field, 'eth0, eth1, ... (or a tss-prefixed name of at most 15 characters)', s);
  return s;
}
