// resolv.conf both ways: the host's file read for the upstream servers the
// embedded DNS forwards to, and the file a container gets (pointing at the
// embedded server on overlay networks; the host's reachable resolvers on the
// default bridge). Pure text in, text out.
import { isIP } from 'node:net';

/** Where the embedded server listens inside every container. */
export const EMBEDDED_DNS_ADDRESS = '127.0.0.11';

export interface Upstream {
  address: string;
  port: number;
}

export interface ResolvConf {
  nameservers: string[];
  search: string[];
  options: string[];
}

/** Parses resolv.conf(5): nameserver, search/domain and options lines; comments with # or ;. */
export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], search: [], options: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (line === '') continue;
    const [key, ...args] = line.split(/\s+/);
    if (key === 'nameserver' && args[0]) {
      // A scoped IPv6 address (fe80::1%eth0) keeps its zone for the socket.
      const addr = args[0];
      if (isIP(addr.split('%')[0]!)) out.nameservers.push(addr);
    } else if (key === 'search' || key === 'domain') {
      out.search = args; // the last search/domain line wins, as in glibc
    } else if (key === 'options') {
      out.options.push(...args);
    }
  }
  return out;
}

/** glibc reads at most three nameservers; so do we. */
export const MAX_UPSTREAMS = 3;

/**
 * The servers to forward to: the host's nameservers minus our own address
 * (a host whose resolv.conf points at 127.0.0.11 would loop), port 53.
 * The forwarder's sockets live in the agent's (host) namespace, so loopback
 * resolvers such as systemd-resolved's 127.0.0.53 work.
 */
export function upstreamsFrom(conf: ResolvConf): Upstream[] {
  return conf.nameservers
    .filter((a) => a !== EMBEDDED_DNS_ADDRESS)
    .slice(0, MAX_UPSTREAMS)
    .map((address) => ({ address, port: 53 }));
}

export interface ContainerResolvConfOptions {
  /** Search domains (e.g. the host's); none by default. */
  search?: readonly string[];
  /** Extra options (e.g. `timeout:2`); `ndots:0` is always there. */
  options?: readonly string[];
}

/**
 * The /etc/resolv.conf the runtime bind-mounts into a container: only the
 * embedded server, and ndots:0 so a bare service name (`web`) is asked as is
 * first instead of after every search domain.
 */
export function containerResolvConf(opts: ContainerResolvConfOptions = {}): string {
  const lines = [
    '# written by tsswarm: the embedded DNS server answers service names and forwards the rest',
    `nameserver ${EMBEDDED_DNS_ADDRESS}`,
  ];
  if (opts.search && opts.search.length > 0) lines.push(`search ${opts.search.join(' ')}`);
  const options = ['ndots:0', ...(opts.options ?? []).filter((o) => !o.startsWith('ndots:'))];
  lines.push(`options ${options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** A resolver a container on the bridge can reach: IPv4 and not loopback. */
function bridgeUsable(addr: string): boolean {
  const ip = addr.split('%')[0]!;
  return isIP(ip) === 4 && !ip.startsWith('127.');
}

/** systemd-resolved's stub listener, which answers only in the host's namespace. */
export const SYSTEMD_RESOLVED_STUB = '127.0.0.53';

/** Where systemd-resolved writes the upstream servers its stub forwards to. */
export const SYSTEMD_RESOLVED_UPSTREAMS = '/run/systemd/resolve/resolv.conf';

/**
 * The host resolver configuration a default-bridge container's file is made
 * from, as Docker picks it: /etc/resolv.conf (`etcText`), unless that names
 * systemd-resolved's stub and nothing a container can reach, in which case
 * the servers behind the stub (`resolvedText`, the text of
 * /run/systemd/resolve/resolv.conf; undefined when absent).
 */
export function hostResolvConfForBridge(etcText: string, resolvedText: string | undefined): ResolvConf {
  const etc = parseResolvConf(etcText);
  if (resolvedText === undefined || etc.nameservers.some(bridgeUsable) || !etc.nameservers.includes(SYSTEMD_RESOLVED_STUB)) return etc;
  const resolved = parseResolvConf(resolvedText);
  return resolved.nameservers.some(bridgeUsable) ? resolved : etc;
}

/** The resolvers Docker writes when the host leaves none a container can reach. */
export const DEFAULT_BRIDGE_NAMESERVERS: readonly string[] = ['8.8.8.8', '8.8.4.4'];

/**
 * The /etc/resolv.conf of a container on its node's default bridge (no
 * overlay network, so no embedded server), as Docker writes it for its
 * `bridge` network: the host's nameservers less loopback ones (they answer
 * only in the host's namespace) and IPv6 ones (the bridge is IPv4), at most
 * three; Docker's public defaults when none is left; the host's search
 * domains and options kept.
 */
export function bridgeResolvConf(hostConf: ResolvConf): string {
  const usable = hostConf.nameservers.filter(bridgeUsable);
  const servers = usable.length > 0 ? usable.slice(0, MAX_UPSTREAMS) : [...DEFAULT_BRIDGE_NAMESERVERS];
  const lines = [
    usable.length > 0
      ? "# written by tsswarm: the host's resolvers, as Docker's default bridge network gives them"
      : "# written by tsswarm: the host has no resolver a container can reach (loopback or IPv6 only), so Docker's defaults",
    ...servers.map((s) => `nameserver ${s}`),
  ];
  if (hostConf.search.length > 0) lines.push(`search ${hostConf.search.join(' ')}`);
  if (hostConf.options.length > 0) lines.push(`options ${hostConf.options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}
