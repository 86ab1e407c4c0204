// Errors of the durable Raft storage (WAL and snapshot files). Each has a
// stable `code`; the messages name the file and say what an operator can do,
// because most of them mean a member cannot start until someone acts.
import { RaftError } from '../errors.js';

const RECOVER =
  "This member's durable state cannot be trusted: restore its data directory from a healthy peer's copy, " +
  'or remove the member from the cluster, delete its data directory, and join it again.';

export class StorageError extends RaftError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'StorageError';
  }
}

/** A record that is not a torn tail failed its checks: bytes the WAL once wrote are damaged. */
export class WalCorruptError extends StorageError {
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super('WAL_CORRUPT', `WAL segment ${file} is corrupt at byte offset ${offset}: ${reason}. ${RECOVER}`);
    this.name = 'WalCorruptError';
  }
}

/** Every record checks, but together they do not form a log Raft can start from (for example, entries missing after the snapshot). */
export class WalInconsistentError extends StorageError {
  constructor(
    readonly dir: string,
    reason: string,
  ) {
    super('WAL_INCONSISTENT', `WAL in ${dir} cannot be replayed: ${reason}. ${RECOVER}`);
    this.name = 'WalInconsistentError';
  }
}

/**
 * A write or fsync failed. After a failed fsync the kernel may have dropped the dirty pages and
 * cleared the error, so nothing written since the last good fsync can be trusted: the WAL refuses
 * all further work and the process must restart and replay.
 */
export class WalFailedError extends StorageError {
  constructor(
    readonly file: string,
    override readonly cause: unknown,
  ) {
    super('WAL_FAILED', `WAL write to ${file} failed (${describe(cause)}); the WAL is unusable until the member restarts and replays it`);
    this.name = 'WalFailedError';
  }
}

export class WalClosedError extends StorageError {
  constructor(dir: string) {
    super('WAL_CLOSED', `WAL in ${dir} is closed`);
    this.name = 'WalClosedError';
  }
}

/** A snapshot file failed its checksum or could not be decoded. loadLatest() skips such a file; load() of that file throws this. */
export class SnapshotCorruptError extends StorageError {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super('SNAPSHOT_CORRUPT', `snapshot file ${file} is corrupt: ${reason}`);
    this.name = 'SnapshotCorruptError';
  }
}

/**
 * A sealed snapshot file whose checksum holds failed authentication: altered with intent, renamed
 * from another snapshot, or sealed with another key. Unlike a checksum failure this is never set
 * aside in favour of an older snapshot: the member refuses to start until someone looks.
 */
export class SnapshotAuthError extends StorageError {
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super('SNAPSHOT_AUTH_FAILED', `snapshot file ${file} fails authentication at byte offset ${offset}: ${reason}. ${RECOVER}`);
    this.name = 'SnapshotAuthError';
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) return (e as NodeJS.ErrnoException).code ?? e.message;
  return String(e);
}
