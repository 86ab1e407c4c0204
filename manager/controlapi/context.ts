// What the Control API's node and cluster calls need of the manager they run
// on: its store and Raft member, the leader check, linearizable reads, and the
// cluster object. Manager implements it; tests may hand in their own.
import type pino from 'pino';
import type { Cluster } from '../../proto/gen/objects.js';
import type { Consensus } from '../consensus/index.js';
import type { MemoryStore, ReadTx } from '../store/index.js';

export interface ManagerContext {
  readonly store: MemoryStore;
  readonly consensus: Consensus;
  /** Ends a removed node's session. */
  readonly dispatcher: { forget(nodeId: string): void };
  readonly log: pino.Logger;
  /** This manager's Raft member id. */
  readonly raftId: string;
  requireLeader(): void;
  /** A read of the store that waits for this member to be up to date, or says it is stale. */
  readView<T>(fn: (tx: ReadTx) => T): Promise<{ value: T; stale: boolean }>;
  cluster(): Cluster | undefined;
  managerAddrs(): string[];
}
