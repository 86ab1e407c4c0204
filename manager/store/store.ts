// The replicated state machine of the managers: in-memory tables of cluster
// objects with secondary indexes, changed only by optimistic transactions that
// go through Raft as one entry each, with change events after each apply.
import { randomBytes } from 'node:crypto';
import protobuf from 'protobufjs/light.js';
import { reflectType } from '../../proto/reflect.js';
import { TsswarmError } from '../../lib/errors.js';
import { Meta, StoreAction, StoreActionKind, StoreSnapshot, StoreTransaction } from '../../proto/gen/objects.js';
import type { StateMachine } from '../raft/node.js';
import {
  AlreadyExistsError,
  EntryTooLargeError,
  type EntryObject,
  InvalidTransactionError,
  MAX_TRANSACTION_BYTES,
  NotCommittedError,
  ObjectNotFoundError,
  OutcomeUnknownError,
  VersionConflictError,
  WatchResetError,
} from './errors.js';
import {
  actionFields,
  brandOf,
  forReader,
  type IndexName,
  nameKey,
  nameOf,
  normalize,
  normalizeLocal,
  NotWireStable,
  type StoreObject,
  type TableDef,
  tableDefs,
  type TableName,
  tableNames,
  tableOfActionField,
  type Tables,
} from './schema.js';
import {
  type ChangeEvent,
  passes,
  type Register,
  type Sink,
  type StoreEvent,
  Subscription,
  Watch,
  type WatchFilter,
  type WatchOptions,
} from './watch.js';

/** The Raft side, as the store sees it. */
export interface Proposer {
  /**
   * Replicates `data` as one log entry; resolves with its index once it has
   * been applied on this member; rejects if this member cannot propose (not
   * leader), or once the entry can no longer commit. An error whose `code` is
   * PROPOSAL_DROPPED means it never applied; OUTCOME_UNKNOWN (or STOPPED) that it may have.
   */
  propose(data: Uint8Array): Promise<number>;
}

export interface StoreOptions {
  /** A write whose proposal has not settled after this long settles as OutcomeUnknownError. Default PROPOSE_TIMEOUT_MS. */
  proposeTimeoutMs?: number;
}

/**
 * The store's own bound on a proposal, above Raft's (10 election timeouts,
 * 10 s at the manager's tick): a proposer that never answers must not hold a
 * writer, and the writers queued behind it, forever.
 */
export const PROPOSE_TIMEOUT_MS = 30_000;

/** What applying one log entry came to; the same on every replica. */
export interface TxOutcome {
  index: number;
  /** Why the transaction was refused, or null if it applied. */
  error: TsswarmError | null;
}

// ------------------------------------------------------------------ tables

/**
 * One table's rows (frozen, normalized objects) and its secondary indexes.
 * Each index key keeps the set of its ids and, once read, their objects in
 * id order: a listing by service or node (what `service ps` and the
 * dispatcher ask on every request) then costs a copy of the answer, not a
 * sort of it nor a lookup per id, until a write touches that key.
 */
class TableState<T extends TableName> {
  readonly rows = new Map<string, Tables[T]>();
  /** Per index: its key function and its key → ids map. */
  private readonly idx: Array<{ name: string; fn: (o: Tables[T]) => string | undefined; keys: Map<string, IndexKey<T>> }> = [];
  private readonly byName = new Map<string, Map<string, IndexKey<T>>>();

  constructor(readonly def: TableDef<T>) {
    for (const [name, fn] of Object.entries(def.indexes) as Array<[string, (o: Tables[T]) => string | undefined]>) {
      const keys = new Map<string, IndexKey<T>>();
      this.idx.push({ name, fn, keys });
      this.byName.set(name, keys);
    }
  }

  /** Stores `o`, moving it only in the indexes whose key changed. */
  put(o: Tables[T]): void {
    const id = o.meta.id;
    const old = this.rows.get(id);
    this.rows.set(id, o);
    for (const { fn, keys } of this.idx) {
      const k = fn(o);
      const ko = old ? fn(old) : undefined;
      if (old && k === ko) {
        // Same key, new object: the key's sorted objects hold the old one.
        if (k !== undefined) keys.get(k)!.sorted = null;
        continue;
      }
      if (ko !== undefined) drop(keys, ko, id);
      if (k !== undefined) {
        let e = keys.get(k);
        if (!e) keys.set(k, (e = { ids: new Set(), sorted: null }));
        e.ids.add(id);
        e.sorted = null;
      }
    }
  }

  remove(id: string): void {
    const old = this.rows.get(id);
    if (!old) return;
    for (const { fn, keys } of this.idx) {
      const k = fn(old);
      if (k !== undefined) drop(keys, k, id);
    }
    this.rows.delete(id);
  }

  private index(index: string): Map<string, IndexKey<T>> {
    const m = this.byName.get(index);
    if (!m) {
      throw new TsswarmError(
        'INVALID_ARGUMENT',
        `${this.def.name} has no index "${index}" (its indexes: ${[...this.byName.keys()].join(', ') || 'none'})`,
      );
    }
    return m;
  }

  private key(index: string, key: string | number): string {
    return index === 'name' ? nameKey(String(key)) : String(key);
  }

  /**
   * Objects under `key` in an index, by id, so that every replica answers in
   * the same order. The array is the index's own (kept until a write touches
   * the key): callers must not change it.
   */
  objects(index: string, key: string | number): readonly Tables[T][] {
    const e = this.index(index).get(this.key(index, key));
    if (!e) return [];
    if (!e.sorted) e.sorted = Object.freeze([...e.ids].sort().map((id) => this.rows.get(id)!)) as Tables[T][];
    return e.sorted;
  }

  /** Ids under `key` in an index, sorted. */
  ids(index: string, key: string | number): string[] {
    return this.objects(index, key).map((o) => o.meta.id);
  }

  /** How many ids are under `key` in an index. */
  size(index: string, key: string | number): number {
    return this.index(index).get(this.key(index, key))?.ids.size ?? 0;
  }

  /** Every key of an index with its ids, unordered: for checks, not for answers replicas must agree on. */
  keysOf(index: string): Map<string, ReadonlySet<string>> {
    return new Map([...this.index(index)].map(([k, e]) => [k, new Set(e.ids)]));
  }
}

/** One key of an index: its ids, and their objects by id once read (null until then, or after a write to one of them). */
interface IndexKey<T extends TableName> {
  ids: Set<string>;
  sorted: Tables[T][] | null;
}

function drop<T extends TableName>(keys: Map<string, IndexKey<T>>, k: string, id: string): void {
  const e = keys.get(k);
  if (!e) return;
  e.ids.delete(id);
  e.sorted = null;
  if (e.ids.size === 0) keys.delete(k);
}

type States = { [T in TableName]: TableState<T> };

function newStates(): States {
  const s: Partial<Record<TableName, TableState<TableName>>> = {};
  for (const t of tableNames) s[t] = new TableState(tableDefs[t] as TableDef<TableName>);
  return s as States;
}

// ------------------------------------------------------------------ reading

/**
 * Read access to one table over the current applied state. Objects are frozen
 * (those holding bytes are copies): build a changed copy, e.g. `Node.create({ ...n, spec })`.
 */
export class TableReader<T extends TableName> {
  constructor(protected readonly state: () => TableState<T>) {}

  get table(): T {
    return this.state().def.name;
  }

  get(id: string): Tables[T] | undefined {
    const o = this.state().rows.get(id);
    return o && forReader(this.table, o);
  }

  /** Every object, in the order of their creation (the same on every replica). */
  list(): Tables[T][] {
    return [...this.state().rows.values()].map((o) => forReader(this.table, o));
  }

  count(): number {
    return this.state().rows.size;
  }

  /**
   * Objects under `key` in a secondary index, by id. Keys: a name (any case),
   * a service or node id, a TaskState, or taskSlotKey(serviceId, slot).
   */
  by(index: IndexName<T>, key: string | number): Tables[T][] {
    const st = this.state();
    const os = st.objects(index, key);
    return st.def.hasBytes ? os.map((o) => forReader(this.table, o)) : os.slice();
  }

  /** The object of that name (any case); where names repeat (nodes), the one with the lowest id. */
  byName(name: string): Tables[T] | undefined {
    const id = this.state().ids('name', name)[0];
    return id === undefined ? undefined : this.get(id);
  }

  /** How many objects are under `key` in a secondary index, without reading them (counts per service for `service ls`). */
  countBy(index: IndexName<T>, key: string | number): number {
    return this.state().size(index, key);
  }

  /**
   * Every key of a secondary index with the ids under it, unordered: a
   * snapshot for consistency checks (tests compare it with a scan).
   */
  indexKeys(index: IndexName<T>): Map<string, ReadonlySet<string>> {
    return this.state().keysOf(index);
  }

  filter(pred: (o: Tables[T]) => boolean): Tables[T][] {
    return this.list().filter(pred);
  }
}

export type ReadTx = { readonly [T in TableName]: TableReader<T> };

// ------------------------------------------------------------------ names

/**
 * Unique names within a transaction: a name freed by one action (rename,
 * removal) may be taken by a later one. Used alike when a transaction is
 * built (to fail early) and when it is applied (to decide).
 */
class NameCheck {
  private readonly overlay = new Map<string, string | null>();

  constructor(private readonly states: () => States) {}

  private holder(table: TableName, key: string): string | null {
    const k = `${table}\0${key}`;
    if (this.overlay.has(k)) return this.overlay.get(k)!;
    return this.states()[table].ids('name', key)[0] ?? null;
  }

  /** Records that `id` goes from name `prev` to `next` ('' for none); returns the conflict, if any. */
  move(table: TableName, id: string, prev: string, next: string): AlreadyExistsError | null {
    if (!tableDefs[table].uniqueName) return null;
    const pk = nameKey(prev);
    const nk = nameKey(next);
    if (pk === nk) return null;
    if (nk) {
      const h = this.holder(table, nk);
      if (h !== null && h !== id) return AlreadyExistsError.forName(table, id, next, h);
    }
    if (pk) this.overlay.set(`${table}\0${pk}`, null);
    if (nk) this.overlay.set(`${table}\0${nk}`, id);
    return null;
  }
}

// ------------------------------------------------------------------ writing

interface PendingAction {
  kind: StoreActionKind;
  table: TableName;
  /** Stamped object (create, update), or only its meta (remove). */
  object: StoreObject;
  /** The version the writer read (0 for a create). */
  readVersion: number;
}

/** Collects one transaction. Each object appears once: a second write to it folds into the first. */
class TxBuilder {
  readonly pending = new Map<string, PendingAction>();
  readonly names: NameCheck;
  closed = false;

  constructor(states: () => States) {
    this.names = new NameCheck(states);
  }

  actions(): StoreAction[] {
    return [...this.pending.values()].map((p) => StoreAction.create({ kind: p.kind, [tableDefs[p.table].actionField]: p.object }));
  }
}

/** Write access to one table inside `update`: reads show the committed state; writes apply when the transaction commits. */
export class TableWriter<T extends TableName> extends TableReader<T> {
  constructor(
    state: () => TableState<T>,
    private readonly b: TxBuilder,
  ) {
    super(state);
  }

  private begin(o: { meta?: { id: string } | null } | string, verb: string): string {
    if (this.b.closed)
      throw new InvalidTransactionError(
        `${this.table}: ${verb} after the transaction was committed: make every change inside the update() callback`,
      );
    const id = typeof o === 'string' ? o : o.meta?.id;
    if (!id) throw new InvalidTransactionError(`${this.table}: ${verb} needs meta.id`);
    return id;
  }

  /** Adds an object; fails at once if its id or (unique) name is taken. meta.createdAt defaults to now. */
  create(o: Tables[T]): void {
    const id = this.begin(o, 'create');
    const key = `${this.table}\0${id}`;
    const p = this.b.pending.get(key);
    if (p?.kind === StoreActionKind.REMOVE)
      throw new InvalidTransactionError(
        `${this.table}: ${id} is removed in this transaction and cannot be created again in it: update it instead`,
      );
    if (p || this.state().rows.has(id)) throw AlreadyExistsError.forId(this.table, id);
    const err = this.b.names.move(this.table, id, '', nameOf(o));
    if (err) throw err;
    const now = Date.now();
    const meta = Meta.create({ id, version: 0, createdAt: o.meta.createdAt || now, updatedAt: now });
    this.b.pending.set(key, { kind: StoreActionKind.CREATE, table: this.table, object: { ...o, meta } as StoreObject, readVersion: 0 });
  }

  /** Replaces the stored object; `o.meta.version` must be the version read, or the transaction is refused. */
  update(o: Tables[T]): void {
    const id = this.begin(o, 'update');
    const key = `${this.table}\0${id}`;
    const p = this.b.pending.get(key);
    const cur = this.state().rows.get(id);
    if (p?.kind === StoreActionKind.REMOVE || (!p && !cur)) throw new ObjectNotFoundError(this.table, id);
    const readVersion = o.meta.version;
    if (!p && readVersion !== cur!.meta.version) throw new VersionConflictError(this.table, id, readVersion, cur!.meta.version);
    const err = this.b.names.move(this.table, id, nameOf(p ? p.object : cur!), nameOf(o));
    if (err) throw err;
    const kind = p?.kind ?? StoreActionKind.UPDATE;
    const version = p ? p.readVersion : readVersion;
    const createdAt = p ? p.object.meta.createdAt : cur!.meta.createdAt;
    const meta = Meta.create({ id, version, createdAt, updatedAt: Date.now() });
    this.b.pending.set(key, { kind, table: this.table, object: { ...o, meta } as StoreObject, readVersion: version });
  }

  /** Removes an object: give the object read, or its id and the version read. */
  delete(o: Tables[T] | string, version?: number): void {
    const id = this.begin(o, 'delete');
    const readVersion = typeof o === 'string' ? version : o.meta.version;
    if (readVersion === undefined)
      throw new InvalidTransactionError(`${this.table}: delete("${id}") needs the version read, for the conflict check`);
    const key = `${this.table}\0${id}`;
    const p = this.b.pending.get(key);
    const cur = this.state().rows.get(id);
    if (p?.kind === StoreActionKind.REMOVE || (!p && !cur)) throw new ObjectNotFoundError(this.table, id);
    if (!p && readVersion !== cur!.meta.version) throw new VersionConflictError(this.table, id, readVersion, cur!.meta.version);
    this.b.names.move(this.table, id, nameOf(p ? p.object : cur!), '');
    if (p?.kind === StoreActionKind.CREATE) {
      this.b.pending.delete(key);
      return;
    }
    const v = p ? p.readVersion : readVersion;
    this.b.pending.set(key, {
      kind: StoreActionKind.REMOVE,
      table: this.table,
      object: { meta: Meta.create({ id, version: v }) } as StoreObject,
      readVersion: v,
    });
  }
}

export type WriteTx = { readonly [T in TableName]: TableWriter<T> };

// ------------------------------------------------------------------ apply

/** An action read from a transaction: its object normalized (null for a removal), its meta as written. */
interface ParsedAction {
  kind: StoreActionKind;
  table: TableName;
  id: string;
  target: StoreObject | null;
  meta: { version: number; createdAt: number; updatedAt: number };
}

interface Parsed {
  actions: ParsedAction[];
  requestId: Uint8Array | null;
}

/** An action checked against the state, ready to commit. */
interface ParsedChecked extends ParsedAction {
  cur: StoreObject | undefined;
}
type Checked = ParsedChecked;

/** What a writer waiting for its own entry leaves for apply. */
interface Waiting {
  outcome?: TxOutcome;
  /** The transaction's actions as the writer built them. */
  actions?: StoreAction[];
}

const REQUEST_ID_BYTES = 16;
/** Field 2 (request_id), wire type 2 (length-delimited), then its length. */
const REQUEST_ID_PREFIX = [(2 << 3) | 2, REQUEST_ID_BYTES] as const;

/**
 * A transaction's bytes with the request id written first (protobuf readers
 * take fields in any order), so that apply can tell its own entries from the
 * first 18 bytes without decoding the rest.
 */
function encodeTransaction(requestId: Uint8Array, actions: StoreAction[]): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32(REQUEST_ID_PREFIX[0]).bytes(requestId);
  for (const a of actions) {
    w.uint32(ACTIONS_TAG).fork();
    if (a.kind !== 0) w.uint32(KIND_TAG).int32(a.kind);
    for (const t of tableNames) {
      const o = (a as unknown as Record<string, StoreObject | undefined>)[tableDefs[t].actionField];
      if (o == null) continue;
      w.uint32(actionTags[t]);
      encodeObject(t, o, w);
    }
    w.ldelim();
  }
  return w.finish();
}

const ACTIONS_TAG = (reflectType(StoreTransaction).fields.actions!.id << 3) | 2;
const KIND_TAG = (reflectType(StoreAction).fields.kind!.id << 3) | 0;
const actionTags = Object.fromEntries(
  tableNames.map((t) => [t, (reflectType(StoreAction).fields[tableDefs[t].actionField]!.id << 3) | 2]),
) as Record<TableName, number>;

/** The large sub-messages whose bytes are worth keeping: specs, shared by every task of a service version. */
const cachedFields = Object.fromEntries(
  tableNames.map((t) => [
    t,
    reflectType(tableDefs[t].codec).fieldsArray.filter(
      (f: protobuf.Field) => (f.name === 'spec' || f.name === 'previousSpec') && f.resolvedType instanceof protobuf.Type,
    ),
  ]),
) as Record<TableName, protobuf.Field[]>;
const encodedSpecs = new WeakMap<object, Uint8Array>();

/**
 * Writes one object, length-delimited. A spec that is a stored (canonical,
 * immutable) object is encoded once and its bytes reused: a burst of 10,000
 * task writes otherwise re-encodes the same service spec 10,000 times. The
 * spec goes after the other fields; protobuf readers take fields in any order.
 */
function encodeObject(table: TableName, o: StoreObject, w: protobuf.Writer): void {
  const type = reflectType(tableDefs[table].codec);
  let rest = o as unknown as Record<string, unknown>;
  const tail: Array<[number, Uint8Array]> = [];
  for (const f of cachedFields[table]) {
    const v = rest[f.name] as object | null | undefined;
    if (v == null || brandOf(v) !== f.resolvedType) continue;
    let bytes = encodedSpecs.get(v);
    if (!bytes) encodedSpecs.set(v, (bytes = (f.resolvedType as protobuf.Type).encode(v as protobuf.Message).finish()));
    if (rest === (o as unknown)) rest = { ...rest };
    rest[f.name] = null;
    tail.push([(f.id << 3) | 2, bytes]);
  }
  w.fork();
  type.encode(rest as unknown as protobuf.Message, w);
  for (const [tag, bytes] of tail) w.uint32(tag).bytes(bytes);
  w.ldelim();
}

/** One object's encoded size in a transaction (its action's framing aside): batch writers size their transactions with it. */
export function encodedSize<T extends TableName>(table: T, o: Tables[T]): number {
  const w = protobuf.Writer.create();
  encodeObject(table, o as StoreObject, w);
  return w.len;
}

/** The cap's error, naming the transaction's largest object (encoded again only past 1.5 MiB), or null when within `limit`. */
function tooLarge(b: TxBuilder, bytes: number, limit: number): EntryTooLargeError | null {
  let largest: EntryObject | null = null;
  for (const p of b.pending.values()) {
    const w = protobuf.Writer.create();
    encodeObject(p.table, p.object, w);
    const size = w.len;
    if (!largest || size > largest.bytes) largest = { table: p.table, id: p.object.meta.id, name: nameOf(p.object), bytes: size };
  }
  if (bytes <= limit && largest!.bytes <= MAX_TRANSACTION_BYTES) return null;
  return new EntryTooLargeError(bytes, limit, b.pending.size, largest!);
}

function ownRequestId(data: Uint8Array): Uint8Array | null {
  if (data.length < 2 + REQUEST_ID_BYTES || data[0] !== REQUEST_ID_PREFIX[0] || data[1] !== REQUEST_ID_PREFIX[1]) return null;
  return data.subarray(2, 2 + REQUEST_ID_BYTES);
}

/**
 * Shape checks and normalization of a transaction's actions. `local`: the
 * writer's own objects (normalizeLocal); null when one of them would not
 * survive the wire unchanged, so the caller decodes the bytes instead.
 */
function parseActions(actions: StoreAction[], local: true, index: number, states: States): Parsed | TsswarmError | null;
function parseActions(actions: StoreAction[], local: false, index: number, states: States): Parsed | TsswarmError;
function parseActions(actions: StoreAction[], local: boolean, index: number, states: States): Parsed | TsswarmError | null {
  const out: ParsedAction[] = [];
  for (const [i, a] of actions.entries()) {
    const kind = a.kind;
    if (!kindNames[kind]) return new InvalidTransactionError(`action ${i}: unknown kind ${kind}`);
    let field: string | undefined;
    let count = 0;
    for (const f of actionFields) {
      if ((a as unknown as Record<string, unknown>)[f] != null) {
        field = f;
        count++;
      }
    }
    const table = count === 1 ? tableOfActionField.get(field!) : undefined;
    if (!table) {
      const set = actionFields.filter((f) => (a as unknown as Record<string, unknown>)[f] != null);
      return new InvalidTransactionError(`action ${i}: it must carry exactly one object (got: ${set.join(', ') || 'none'})`);
    }
    const obj = (a as unknown as Record<string, StoreObject>)[field!]!;
    const id = obj.meta?.id;
    if (!id) return new InvalidTransactionError(`action ${i}: ${table} ${kindNames[kind]} without meta.id`);
    const meta = {
      version: Number(obj.meta.version ?? 0),
      createdAt: Number(obj.meta.createdAt ?? 0),
      updatedAt: Number(obj.meta.updatedAt ?? 0),
    };
    let target: StoreObject | null = null;
    if (kind !== StoreActionKind.REMOVE) {
      // The meta it will be stored with, decided here so the object is built
      // once: version and creation time come from the log and the state, so
      // every replica stores the same bytes. (Should the transaction be
      // refused, nothing built here is kept.) The object is this store's own
      // copy (the writer's pending action, or a decoded message).
      const cur = states[table].rows.get(id);
      (obj as { meta: Meta }).meta = Meta.create({
        id,
        version: index,
        createdAt: cur ? cur.meta.createdAt : meta.createdAt,
        updatedAt: meta.updatedAt,
      });
      if (!local) target = normalize(table, obj);
      else {
        try {
          target = normalizeLocal(table, obj);
        } catch (e) {
          if (e instanceof NotWireStable) return null;
          throw e;
        }
      }
    }
    out.push({ kind, table, id, target, meta });
  }
  return { actions: out, requestId: null };
}

const kindNames: Partial<Record<StoreActionKind, string>> = {
  [StoreActionKind.CREATE]: 'create',
  [StoreActionKind.UPDATE]: 'update',
  [StoreActionKind.REMOVE]: 'remove',
};

/**
 * A proposer's failure as the writer should see it: one that says the entry
 * may still commit must read as outcome-unknown, never as refused, so that
 * the writer reads again before it retries.
 */
function proposeError(e: unknown): unknown {
  if (e instanceof TsswarmError || !(e instanceof Error)) return e;
  const { code, index, reason } = e as Error & { code?: unknown; index?: unknown; reason?: unknown };
  if (code === 'OUTCOME_UNKNOWN' || code === 'STOPPED')
    return new OutcomeUnknownError(typeof index === 'number' ? index : 0, typeof reason === 'string' ? reason : e.message);
  if (code === 'PROPOSAL_DROPPED') return new NotCommittedError(e.message);
  return e;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/**
 * A writer reads (view), builds a transaction of creates/updates/removes
 * carrying the versions it read, and proposes it as one log entry. Every
 * replica checks it again at apply, against the same state, and refuses it
 * whole if any version is stale or a name is taken (never merged). Versions
 * are the Raft index of the write, so all replicas agree byte for byte. The
 * proposing store finds the outcome of its own entry by its request id,
 * recorded at apply, and settles the writer's promise with it.
 */
export class MemoryStore implements StateMachine {
  private states: States = newStates();
  private readonly reader: ReadTx;
  private readonly sinks = new Set<Sink>();
  /** request id (hex) → slot the apply fills: only for entries this store proposed and still waits for. */
  private readonly waiting = new Map<string, Waiting>();
  private applied = 0;
  private last: TxOutcome | null = null;
  private readonly register: Register = (sink) => {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  };

  private readonly proposeTimeoutMs: number;

  constructor(
    private readonly proposer: Proposer,
    opts: StoreOptions = {},
  ) {
    this.proposeTimeoutMs = opts.proposeTimeoutMs ?? PROPOSE_TIMEOUT_MS;
    const r: Partial<Record<TableName, TableReader<TableName>>> = {};
    for (const t of tableNames) r[t] = new TableReader(() => this.states[t] as TableState<TableName>);
    this.reader = r as ReadTx;
  }

  /** Index of the last log entry applied (or restored). */
  get appliedIndex(): number {
    return this.applied;
  }

  /** The outcome of the last entry applied; null after a restore. */
  get lastOutcome(): TxOutcome | null {
    return this.last;
  }

  /** Runs `fn` over the current applied state. */
  view<R>(fn: (tx: ReadTx) => R): R {
    return fn(this.reader);
  }

  /**
   * Runs `fn` to build a transaction and commits it through the proposer.
   * Resolves with the log index (every written object's new version); an
   * empty transaction proposes nothing and resolves with the applied index.
   * Rejects with VersionConflictError, AlreadyExistsError, ObjectNotFoundError,
   * InvalidTransactionError or EntryTooLargeError (nothing applied), or with
   * the proposer's error. A transaction may take MAX_TRANSACTION_BYTES
   * encoded, whoever writes it: writers of thousands of objects cut their
   * writes into several transactions (batch.ts).
   */
  async update(fn: (tx: WriteTx) => void | Promise<void>): Promise<number> {
    const b = new TxBuilder(() => this.states);
    const w: Partial<Record<TableName, TableWriter<TableName>>> = {};
    for (const t of tableNames) w[t] = new TableWriter(() => this.states[t] as TableState<TableName>, b);
    try {
      await fn(w as WriteTx);
    } finally {
      b.closed = true;
    }
    const actions = b.actions();
    if (actions.length === 0) return this.applied;
    const requestId = randomBytes(REQUEST_ID_BYTES);
    const data = encodeTransaction(requestId, actions);
    // Refused before Raft sees it: an entry over the cap would be replicated, snapshotted and watched forever.
    if (data.length > MAX_TRANSACTION_BYTES) {
      const err = tooLarge(b, data.length, MAX_TRANSACTION_BYTES);
      if (err) throw err;
    }
    const slot: Waiting = { actions };
    const key = hex(requestId);
    this.waiting.set(key, slot);
    let index: number;
    let timer: NodeJS.Timeout | undefined;
    try {
      const bound = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new OutcomeUnknownError(0, `Raft did not answer within ${this.proposeTimeoutMs} ms`)),
          this.proposeTimeoutMs,
        );
        timer.unref?.();
      });
      index = await Promise.race([this.proposer.propose(data), bound]);
    } catch (e) {
      // Applied after all (the proposer gave up just as it applied): the outcome is known.
      if (!slot.outcome) throw proposeError(e);
      index = slot.outcome.index;
    } finally {
      clearTimeout(timer);
      this.waiting.delete(key);
    }
    if (!slot.outcome) throw new OutcomeUnknownError(index);
    if (slot.outcome.error) throw slot.outcome.error;
    return index;
  }

  /** Change events after each apply, as an async iterable; see Watch. */
  watch(filter?: WatchOptions, signal?: AbortSignal): Watch {
    return new Watch(this.register, filter, signal);
  }

  /** Change events through a callback, run synchronously after each apply. */
  subscribe(fn: (e: StoreEvent) => void, filter?: WatchFilter): Subscription {
    return new Subscription(this.register, fn, filter);
  }

  /** Reads the state and starts watching from exactly that state: no change is missed or seen twice. */
  viewAndWatch<R>(fn: (tx: ReadTx) => R, filter?: WatchOptions, signal?: AbortSignal): { value: R; watch: Watch } {
    // Applies run synchronously, so nothing can come between these two lines.
    const value = this.view(fn);
    return { value, watch: this.watch(filter, signal) };
  }

  // ------------------------------------------------------------ state machine

  /** Applies one committed entry. Never throws: a refused transaction is recorded (lastOutcome) and changes nothing. */
  apply(data: Uint8Array, index: number): void {
    // The one error apply throws: the driver broke the log order, and going on would fork the replicas.
    if (index <= this.applied)
      throw new TsswarmError(
        'INTERNAL',
        `store: entry ${index} applied after entry ${this.applied}: the log must be applied in order, once`,
      );
    this.applied = index;
    let error: TsswarmError | null = null;
    let events: ChangeEvent[] = [];
    // This store's own entry: its writer's objects are at hand, so the bytes
    // need no decoding (the other replicas decode them and store equal values).
    const own = ownRequestId(data);
    const slot = own ? this.waiting.get(hex(own)) : undefined;
    let parsed: Parsed | TsswarmError | null = slot?.actions ? parseActions(slot.actions, true, index, this.states) : null;
    if (parsed === null) {
      let tx: StoreTransaction | null = null;
      try {
        tx = StoreTransaction.decode(data);
      } catch (e) {
        parsed = new InvalidTransactionError(`log entry ${index} is not a store transaction (${(e as Error).message})`);
      }
      if (tx) {
        parsed = parseActions(tx.actions, false, index, this.states);
        if (!(parsed instanceof TsswarmError) && tx.requestId.length > 0) parsed.requestId = tx.requestId;
      }
    }
    if (parsed instanceof TsswarmError) error = parsed;
    else if (parsed) {
      const checked = this.check(parsed);
      if (Array.isArray(checked)) events = this.commit(checked, index);
      else error = checked;
    }
    const outcome: TxOutcome = { index, error };
    this.last = outcome;
    if (own) {
      const s = slot ?? this.waiting.get(hex(own));
      if (s) s.outcome = outcome;
    } else if (parsed && !(parsed instanceof TsswarmError) && parsed.requestId) {
      const s = this.waiting.get(hex(parsed.requestId));
      if (s) s.outcome = outcome;
    }
    this.emit(events, index);
  }

  /** Deterministic validation against the applied state: ids, versions, unique names. */
  private check(parsed: Parsed): Checked[] | TsswarmError {
    const out: Checked[] = [];
    const seen = new Set<string>();
    const names = new NameCheck(() => this.states);
    for (const [i, a] of parsed.actions.entries()) {
      const { kind, table, id, target } = a;
      const key = `${table}\0${id}`;
      if (seen.has(key)) return new InvalidTransactionError(`action ${i}: ${table} ${id} appears twice in one transaction`);
      seen.add(key);
      const cur = this.states[table].rows.get(id);
      if (kind === StoreActionKind.CREATE) {
        if (cur) return AlreadyExistsError.forId(table, id);
      } else {
        if (!cur) return new ObjectNotFoundError(table, id);
        const read = a.meta.version;
        if (read !== cur.meta.version) return new VersionConflictError(table, id, read, cur.meta.version);
      }
      const conflict = names.move(table, id, cur ? nameOf(cur) : '', kind === StoreActionKind.REMOVE ? '' : nameOf(target!));
      if (conflict) return conflict;
      out.push({ kind, table, id, target, meta: a.meta, cur });
    }
    return out;
  }

  private commit(actions: Checked[], index: number): ChangeEvent[] {
    const events: ChangeEvent[] = [];
    for (const { kind, table, id, target, cur } of actions) {
      const st = this.states[table] as TableState<TableName>;
      if (kind === StoreActionKind.REMOVE) {
        st.remove(id);
        events.push({ kind: 'delete', table, object: cur!, index } as ChangeEvent);
        continue;
      }
      const stored = target!;
      st.put(stored);
      events.push(
        (cur
          ? { kind: 'update', table, object: stored, old: cur, index }
          : { kind: 'create', table, object: stored, index }) as ChangeEvent,
      );
    }
    return events;
  }

  private emit(events: ChangeEvent[], index: number): void {
    if (this.sinks.size === 0) return;
    for (const sink of this.sinks) {
      const f = sink.filter;
      let delivered = false;
      try {
        for (const e of events) {
          if (!passes(f, e)) continue;
          delivered = true;
          sink.push(
            tableDefs[e.table].hasBytes
              ? ({ ...e, object: forReader(e.table, e.object), ...(e.old ? { old: forReader(e.table, e.old) } : {}) } as ChangeEvent)
              : e,
          );
        }
      } catch (err) {
        sink.fail(err instanceof Error ? err : new Error(String(err)));
        continue;
      }
      const commits = f.commits ?? 'relevant';
      if (commits === 'all' || (commits === 'relevant' && delivered)) sink.push({ kind: 'commit', index });
    }
  }

  /** The whole state, tables in their creation order. */
  snapshot(): Uint8Array {
    const snap = StoreSnapshot.create({ format: 1 }) as unknown as Record<string, unknown>;
    for (const t of tableNames) snap[tableDefs[t].snapshotField] = [...this.states[t].rows.values()];
    return StoreSnapshot.encode(snap as unknown as StoreSnapshot);
  }

  /** Replaces the whole state; watchers are closed with WatchResetError (their view is gone). Throws on an unreadable snapshot, keeping the state. */
  restore(data: Uint8Array, index: number): void {
    const states = newStates();
    if (data.length > 0) {
      let snap: StoreSnapshot;
      try {
        snap = StoreSnapshot.decode(data);
      } catch (e) {
        throw new TsswarmError(
          'INTERNAL',
          `the store snapshot at index ${index} cannot be decoded (${(e as Error).message}): it was written by an incompatible version`,
          { cause: e },
        );
      }
      if (snap.format !== 1)
        throw new TsswarmError('INTERNAL', `the store snapshot at index ${index} has format ${snap.format}; this version reads format 1`);
      for (const t of tableNames) {
        const st = states[t] as TableState<TableName>;
        for (const o of snap[tableDefs[t].snapshotField] as StoreObject[]) st.put(normalize(t, o as Tables[TableName]));
      }
    }
    this.states = states;
    this.applied = index;
    this.last = null;
    if (this.sinks.size === 0) return;
    const err = new WatchResetError(index);
    for (const sink of [...this.sinks]) sink.fail(err);
  }
}
