// Which nodes have missed their heartbeats: a pure tracker driven by the
// caller's clock. A node is DOWN once `grace` (period × multiplier) has passed
// since its last heartbeat. A new leader calls reset(): every known node gets
// a fresh grace period, so a leader change never marks healthy nodes DOWN.

export interface HeartbeatConfig {
  periodMs: number;
  /** Heartbeats a node may miss before it is DOWN (Swarm: grace = 3 periods; we default to 3 as well). */
  graceMultiplier: number;
}

export class HeartbeatTracker {
  private readonly deadlines = new Map<string, number>();
  private readonly down = new Set<string>();

  constructor(private cfg: HeartbeatConfig) {}

  get graceMs(): number {
    return this.cfg.periodMs * this.cfg.graceMultiplier;
  }

  configure(cfg: HeartbeatConfig): void {
    this.cfg = cfg;
  }

  /** A heartbeat (or a new session) from `node` at `now`. Returns true if it had been DOWN. */
  beat(node: string, now: number): boolean {
    this.deadlines.set(node, now + this.graceMs);
    return this.down.delete(node);
  }

  /** Gives every node in `nodes` a full grace period from `now` (leadership just started). */
  reset(nodes: Iterable<string>, now: number): void {
    this.deadlines.clear();
    this.down.clear();
    for (const n of nodes) this.deadlines.set(n, now + this.graceMs);
  }

  /** Every live node's deadline moved out to at least a full grace from `now` (the grace grew). */
  extend(now: number): void {
    for (const [n, d] of this.deadlines) if (!this.down.has(n)) this.deadlines.set(n, Math.max(d, now + this.graceMs));
  }

  /** Stop tracking (node removed). */
  forget(node: string): void {
    this.deadlines.delete(node);
    this.down.delete(node);
  }

  /** Nodes whose deadline passed since the last call: each is reported once until it beats again. */
  expired(now: number): string[] {
    const out: string[] = [];
    for (const [n, d] of this.deadlines) {
      if (d <= now && !this.down.has(n)) {
        this.down.add(n);
        out.push(n);
      }
    }
    return out;
  }

  /** Marks a node DOWN on other evidence (e.g. Raft lost it); its next beat brings it back. */
  markDown(node: string): void {
    this.down.add(node);
  }

  isDown(node: string): boolean {
    return this.down.has(node);
  }

  /** Milliseconds until the next deadline (for the caller's timer), or null when nothing is tracked. */
  nextDeadline(now: number): number | null {
    let min: number | null = null;
    for (const [n, d] of this.deadlines) {
      if (this.down.has(n)) continue;
      const left = Math.max(0, d - now);
      if (min === null || left < min) min = left;
    }
    return min;
  }
}
