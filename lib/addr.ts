// Node addresses: what a node may give as its address (at join, in every
// session hello, to --advertise-addr), checked the same way by the managers
// and the daemon. IPv4 only for now; a hostname or an interface name given to
// --advertise-addr is turned into an IPv4 address once, at daemon start.
import { lookup as dnsLookup } from 'node:dns/promises';
import { networkInterfaces } from 'node:os';
import { TsswarmError, UsageError } from './errors.js';

/** Longer than any IPv4 address with a port: the check never scans a hostile megabyte. */
const MAX_ADDR_LEN = 64;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const PORT_RE = /^[1-9]\d{0,4}$/;
// RFC 1123 host names and Linux interface names (IFNAMSIZ − 1 characters).
const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const IFNAME_RE = /^[A-Za-z0-9_.:@-]{1,15}$/;
/** Digits and dots: a mistyped address, never a name to look up. */
const NUMERIC_RE = /^[\d.]+$/;

export interface NodeAddr {
  ip: string;
  /** Absent when the address was given without one. */
  port?: number;
}

export const isIpv4 = (s: string): boolean => IPV4_RE.test(s);

/** Why an IPv4 address cannot be a node's address, or undefined when it can. */
function unusable(ip: string): string | undefined {
  const first = Number(ip.split('.')[0]);
  if (ip === '0.0.0.0') return 'it is the unspecified address, which no other node can reach';
  if (ip === '255.255.255.255') return 'it is the broadcast address';
  if (first >= 224 && first <= 239) return 'it is a multicast address';
  if (first >= 240) return 'it is a reserved address';
  return undefined;
}

/**
 * Splits and checks `IPV4` or `IPV4:PORT` (`port: 'required'` wants the port,
 * `'forbidden'` refuses it). Throws INVALID_ARGUMENT naming `field`; the
 * message quotes at most the start of a long value.
 */
export function parseNodeAddr(field: string, value: string, o: { port?: 'optional' | 'required' | 'forbidden' } = {}): NodeAddr {
  const port = o.port ?? 'optional';
  const shown = JSON.stringify(value.length > MAX_ADDR_LEN ? `${value.slice(0, MAX_ADDR_LEN)}…` : value);
  const form =
    port === 'required'
      ? 'IPV4:PORT, e.g. 192.168.1.10:4242'
      : port === 'forbidden'
        ? 'an IPv4 address, e.g. 192.168.1.10'
        : 'an IPv4 address with an optional port, e.g. 192.168.1.10 or 192.168.1.10:4242';
  const fail = (why: string): TsswarmError => new TsswarmError('INVALID_ARGUMENT', `${field} must be ${form} (got ${shown}): ${why}`);
  if (typeof value !== 'string' || value === '') throw fail('it is empty');
  if (value.length > MAX_ADDR_LEN) throw fail(`it is longer than ${MAX_ADDR_LEN} characters`);
  const colon = value.lastIndexOf(':');
  let host = value;
  let p: number | undefined;
  if (colon >= 0 && !value.startsWith('[') && value.indexOf(':') === colon) {
    host = value.slice(0, colon);
    const ps = value.slice(colon + 1);
    if (!PORT_RE.test(ps) || Number(ps) > 65535) throw fail(`the port "${ps}" is not a number from 1 to 65535`);
    p = Number(ps);
  }
  if (!isIpv4(host)) {
    if (value.startsWith('[') || host.includes(':')) throw fail('IPv6 addresses are not supported yet');
    throw fail(
      HOSTNAME_RE.test(host) && !NUMERIC_RE.test(host)
        ? 'a host name is not an address; give the IPv4 address other nodes reach this node at'
        : 'it is not an IPv4 address',
    );
  }
  const why = unusable(host);
  if (why) throw fail(why);
  if (port === 'required' && p === undefined) throw fail('the port is missing');
  if (port === 'forbidden' && p !== undefined) throw fail('give the address without a port');
  return p === undefined ? { ip: host } : { ip: host, port: p };
}

/** parseNodeAddr's refusal as a value (undefined: the address is usable), for callers that answer rather than throw. */
export function nodeAddrError(
  field: string,
  value: string,
  o: { port?: 'optional' | 'required' | 'forbidden' } = {},
): TsswarmError | undefined {
  try {
    parseNodeAddr(field, value, o);
    return undefined;
  } catch (e) {
    if (e instanceof TsswarmError) return e;
    throw e;
  }
}

export interface ResolveDeps {
  /** IPv4 addresses of a host name (default: dns.lookup, all IPv4 answers). */
  lookup?: (host: string) => Promise<string[]>;
  /** The host's interfaces (default: os.networkInterfaces()). */
  interfaces?: () => NodeJS.Dict<Array<{ family: string | number; address: string; internal: boolean }>>;
}

const defaultLookup = async (host: string): Promise<string[]> => (await dnsLookup(host, { family: 4, all: true })).map((a) => a.address);

/**
 * What `--advertise-addr ADDR[:PORT]` means, as an IPv4 address (with the
 * port kept when given). As Docker does, an interface name (`eth0`) stands for
 * its one IPv4 address; unlike Docker, a host name is also accepted and
 * resolved here, once (dns.lookup, IPv4 only). Anything else is a UsageError
 * naming `field` and saying what to give instead.
 */
export async function resolveAdvertiseAddr(field: string, value: string, deps: ResolveDeps = {}): Promise<string> {
  const v = value.trim();
  if (!v) throw UsageError.invalid(field, 'an IPv4 address, a host name or an interface name, with an optional port', value);
  if (v.length > 260)
    throw new UsageError(`${field} is ${v.length} characters long: give an IPv4 address, a host name or an interface name`, { field });
  let host = v;
  let port = '';
  const colon = v.lastIndexOf(':');
  if (colon > 0 && v.indexOf(':') === colon) {
    host = v.slice(0, colon);
    port = v.slice(colon + 1);
    if (!PORT_RE.test(port) || Number(port) > 65535)
      throw UsageError.invalid(field, 'ADDRESS or ADDRESS:PORT with a port from 1 to 65535', value);
  } else if (v.includes(':')) {
    throw new UsageError(
      `${field} ${JSON.stringify(value)}: IPv6 addresses are not supported yet; give an IPv4 address or an interface name`,
      { field },
    );
  }
  const withPort = (ip: string): string => (port ? `${ip}:${port}` : ip);
  const check = (ip: string, from: string): string => {
    try {
      parseNodeAddr(field, ip, { port: 'forbidden' });
    } catch (e) {
      throw new UsageError(`${field} ${from}: ${(e as Error).message.replace(`${field} must be`, 'the address must be')}`, {
        field,
        cause: e,
      });
    }
    return withPort(ip);
  };
  if (isIpv4(host)) return check(host, JSON.stringify(value));

  // An interface name first, as Docker tries it before an address.
  const ifs = (deps.interfaces ?? networkInterfaces)();
  const iface = IFNAME_RE.test(host) ? ifs[host] : undefined;
  if (iface) {
    const v4 = [...new Set(iface.filter((a) => a.family === 'IPv4' || a.family === 4).map((a) => a.address))];
    if (v4.length === 0)
      throw new UsageError(`${field} ${host}: the interface has no IPv4 address: give the address to advertise instead`, { field });
    if (v4.length > 1)
      throw new UsageError(`${field} ${host}: the interface has more than one IPv4 address (${v4.join(', ')}): give the one to advertise`, {
        field,
      });
    return check(v4[0]!, `(interface ${host} has ${v4[0]})`);
  }
  if (!HOSTNAME_RE.test(host) || NUMERIC_RE.test(host)) {
    throw new UsageError(
      `${field} ${JSON.stringify(value)} is not an IPv4 address, a host name or an interface of this host (${Object.keys(ifs).join(', ') || 'none'}): give the IPv4 address other nodes reach this node at`,
      { field },
    );
  }
  let ips: string[];
  try {
    ips = await (deps.lookup ?? defaultLookup)(host);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(
      `${field} ${host}: the name does not resolve to an IPv4 address (${code ?? (e as Error).message}): give the IPv4 address other nodes reach this node at`,
      { field, cause: e },
    );
  }
  const v4 = [...new Set(ips.filter(isIpv4))];
  if (v4.length === 0)
    throw new UsageError(`${field} ${host}: the name has no IPv4 address: give the IPv4 address other nodes reach this node at`, { field });
  if (v4.length > 1)
    throw new UsageError(
      `${field} ${host}: the name resolves to several IPv4 addresses (${v4.join(', ')}): give the one other nodes reach this node at`,
      { field },
    );
  return check(v4[0]!, `(${host} resolves to ${v4[0]})`);
}
