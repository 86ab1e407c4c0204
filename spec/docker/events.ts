// The events dockerd emits for swarm objects (`GET /events`, `docker events`):
// one built from a store change (the object before and after, as moby's
// daemon/events.go reads SwarmKit's watch), dockerd's event filters
// (daemon/events/filter.go), the `since`/`until` times of the query, the
// replay of a ring of recent events, and the JSON line each is written as. Pure.
import { UsageError } from '../../lib/errors.js';
import {
  type Config,
  type Network,
  type Node,
  NodeAvailability,
  NodeRole,
  NodeState,
  type Secret,
  type Service,
  UpdateState,
} from '../../proto/gen/objects.js';
import { checkFilterKeys, type DockerFilters, filterValues } from './filters.js';

/** The object types dockerd emits events for from the swarm store. */
export type SwarmEventType = 'node' | 'service' | 'network' | 'secret' | 'config';

/** One event as moby's events.Message (`timeNano` kept exact as a bigint: nanoseconds since 1970 pass 2^53). */
export interface DockerEvent {
  Type: SwarmEventType;
  Action: 'create' | 'update' | 'remove';
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'swarm';
  /** Unix seconds. */
  time: number;
  /** Unix nanoseconds. */
  timeNano: bigint;
}

type Kind = 'create' | 'update' | 'delete';

/** A change of the store (manager/store's ChangeEvent has this shape): the tables without events give none. */
export type SwarmChange =
  | { table: 'nodes'; kind: Kind; object: Node; old?: Node }
  | { table: 'services'; kind: Kind; object: Service; old?: Service }
  | { table: 'networks'; kind: Kind; object: Network; old?: Network }
  | { table: 'secrets'; kind: Kind; object: Secret; old?: Secret }
  | { table: 'configs'; kind: Kind; object: Config; old?: Config }
  | { table: 'cluster' | 'tasks'; kind: Kind; object: object; old?: object };

/** The store tables whose changes are events, and the event type of each (moby watches exactly these kinds). */
export const EVENT_TABLES = { nodes: 'node', services: 'service', networks: 'network', secrets: 'secret', configs: 'config' } as const;

export const NS_PER_MS = 1_000_000n;

/** An enum value as SwarmKit's name in lower case, as moby writes them (`strings.ToLower(x.String())`). */
const lower = (names: Record<number, string>, v: number): string => (names[v] ?? String(v)).toLowerCase();
/** SwarmKit names the unknown update state UNKNOWN; ours is UPDATE_UNKNOWN. */
const updateState = (s: UpdateState): string => (s === UpdateState.UPDATE_UNKNOWN ? 'unknown' : lower(UpdateState, s));

/** Unix milliseconds as an event's time: moby stamps a create with the object's CreatedAt, an update with its UpdatedAt, a remove with now. */
function stamp(ms: number): { time: number; timeNano: bigint } {
  return { time: Math.floor(ms / 1000), timeNano: BigInt(ms) * NS_PER_MS };
}

function nodeAttributes(n: Node, old: Node | undefined): Record<string, string> {
  const a: Record<string, string> = { name: n.spec.name || n.description?.hostname || '' };
  if (!old) return a;
  const change = (key: string, was: string, now: string): void => {
    if (was === now) return;
    a[`${key}.old`] = was;
    a[`${key}.new`] = now;
  };
  change('availability', lower(NodeAvailability, old.spec.availability), lower(NodeAvailability, n.spec.availability));
  change('role', lower(NodeRole, old.role), lower(NodeRole, n.role));
  change('state', lower(NodeState, old.status.state), lower(NodeState, n.status.state));
  // Within the manager role, as moby: leadership and reachability (SwarmKit and tsswarm alike read them from Raft and never store them).
  if (n.managerStatus && old.managerStatus) {
    change('leader', String(!!old.managerStatus.leader), String(!!n.managerStatus.leader));
    change('reachability', old.managerStatus.reachability || 'unknown', n.managerStatus.reachability || 'unknown');
  }
  return a;
}

function serviceAttributes(s: Service, old: Service | undefined): Record<string, string> {
  const a: Record<string, string> = { name: s.spec.name };
  if (!old) return a;
  const image = s.spec.task?.container?.image ?? '';
  const oldImage = old.spec.task?.container?.image ?? '';
  if (image !== oldImage) {
    a['image.old'] = oldImage;
    a['image.new'] = image;
  }
  // Replicas only while the service stays replicated (moby compares nothing across a mode change).
  if (!s.spec.global && !old.spec.global) {
    const r = s.spec.replicated?.replicas ?? 0;
    const was = old.spec.replicated?.replicas ?? 0;
    if (r !== was) {
      a['replicas.old'] = String(was);
      a['replicas.new'] = String(r);
    }
  }
  const u = s.updateStatus;
  if (u) {
    const now = updateState(u.state);
    if (!old.updateStatus) a['updatestate.new'] = now;
    else if (old.updateStatus.state !== u.state) {
      a['updatestate.old'] = updateState(old.updateStatus.state);
      a['updatestate.new'] = now;
    }
  }
  return a;
}

/**
 * The event dockerd would emit for a change of the swarm store, or undefined
 * for a table it emits none for (tasks, the cluster). `nowMs` stamps a remove
 * (and an object without a time). Attributes as moby's: `name` always; on an
 * update, a node's `availability`, `role`, `state` (`.old`/`.new`), a
 * service's `image`, `replicas` and `updatestate`, when they changed.
 */
export function swarmEventOf(c: SwarmChange, nowMs: number): DockerEvent | undefined {
  const action = c.kind === 'delete' ? 'remove' : c.kind;
  const old = c.kind === 'update' ? c.old : undefined;
  let type: SwarmEventType;
  let attributes: Record<string, string>;
  switch (c.table) {
    case 'nodes':
      type = 'node';
      attributes = nodeAttributes(c.object, old as Node | undefined);
      break;
    case 'services':
      type = 'service';
      attributes = serviceAttributes(c.object, old as Service | undefined);
      break;
    case 'networks':
    case 'secrets':
    case 'configs':
      type = EVENT_TABLES[c.table];
      attributes = { name: c.object.spec.name };
      break;
    default:
      return undefined;
  }
  const meta = c.object.meta;
  const ms = action === 'create' ? meta.createdAt : action === 'update' ? meta.updatedAt : 0;
  return { Type: type, Action: action, Actor: { ID: meta.id, Attributes: attributes }, scope: 'swarm', ...stamp(ms || nowMs) };
}

/**
 * The event as dockerd's JSON encoder writes it: one line, the fields in
 * moby's order, the attributes sorted by key (Go sorts a map's keys), and
 * `timeNano` exact.
 */
export function eventLine(e: DockerEvent): string {
  const attrs: Record<string, string> = {};
  for (const k of Object.keys(e.Actor.Attributes).sort()) attrs[k] = e.Actor.Attributes[k]!;
  const head = JSON.stringify({ Type: e.Type, Action: e.Action, Actor: { ID: e.Actor.ID, Attributes: attrs }, scope: e.scope });
  return `${head.slice(0, -1)},"time":${e.time},"timeNano":${e.timeNano}}\n`;
}

// ------------------------------------------------------------------ filters

/** The filter keys dockerd's events filter reads. */
export const EVENT_FILTER_KEYS = [
  'config',
  'container',
  'daemon',
  'event',
  'image',
  'label',
  'network',
  'node',
  'plugin',
  'scope',
  'secret',
  'service',
  'type',
  'volume',
] as const;

/**
 * dockerd's events filter as a predicate. Every key applies to every event,
 * whatever its type, as moby's Filter.Include: `type`, `scope` and `event`
 * (the action) exact; `container`, `daemon`, `network`, `node`, `plugin`,
 * `secret`, `service`, `volume`, `config` match the actor's id or name by
 * prefix (so `service=web` also hides every node event); `image` the actor's
 * id or `image` attribute exactly; `label` `k` or `k=v` against the
 * attributes. A key dockerd does not know is refused (`invalid filter 'x'`)
 * where dockerd would ignore it: a filter tsswarm cannot honour is never dropped.
 */
export function eventFilter(f: DockerFilters): (e: DockerEvent) => boolean {
  checkFilterKeys(f, EVENT_FILTER_KEYS);
  const v = (k: string): string[] => filterValues(f, k);
  const exact = (k: string, s: string): boolean => {
    const xs = v(k);
    return !xs.length || xs.includes(s);
  };
  const fuzzy = (k: string, s: string): boolean => exact(k, s) || v(k).some((p) => s.startsWith(p));
  // As moby (#25798): these actions carry a suffix (`exec_start: sh`), so naming one matches by prefix.
  const events = v('event');
  const fuzzyEvent = events.some((x) => x === 'health_status' || x === 'exec_create' || x === 'exec_start');
  const labels = v('label');
  const byName = ['container', 'daemon', 'plugin', 'volume', 'network', 'node', 'service', 'secret', 'config'].filter((k) => f.has(k));
  return (e) => {
    const name = e.Actor.Attributes.name ?? '';
    if (!(fuzzyEvent ? fuzzy('event', e.Action) : exact('event', e.Action))) return false;
    if (!exact('type', e.Type) || !exact('scope', e.scope)) return false;
    for (const k of byName) if (!fuzzy(k, e.Actor.ID) && !fuzzy(k, name)) return false;
    if (f.has('image') && !exact('image', e.Actor.ID) && !exact('image', e.Actor.Attributes.image ?? '')) return false;
    if (labels.length) {
      const attrs = e.Actor.Attributes;
      if (!Object.keys(attrs).length) return false;
      for (const l of labels) {
        const eq = l.indexOf('=');
        const k = eq < 0 ? l : l.slice(0, eq);
        if (!Object.hasOwn(attrs, k)) return false;
        if (eq >= 0 && attrs[k] !== l.slice(eq + 1)) return false;
      }
    }
    return true;
  };
}

// ------------------------------------------------------------------ times

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

/**
 * `since` or `until` as dockerd reads it: unix seconds, optionally with a
 * fraction of up to 20 digits (cut to nanoseconds); empty or absent is no
 * bound. The docker CLI sends this form whatever the user gave it (`10m`,
 * RFC 3339, a date): it converts them itself. Anything else is a UsageError
 * naming the parameter. Returns unix nanoseconds.
 */
export function parseEventTime(name: 'since' | 'until', raw: string | null | undefined): bigint | undefined {
  if (raw === null || raw === undefined || raw === '') return undefined;
  const bad = (why: string): UsageError =>
    new UsageError(
      `invalid value for '${name}': invalid timestamp ${JSON.stringify(raw.length > 40 ? `${raw.slice(0, 37)}...` : raw)}: ${why}; give unix seconds, with a fraction if needed (1765100000.5): the docker CLI converts durations (10m) and RFC 3339 times to this itself`,
      { field: name },
    );
  const dot = raw.indexOf('.');
  const s = dot < 0 ? raw : raw.slice(0, dot);
  const n = dot < 0 ? '' : raw.slice(dot + 1);
  if (!/^[+-]?\d{1,19}$/.test(s)) throw bad(`invalid seconds ${JSON.stringify(s)}`);
  const sec = BigInt(s);
  if (sec > INT64_MAX || sec < INT64_MIN) throw bad(`seconds ${s} out of range`);
  if (n.length > 20) throw bad(`the fraction has ${n.length} digits, at most 20 are read`);
  if (!/^\d*$/.test(n)) throw bad('the fraction must be digits only');
  const nanos = BigInt((n.slice(0, 9) || '0').padEnd(9, '0'));
  return sec * 1_000_000_000n + nanos;
}

/** dockerd's check of a window that ends before it begins (400). */
export function checkEventWindow(since: bigint | undefined, until: bigint | undefined, raw: { since: string; until: string }): void {
  if (until !== undefined && since !== undefined && until < since)
    throw new UsageError(`\`since\` time (${raw.since}) cannot be after \`until\` time (${raw.until})`, { field: 'since' });
}

/**
 * The recent events a subscription replays, oldest first, as moby's
 * loadBufferedEvents: none unless `since` or `until` is given; walking back
 * from the newest, it stops at the first event older than `since`, and skips
 * those after `until` and those the filter drops.
 */
export function replayEvents(
  ring: readonly DockerEvent[],
  since: bigint | undefined,
  until: bigint | undefined,
  include: (e: DockerEvent) => boolean,
): DockerEvent[] {
  if (since === undefined && until === undefined) return [];
  const out: DockerEvent[] = [];
  for (let i = ring.length - 1; i >= 0; i--) {
    const e = ring[i]!;
    if (since !== undefined && e.timeNano < since) break;
    if (until !== undefined && until > 0n && e.timeNano > until) continue;
    if (include(e)) out.push(e);
  }
  return out.reverse();
}
