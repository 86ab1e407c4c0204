// Errors of the Raft library. Each has a stable `code` so callers (the store,
// the control API) can map it to a gRPC status without parsing messages.

export class RaftError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RaftError';
  }
}

/** A proposal was not appended: no leader known, a leader transfer is under way, or the uncommitted tail is full. */
export class ProposalDroppedError extends RaftError {
  constructor(reason: string) {
    super('PROPOSAL_DROPPED', `raft proposal dropped: ${reason}`);
  }
}

/** The requested index is older than the first index the storage still holds (it was compacted into a snapshot). */
export class CompactedError extends RaftError {
  constructor(index: number, first: number) {
    super('COMPACTED', `requested index ${index} is unavailable due to compaction (first index ${first})`);
  }
}

/** The requested index is newer than the last index the storage holds. */
export class UnavailableError extends RaftError {
  constructor(index: number, last: number) {
    super('UNAVAILABLE', `requested entry at index ${index} is unavailable (last index ${last})`);
  }
}

export class SnapshotOutOfDateError extends RaftError {
  constructor(index: number, current: number) {
    super('SNAPSHOT_OUT_OF_DATE', `snapshot at index ${index} is not newer than the current one (${current})`);
  }
}

/** A broken invariant: the library or its caller has a bug. Never caught by the library. */
export class RaftInvariantError extends RaftError {
  constructor(message: string) {
    super('INVARIANT', `raft invariant violated: ${message}`);
  }
}

export function invariant(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new RaftInvariantError(typeof message === 'string' ? message : message());
}
