// Mutation-testing switches for the Raft library. Each mutant breaks exactly one
// safety or durability rule at one line of manager/raft, so the simulator
// (test/sim, `npm run sim -- --mutants`) can prove it catches that bug class.
// Only the harness sets the switch; in production it stays null and every hook
// is one comparison that is false.
import { RaftError } from './errors.js';

export const MUTANTS = {
  'commit-by-counting': "a leader commits an earlier term's entry once a quorum holds it (Raft Figure 8)",
  'vote-not-durable': 'a vote leaves before the hard state that records it is durable',
  'ack-before-fsync': 'a follower acknowledges entries (MsgAppResp) before they are fsynced',
  'vote-for-older-log': 'a member grants its vote to a candidate whose log is behind its own',
  'read-before-term-commit': 'a new leader answers ReadIndex before it has committed an entry of its term',
  'apply-before-commit': 'a follower commits and applies what it appended without waiting for the leader',
  'snapshot-keeps-log': "installing a leader's snapshot keeps the member's old log instead of replacing it",
  'conf-change-lost': 'followers drop committed membership entries instead of applying them',
  'append-ignores-prev-term': 'a follower accepts an append whose previous entry does not match its log',
  'heartbeat-commit-past-match': 'heartbeats carry the leader commit index past what the follower is known to hold',
  'wal-released-early': 'compaction releases the WAL before the snapshot that covers it is durable',
  'read-without-quorum': 'a leader answers ReadIndex from its own commit index without confirming it still leads',
} as const;

export type MutantName = keyof typeof MUTANTS;

export const MUTANT_NAMES = Object.keys(MUTANTS) as MutantName[];

/** The mutant in force, or null (always null outside the mutation harness). */
export let activeMutant: MutantName | null = null;

/** Turns one mutant on (or all off with null). Only test/sim calls this. */
export function setActiveMutant(name: string | null): void {
  if (name !== null && !(name in MUTANTS)) {
    throw new RaftError('UNKNOWN_MUTANT', `--only must name a mutant (got "${name}"): use one of ${MUTANT_NAMES.join(', ')}`);
  }
  activeMutant = name as MutantName | null;
}

/** True when `name` is the mutant in force. */
export function mutant(name: MutantName): boolean {
  return activeMutant === name;
}
