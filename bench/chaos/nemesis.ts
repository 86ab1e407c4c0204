// The chaos nemesis as data: a seed gives the same list of faults every time,
// so a failing run replays with `npm run chaos -- --seed S`. Pure; the runner
// (run.ts) resolves "the leader" at the moment a fault starts.
import { Rng } from '../../test/lib/rng.js';

/** Who a fault hits: a named host, or whichever manager leads when the fault starts. */
export type Target = { host: string } | { leader: true };

export type Fault =
  /** Cut off the underlay, both directions. */
  | { kind: 'cut'; targets: Target[] }
  /** Frames from `from` to `to` dropped, the other way passes. */
  | { kind: 'oneway'; from: Target; to: Target }
  /** SIGKILL, started again when the fault ends. */
  | { kind: 'kill'; targets: Target[] }
  /** SIGSTOP, SIGCONT when the fault ends: a leader paused this way is replaced. */
  | { kind: 'pause'; targets: Target[] }
  /** `tsswarm node transfer-leader [TO]` on a manager: the leader hands over to TO (or the most caught-up one). Nothing to heal. */
  | { kind: 'transfer'; to: Target | null }
  /** SIGTERM stop and start again at once (the hold is the time it stays down). */
  | { kind: 'restart'; targets: Target[] };

export interface Step {
  fault: Fault;
  /** How long the fault holds before it is healed. */
  holdMs: number;
  /** Quiet time after the heal, before the next fault. */
  gapMs: number;
}

export interface Hosts {
  managers: readonly string[];
  workers: readonly string[];
}

const KINDS = [
  'cut',
  'cut-leader',
  'oneway',
  'oneway-leader',
  'kill',
  'kill-leader',
  'pause',
  'pause-leader',
  'restart',
  'cut-two',
  'transfer',
] as const;

/**
 * Faults for `totalMs` of chaos (a little more: the runner stops at the deadline). Each fault
 * holds 3–12 s, long enough for an election (and for a worker to go DOWN), and is followed by
 * 2–6 s of quiet so the cluster can make progress between faults.
 */
export function planNemesis(seed: number, totalMs: number, hosts: Hosts): Step[] {
  if (!hosts.managers.length) throw new RangeError('planNemesis: at least one manager');
  const rng = new Rng(seed);
  const all = [...hosts.managers, ...hosts.workers];
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)] as T;
  const host = (xs: readonly string[] = all): Target => ({ host: pick(xs) });
  const steps: Step[] = [];
  for (let t = 0; t < totalMs; ) {
    const kind = pick(KINDS);
    let fault: Fault;
    switch (kind) {
      case 'cut':
        fault = { kind: 'cut', targets: [host()] };
        break;
      case 'cut-leader':
        fault = { kind: 'cut', targets: [{ leader: true }] };
        break;
      case 'cut-two': {
        // Two managers of three: no quorum anywhere until the heal.
        const a = pick(hosts.managers);
        const rest = hosts.managers.filter((m) => m !== a);
        fault = { kind: 'cut', targets: rest.length ? [{ host: a }, { host: pick(rest) }] : [{ host: a }] };
        break;
      }
      case 'oneway': {
        const from = pick(all);
        const others = all.filter((h) => h !== from);
        fault = { kind: 'oneway', from: { host: from }, to: { host: pick(others.length ? others : all) } };
        break;
      }
      case 'oneway-leader':
        // Half the time the leader can send and not hear, half the time hear and not send.
        fault = rng.chance(0.5)
          ? { kind: 'oneway', from: { leader: true }, to: host(hosts.managers) }
          : { kind: 'oneway', from: host(hosts.managers), to: { leader: true } };
        break;
      case 'kill':
        fault = { kind: 'kill', targets: [host()] };
        break;
      case 'kill-leader':
        fault = { kind: 'kill', targets: [{ leader: true }] };
        break;
      case 'pause':
        fault = { kind: 'pause', targets: [host()] };
        break;
      case 'pause-leader':
        fault = { kind: 'pause', targets: [{ leader: true }] };
        break;
      case 'restart':
        fault = { kind: 'restart', targets: [host()] };
        break;
      case 'transfer':
        // To a named manager (maybe the leader itself, a no-op), or to whichever the leader picks.
        fault = { kind: 'transfer', to: rng.chance(0.5) ? host(hosts.managers) : null };
        break;
    }
    const holdMs = 3000 + rng.int(9001);
    const gapMs = 2000 + rng.int(4001);
    steps.push({ fault, holdMs, gapMs });
    t += holdMs + gapMs;
  }
  return steps;
}

export function describeTarget(t: Target): string {
  return 'leader' in t ? 'the leader' : t.host;
}

export function describeFault(f: Fault): string {
  switch (f.kind) {
    case 'oneway':
      return `oneway ${describeTarget(f.from)} -> ${describeTarget(f.to)}`;
    case 'transfer':
      return f.to ? `transfer the leadership to ${describeTarget(f.to)}` : 'transfer the leadership';
    default:
      return `${f.kind} ${f.targets.map(describeTarget).join(' + ')}`;
  }
}
