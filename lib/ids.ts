// Object ids: 25 base-36 characters (about 129 random bits), like Swarm's
// (`docker service ps` shows the first 12). Used for nodes, services and tasks.
// Random bytes come from a pool refilled 4 KiB at a time: the orchestrator
// makes thousands of ids per transaction, and one randomBytes call each cost
// more than the rest of making a task.
import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';
const LIMIT = 252; // the largest multiple of 36 below 256: bytes at or above it are skipped, so every character is uniform
const pool = new Uint8Array(4096);
let at = pool.length;

function nextByte(): number {
  if (at === pool.length) {
    randomFillSync(pool);
    at = 0;
  }
  return pool[at++]!;
}

export function newId(): string {
  let s = '';
  while (s.length < 25) {
    const b = nextByte();
    if (b < LIMIT) s += ALPHABET[b % 36];
  }
  return s;
}

/** A Raft member id: 16 hex characters, new at every join (a rejoining manager is a new member). */
export function newRaftId(): string {
  const b = new Uint8Array(8);
  randomFillSync(b);
  return Buffer.from(b).toString('hex');
}
