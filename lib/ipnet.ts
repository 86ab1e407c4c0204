// IPv4 addresses and CIDR prefixes as plain numbers: parsing with messages
// that name the field, formatting, containment and overlap. Pure; shared by
// the allocator's IPAM and spec/'s checks of --subnet and --gateway.
import { TsswarmError } from './errors.js';

/** A prefix: `base` is the network address (host bits zero), `bits` its length. */
export interface Cidr {
  base: number;
  bits: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function bad(field: string, message: string): TsswarmError {
  return new TsswarmError('INVALID_ARGUMENT', `${field} ${message}`);
}

/** `10.0.1.2` → number, or null when it is not a dotted-quad IPv4 address. */
export function tryParseIp(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return null;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function parseIp(field: string, s: string): number {
  const n = tryParseIp(s.trim());
  if (n === null) throw bad(field, `"${s}" is not an IPv4 address: write e.g. 10.0.9.1`);
  return n;
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Number of addresses in a prefix of this length. */
export const sizeOf = (bits: number): number => 2 ** (32 - bits);

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.bits}`;
}

/**
 * `10.0.9.0/24` → Cidr. Host bits must be zero (10.0.9.5/24 is refused with
 * the network address to write instead); `minBits`..`maxBits` bound the length.
 */
export function parseCidr(field: string, s: string, o: { minBits?: number; maxBits?: number } = {}): Cidr {
  const minBits = o.minBits ?? 0;
  const maxBits = o.maxBits ?? 32;
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s.trim());
  const ip = m ? tryParseIp(m[1]!) : null;
  const bits = m ? Number(m[2]) : NaN;
  if (!m || ip === null || !(bits >= 0 && bits <= 32)) throw bad(field, `"${s}" is not an IPv4 subnet: write e.g. 10.0.9.0/24`);
  if (bits < minBits || bits > maxBits)
    throw bad(field, `"${s}": the prefix length must be from /${minBits} to /${maxBits} (got /${bits})`);
  const base = ip - (ip % sizeOf(bits));
  if (base !== ip) throw bad(field, `"${s}" has host bits set: write the network address, ${formatIp(base)}/${bits}`);
  return { base, bits };
}

/** Parses a CIDR known to be valid (stored by the allocator). */
export function cidrOf(s: string): Cidr {
  return parseCidr('subnet', s);
}

export function contains(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip < c.base + sizeOf(c.bits);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + sizeOf(b.bits) && b.base < a.base + sizeOf(a.bits);
}

/** `10.0.1.2/24` (an address with its prefix length) → the address; null when malformed. */
export function addrOf(cidrAddr: string): number | null {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidrAddr);
  return m ? tryParseIp(m[1]!) : null;
}
