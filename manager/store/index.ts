// The managers' replicated store: tables with secondary indexes, optimistic
// transactions proposed through Raft (or LocalProposer), change events after apply.
// Knows nothing of gRPC or processes; manager/consensus feeds it committed entries.
export { encodedSize, MemoryStore, TableReader, TableWriter, type Proposer, type ReadTx, type TxOutcome, type WriteTx } from './store.js';
export { LocalProposer, localStore } from './local.js';
export { type IndexName, type StoreObject, type TableIndexes, type TableName, type Tables, tableNames, taskSlotKey } from './schema.js';
export {
  type ChangeEvent,
  type ChangeKind,
  type CommitEvent,
  type StoreEvent,
  Subscription,
  Watch,
  type WatchFilter,
  type WatchOptions,
} from './watch.js';
export {
  AlreadyExistsError,
  EntryTooLargeError,
  type EntryObject,
  InvalidTransactionError,
  MAX_TRANSACTION_BYTES,
  NotCommittedError,
  ObjectNotFoundError,
  OutcomeUnknownError,
  VersionConflictError,
  WatchOverflowError,
  WatchResetError,
} from './errors.js';
export { actionBytes, BATCH_BYTES, chunkByBytes, fitsAlone, rejectOversizedTask, writeSplitting } from './batch.js';
