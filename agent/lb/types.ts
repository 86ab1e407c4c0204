// What the agent asks the load balancer for: service VIPs with their ports
// and backends, and ingress (routing-mesh) published ports. validateTable
// checks a table before any planner sees it; the messages name the field.
import { UsageError } from '../../lib/errors.js';

export type LbProtocol = 'tcp' | 'udp';
export const lbProtocols: readonly LbProtocol[] = ['tcp', 'udp'];

export type LbBackendKind = 'nft' | 'iptables' | 'ipvs';
export const lbBackendKinds: readonly LbBackendKind[] = ['nft', 'iptables', 'ipvs'];

export interface LbPort {
  protocol: LbProtocol;
  port: number;
}

export interface LbEndpoint {
  /** The task's IPv4 address on the service's network. */
  ip: string;
  /**
   * Share of new connections, a whole number 0..100 (default 1). 0 keeps the
   * entry known but sends it no new connections (a task being drained).
   */
  weight?: number;
}

export interface LbService {
  id: string;
  vip: string;
  /**
   * The VIP ports that forward, each to the same port on a backend. Empty
   * means every port: any TCP or UDP connection to the VIP goes to the same
   * port on a backend chosen per connection (Swarm's VIP; ICMP is not
   * forwarded). A service has either explicit ports or all of them, and a VIP
   * with all ports belongs to that one service.
   */
  ports: LbPort[];
  /** RUNNING and healthy tasks only: the caller filters. */
  backends: LbEndpoint[];
}

/** A routing-mesh port: node-address:publishedPort → a backend of serviceId at targetPort. */
export interface LbIngressPort {
  protocol: LbProtocol;
  publishedPort: number;
  targetPort: number;
  serviceId: string;
}

export interface LbTable {
  services: LbService[];
  ingress: LbIngressPort[];
}

export const emptyTable = (): LbTable => ({ services: [], ingress: [] });

/** Largest weight; also bounds the slots one frontend may take (weights add up). */
export const maxWeight = 100;
/** Slots (sum of weights) one frontend may have: bounds the per-count chains. */
export const maxSlots = 65_536;

const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(s: string): boolean {
  return ipv4.test(s);
}

function checkPort(field: string, p: unknown): void {
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) throw UsageError.invalid(field, 'a port number 1-65535', p);
}

function checkProto(field: string, p: unknown): void {
  if (p !== 'tcp' && p !== 'udp') throw UsageError.invalid(field, '"tcp" or "udp"', p);
}

/** Checks one service's own fields; `at` names it in the message (`services[3]`). */
export function validateService(s: LbService, at = 'service'): void {
  if (typeof s.id !== 'string' || s.id === '') throw UsageError.invalid(`${at}.id`, 'a non-empty service id', s.id);
  if (!isIpv4(s.vip)) throw UsageError.invalid(`${at}.vip`, 'an IPv4 address such as 10.0.1.2', s.vip);
  const fronts = new Set<string>();
  s.ports.forEach((p, j) => {
    checkProto(`${at}.ports[${j}].protocol`, p.protocol);
    checkPort(`${at}.ports[${j}].port`, p.port);
    const k = `${p.protocol}/${p.port}`;
    if (fronts.has(k))
      throw new UsageError(`${at}.ports[${j}]: ${p.protocol} port ${p.port} is listed twice: list each port once`, {
        field: `${at}.ports[${j}]`,
      });
    fronts.add(k);
  });
  let slots = 0;
  s.backends.forEach((b, j) => {
    if (!isIpv4(b.ip)) throw UsageError.invalid(`${at}.backends[${j}].ip`, 'an IPv4 address such as 10.0.1.7', b.ip);
    const w = b.weight ?? 1;
    if (!Number.isInteger(w) || w < 0 || w > maxWeight)
      throw UsageError.invalid(`${at}.backends[${j}].weight`, `a whole number 0-${maxWeight}`, b.weight);
    slots += w;
  });
  if (slots > maxSlots)
    throw new UsageError(`${at}.backends: weights add up to ${slots}, more than ${maxSlots}: lower the weights`, {
      field: `${at}.backends`,
    });
}

/** Checks one published port's own fields. */
export function validateIngressPort(g: LbIngressPort, at = 'ingress'): void {
  checkProto(`${at}.protocol`, g.protocol);
  checkPort(`${at}.publishedPort`, g.publishedPort);
  checkPort(`${at}.targetPort`, g.targetPort);
  if (typeof g.serviceId !== 'string' || g.serviceId === '') throw UsageError.invalid(`${at}.serviceId`, 'a service id', g.serviceId);
}

/** A VIP forwarding every port cannot be shared with another service. */
export function vipTaken(field: string, vip: string, owner: string): UsageError {
  return new UsageError(
    `${field}: ${vip} is already used by service ${owner}, and a VIP forwarding every port (ports: []) belongs to one service: give each service its own VIP`,
    { field },
  );
}

/**
 * Throws a UsageError naming the first bad field (`services[3].backends[0].ip
 * must be an IPv4 address ...`). Duplicate VIP ports and published ports are
 * refused: each frontend must map to exactly one backend set.
 */
export function validateTable(t: LbTable): void {
  const ids = new Set<string>();
  const fronts = new Set<string>();
  /** VIP → the service using it and whether with every port. */
  const vips = new Map<string, { id: string; all: boolean }>();
  t.services.forEach((s, i) => {
    const at = `services[${i}]`;
    validateService(s, at);
    if (ids.has(s.id)) throw new UsageError(`${at}.id "${s.id}" appears twice: give each service one entry`, { field: `${at}.id` });
    ids.add(s.id);
    const all = s.ports.length === 0;
    const other = vips.get(s.vip);
    if (other && (all || other.all)) throw vipTaken(`${at}.vip`, s.vip, other.id);
    vips.set(s.vip, { id: s.id, all });
    s.ports.forEach((p, j) => {
      const k = `${s.vip}/${p.protocol}/${p.port}`;
      if (fronts.has(k))
        throw new UsageError(
          `${at}.ports[${j}]: ${p.protocol} ${s.vip}:${p.port} is already a frontend: a VIP port belongs to one service`,
          { field: `${at}.ports[${j}]` },
        );
      fronts.add(k);
    });
  });
  const published = new Set<string>();
  t.ingress.forEach((g, i) => {
    const at = `ingress[${i}]`;
    validateIngressPort(g, at);
    if (!ids.has(g.serviceId))
      throw new UsageError(`${at}.serviceId "${g.serviceId}" is not in services: add the service or drop the port`, {
        field: `${at}.serviceId`,
      });
    const k = `${g.protocol}/${g.publishedPort}`;
    if (published.has(k))
      throw new UsageError(`${at}: ${g.protocol} port ${g.publishedPort} is published twice: a published port belongs to one service`, {
        field: `${at}.publishedPort`,
      });
    published.add(k);
  });
}
