// Errors of the replicated store. A refused transaction's error is built at
// apply time from the replicated state alone, so every manager records the
// same one; the proposing manager hands it to the writer that waits.
import { NotFoundError, TsswarmError } from '../../lib/errors.js';
import type { TableName } from './schema.js';

const singular: Record<TableName, string> = {
  cluster: 'cluster',
  nodes: 'node',
  services: 'service',
  tasks: 'task',
  networks: 'network',
  secrets: 'secret',
  configs: 'config',
};

/** `node abc123` */
function what(table: TableName, id: string): string {
  return `${singular[table]} ${id}`;
}

/** An update or removal names an object the store does not hold (anymore). */
export class ObjectNotFoundError extends NotFoundError {
  readonly table: TableName;
  readonly id: string;

  constructor(table: TableName, id: string) {
    super(`${what(table, id)} not found in ${table} (it may have been removed meanwhile): list ${table} again and retry`);
    this.table = table;
    this.id = id;
  }
}

/** A create reuses an id, or a name that must be unique in its table. */
export class AlreadyExistsError extends TsswarmError {
  readonly table: TableName;
  readonly id: string;
  /** The name at fault, for a name conflict. */
  readonly objectName: string | undefined;

  private constructor(table: TableName, id: string, objectName: string | undefined, message: string) {
    super('ALREADY_EXISTS', message);
    this.table = table;
    this.id = id;
    this.objectName = objectName;
  }

  static forId(table: TableName, id: string): AlreadyExistsError {
    return new AlreadyExistsError(table, id, undefined, `${what(table, id)} already exists in ${table}: choose another id`);
  }

  /** `holder` is the id of the object that has the name. */
  static forName(table: TableName, id: string, name: string, holder: string): AlreadyExistsError {
    return new AlreadyExistsError(
      table,
      id,
      name,
      `${table}: the name "${name}" is already in use by ${what(table, holder)} (names are compared without case): choose another name or remove that ${singular[table]} first`,
    );
  }
}

/**
 * Optimistic concurrency: the object changed after the writer read it. The
 * whole transaction was refused and nothing of it applied; read again and retry.
 */
export class VersionConflictError extends TsswarmError {
  readonly table: TableName;
  readonly id: string;
  /** The version the writer read. */
  readonly readVersion: number;
  /** The version in the store when the transaction was checked. */
  readonly currentVersion: number;

  constructor(table: TableName, id: string, readVersion: number, currentVersion: number) {
    super(
      'CONFLICT',
      `${what(table, id)} changed since it was read (read version ${readVersion}, now ${currentVersion}): read it again and retry`,
    );
    this.table = table;
    this.id = id;
    this.readVersion = readVersion;
    this.currentVersion = currentVersion;
  }
}

/** A transaction that can never apply, whatever the state (no id, unknown kind, an object twice). */
export class InvalidTransactionError extends TsswarmError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/**
 * Whether the transaction applied is unknown: its entry was replaced by a
 * snapshot here, or Raft could not say (leadership lost before it committed,
 * no answer within the bound). `index` is 0 when its place in the log is unknown.
 */
export class OutcomeUnknownError extends TsswarmError {
  readonly index: number;

  constructor(index: number, reason?: string) {
    super(
      'UNAVAILABLE',
      reason
        ? `whether the store transaction${index ? ` at log index ${index}` : ''} applied is unknown (${reason}): read the objects again and retry if needed`
        : `the store transaction at log index ${index} was not applied individually here (a snapshot replaced it), so whether it succeeded is unknown: read the objects again and retry if needed`,
    );
    this.index = index;
  }
}

/** Raft dropped the transaction before it could commit (no leader, a leader change replaced it): nothing of it applied. */
export class NotCommittedError extends TsswarmError {
  constructor(reason: string) {
    super('UNAVAILABLE', `the store transaction was not committed (${reason}); nothing of it applied: retry it`);
  }
}

/** A watcher's queue outgrew its bound: it was closed so that memory stays bounded. */
export class WatchOverflowError extends TsswarmError {
  readonly limit: number;

  constructor(limit: number) {
    super(
      'UNAVAILABLE',
      `the watcher fell more than ${limit} events behind and was closed: read the current state with view() and watch again (or raise maxQueue)`,
    );
    this.limit = limit;
  }
}

/** The store was replaced by a Raft snapshot: events since the last one seen are not available. */
export class WatchResetError extends TsswarmError {
  readonly index: number;

  constructor(index: number) {
    super(
      'UNAVAILABLE',
      `the store was replaced by a snapshot at log index ${index} and the watcher was closed: read the current state with view() and watch again`,
    );
    this.index = index;
  }
}

/**
 * The store's entry cap: the most bytes one transaction may take as a Raft
 * log entry. etcd's default request limit (--max-request-bytes), which
 * SwarmKit also keeps its transactions under. It keeps every entry, and so
 * every Raft append, far below the gRPC message limit (lib/grpc.ts), and a
 * single object (a spec with megabytes of env) from making the log, its
 * snapshots and every watcher carry it. It holds for every writer: the
 * leader's batch writers (thousands of tasks per pass) cut their writes into
 * several transactions of at most BATCH_BYTES (batch.ts).
 */
export const MAX_TRANSACTION_BYTES = 1536 * 1024;

/** One object, as the cap's error names it. */
export interface EntryObject {
  table: TableName;
  id: string;
  name: string;
  bytes: number;
}

/** A transaction over MAX_TRANSACTION_BYTES, refused before it was proposed (nothing stored). */
export class EntryTooLargeError extends TsswarmError {
  readonly bytes: number;
  readonly limit: number;
  /** The largest object of the transaction. */
  readonly largest: EntryObject;

  constructor(bytes: number, limit: number, objects: number, largest: EntryObject) {
    const obj = `${singular[largest.table]} ${largest.name ? `"${largest.name}" (id ${largest.id})` : largest.id}`;
    super(
      'INVALID_ARGUMENT',
      objects === 1 || largest.bytes > MAX_TRANSACTION_BYTES
        ? `${obj} is ${largest.bytes} bytes encoded, over the store's limit of ${MAX_TRANSACTION_BYTES} bytes (1.5 MiB) per object: make its env, labels, command or other spec fields smaller`
        : `a store transaction of ${objects} objects is ${bytes} bytes encoded, over the store's limit of ${limit} bytes per write (its largest object is ${obj} at ${largest.bytes} bytes): write the objects in smaller transactions`,
    );
    this.bytes = bytes;
    this.limit = limit;
    this.largest = largest;
  }
}
