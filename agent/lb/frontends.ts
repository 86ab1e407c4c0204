// The LB table flattened into frontends (a VIP port, every port of a VIP, or
// a published ingress port) each with its weighted targets, and the slot layout the nft and
// iptables planners share: slot k → target, sticky to what is programmed.
import type { LbEndpoint, LbIngressPort, LbProtocol, LbService, LbTable } from './types.js';

/**
 * `vip`: one port of a VIP; `ingress`: a published port on the node's own
 * addresses; `vip-any`: every TCP and UDP port of a VIP (a service with
 * `ports: []`), forwarded to the same port on the backend.
 */
export type Frontend =
  | { kind: 'vip'; vip: string; proto: LbProtocol; port: number }
  | { kind: 'ingress'; proto: LbProtocol; port: number }
  | { kind: 'vip-any'; vip: string };

/** `ip:port` where the connection is sent, or `ip` alone for a vip-any frontend (the port is kept). */
export type Target = string;

export interface DesiredFrontend {
  fe: Frontend;
  /** In the order given, with weights (0 = no new connections). */
  targets: { target: Target; weight: number }[];
}

export function frontendKey(fe: Frontend): string {
  switch (fe.kind) {
    case 'vip':
      return `vip ${fe.vip} ${fe.proto} ${fe.port}`;
    case 'ingress':
      return `ingress ${fe.proto} ${fe.port}`;
    case 'vip-any':
      return `vip-any ${fe.vip}`;
  }
}

export function describeFrontend(fe: Frontend): string {
  switch (fe.kind) {
    case 'vip':
      return `${fe.proto} ${fe.vip}:${fe.port}`;
    case 'ingress':
      return `ingress ${fe.proto} :${fe.port}`;
    case 'vip-any':
      return `${fe.vip} (every tcp and udp port)`;
  }
}

/** A frontend as it should be; no targets (or all weight 0) means: not programmed. */
export interface FrontendChange extends DesiredFrontend {
  key: string;
}

/**
 * The weighted targets of a backend list at `port` (no port: the address
 * alone); a backend listed twice gets the sum of its weights.
 */
export function targetsOf(backends: readonly LbEndpoint[], port?: number): DesiredFrontend['targets'] {
  const out: DesiredFrontend['targets'] = [];
  // Lists are short: a linear scan for duplicates allocates less than a Map (the full plan's cost is mostly GC).
  const index = backends.length > 32 ? new Map<Target, number>() : undefined;
  for (const b of backends) {
    const target = port === undefined ? b.ip : `${b.ip}:${port}`;
    const weight = b.weight ?? 1;
    const i = index ? index.get(target) : out.findIndex((t) => t.target === target);
    if (i !== undefined && i >= 0) out[i]!.weight += weight;
    else {
      index?.set(target, out.length);
      out.push({ target, weight });
    }
  }
  return out;
}

/** The frontends of one service's VIP ports: one per port, or one vip-any frontend when `ports` is empty. */
export function vipFrontends(s: LbService): FrontendChange[] {
  if (s.ports.length === 0) {
    const fe: Frontend = { kind: 'vip-any', vip: s.vip };
    return [{ key: frontendKey(fe), fe, targets: targetsOf(s.backends) }];
  }
  return s.ports.map((p) => {
    const fe: Frontend = { kind: 'vip', proto: p.protocol, port: p.port, vip: s.vip };
    return { key: frontendKey(fe), fe, targets: targetsOf(s.backends, p.port) };
  });
}

/** The frontend of one published port, reaching `s`'s backends (none when the service is unknown). */
export function ingressFrontend(g: LbIngressPort, s: LbService | undefined): FrontendChange {
  const fe: Frontend = { kind: 'ingress', proto: g.protocol, port: g.publishedPort };
  return { key: frontendKey(fe), fe, targets: targetsOf(s?.backends ?? [], g.targetPort) };
}

/** Every frontend of the table, as a list (a later published port wins over an earlier one). */
export function allFrontends(t: LbTable): FrontendChange[] {
  const out: FrontendChange[] = [];
  for (const s of t.services) for (const f of vipFrontends(s)) out.push(f);
  if (t.ingress.length > 0) {
    const byId = new Map(t.services.map((s) => [s.id, s]));
    for (const g of t.ingress) out.push(ingressFrontend(g, byId.get(g.serviceId)));
  }
  return out;
}

/**
 * Every frontend of the table keyed by frontendKey. Frontends whose backends
 * all have weight 0, or that have none, are kept with no targets: the
 * planners leave them out of the data plane (no DNAT), so they are not reached.
 */
export function desiredFrontends(t: LbTable): Map<string, DesiredFrontend> {
  const out = new Map<string, DesiredFrontend>();
  const byId = new Map(t.services.map((s) => [s.id, s]));
  for (const s of t.services) for (const f of vipFrontends(s)) out.set(f.key, f);
  for (const g of t.ingress) {
    const f = ingressFrontend(g, byId.get(g.serviceId));
    out.set(f.key, f);
  }
  return out;
}

/**
 * The slots a frontend should have: each target appears `weight` times, in
 * N = Σweight slots. A slot keeps its programmed target when that target is
 * still wanted, so a change rewrites only the slots it must (removing one of
 * ten backends moves the last slot's target into the hole and drops the last
 * slot). Holes are filled in the order the targets were given.
 */
export function assignSlots(want: DesiredFrontend['targets'], actual: readonly (Target | undefined)[]): Target[] {
  if (actual.length === 0) {
    const slots: Target[] = [];
    for (const { target, weight } of want) for (let i = 0; i < weight; i++) slots.push(target);
    return slots;
  }
  const need = new Map<Target, number>();
  let n = 0;
  for (const { target, weight } of want) {
    if (weight > 0) need.set(target, (need.get(target) ?? 0) + weight);
    n += weight;
  }
  const slots: (Target | undefined)[] = new Array(n).fill(undefined);
  for (let k = 0; k < Math.min(n, actual.length); k++) {
    const t = actual[k];
    const left = t === undefined ? 0 : (need.get(t) ?? 0);
    if (t !== undefined && left > 0) {
      slots[k] = t;
      need.set(t, left - 1);
    }
  }
  const rest: Target[] = [];
  for (const { target } of want) {
    const left = need.get(target) ?? 0;
    for (let i = 0; i < left; i++) rest.push(target);
    need.set(target, 0);
  }
  let r = 0;
  for (let k = 0; k < n; k++) if (slots[k] === undefined) slots[k] = rest[r++];
  return slots as Target[];
}
