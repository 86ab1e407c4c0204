// A Proposer with no Raft: applies each transaction at once with increasing
// indexes, so the store's users (orchestrators, tests, single-process tools)
// can run without a cluster.
import { TsswarmError } from '../../lib/errors.js';
import { MemoryStore, type Proposer } from './store.js';

export class LocalProposer implements Proposer {
  private index = 0;

  /** The store to apply to; set it after constructing the store (they refer to each other). */
  constructor(public store: MemoryStore | null = null) {}

  async propose(data: Uint8Array): Promise<number> {
    const s = this.store;
    if (!s) throw new TsswarmError('UNAVAILABLE', 'LocalProposer has no store: set proposer.store, or use localStore()');
    // Continue after whatever the store holds (it may have been restored from a snapshot).
    const i = (this.index = Math.max(this.index, s.appliedIndex) + 1);
    s.apply(data, i);
    return i;
  }
}

/** A store that applies its own transactions directly: no Raft. */
export function localStore(): MemoryStore {
  const p = new LocalProposer();
  const s = new MemoryStore(p);
  p.store = s;
  return s;
}
