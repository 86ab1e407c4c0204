// The managers' replicated store: tables, optimistic transactions through Raft, change events.
export { type ChangeEvent, LocalProposer, MemoryStore, type Proposer, type ReadTx, TableView, TableWriter, type TableName, tables, type WriteTx } from './store.js';
