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
    super('CONFLICT', `${what(table, id)} changed since it was read (read version ${readVersion}, now ${currentVersion}): read it again and retry`);
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

/** The entry was proposed and resolved, but its outcome never reached this store (replaced by a snapshot meanwhile). */
export class OutcomeUnknownError extends TsswarmError {
  readonly index: number;

  constructor(index: number) {
    super('UNAVAILABLE', `the store transaction at log index ${index} was not applied individually here (a snapshot replaced it), so whether it succeeded is unknown: read the objects again and retry if needed`);
    this.index = index;
  }
}

/** A watcher's queue outgrew its bound: it was closed so that memory stays bounded. */
export class WatchOverflowError extends TsswarmError {
  readonly limit: number;

  constructor(limit: number) {
    super('UNAVAILABLE', `the watcher fell more than ${limit} events behind and was closed: read the current state with view() and watch again (or raise maxQueue)`);
    this.limit = limit;
  }
}

/** The store was replaced by a Raft snapshot: events since the last one seen are not available. */
export class WatchResetError extends TsswarmError {
  readonly index: number;

  constructor(index: number) {
    super('UNAVAILABLE', `the store was replaced by a snapshot at log index ${index} and the watcher was closed: read the current state with view() and watch again`);
    this.index = index;
  }
}
