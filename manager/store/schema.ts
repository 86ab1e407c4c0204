// The store's tables: which generated type each holds, where it sits in a
// StoreAction and a StoreSnapshot, its secondary indexes, and how stored
// objects are normalized (every field at its default) and frozen.
import protobuf from 'protobufjs';
import { Cluster, Config, Network, Node, Secret, Service, type StoreAction, type StoreSnapshot, Task } from '../../proto/gen/objects.js';
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
  /** slot: key `${serviceId}/${slot}` (see taskSlotKey). desiredState: key is the TaskState number. */
  tasks: 'service' | 'node' | 'desiredState' | 'slot';
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
  return { name, codec, actionField, snapshotField, uniqueName, indexes, hasBytes: holdsBytes(codec.type) };
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
  }),
  networks: def('networks', Network, 'network', 'networks', true, { name: byName }),
  secrets: def('secrets', Secret, 'secret', 'secrets', true, { name: byName }),
  configs: def('configs', Config, 'config', 'configs', true, { name: byName }),
};

export const tableNames = Object.keys(tableDefs) as readonly TableName[];

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

/**
 * What the store keeps: a plain, frozen object with every field at its proto3
 * default, from a decoded message (or any object of the right shape).
 */
export function normalize<T extends TableName>(table: T, o: Tables[T] | protobuf.Message): Tables[T] {
  const type = tableDefs[table].codec.type;
  return freezeCopy(type.toObject(o as protobuf.Message, { defaults: true, arrays: true, objects: true }) as Tables[T]);
}

/** What a reader gets: the stored object itself, or a copy when it holds bytes. */
export function forReader<T extends TableName>(table: T, o: Tables[T]): Tables[T] {
  return tableDefs[table].hasBytes ? freezeCopy(o) : o;
}
