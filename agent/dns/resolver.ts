// The names each container sees: for every network it is attached to, service
// name → VIP (or the task IPs under dnsrr), tasks.<service> → task IPs, its own
// hostname → its address, and PTR for those addresses. Pure: no sockets, no clock.
import type { Upstream } from './resolvconf.js';
import { canonicalName, RRType, type Answer } from './wire.js';

export type EndpointMode = 'vip' | 'dnsrr';

/** One service as seen on one network. */
export interface ServiceRecord {
  name: string;
  endpointMode: EndpointMode;
  /** The service's virtual IP on this network (endpoint mode vip). */
  vip?: string;
  /** Addresses on this network of the tasks that should receive traffic (running, healthy). */
  taskIps: readonly string[];
}

/** One container (keyed by its network namespace path) and its attachments, eth0 first. */
export interface ContainerRecord {
  hostname: string;
  endpoints: ReadonlyArray<{ network: string; ip: string }>;
  /** The service's --dns servers: names outside the cluster are forwarded there instead of the node's resolvers. */
  upstreams?: readonly Upstream[];
}

/** What to do with a question. */
export type Resolution =
  /** A name we own: answer (an empty list is NODATA: the name exists, not with that type). */
  | { kind: 'answer'; answers: Answer[] }
  /** Not ours: ask the host's resolvers. */
  | { kind: 'forward' };

/** Which service names a table change touched on a network (for logs and tests). */
export interface TableChange {
  network: string;
  added: string[];
  removed: string[];
  changed: string[];
}

/**
 * TTLs. Task sets change whenever a task starts or stops, so their answers
 * must not be cached beyond a few seconds (a cached dead IP is the classic
 * stale-DNS complaint); a VIP and a hostname live as long as the service or
 * the container.
 */
export const TTL_VIP = 60;
export const TTL_TASKS = 5;
export const TTL_HOST = 60;

interface StoredService {
  record: ServiceRecord;
  /** taskIps sorted numerically, so rotation starts from a stable order. */
  ips: string[];
}

const ipKey = (ip: string): number => ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
const sortIps = (ips: readonly string[]): string[] => [...new Set(ips)].sort((a, b) => ipKey(a) - ipKey(b));

function sameService(a: ServiceRecord, b: ServiceRecord): boolean {
  return (
    a.endpointMode === b.endpointMode && (a.vip ?? '') === (b.vip ?? '') && sortIps(a.taskIps).join(',') === sortIps(b.taskIps).join(',')
  );
}

/** `10.0.1.2` → `2.1.0.10.in-addr.arpa`. */
export function reverseName(ip: string): string {
  return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
}

/**
 * The table the embedded DNS answers from. The agent replaces a network's
 * services whenever its view of that network changes (setNetwork) or edits
 * one service (setService/removeService), and registers each container it
 * serves (setContainer/removeContainer).
 */
export class DnsTable {
  /** network → canonical service name → service */
  private readonly networks = new Map<string, Map<string, StoredService>>();
  private readonly containers = new Map<string, ContainerRecord>();
  /** Rotation counters per "network/name" and "network/tasks.name". */
  private readonly turns = new Map<string, number>();

  /** Replaces every service of `network`; returns what changed. */
  setNetwork(network: string, services: readonly ServiceRecord[]): TableChange {
    const before = this.networks.get(network) ?? new Map<string, StoredService>();
    const after = new Map<string, StoredService>();
    for (const s of services) after.set(canonicalName(s.name), { record: s, ips: sortIps(s.taskIps) });
    const change: TableChange = { network, added: [], removed: [], changed: [] };
    for (const [k, s] of after) {
      const old = before.get(k);
      if (!old) change.added.push(k);
      else if (!sameService(old.record, s.record)) change.changed.push(k);
    }
    for (const k of before.keys()) {
      if (!after.has(k)) {
        change.removed.push(k);
        this.turns.delete(`${network}/${k}`);
        this.turns.delete(`${network}/tasks.${k}`);
      }
    }
    if (after.size === 0) this.networks.delete(network);
    else this.networks.set(network, after);
    return change;
  }

  /** Adds or replaces one service on one network. */
  setService(network: string, service: ServiceRecord): void {
    let m = this.networks.get(network);
    if (!m) this.networks.set(network, (m = new Map()));
    m.set(canonicalName(service.name), { record: service, ips: sortIps(service.taskIps) });
  }

  removeService(network: string, name: string): void {
    const k = canonicalName(name);
    const m = this.networks.get(network);
    if (!m?.delete(k)) return;
    if (m.size === 0) this.networks.delete(network);
    this.turns.delete(`${network}/${k}`);
    this.turns.delete(`${network}/tasks.${k}`);
  }

  removeNetwork(network: string): void {
    this.setNetwork(network, []);
  }

  /** The services of a network as last set (for inspection and tests). */
  services(network: string): ServiceRecord[] {
    return [...(this.networks.get(network)?.values() ?? [])].map((s) => s.record);
  }

  setContainer(key: string, container: ContainerRecord): void {
    this.containers.set(key, container);
  }

  removeContainer(key: string): void {
    this.containers.delete(key);
  }

  container(key: string): ContainerRecord | undefined {
    return this.containers.get(key);
  }

  /**
   * Answers a question asked inside the container `key`. Names match without
   * regard to case or a trailing dot; the answer's owner name is the name as
   * asked. A name that exists with no record of the asked type gets NODATA
   * rather than being forwarded: an AAAA for a service must not wait on the
   * internet (moby/moby#35118).
   */
  resolve(key: string, qname: string, qtype: number): Resolution {
    const c = this.containers.get(key);
    if (!c) return { kind: 'forward' };
    const name = canonicalName(qname);
    const owner = qname.endsWith('.') && !qname.endsWith('\\.') ? qname.slice(0, -1) : qname;
    const wantsA = qtype === RRType.A || qtype === RRType.ANY;
    const a = (ips: readonly string[], ttl: number): Resolution => ({
      kind: 'answer',
      answers: wantsA ? ips.map((address) => ({ type: 'A' as const, name: owner, ttl, address })) : [],
    });

    if (name.endsWith('.in-addr.arpa')) return this.resolvePtr(c, name, owner, qtype);

    if (c.hostname !== '' && name === canonicalName(c.hostname) && c.endpoints.length > 0) {
      return a([c.endpoints[0]!.ip], TTL_HOST);
    }
    const tasks = name.startsWith('tasks.');
    const service = tasks ? name.slice('tasks.'.length) : name;
    // The first of the container's networks (eth0 first) that has the service answers.
    for (const { network } of c.endpoints) {
      const s = this.networks.get(network)?.get(service);
      if (!s) continue;
      if (tasks) return a(this.rotate(`${network}/tasks.${service}`, s.ips), TTL_TASKS);
      if (s.record.endpointMode === 'dnsrr') return a(this.rotate(`${network}/${service}`, s.ips), TTL_TASKS);
      return a(s.record.vip ? [s.record.vip] : [], TTL_VIP);
    }
    return { kind: 'forward' };
  }

  private resolvePtr(c: ContainerRecord, name: string, owner: string, qtype: number): Resolution {
    const ip = name.slice(0, -'.in-addr.arpa'.length).split('.').reverse().join('.');
    const ptr = (target: string, ttl: number): Resolution => ({
      kind: 'answer',
      answers: qtype === RRType.PTR || qtype === RRType.ANY ? [{ type: 'PTR', name: owner, ttl, target }] : [],
    });
    if (c.endpoints.some((e) => e.ip === ip) && c.hostname !== '') return ptr(c.hostname, TTL_HOST);
    for (const { network } of c.endpoints) {
      for (const [svc, s] of this.networks.get(network) ?? []) {
        if (s.record.vip === ip) return ptr(svc, TTL_VIP);
        if (s.ips.includes(ip)) return ptr(`tasks.${svc}`, TTL_TASKS);
      }
    }
    return { kind: 'forward' };
  }

  /** The list starting one further on each call, so clients that take the first address spread out. */
  private rotate(key: string, ips: readonly string[]): string[] {
    if (ips.length < 2) return [...ips];
    const turn = this.turns.get(key) ?? 0;
    this.turns.set(key, (turn + 1) % ips.length);
    return [...ips.slice(turn % ips.length), ...ips.slice(0, turn % ips.length)];
  }
}
