// The /etc/hosts and /etc/resolv.conf a container gets: the usual localhost
// lines plus the service's --host entries; the resolv.conf given (the
// embedded DNS server's, or the host's) with --dns, --dns-search and
// --dns-option applied as Docker applies them. Pure text in, text out.

/** The embedded DNS server's address (agent/dns); a resolv.conf naming it keeps it. */
const EMBEDDED_DNS = '127.0.0.11';

/** /etc/hosts: localhost, the container's own name, then the extra `IP NAME [ALIAS...]` lines in order. */
export function hostsFile(hostname: string, extra: readonly string[] = []): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', `127.0.1.1\t${hostname}`];
  for (const e of extra) {
    const [ip, ...names] = e.trim().split(/[ \t]+/);
    lines.push(`${ip}\t${names.join(' ')}`);
  }
  return `${lines.join('\n')}\n`;
}

export interface DnsSettings {
  nameservers: readonly string[];
  search: readonly string[];
  options: readonly string[];
}

/**
 * `base` with the service's DNS settings applied. Nameservers: a base that
 * names the embedded server keeps it alone (it answers service names and
 * forwards the rest to the given servers); any other base gets the given
 * servers instead of its own. Search domains and options replace the base's
 * when given (a search of "." alone: none). On the embedded server, ndots:0
 * stays unless an ndots option is given.
 */
export function resolvConfWith(base: string, dns: DnsSettings | undefined): string {
  if (!dns || (!dns.nameservers.length && !dns.search.length && !dns.options.length)) return base;
  const nameservers: string[] = [];
  let search: string[] = [];
  let options: string[] = [];
  const other: string[] = [];
  for (const raw of base.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (!line) continue;
    const [key, ...args] = line.split(/\s+/);
    if (key === 'nameserver' && args[0]) nameservers.push(args[0]);
    else if (key === 'search' || key === 'domain') search = args;
    else if (key === 'options') options.push(...args);
    else other.push(line);
  }
  const embedded = nameservers.includes(EMBEDDED_DNS);
  const servers = embedded ? [EMBEDDED_DNS] : dns.nameservers.length ? [...dns.nameservers] : nameservers;
  if (dns.search.length) search = dns.search.filter((d) => d !== '.');
  if (dns.options.length) {
    const keepNdots = embedded && !dns.options.some((o) => o.startsWith('ndots:'));
    options = [...(keepNdots ? ['ndots:0'] : []), ...dns.options];
  }
  const lines = [
    embedded
      ? `# written by tsswarm: the embedded DNS server answers service names and forwards the rest${dns.nameservers.length ? ` to ${dns.nameservers.join(', ')} (--dns)` : ''}`
      : '# written by tsswarm from the node resolv.conf and the service DNS settings',
    ...servers.map((s) => `nameserver ${s}`),
    ...(search.length ? [`search ${search.join(' ')}`] : []),
    ...(options.length ? [`options ${options.join(' ')}`] : []),
    ...other,
  ];
  return `${lines.join('\n')}\n`;
}
