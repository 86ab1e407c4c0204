// Linearizability checker for client histories recorded by the Raft simulation: a
// Wing–Gong / Lowe search in the style of porcupine (P-compositional partitioning,
// memoised depth-first search over call/return events, just-in-time linearization).
import { Rng } from './rng.js';

/** One client operation. Times are on any clock shared by all clients (the simulator's). */
export interface Operation<Input, Output> {
  clientId: number;
  input: Input;
  /** When the client issued the call. */
  call: number;
  /** What the client observed; ignored when `ret` is Infinity. */
  output: Output;
  /**
   * When the client saw the response, or Infinity when the outcome is unknown (timeout,
   * crash): the operation may have taken effect at any time after `call`, or never.
   */
  ret: number;
}

/** A sequential specification of the object under test. */
export interface Model<State, Input, Output> {
  init(): State;
  /**
   * Applies `input` to `state` and says whether `output` is what the object could have
   * answered. `output` is undefined for an operation whose outcome is unknown: accept any
   * answer the operation could have given in `state` and return the state it leaves. Must be
   * pure: states are shared between branches of the search.
   */
  step(state: State, input: Input, output: Output | undefined): { ok: boolean; state: State };
  /**
   * Splits a history into independent sub-histories (for example by key) that are checked
   * separately. Sound only when every operation touches one part and the parts do not
   * interact: linearizability is compositional over independent objects.
   */
  partition?(history: readonly Operation<Input, Output>[]): Operation<Input, Output>[][];
  /**
   * Equal for two states only if no sequence of operations can tell them apart. Keys the memo
   * of searched states and decides whether an operation made a difference (rule 2 below).
   */
  hash(state: State): string;
  /**
   * True for an operation that changes no state, whatever the state. With an unknown outcome it
   * constrains nothing and is dropped before the search; with a known one that fits, it is
   * placed at once without trying alternatives (rule 4 below).
   */
  readOnly?(input: Input): boolean;
  /**
   * Optional speed-up for histories with many unknown outcomes. Return false only if, from any
   * state, `next` placed right after the unknown-outcome operation `unknown` would be rejected,
   * or would leave the same state without `unknown` (it overwrites it), or, when `next` has a
   * known outcome (`nextOutput` defined), could go first with `unknown` after it to the same
   * state (they commute). The search then never places `unknown` just before `next`. Omitted:
   * the search tells by stepping the model, which costs more.
   */
  mayAffect?(unknown: Input, next: Input, nextOutput: Output | undefined): boolean;
  describe?(input: Input, output: Output | undefined): string;
  describeState?(state: State): string;
}

export interface CheckOptions {
  /** Budget of model steps per partition before giving up with `ok: 'unknown'` (default 5,000,000). */
  maxSteps?: number;
}

export type CheckResult<Input, Output> =
  | { ok: true }
  | {
      ok: false;
      /** Index into the model's partition of the history (by key for `kvModel`, in order of first use). */
      partition: number;
      explanation: string;
      /** The longest linearization found for the failing partition, in linearization order. */
      linearized: Operation<Input, Output>[];
      /** The operation that had to take effect next but could not, after `linearized`. */
      unplaced: Operation<Input, Output>;
    }
  | { ok: 'unknown'; partition: number; reason: string };

const DEFAULT_MAX_STEPS = 5_000_000;

/**
 * Decides whether `history` is linearizable with respect to `model`. Each partition is searched
 * on its own; the first partition that fails is reported, otherwise the first that ran out of
 * budget. Throws a RangeError for a malformed history (an operation returning before its call).
 */
export function checkLinearizable<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: readonly Operation<Input, Output>[],
  opts: CheckOptions = {},
): CheckResult<Input, Output> {
  const maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
  if (!Number.isInteger(maxSteps) || maxSteps < 1) {
    throw new RangeError(`maxSteps must be a whole number ≥ 1 (got ${maxSteps})`);
  }
  history.forEach((op, i) => {
    if (!Number.isFinite(op.call)) throw new RangeError(`history[${i}].call must be a finite time (got ${op.call})`);
    if (Number.isNaN(op.ret) || op.ret < op.call) {
      throw new RangeError(`history[${i}].ret must be ≥ call (${op.call}) or Infinity for an unknown outcome (got ${op.ret})`);
    }
  });
  const where = new Map<Operation<Input, Output>, number>();
  history.forEach((op, i) => where.set(op, i));

  const show = describeOp(model, where);

  const parts = model.partition ? model.partition(history) : [history.slice()];
  let undecided: CheckResult<Input, Output> | undefined;
  for (let p = 0; p < parts.length; p++) {
    const ops = (parts[p] ?? []).filter((op) => !(op.ret === Infinity && model.readOnly?.(op.input)));
    const r = searchPartition(model, ops, maxSteps);
    if (r.kind === 'fail') {
      const linearized = r.linearized.map((i) => ops[i] as Operation<Input, Output>);
      const unplaced = ops[r.unplaced] as Operation<Input, Output>;
      return { ok: false, partition: p, explanation: explain(model, show, p, ops, linearized, unplaced, r.state), linearized, unplaced };
    }
    if (r.kind === 'unknown' && !undecided) {
      const first = ops[0] ? `, the first ${show(ops[0])}` : '';
      undecided = {
        ok: 'unknown',
        partition: p,
        reason: `partition ${p} (${ops.length} operations${first}) was not decided within ${maxSteps} model steps; raise maxSteps or check a shorter history`,
      };
    }
  }
  return undecided ?? { ok: true };
}

// ---------------------------------------------------------------------------------------------
// The search.
//
// Events (calls, and returns of operations with a known outcome) sit in a doubly linked list in
// time order. Linearizing an operation unlinks its call and return; backtracking relinks them in
// reverse order, as in dancing links. At any point the first return in the list belongs to an
// operation that must be linearized before anything returning later, and the calls before that
// return are exactly the operations that may go next. Lowe's "just-in-time" ordering tries the
// operation whose return forces the choice first, then operations after which it fits, then the
// rest. Ordering affects speed, never the verdict.
//
// A (set of linearized operations, model state) pair fully determines what can follow, so each
// pair is searched at most once; the set is a bitset hashed incrementally (Zobrist) and compared
// exactly on a hash match.
//
// Unknown-outcome operations have no return event and stay pending forever, so porcupine-style
// search tries every subset of them at every point. The rules below, beyond porcupine, keep that
// in check. Each drops only orders that a kept order stands in for, so the verdict is unchanged
// (a randomized test checks this against brute force):
//  1. Done when every known operation is placed: "never took effect" equals "took effect last".
//  2. An unknown operation U is placed only if it matters to the operation X placed right after
//     it. U does not matter when X gives the same state without U (then drop U), or when X fits
//     first and U after it to the same state, X being known or an unknown operation earlier in
//     the history than U (then swap them). Nothing must follow U in real time, so either change
//     keeps a linearization valid; each shortens it, moves an unknown operation later or sorts
//     two of them, so applying them while possible terminates, in a linearization this search
//     considers. A put that nobody reads is never placed. A frame entered through U carries U
//     and the state before it (`after`), and both are part of its memo key. `Model.mayAffect`
//     lets the search skip hopeless Us without stepping the model.
//  3. Dominance: a configuration is skipped when one searched already has the same state, the
//     same `after`, the same known operations and a subset of its unknown ones. Whatever the
//     larger set can still do the smaller can too, as unknown operations have no deadline.
//  4. A read (`Model.readOnly`) with a known outcome that fits now is placed now, with no
//     alternatives: in any linearization from here it can be moved to the front, as it changes
//     no state and nothing had to precede it.
//
// Ties: a call at the same time as another operation's return is ordered first, so the two count
// as concurrent. The simulator's clock is coarse and both orders are possible in such a tick.
// ---------------------------------------------------------------------------------------------

class Event {
  prev: Event | null = null;
  next: Event | null = null;
  /** For a call: its return event, or null when the outcome is unknown. */
  match: Event | null = null;
  constructor(
    readonly isCall: boolean,
    readonly op: number,
    readonly time: number,
  ) {}
}

/** The state an operation leaves and its hash, or null when the model rejects it. */
type Outcome<State> = { state: State; hash: string } | null;

interface Candidate<State> {
  call: Event;
  state: State;
  hash: string;
}

interface Frame<State> {
  /** The state before this frame's choice. */
  state: State;
  hash: string;
  /** What the pending calls this frame evaluated do from `state`, by operation. */
  outcomes: Map<number, Outcome<State>>;
  /** Set when the parent's choice was an unknown operation (rule 2). */
  after: { op: number; parent: Frame<State> } | undefined;
  candidates: Candidate<State>[];
  nextCandidate: number;
  /** The call event linearized by this frame, while its subtree is being searched. */
  chosen: Event | null;
  /** The operation whose return bounds this frame's choices. */
  forced: number;
}

type SearchResult<State> = { kind: 'ok' } | { kind: 'unknown' } | { kind: 'fail'; linearized: number[]; unplaced: number; state: State };

function searchPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  maxSteps: number,
): SearchResult<State> {
  const n = ops.length;
  const opAt = (i: number): Operation<Input, Output> => ops[i] as Operation<Input, Output>;
  const known = (i: number): boolean => opAt(i).ret !== Infinity;
  const outputOf = (i: number): Output | undefined => (known(i) ? opAt(i).output : undefined);
  const readOnly = (i: number): boolean => known(i) && model.readOnly !== undefined && model.readOnly(opAt(i).input);
  let remaining = 0;
  for (let i = 0; i < n; i++) if (known(i)) remaining++;
  if (remaining === 0) return { kind: 'ok' };

  const { head, calls: callOf } = buildEventList(ops);
  // For each unknown operation, the operations it may matter to (rule 2); all of them without a hint.
  const affects: (number[] | undefined)[] = [];
  if (model.mayAffect) {
    for (let u = 0; u < n; u++) {
      if (known(u)) continue;
      const list: number[] = [];
      for (let x = 0; x < n; x++) if (x !== u && model.mayAffect(opAt(u).input, opAt(x).input, outputOf(x))) list.push(x);
      affects[u] = list;
    }
  }

  const words = new Uint32Array((n + 31) >>> 5);
  const knownMask = new Uint32Array(words.length);
  for (let i = 0; i < n; i++) if (known(i)) knownMask[i >>> 5]! |= 1 << (i & 31);
  // Two 32-bit Zobrist keys per known operation; unknown ones stay out of the key so that
  // configurations differing only in them share a bucket (rule 3).
  const zrng = new Rng(0x5eed);
  const zobrist = new Uint32Array(2 * n);
  for (let i = 0; i < n; i++) {
    if (!known(i)) continue;
    zobrist[2 * i] = zrng.uint32();
    zobrist[2 * i + 1] = zrng.uint32();
  }
  let z0 = 0;
  let z1 = 0;
  const flip = (i: number): void => {
    words[i >>> 5]! ^= 1 << (i & 31);
    z0 ^= zobrist[2 * i]!;
    z1 ^= zobrist[2 * i + 1]!;
  };
  const seen = new Map<string, Uint32Array[]>();
  /** Records the current configuration; false if it, or one that dominates it, was searched already. */
  const firstVisit = (hash: string, after: string): boolean => {
    // The length prefix keeps the key unambiguous whatever characters the model's hashes use.
    const key = `${z0 >>> 0}.${z1 >>> 0}.${hash.length}:${hash}${after}`;
    const bucket = seen.get(key);
    if (!bucket) {
      seen.set(key, [words.slice()]);
      return true;
    }
    for (const b of bucket) if (dominated(b, words, knownMask)) return false;
    // Keep the bucket an antichain: entries the new configuration dominates are now redundant.
    let kept = 0;
    for (const b of bucket) if (!dominated(words, b, knownMask)) bucket[kept++] = b;
    bucket.length = kept;
    bucket.push(words.slice());
    return true;
  };

  let steps = 0;
  const step = (state: State, op: number): Outcome<State> => {
    steps++;
    const r = model.step(state, opAt(op).input, outputOf(op));
    return r.ok ? { state: r.state, hash: model.hash(r.state) } : null;
  };
  /** For ordering only: whether the model accepts `op` in `state`, without hashing the result. */
  const fits = (state: State, op: number): boolean => {
    steps++;
    return model.step(state, opAt(op).input, outputOf(op)).ok;
  };
  const outcomeIn = (f: Frame<State>, op: number): Outcome<State> => {
    let o = f.outcomes.get(op);
    if (o === undefined) f.outcomes.set(op, (o = step(f.state, op)));
    return o;
  };

  // Marks the calls open in the frame being built: those before the first return.
  const openMark = new Int32Array(n);
  let mark = 0;

  const openFrame = (state: State, hash: string, after: Frame<State>['after']): Frame<State> => {
    mark++;
    const isOpen = (i: number): boolean => openMark[i] === mark;
    // Every known operation still to place has its return in the list, so one is found while
    // `remaining` > 0.
    let ret = head.next;
    const open: Event[] = [];
    while (ret && ret.isCall) {
      open.push(ret);
      openMark[ret.op] = mark;
      ret = ret.next;
    }
    if (!ret) throw new Error('linearizability: internal error: no return event left to bound the search');
    const forced = ret.op;
    const frame: Frame<State> = { state, hash, outcomes: new Map(), after, candidates: [], nextCandidate: 0, chosen: null, forced };
    // After an unknown operation, only what it may matter to is worth trying (rule 2).
    const affected = after && affects[after.op];
    const pool = affected ? affected.filter(isOpen).map((i) => callOf[i] as Event) : open;
    const first: Candidate<State>[] = [];
    const fitting: Candidate<State>[] = [];
    const rest: Candidate<State>[] = [];
    for (const call of pool) {
      const x = call.op;
      // Rule 2, cheaply: an unknown operation that matters to nothing open now is not worth placing.
      const a = known(x) ? undefined : affects[x];
      if (a && !a.some(isOpen)) continue;
      const r = outcomeIn(frame, x);
      if (!r) continue;
      if (after) {
        // Rule 2: skip X if the unknown operation U just placed does not matter to it.
        const without = outcomeIn(after.parent, x);
        if (without && without.hash === r.hash) continue; // U can be dropped
        // X can go first. Two unknown operations that commute are kept in one canonical order
        // only: both may be needed (two increments before a read), so neither can be refused.
        const swapped = without && (known(x) || x < after.op) && step(without.state, after.op);
        if (swapped && swapped.hash === r.hash) continue;
      }
      const c = { call, state: r.state, hash: r.hash };
      if (readOnly(x)) {
        frame.candidates = [c]; // rule 4
        return frame;
      }
      if (x === forced) first.push(c);
      else if (fits(r.state, forced)) fitting.push(c);
      else rest.push(c);
    }
    frame.candidates = first.concat(fitting, rest);
    return frame;
  };

  const init = model.init();
  const stack: Frame<State>[] = [openFrame(init, model.hash(init), undefined)];
  let best: { linearized: number[]; unplaced: number; state: State } | undefined;

  for (;;) {
    if (steps > maxSteps) return { kind: 'unknown' };
    const top = stack[stack.length - 1];
    if (!top) break;
    if (top.chosen) {
      // Back from a failed subtree: undo this frame's choice before trying the next one.
      relink(top.chosen);
      flip(top.chosen.op);
      if (known(top.chosen.op)) remaining++;
      top.chosen = null;
    }
    let descended = false;
    while (top.nextCandidate < top.candidates.length) {
      const c = top.candidates[top.nextCandidate++] as Candidate<State>;
      const x = c.call.op;
      flip(x);
      if (!firstVisit(c.hash, known(x) ? '' : `/${x}/${top.hash}`)) {
        flip(x);
        continue;
      }
      unlink(c.call);
      top.chosen = c.call;
      if (known(x) && --remaining === 0) return { kind: 'ok' };
      stack.push(openFrame(c.state, c.hash, known(x) ? undefined : { op: x, parent: top }));
      descended = true;
      break;
    }
    if (descended) continue;
    // Dead end. The deepest one is the most useful to show: it is the longest linearization found.
    // One right after an unknown operation is only a trial of that operation, so it is not shown.
    const depth = stack.length - 1;
    if (!top.after && (!best || depth > best.linearized.length)) {
      best = { linearized: stack.slice(0, depth).map((f) => (f.chosen as Event).op), unplaced: top.forced, state: top.state };
    }
    stack.pop();
  }
  if (!best) throw new Error('linearizability: internal error: search failed without a dead end');
  return { kind: 'fail', ...best };
}

/** Builds the time-ordered event list; returns its head sentinel and each operation's call event. */
function buildEventList<Input, Output>(ops: readonly Operation<Input, Output>[]): { head: Event; calls: Event[] } {
  const events: Event[] = [];
  const calls: Event[] = [];
  ops.forEach((op, i) => {
    const call = new Event(true, i, op.call);
    calls.push(call);
    events.push(call);
    if (op.ret !== Infinity) {
      call.match = new Event(false, i, op.ret);
      events.push(call.match);
    }
  });
  // Calls before returns at equal times (see above); the operation index keeps the order stable.
  events.sort((a, b) => a.time - b.time || Number(b.isCall) - Number(a.isCall) || a.op - b.op);
  const head = new Event(true, -1, -Infinity);
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  return { head, calls };
}

/** Removes a call and its return from the list; both keep their links for `relink`. */
function unlink(call: Event): void {
  const parts = call.match ? [call, call.match] : [call];
  for (const e of parts) {
    (e.prev as Event).next = e.next;
    if (e.next) e.next.prev = e.prev;
  }
}

/** Undoes `unlink`, putting the return back before the call (reverse order of removal). */
function relink(call: Event): void {
  const parts = call.match ? [call.match, call] : [call];
  for (const e of parts) {
    (e.prev as Event).next = e;
    if (e.next) e.next.prev = e;
  }
}

/**
 * True when configuration `b` is no better than the searched configuration `a` with the same
 * state: both have linearized the same known operations, and `b` every unknown one `a` has and
 * maybe more. Whatever `b` can still do, `a` can too, since unknown operations have no deadline
 * and may also be left out; so if `a` failed, `b` fails.
 */
function dominated(a: Uint32Array, b: Uint32Array, knownMask: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) {
    const diff = a[i]! ^ b[i]!;
    if ((diff & (knownMask[i]! | a[i]!)) !== 0) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Explanation of a failure.
// ---------------------------------------------------------------------------------------------

/** One line per operation, naming its place in the caller's history so it can be found there. */
function describeOp<State, Input, Output>(
  model: Model<State, Input, Output>,
  where: ReadonlyMap<Operation<Input, Output>, number>,
): (op: Operation<Input, Output>) => string {
  return (op) => {
    const out = op.ret === Infinity ? undefined : op.output;
    const what = model.describe
      ? model.describe(op.input, out)
      : `${JSON.stringify(op.input)} -> ${out === undefined ? '?' : JSON.stringify(out)}`;
    const ret = op.ret === Infinity ? 'unknown' : String(op.ret);
    return `history[${where.get(op) ?? '?'}] client ${op.clientId}: ${what}  [call ${op.call}, ret ${ret}]`;
  };
}

function explain<State, Input, Output>(
  model: Model<State, Input, Output>,
  show: (op: Operation<Input, Output>) => string,
  partition: number,
  ops: readonly Operation<Input, Output>[],
  linearized: readonly Operation<Input, Output>[],
  unplaced: Operation<Input, Output>,
  state: State,
): string {
  const done = new Set(linearized);
  // The operations that could still have gone before the unplaced one returned.
  const pending = ops.filter((op) => !done.has(op) && op !== unplaced && op.call <= unplaced.ret);
  const stateText = model.describeState ? model.describeState(state) : model.hash(state);
  const lines = [
    `partition ${partition} is not linearizable (${ops.length} operations).`,
    `Longest linearizable prefix found (${linearized.length} operations, in linearization order):`,
    ...(linearized.length ? linearized.map((op, i) => `  ${i + 1}. ${show(op)}`) : ['  (none)']),
    `State after it: ${stateText}`,
    `Could not place: ${show(unplaced)}`,
    `  It must take effect by time ${unplaced.ret}, but no order of the operations still open then allows it` +
      (pending.length ? `; they were:` : `, and none were.`),
    ...pending.slice(0, 10).map((op) => `  - ${show(op)}`),
    ...(pending.length > 10 ? [`  … and ${pending.length - 10} more`] : []),
  ];
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// A key-value store: put, get, compare-and-set.
// ---------------------------------------------------------------------------------------------

export type KvInput =
  | { op: 'put'; key: string; value: string }
  | { op: 'get'; key: string }
  /** Sets `value` if the current value is `expected` (null: the key is absent). */
  | { op: 'cas'; key: string; expected: string | null; value: string };

/** put answers `{ ok: true }` (`{ ok: false }`: it definitely did not take effect); get answers `{ value }`; cas answers `{ ok }`. */
export type KvOutput = { ok: boolean } | { value: string | null };

/** Keys absent from the map are unset. Treated as immutable. */
export type KvState = ReadonlyMap<string, string>;

/**
 * A key-value store, checked key by key. A put with an unknown outcome may take effect at any
 * time after its call, or never, whatever output was recorded for it; a get with an unknown
 * outcome is dropped (it constrains nothing).
 */
export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => new Map(),

  step(state, input, output) {
    const current = state.get(input.key) ?? null;
    switch (input.op) {
      case 'get':
        return { ok: output === undefined || ('value' in output && output.value === current), state };
      case 'put':
        // A put known to have failed is a no-op; one that succeeded, or may have, writes.
        if (output !== undefined && 'ok' in output && !output.ok) return { ok: true, state };
        return { ok: output === undefined || 'ok' in output, state: withKey(state, input.key, input.value) };
      case 'cas': {
        const applies = current === input.expected;
        if (output !== undefined && !('ok' in output && output.ok === applies)) return { ok: false, state };
        return { ok: true, state: applies ? withKey(state, input.key, input.value) : state };
      }
    }
  },

  partition(history) {
    const byKey = new Map<string, Operation<KvInput, KvOutput>[]>();
    for (const op of history) {
      const part = byKey.get(op.input.key);
      if (part) part.push(op);
      else byKey.set(op.input.key, [op]);
    }
    return [...byKey.values()];
  },

  hash(state) {
    // Length-prefixed so that no two maps share a hash; the search calls this on every step,
    // and partitions hold one key, so the common case skips the sort.
    let h = '';
    const keys = state.size > 1 ? [...state.keys()].sort() : state.keys();
    for (const k of keys) {
      const v = state.get(k) as string;
      h += `${k.length}:${k}${v.length}:${v}`;
    }
    return h;
  },

  readOnly: (input) => input.op === 'get',

  mayAffect(unknown, next, nextOutput) {
    // A get changes nothing, and a put overwrites (or, failed, is a no-op and commutes).
    if (unknown.op === 'get') return false;
    if (unknown.key === next.key && next.op === 'put') return false;
    // Other keys commute, which only counts when `next` has a known outcome (see Model).
    if (nextOutput === undefined) return true;
    if (unknown.key !== next.key) return false;
    // After the unknown write the value is unknown.value (or unchanged, for a cas that did not
    // apply, which is the same as leaving the write out): a get must read it, a cas that
    // succeeded must have expected it, and one that failed must not have.
    if (next.op === 'get') return 'value' in nextOutput && nextOutput.value === unknown.value;
    return next.op === 'cas' && 'ok' in nextOutput && nextOutput.ok === (next.expected === unknown.value);
  },

  describe(input, output) {
    const q = (v: string | null): string => (v === null ? 'null' : JSON.stringify(v));
    const call =
      input.op === 'get'
        ? `get(${input.key})`
        : input.op === 'put'
          ? `put(${input.key}, ${q(input.value)})`
          : `cas(${input.key}, ${q(input.expected)} -> ${q(input.value)})`;
    let result: string;
    if (output === undefined) result = '?';
    else if ('value' in output) result = q(output.value);
    else result = output.ok ? 'ok' : 'failed';
    return `${call} -> ${result}`;
  },

  describeState(state) {
    if (state.size === 0) return '{} (nothing written)';
    return `{${[...state].map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')}}`;
  },
};

function withKey(state: KvState, key: string, value: string): KvState {
  const next = new Map(state);
  next.set(key, value);
  return next;
}
