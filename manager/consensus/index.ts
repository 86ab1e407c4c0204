// The manager's Raft member (WAL, transport on the shared server, member list, learner promotion).
export { Consensus, type ConsensusOptions, NotLeaderError, newRaftId } from './consensus.js';
export type { MemberRecord } from './format.js';
