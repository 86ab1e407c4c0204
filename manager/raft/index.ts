// Public surface of the Raft library. It knows nothing of tsswarm: members
// are opaque string ids, entries are opaque bytes.
export * from './errors.js';
export { VoteResult } from './quorum.js';
export { ConfChangeError } from './confchange.js';
export { MemoryStorage, type Storage, emptySnapshot, snapIndex, snapTerm } from './storage.js';
export { Raft, type RaftConfig, type RaftLogger, type ReadState, type SoftState, StateType, NONE, silentLogger } from './raft.js';
export { RawNode, type Ready, type Status } from './rawnode.js';
export { ProgressState } from './tracker.js';
