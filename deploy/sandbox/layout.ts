// The shape of a sandbox, computed before anything is created: namespace and
// link names, each host's address and files. Pure, so that `up` can record the
// whole plan in state.json first and `down` can clean up from it after a crash.
import { isAbsolute, join, resolve } from 'node:path';
import { NotFoundError, UsageError } from '../../lib/errors.js';

export type HostRole = 'manager' | 'worker';

/** One sandbox host: a network namespace with eth0 on the underlay, and its daemon's files. */
export interface SandboxHost {
  /** The namespace name, also the node name: `tss-h1`. */
  name: string;
  /** 1-based; managers come first. */
  index: number;
  role: HostRole;
  /** eth0's IPv4 address, without the prefix length. */
  addr: string;
  /** `<root>/tss-h1`: holds state/, daemon.log and tsswarm.sock. */
  dir: string;
  stateDir: string;
  socketPath: string;
  /** The host's Docker Engine API socket (`sandbox exec` points DOCKER_HOST at it). */
  dockerSocketPath: string;
  logFile: string;
  /** `/run/netns/tss-h1`, for nsenter --net and setns. */
  netnsPath: string;
  /** The underlay bridge port of this host's veth, in the underlay namespace. */
  underlayPort: string;
}

export const DEFAULT_ROOT = '/tmp/tss-sandbox';
export const DEFAULT_PREFIX = 'tss-';
export const DEFAULT_SUBNET = '10.77.0.0/24';
/** Host N gets the subnet's address + HOST_OFFSET + N (10.77.0.11 for h1). */
export const HOST_OFFSET = 10;
/** The daemon's listen port (`--listen-addr ADDR:4242`). */
export const DAEMON_PORT = 4242;
/** The bridge inside the underlay namespace; links there need not be unique across sandboxes. */
export const UNDERLAY_BRIDGE = 'tss-ulbr';
export const UNDERLAY_MTU = 1500;
/** sun_path holds 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;
const IFNAMSIZ = 15;

export interface Subnet {
  /** The network address as a 32-bit number. */
  network: number;
  bits: number;
  /** `10.77.0.0/24` */
  cidr: string;
}

export interface LayoutOptions {
  managers: number;
  workers: number;
  root: string;
  prefix: string;
  subnet: string;
}

/** Checks a name prefix: it keeps every namespace under `tss` and clear of other tools' `tssdk-`. */
export function checkPrefix(prefix: string): string {
  if (!/^tss[a-z0-9-]{0,9}$/.test(prefix) || prefix.startsWith('tssdk')) {
    throw UsageError.invalid(
      'prefix',
      'up to 12 characters of a-z, 0-9 and "-" starting with "tss" (and not "tssdk", another tool\'s)',
      prefix,
    );
  }
  return prefix;
}

export function parseSubnet(cidr: string): Subnet {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr.trim());
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const bits = m ? Number(m[5]) : NaN;
  if (!m || octets.some((o) => o > 255) || !(bits >= 8 && bits <= 29)) {
    throw UsageError.invalid('--subnet', 'an IPv4 network such as 10.77.0.0/24 (prefix length 8 to 29)', cidr);
  }
  const addr = octets.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - bits);
  const network = addr - (addr % size);
  return { network, bits, cidr: `${formatIpv4(network)}/${bits}` };
}

export function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** The most hosts a subnet holds: addresses past the offset, short of the broadcast address. */
export function subnetCapacity(subnet: Subnet): number {
  return 2 ** (32 - subnet.bits) - HOST_OFFSET - 2;
}

export const underlayNamespace = (prefix: string): string => `${prefix}ul`;
export const hostNamespace = (prefix: string, index: number): string => `${prefix}h${index}`;
export const underlayPort = (index: number): string => `tss-ulh${index}`;

/** Whether `name` is a namespace of the sandbox with this prefix (`tss-ul`, `tss-h12`). */
export function isSandboxNamespace(prefix: string, name: string): boolean {
  if (!name.startsWith(prefix)) return false;
  return /^(ul|h[1-9]\d*)$/.test(name.slice(prefix.length));
}

export function resolveRoot(root: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const r = root ?? (env.TSSWARM_SANDBOX_DIR || DEFAULT_ROOT);
  return isAbsolute(r) ? resolve(r) : resolve(process.cwd(), r);
}

function checkCount(field: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw UsageError.invalid(field, 'a whole number ≥ 0', n);
}

/** Every host of a sandbox: managers h1..hM, then workers. */
export function layoutHosts(opts: LayoutOptions): SandboxHost[] {
  checkCount('--managers', opts.managers);
  checkCount('--workers', opts.workers);
  const prefix = checkPrefix(opts.prefix);
  const subnet = parseSubnet(opts.subnet);
  const total = opts.managers + opts.workers;
  if (total < 1)
    throw new UsageError('a sandbox needs at least one host: give --managers or --workers a number ≥ 1', { field: '--managers' });
  const capacity = subnetCapacity(subnet);
  if (total > capacity) {
    throw new UsageError(`${total} hosts do not fit in ${subnet.cidr} (room for ${capacity}): use fewer hosts or a larger --subnet`, {
      field: '--subnet',
    });
  }
  const hosts: SandboxHost[] = [];
  for (let index = 1; index <= total; index++) {
    const name = hostNamespace(prefix, index);
    const dir = join(opts.root, name);
    const port = underlayPort(index);
    if (port.length > IFNAMSIZ) throw new UsageError(`too many hosts: link name ${port} is longer than ${IFNAMSIZ} characters`);
    hosts.push({
      name,
      index,
      role: index <= opts.managers ? 'manager' : 'worker',
      addr: formatIpv4(subnet.network + HOST_OFFSET + index),
      dir,
      stateDir: join(dir, 'state'),
      socketPath: join(dir, 'tsswarm.sock'),
      dockerSocketPath: join(dir, 'docker.sock'),
      logFile: join(dir, 'daemon.log'),
      netnsPath: `/run/netns/${name}`,
      underlayPort: port,
    });
  }
  const longest = hosts[hosts.length - 1]!.socketPath;
  if (Buffer.byteLength(longest) > MAX_SOCKET_PATH) {
    throw new UsageError(
      `the daemon socket path ${longest} is ${Buffer.byteLength(longest)} bytes, over the ${MAX_SOCKET_PATH} a unix socket allows: choose a shorter sandbox directory (TSSWARM_SANDBOX_DIR)`,
      { field: 'root' },
    );
  }
  return hosts;
}

/**
 * The host a user means by `h2`, `tss-h2` or `2` (or the namespace name with
 * any prefix); a NotFoundError listing the hosts otherwise.
 */
export function findHost<H extends Pick<SandboxHost, 'name' | 'index'>>(hosts: readonly H[], ref: string, prefix: string): H {
  const r = ref.trim();
  const m = /^(?:h)?([1-9]\d*)$/.exec(r) ?? (r.startsWith(prefix) ? /^h([1-9]\d*)$/.exec(r.slice(prefix.length)) : null);
  const found = m ? hosts.find((h) => h.index === Number(m[1])) : hosts.find((h) => h.name === r);
  if (found) return found;
  const known = hosts.length ? `the sandbox has ${hosts.map((h) => h.name).join(', ')}` : 'the sandbox has no hosts';
  throw new NotFoundError(`no sandbox host "${ref}": ${known} (name one as h2, ${prefix}h2 or 2)`);
}
