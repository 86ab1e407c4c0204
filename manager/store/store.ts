// The replicated state machine of the managers: in-memory tables of cluster
// objects, changed only by transactions that go through Raft. A writer reads
// (view), builds a transaction of creates/updates/deletes carrying the
// versions it read, and proposes it as one entry; every replica applies it
// deterministically and refuses it whole if any version is stale (optimistic
// concurrency: never merged blindly). Versions are the Raft index of the
// write, so all replicas agree. Watchers get change events after apply.
import { randomBytes } from 'node:crypto';
import { TsswarmError } from '../../lib/errors.js';
import { Cluster, Config, Network, Node, Secret, Service, StoreAction, StoreSnapshot, StoreTransaction, Task, Kind } from '../../proto/gen/objects.js';
import type { Codec } from '../../proto/runtime.js';

interface Obj {
  meta?: { id: string; version: number; createdAt: number; updatedAt: number } | null;
  spec?: { name?: string } | null;
}

export const tables = {
  cluster: Cluster,
  nodes: Node,
  services: Service,
  tasks: Task,
  networks: Network,
  secrets: Secret,
  configs: Config,
} as const;
export type TableName = keyof typeof tables;
type ObjOf<T extends TableName> = (typeof tables)[T] extends Codec<infer O> ? O & Obj : never;

/** Tables whose objects' spec.name is unique. */
const uniqueNames: ReadonlySet<TableName> = new Set(['nodes', 'services', 'networks', 'secrets', 'configs']);

type KeyFn = (o: Obj) => string | undefined;
const byName: KeyFn = (o) => o.spec?.name || undefined;
/** Secondary indexes per table: index name → the key an object is found under. */
const indexDefs: Record<TableName, Record<string, KeyFn>> = {
  cluster: {},
  nodes: { name: byName },
  services: { name: byName },
  networks: { name: byName },
  secrets: { name: byName },
  configs: { name: byName },
  tasks: {
    service: (o) => (o as Task).serviceId || undefined,
    node: (o) => (o as Task).nodeId || undefined,
    desiredState: (o) => String((o as Task).desiredState),
    slot: (o) => ((o as Task).serviceId ? `${(o as Task).serviceId}/${(o as Task).slot}` : undefined),
  },
};

/** index name → key → ids, kept in step with one table's rows. */
class Indexes {
  private readonly maps = new Map<string, Map<string, Set<string>>>();
  constructor(private readonly defs: Record<string, KeyFn>) {
    for (const name of Object.keys(defs)) this.maps.set(name, new Map());
  }
  add(o: Obj): void {
    for (const [name, fn] of Object.entries(this.defs)) {
      const k = fn(o);
      if (k === undefined) continue;
      const m = this.maps.get(name)!;
      let set = m.get(k);
      if (!set) m.set(k, (set = new Set()));
      set.add(o.meta!.id);
    }
  }
  remove(o: Obj): void {
    for (const [name, fn] of Object.entries(this.defs)) {
      const k = fn(o);
      if (k === undefined) continue;
      const m = this.maps.get(name)!;
      const set = m.get(k);
      set?.delete(o.meta!.id);
      if (set?.size === 0) m.delete(k);
    }
  }
  ids(name: string, key: string): string[] {
    const m = this.maps.get(name);
    if (!m) throw new TsswarmError('INVALID_ARGUMENT', `no index "${name}" on this table (indexes: ${[...this.maps.keys()].join(', ') || 'none'})`);
    return [...(m.get(key) ?? [])];
  }
}

export interface Proposer {
  /** Replicates `data`; resolves with its log index once applied on this member. */
  propose(data: Uint8Array): Promise<number>;
}

export interface ChangeEvent {
  kind: 'create' | 'update' | 'delete';
  table: TableName;
  object: Obj;
  index: number;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

/** A plain object with every field at its proto3 default: what readers get, frozen. */
function normalize<T>(codec: Codec<T>, bytes: Uint8Array): T {
  return deepFreeze(codec.type.toObject(codec.type.decode(bytes), { defaults: true, arrays: true, objects: true }) as T);
}

/** Read access to one table. */
export class TableView<O extends Obj> {
  constructor(
    private readonly rows: Map<string, O>,
    private readonly idx: Indexes,
  ) {}
  get(id: string): O | undefined {
    return this.rows.get(id);
  }
  list(): O[] {
    return [...this.rows.values()];
  }
  /** Objects under `key` in a secondary index (tasks: service, node, desiredState, slot "service/slot"). */
  by(index: string, key: string): O[] {
    return this.idx.ids(index, key).map((id) => this.rows.get(id)!);
  }
  byName(name: string): O | undefined {
    return this.by('name', name)[0];
  }
  find(pred: (o: O) => boolean): O[] {
    return this.list().filter(pred);
  }
}

export type ReadTx = { [T in TableName]: TableView<ObjOf<T>> };

/** Write access: each call adds an action; nothing changes until the transaction commits. */
export class TableWriter<O extends Obj> {
  constructor(
    private readonly table: TableName,
    private readonly codec: Codec<O>,
    private readonly actions: StoreAction[],
    private readonly view: TableView<O>,
  ) {}
  get(id: string): O | undefined {
    return this.view.get(id);
  }
  list(): O[] {
    return this.view.list();
  }
  by(index: string, key: string): O[] {
    return this.view.by(index, key);
  }
  byName(name: string): O | undefined {
    return this.view.byName(name);
  }
  create(o: O): void {
    const id = o.meta?.id;
    if (!id) throw new TsswarmError('INVALID_ARGUMENT', `${this.table}: an object needs meta.id`);
    const now = Date.now();
    const stamped = { ...o, meta: { ...o.meta!, createdAt: o.meta!.createdAt || now, updatedAt: now } };
    this.actions.push(StoreAction.create({ kind: Kind.CREATE, table: this.table, id, version: 0, object: this.codec.encode(stamped) }));
  }
  /** Writes `o` over the stored object; `o.meta.version` must be the version read. */
  update(o: O): void {
    const id = o.meta?.id;
    if (!id) throw new TsswarmError('INVALID_ARGUMENT', `${this.table}: an object needs meta.id`);
    const stamped = { ...o, meta: { ...o.meta!, updatedAt: Date.now() } };
    this.actions.push(StoreAction.create({ kind: Kind.UPDATE, table: this.table, id, version: o.meta!.version, object: this.codec.encode(stamped) }));
  }
  delete(id: string, version: number): void {
    this.actions.push(StoreAction.create({ kind: Kind.DELETE, table: this.table, id, version }));
  }
}

export type WriteTx = { [T in TableName]: TableWriter<ObjOf<T>> };

type Result = { ok: true } | { ok: false; error: TsswarmError };

export class MemoryStore {
  private data = new Map<TableName, Map<string, Obj>>();
  private idx = new Map<TableName, Indexes>();
  private readonly waiting = new Map<string, Result>();
  private readonly watchers = new Set<(events: ChangeEvent[]) => void>();
  appliedIndex = 0;

  constructor(private readonly proposer: Proposer) {
    this.reset();
  }

  private reset(): void {
    for (const t of Object.keys(tables) as TableName[]) {
      this.data.set(t, new Map());
      this.idx.set(t, new Indexes(indexDefs[t]));
    }
  }

  private rows(t: TableName): Map<string, Obj> {
    return this.data.get(t)!;
  }

  private readTx(): ReadTx {
    const out: Partial<Record<TableName, TableView<Obj>>> = {};
    for (const t of Object.keys(tables) as TableName[]) out[t] = new TableView(this.rows(t), this.idx.get(t)!);
    return out as unknown as ReadTx;
  }

  view<T>(fn: (tx: ReadTx) => T): T {
    return fn(this.readTx());
  }

  /** Runs `fn` to build a transaction and commits it through Raft; rejects if it was refused at apply. */
  async update(fn: (tx: WriteTx) => void | Promise<void>): Promise<number> {
    const actions: StoreAction[] = [];
    const read = this.readTx();
    const w: Partial<Record<TableName, TableWriter<Obj>>> = {};
    for (const t of Object.keys(tables) as TableName[]) w[t] = new TableWriter(t, tables[t] as unknown as Codec<Obj>, actions, read[t] as TableView<Obj>);
    await fn(w as unknown as WriteTx);
    if (actions.length === 0) return this.appliedIndex;
    const requestId = randomBytes(12).toString('hex');
    const index = await this.proposer.propose(StoreTransaction.encode(StoreTransaction.create({ actions, requestId })));
    const r = this.waiting.get(requestId);
    this.waiting.delete(requestId);
    if (r && !r.ok) throw r.error;
    return index;
  }

  /** Called for every change batch after it is applied, in commit order. Returns an unsubscribe. */
  watch(fn: (events: ChangeEvent[]) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  // ------------------------------------------------------------ state machine

  apply(data: Uint8Array, index: number): void {
    this.appliedIndex = index;
    const tx = StoreTransaction.decode(data);
    const result = this.check(tx);
    if (result.ok) {
      const events = this.commit(tx, index);
      for (const w of this.watchers) {
        try {
          w(events);
        } catch {
          // a watcher's failure is its own
        }
      }
    }
    // Only the proposer waits; on other replicas nobody reads this entry.
    if (tx.requestId) {
      this.waiting.set(tx.requestId, result);
      if (this.waiting.size > 10_000) this.waiting.delete(this.waiting.keys().next().value as string);
    }
  }

  /** Deterministic validation against the applied state: versions, existence, unique names. */
  private check(tx: StoreTransaction): Result {
    const names = new Map<string, string>(); // table/name → id, including this transaction's own creates
    for (const a of tx.actions) {
      const table = a.table as TableName;
      if (!(table in tables)) return { ok: false, error: new TsswarmError('INVALID_ARGUMENT', `unknown table ${a.table}`) };
      const cur = this.rows(table).get(a.id);
      if (a.kind === Kind.CREATE) {
        if (cur) return { ok: false, error: new TsswarmError('ALREADY_EXISTS', `${table}: an object with id ${a.id} already exists`) };
      } else {
        if (!cur) return { ok: false, error: new TsswarmError('NOT_FOUND', `${table}: object ${a.id} not found (it may have been removed meanwhile)`) };
        if (a.version !== cur.meta!.version) {
          return { ok: false, error: new TsswarmError('CONFLICT', `${table}: ${cur.spec?.name || a.id} changed since it was read (version ${a.version}, now ${cur.meta!.version}): read it again and retry`) };
        }
      }
      if (a.kind !== Kind.DELETE && uniqueNames.has(table)) {
        const o = (tables[table] as unknown as Codec<Obj>).decode(a.object);
        const name = o.spec?.name;
        if (name) {
          const key = `${table}/${name}`;
          const holder = names.get(key) ?? this.idx.get(table)!.ids('name', name)[0];
          if (holder && holder !== a.id) return { ok: false, error: new TsswarmError('ALREADY_EXISTS', `${table}: the name "${name}" is already in use; choose another name`) };
          names.set(key, a.id);
        }
      }
    }
    return { ok: true };
  }

  private commit(tx: StoreTransaction, index: number): ChangeEvent[] {
    const events: ChangeEvent[] = [];
    for (const a of tx.actions) {
      const table = a.table as TableName;
      const rows = this.rows(table);
      if (a.kind === Kind.DELETE) {
        const old = rows.get(a.id)!;
        rows.delete(a.id);
        this.idx.get(table)!.remove(old);
        events.push({ kind: 'delete', table, object: old, index });
        continue;
      }
      const codec = tables[table] as unknown as Codec<Obj>;
      const o = codec.decode(a.object);
      const old = rows.get(a.id);
      // Versions and times are set here, from the log, so every replica stores the same bytes.
      o.meta = { id: a.id, version: index, createdAt: old?.meta?.createdAt || o.meta?.createdAt || 0, updatedAt: o.meta?.updatedAt || 0 };
      const stored = normalize(codec, codec.encode(o));
      if (old) this.idx.get(table)!.remove(old);
      rows.set(a.id, stored);
      this.idx.get(table)!.add(stored);
      events.push({ kind: a.kind === Kind.CREATE ? 'create' : 'update', table, object: stored, index });
    }
    return events;
  }

  snapshot(): Uint8Array {
    const snap = StoreSnapshot.create({ tables: [] });
    for (const t of Object.keys(tables) as TableName[]) {
      const codec = tables[t] as unknown as Codec<Obj>;
      snap.tables.push({ table: t, objects: [...this.rows(t).values()].map((o) => codec.encode(o)) });
    }
    return StoreSnapshot.encode(snap);
  }

  restore(data: Uint8Array, index: number): void {
    this.reset();
    this.appliedIndex = index;
    if (data.length === 0) return;
    for (const st of StoreSnapshot.decode(data).tables) {
      const table = st.table as TableName;
      if (!(table in tables)) continue;
      const codec = tables[table] as unknown as Codec<Obj>;
      for (const b of st.objects) {
        const o = normalize(codec, b);
        this.rows(table).set(o.meta!.id, o);
        this.idx.get(table)!.add(o);
      }
    }
  }
}

/** Applies transactions locally with increasing indexes: for tests and single-process tools, no Raft. */
export class LocalProposer implements Proposer {
  private index = 0;
  store: MemoryStore | null = null;
  async propose(data: Uint8Array): Promise<number> {
    const i = ++this.index;
    this.store!.apply(data, i);
    return i;
  }
}
