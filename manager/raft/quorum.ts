// Quorum arithmetic: majority and joint (two-majority) configurations, the
// index a quorum has acknowledged, and the outcome of a vote. Pure functions
// over sets of node ids.

export enum VoteResult {
  Pending = 1,
  Lost = 2,
  Won = 3,
}

export type MajorityConfig = ReadonlySet<string>;

/** The largest index acknowledged by a majority; an empty config commits everything (so a joint config reduces to its other half). */
export function majorityCommitted(cfg: MajorityConfig, acked: (id: string) => number | undefined): number {
  const n = cfg.size;
  if (n === 0) return Number.MAX_SAFE_INTEGER;
  const idx: number[] = [];
  for (const id of cfg) idx.push(acked(id) ?? 0);
  idx.sort((a, b) => a - b);
  return idx[n - (Math.floor(n / 2) + 1)]!;
}

export function majorityVote(cfg: MajorityConfig, votes: ReadonlyMap<string, boolean>): VoteResult {
  if (cfg.size === 0) return VoteResult.Won;
  let yes = 0;
  let missing = 0;
  for (const id of cfg) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) yes++;
  }
  const q = Math.floor(cfg.size / 2) + 1;
  if (yes >= q) return VoteResult.Won;
  if (yes + missing >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}

/** [incoming, outgoing]; outgoing is empty unless a joint change is under way. */
export type JointConfig = readonly [MajorityConfig, MajorityConfig];

export function jointCommitted(cfg: JointConfig, acked: (id: string) => number | undefined): number {
  return Math.min(majorityCommitted(cfg[0], acked), majorityCommitted(cfg[1], acked));
}

export function jointVote(cfg: JointConfig, votes: ReadonlyMap<string, boolean>): VoteResult {
  const r0 = majorityVote(cfg[0], votes);
  const r1 = majorityVote(cfg[1], votes);
  if (r0 === r1) return r0;
  if (r0 === VoteResult.Lost || r1 === VoteResult.Lost) return VoteResult.Lost;
  return VoteResult.Pending;
}

export function jointIds(cfg: JointConfig): string[] {
  const s = new Set<string>([...cfg[0], ...cfg[1]]);
  return [...s].sort();
}
