// The store's tables: which generated type each holds, where it sits in a
// StoreAction and a StoreSnapshot, its secondary indexes, and how stored
// objects are normalized (every field at its default) and frozen.
import protobuf from 'protobufjs/light.js';
import { reflectType } from '../../proto/reflect.js';
import {
  Cluster,
  Config,
  Network,
  Node,
  Secret,
  Service,
  type StoreAction,
  type StoreSnapshot,
  Task,
  TaskState,
} from '../../proto/gen/objects.js';
import type { Codec } from '../../proto/runtime.js';

/** Table name → the object type it holds. */
export interface Tables {
  cluster: Cluster;
  nodes: Node;
  services: Service;
  tasks: Task;
  networks: Network;
  secrets: Secret;
  configs: Config;
}
export type TableName = keyof Tables;
export type StoreObject = Tables[TableName];

/** Table name → its secondary indexes. */
export interface TableIndexes {
  cluster: 'name';
  nodes: 'name';
  services: 'name';
  /**
   * slot: key `${serviceId}/${slot}` (see taskSlotKey). desiredState: key is the TaskState number.
   * running: key the service id, for tasks desired and observed running; desiredRunning: the same
   * for tasks desired running. Both are for counts per service (`service ls`) without a scan.
   */
  tasks: 'service' | 'node' | 'desiredState' | 'slot' | 'running' | 'desiredRunning';
  networks: 'name';
  secrets: 'name';
  configs: 'name';
}
export type IndexName<T extends TableName> = TableIndexes[T];

/** A key function returns undefined when the object is not in that index. */
type KeyFn<T extends TableName> = (o: Tables[T]) => string | undefined;

export interface TableDef<T extends TableName> {
  readonly name: T;
  readonly codec: Codec<Tables[T]>;
  /** The StoreAction oneof member carrying this table's objects. */
  readonly actionField: Exclude<keyof StoreAction, 'kind'>;
  readonly snapshotField: Exclude<keyof StoreSnapshot, 'format'>;
  /** Whether spec.name must be unique (without case) in the table. */
  readonly uniqueName: boolean;
  readonly indexes: { readonly [I in IndexName<T>]: KeyFn<T> };
  /** Objects hold bytes fields: a Uint8Array cannot be frozen, so readers get copies. */
  readonly hasBytes: boolean;
}

/** Names compare without case, as in SwarmKit (`web` and `Web` are the same service). */
export function nameKey(name: string): string {
  return name.toLowerCase();
}

/** The key of a task in the `slot` index. */
export function taskSlotKey(serviceId: string, slot: number): string {
  return `${serviceId}/${slot}`;
}

export function nameOf(o: StoreObject): string {
  return (o as { spec?: { name?: string } | null }).spec?.name ?? '';
}

const byName = (o: StoreObject): string | undefined => nameKey(nameOf(o)) || undefined;

function holdsBytes(t: protobuf.Type, seen = new Set<protobuf.Type>()): boolean {
  if (seen.has(t)) return false;
  seen.add(t);
  return t.fieldsArray.some((f) => {
    f.resolve();
    if (f.type === 'bytes') return true;
    return f.resolvedType instanceof protobuf.Type && holdsBytes(f.resolvedType, seen);
  });
}

function def<T extends TableName>(
  name: T,
  codec: Codec<Tables[T]>,
  actionField: TableDef<T>['actionField'],
  snapshotField: TableDef<T>['snapshotField'],
  uniqueName: boolean,
  indexes: TableDef<T>['indexes'],
): TableDef<T> {
  return { name, codec, actionField, snapshotField, uniqueName, indexes, hasBytes: holdsBytes(reflectType(codec)) };
}

/** The tables, in the order snapshots and transactions list them. */
export const tableDefs: { readonly [T in TableName]: TableDef<T> } = {
  cluster: def('cluster', Cluster, 'cluster', 'clusters', true, { name: byName }),
  // Hostnames repeat in Swarm (a node that left and joined again is a new node): indexed, not unique.
  nodes: def('nodes', Node, 'node', 'nodes', false, { name: byName }),
  services: def('services', Service, 'service', 'services', true, { name: byName }),
  tasks: def('tasks', Task, 'task', 'tasks', false, {
    service: (t) => t.serviceId || undefined,
    node: (t) => t.nodeId || undefined,
    desiredState: (t) => String(t.desiredState),
    slot: (t) => (t.serviceId ? taskSlotKey(t.serviceId, t.slot) : undefined),
    running: (t) =>
      t.serviceId && t.desiredState === TaskState.RUNNING && t.status?.state === TaskState.RUNNING ? t.serviceId : undefined,
    desiredRunning: (t) => (t.serviceId && t.desiredState === TaskState.RUNNING ? t.serviceId : undefined),
  }),
  networks: def('networks', Network, 'network', 'networks', true, { name: byName }),
  secrets: def('secrets', Secret, 'secret', 'secrets', true, { name: byName }),
  configs: def('configs', Config, 'config', 'configs', true, { name: byName }),
};

export const tableNames = Object.keys(tableDefs) as readonly TableName[];

/** The StoreAction oneof members that carry objects, one per table. */
export const actionFields: readonly string[] = tableNames.map((t) => tableDefs[t].actionField);

/** The table of a StoreAction's oneof member. */
export const tableOfActionField = new Map<string, TableName>(tableNames.map((t) => [tableDefs[t].actionField, t]));

/**
 * A deep copy in which every object and array is frozen; Uint8Arrays (which
 * cannot be frozen) are copied into plain Uint8Arrays (not Buffers).
 */
export function freezeCopy<V>(v: V): V {
  if (v instanceof Uint8Array) return new Uint8Array(v) as V;
  if (Array.isArray(v)) return Object.freeze(v.map(freezeCopy)) as V;
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = freezeCopy(x);
    return Object.freeze(o) as V;
  }
  return v;
}

type Normalizer = (m: Record<string, unknown>) => Record<string, unknown>;

/**
 * Values a stored object may share with another: every object the normalizers
 * build is frozen and made from a per-type prototype that carries the brand
 * (its message type, or the map field it fills) under a symbol, so a writer's
 * object that keeps a stored sub-object (a task update that keeps the task's
 * spec) costs no copy. Reading the brand is a plain property load through the
 * prototype; the objects still look plain to spreads, JSON, the wire and
 * deep-equality checks (their constructor is Object). A WeakMap of canonical
 * objects, or a non-enumerable property on each, did the same job at several
 * times the cost once a few hundred thousand objects were stored.
 */
const CANON = Symbol('tsswarm.store.canonical');
type Brand = protobuf.Type | protobuf.Field;
const prototypes = new Map<Brand, object>();
function protoOf(what: Brand): object {
  let p = prototypes.get(what);
  if (!p) {
    p = Object.create(Object.prototype, { [CANON]: { value: what } }) as object;
    prototypes.set(what, p);
  }
  return p;
}
export const brandOf = (o: object): Brand | undefined => (o as { [CANON]?: Brand })[CANON];

/** Thrown by the strict normalizer: the value would not survive the wire unchanged. */
export class NotWireStable extends Error {
  constructor(readonly field: string) {
    super(`${field}: this value would change on the wire`);
  }
}

const normalizers = { wire: new Map<protobuf.Type, Normalizer>(), strict: new Map<protobuf.Type, Normalizer>() };

/**
 * One pass over a message that builds the frozen plain object the store keeps:
 * the same object `type.toObject(m, { defaults, arrays, objects })` followed by
 * freezeCopy would give (unset sub-messages null, unset oneof members absent,
 * 64-bit integers as numbers, bytes as fresh Uint8Arrays), without the second
 * deep copy. Applying 10,000 task writes spent most of its time in those two
 * copies and the garbage they left.
 *
 * `wire` normalizes a decoded message. `strict` normalizes the object a local
 * writer built (the proposing store's own transaction, which it then need not
 * decode): it keeps canonical sub-objects as they are and refuses (NotWireStable)
 * any value the encoding would alter (a fraction in an integer field, a
 * negative unsigned, a lone surrogate), so that both paths store equal values.
 */
function normalizerOf(type: protobuf.Type, mode: 'wire' | 'strict'): Normalizer {
  const cache = normalizers[mode];
  let n = cache.get(type);
  if (n) return n;
  type Step = (src: Record<string, unknown>, dst: Record<string, unknown>) => void;
  const steps: Step[] = [];
  const proto = protoOf(type);
  n = (m) => {
    if (mode === 'strict' && brandOf(m) === type) return m;
    const o = Object.create(proto) as Record<string, unknown>;
    for (const step of steps) step(m, o);
    return Object.freeze(o);
  };
  cache.set(type, n); // before the fields: message types may refer to themselves
  for (const f of type.fieldsArray) {
    f.resolve();
    const name = f.name;
    const sub = f.resolvedType instanceof protobuf.Type ? f.resolvedType : null;
    const value = copierOf(f, sub, mode);
    if (f.map) {
      const mapProto = protoOf(f);
      steps.push((src, dst) => {
        const v = src[name] as Record<string, unknown> | null | undefined;
        if (mode === 'strict' && v && brandOf(v) === f) {
          dst[name] = v;
          return;
        }
        const out = Object.create(mapProto) as Record<string, unknown>;
        if (v) for (const k of Object.keys(v)) out[k] = value(v[k]);
        dst[name] = Object.freeze(out);
      });
    } else if (f.repeated) {
      // Arrays are not branded (a custom prototype on an array is slow): one
      // is shared only with the message that holds it.
      steps.push((src, dst) => {
        const v = src[name] as unknown[] | null | undefined;
        if (mode === 'strict' && v != null && !Array.isArray(v)) throw new NotWireStable(name);
        dst[name] = Object.freeze(v && v.length ? v.map((x) => value(x)) : []);
      });
    } else if (f.partOf) {
      // A oneof member is present only when set, as toObject leaves it.
      steps.push((src, dst) => {
        const v = src[name];
        if (v != null) dst[name] = value(v);
      });
    } else if (sub && f.options?.['(always_set)'] === true) {
      // An always-set field (proto/gen.ts): decoding fills it, so an object left without one gets it here too.
      steps.push((src, dst) => {
        const v = src[name];
        dst[name] = value(v == null ? {} : v);
      });
    } else if (sub) {
      steps.push((src, dst) => {
        const v = src[name];
        dst[name] = v == null ? null : value(v);
      });
    } else {
      const dflt = value(undefined);
      steps.push((src, dst) => {
        const v = src[name];
        dst[name] = v == null ? dflt : value(v);
      });
    }
  }
  return n;
}

const INT32 = 2 ** 31;
const UINT32 = 2 ** 32;

/** How one value of a field is copied; called with undefined, it gives the field's default. */
function copierOf(f: protobuf.Field, sub: protobuf.Type | null, mode: 'wire' | 'strict'): (v: unknown) => unknown {
  const strict = mode === 'strict';
  const bad = (): never => {
    throw new NotWireStable(f.name);
  };
  if (sub) {
    const inner = normalizerOf(sub, mode);
    return (v) => (v == null ? null : strict && typeof v !== 'object' ? bad() : inner(v as Record<string, unknown>));
  }
  if (f.resolvedType instanceof protobuf.Enum) {
    return (v) => (v == null ? 0 : strict && !(Number.isInteger(v) && (v as number) >= -INT32 && (v as number) < INT32) ? bad() : v);
  }
  switch (f.type) {
    case 'string':
      return (v) =>
        v == null ? '' : strict && !(typeof v === 'string' && (v as unknown as { isWellFormed(): boolean }).isWellFormed()) ? bad() : v;
    case 'bool':
      return (v) => (v == null ? false : strict && typeof v !== 'boolean' ? bad() : v);
    case 'bytes':
      return (v) => (v == null ? new Uint8Array(0) : strict && !(v instanceof Uint8Array) ? bad() : new Uint8Array(v as Uint8Array));
    case 'float':
      // What the wire keeps of a float: toObject of a decoded message shows the same.
      return (v) => (v == null ? 0 : strict && typeof v !== 'number' ? bad() : Math.fround(Number(v)));
    case 'double':
      return (v) => (v == null ? 0 : strict && typeof v !== 'number' ? bad() : v);
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return (v) => (v == null ? 0 : strict && !(Number.isInteger(v) && (v as number) >= -INT32 && (v as number) < INT32) ? bad() : v);
    case 'uint32':
    case 'fixed32':
      return (v) => (v == null ? 0 : strict && !(Number.isInteger(v) && (v as number) >= 0 && (v as number) < UINT32) ? bad() : v);
    case 'uint64':
    case 'fixed64':
      return (v) =>
        v == null ? 0 : strict ? (Number.isSafeInteger(v) && (v as number) >= 0 ? v : bad()) : typeof v === 'number' ? v : Number(v);
    default:
      // int64, sint64, sfixed64: JS numbers (proto/runtime.ts drops Long).
      return (v) => (v == null ? 0 : strict ? (Number.isSafeInteger(v) ? v : bad()) : typeof v === 'number' ? v : Number(v));
  }
}

/**
 * What the store keeps: a plain, frozen object with every field at its proto3
 * default, from a decoded message (or any object of the right shape).
 */
export function normalize<T extends TableName>(table: T, o: Tables[T] | protobuf.Message): Tables[T] {
  return normalizerOf(reflectType(tableDefs[table].codec), 'wire')(o as unknown as Record<string, unknown>) as unknown as Tables[T];
}

/**
 * The same from an object a local writer built, sharing its canonical
 * sub-objects; throws NotWireStable when a value would not survive encoding
 * unchanged (the caller then decodes its own bytes instead).
 */
export function normalizeLocal<T extends TableName>(table: T, o: Tables[T]): Tables[T] {
  return normalizerOf(reflectType(tableDefs[table].codec), 'strict')(o as unknown as Record<string, unknown>) as unknown as Tables[T];
}

/** The reference normalize: toObject with defaults, then a frozen deep copy (kept to test the fast path against). */
export function normalizeByToObject<T extends TableName>(table: T, o: Tables[T] | protobuf.Message): Tables[T] {
  const type = reflectType(tableDefs[table].codec);
  return freezeCopy(type.toObject(o as protobuf.Message, { defaults: true, arrays: true, objects: true }) as Tables[T]);
}

/** What a reader gets: the stored object itself, or a copy when it holds bytes. */
export function forReader<T extends TableName>(table: T, o: Tables[T]): Tables[T] {
  return tableDefs[table].hasBytes ? freezeCopy(o) : o;
}
