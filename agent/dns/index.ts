// The agent's embedded DNS: one table of names, one forwarder to the host's
// resolvers, and one server per container namespace at 127.0.0.11:53. This is
// the folder's public surface; the agent calls only what is exported here.
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../lib/log.js';
import { Forwarder } from './forwarder.js';
import { parseResolvConf, upstreamsFrom, type Upstream } from './resolvconf.js';
import { DnsTable, type ContainerRecord } from './resolver.js';
import { ContainerDnsServer } from './server.js';

export {
  bridgeResolvConf,
  containerResolvConf,
  DEFAULT_BRIDGE_NAMESERVERS,
  EMBEDDED_DNS_ADDRESS,
  hostResolvConfForBridge,
  parseResolvConf,
  SYSTEMD_RESOLVED_STUB,
  SYSTEMD_RESOLVED_UPSTREAMS,
  upstreamsFrom,
  type Upstream,
} from './resolvconf.js';
export { DnsTable, reverseName, type ContainerRecord, type EndpointMode, type ServiceRecord, type TableChange } from './resolver.js';
export { answerQuery, ContainerDnsServer } from './server.js';

export interface EmbeddedDnsOptions {
  log: Logger;
  /** Fixed upstreams (tests); by default the host's resolv.conf is read. */
  upstreams?: readonly Upstream[];
  /** The host's resolv.conf (default /etc/resolv.conf), re-read at most every `resolvConfTtlMs`. */
  resolvConfPath?: string;
  resolvConfTtlMs?: number;
  forwardTimeoutMs?: number;
  /** Where servers listen inside containers (default 127.0.0.11:53). */
  address?: string;
  port?: number;
  /** Redirect mode (see ContainerDnsServer): ephemeral ports plus an nft DNAT from :53. */
  redirect?: boolean;
}

export class EmbeddedDns {
  /** The names; the agent updates it as tasks come and go (setNetwork / setService / removeService). */
  readonly table = new DnsTable();
  private readonly forwarder: Forwarder;
  private readonly servers = new Map<string, ContainerDnsServer>();
  /** Servers being opened, so two attaches of one namespace share one open. */
  private readonly opening = new Map<string, Promise<void>>();
  private readonly log: Logger;
  private hostUpstreams: Upstream[] = [];
  private readAt = Number.NEGATIVE_INFINITY;
  private reading: Promise<void> | undefined;

  constructor(private readonly opts: EmbeddedDnsOptions) {
    this.log = opts.log.child({ component: 'dns' });
    this.forwarder = new Forwarder({
      upstreams: () => this.upstreams(),
      timeoutMs: opts.forwardTimeoutMs,
      log: this.log,
    });
  }

  /** Reads the host's resolv.conf now (call once at start so the first forward has upstreams). */
  async loadResolvConf(): Promise<Upstream[]> {
    const path = this.opts.resolvConfPath ?? '/etc/resolv.conf';
    this.readAt = Date.now();
    try {
      this.hostUpstreams = upstreamsFrom(parseResolvConf(await readFile(path, 'utf8')));
      if (this.hostUpstreams.length === 0)
        this.log.warn({ path }, 'no usable nameserver in the host resolv.conf; names outside the cluster will get SERVFAIL');
    } catch (err) {
      this.log.warn({ path, err: (err as Error).message }, 'cannot read the host resolv.conf; keeping the previous upstreams');
    }
    return this.hostUpstreams;
  }

  private upstreams(): readonly Upstream[] {
    if (this.opts.upstreams) return this.opts.upstreams;
    // Refresh in the background; this forward uses what is known now.
    if (Date.now() - this.readAt > (this.opts.resolvConfTtlMs ?? 10_000) && !this.reading) {
      this.reading = this.loadResolvConf().then(
        () => (this.reading = undefined),
        () => (this.reading = undefined),
      ) as Promise<void>;
    }
    return this.hostUpstreams;
  }

  /**
   * Starts serving the container whose network namespace is at `netnsPath`
   * (also its key in the table). Sets lo up there. Call again to change its
   * hostname or endpoints (the server stays).
   */
  async attach(netnsPath: string, container: ContainerRecord): Promise<void> {
    this.table.setContainer(netnsPath, container);
    if (this.servers.has(netnsPath)) return;
    let opening = this.opening.get(netnsPath);
    if (!opening) {
      opening = ContainerDnsServer.open({
        netnsPath,
        key: netnsPath,
        table: this.table,
        forwarder: this.forwarder,
        log: this.log.child({ netns: netnsPath }),
        address: this.opts.address,
        port: this.opts.port,
        redirect: this.opts.redirect,
      })
        .then((server) => {
          this.servers.set(netnsPath, server);
        })
        .finally(() => this.opening.delete(netnsPath));
      this.opening.set(netnsPath, opening);
    }
    try {
      await opening;
    } catch (err) {
      this.table.removeContainer(netnsPath);
      throw err;
    }
  }

  /** Stops serving the container: its sockets close (they would otherwise keep the namespace alive). */
  async detach(netnsPath: string): Promise<void> {
    await this.opening.get(netnsPath)?.catch(() => undefined);
    this.table.removeContainer(netnsPath);
    const server = this.servers.get(netnsPath);
    this.servers.delete(netnsPath);
    await server?.close();
  }

  /** The namespaces being served. */
  attached(): string[] {
    return [...this.servers.keys()];
  }

  async close(): Promise<void> {
    this.forwarder.close();
    const all = [...new Set([...this.servers.keys(), ...this.opening.keys()])];
    await Promise.all(all.map((k) => this.detach(k)));
    await this.reading;
  }
}
