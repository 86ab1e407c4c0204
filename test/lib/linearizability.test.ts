// Tests for the linearizability checker and the seeded Rng: hand-written histories with known
// verdicts (key-value store and a counter), randomized histories from real executions and
// corruptions of them, cross-checks against brute force, and a speed sanity check.
import { describe, expect, it } from 'vitest';
import { type KvInput, type KvOutput, type KvState, type Model, type Operation, checkLinearizable, kvModel } from './linearizability.js';
import { Rng } from './rng.js';

type KvOp = Operation<KvInput, KvOutput>;

const put = (clientId: number, key: string, value: string, call: number, ret: number): KvOp => ({
  clientId,
  input: { op: 'put', key, value },
  call,
  output: { ok: true },
  ret,
});
const get = (clientId: number, key: string, value: string | null, call: number, ret: number): KvOp => ({
  clientId,
  input: { op: 'get', key },
  call,
  output: { value },
  ret,
});
const cas = (clientId: number, key: string, expected: string | null, value: string, ok: boolean, call: number, ret: number): KvOp => ({
  clientId,
  input: { op: 'cas', key, expected, value },
  call,
  output: { ok },
  ret,
});

describe('checkLinearizable with the key-value model', () => {
  it('accepts a sequential history', () => {
    const h = [get(0, 'x', null, 0, 1), put(0, 'x', 'a', 2, 3), get(1, 'x', 'a', 4, 5), put(1, 'x', 'b', 6, 7), get(0, 'x', 'b', 8, 9)];
    expect(checkLinearizable(kvModel, h)).toEqual({ ok: true });
  });

  it('accepts an empty history', () => {
    expect(checkLinearizable(kvModel, [])).toEqual({ ok: true });
  });

  it('accepts overlapping puts and gets that admit an order', () => {
    // put a and put b overlap; the reads pin the order b then a, which is consistent with the
    // intervals; the read of b overlaps put a and may go before it.
    const h = [
      put(0, 'x', 'a', 0, 10),
      put(1, 'x', 'b', 2, 8),
      get(2, 'x', 'b', 3, 12),
      get(3, 'x', 'a', 11, 14),
      get(2, 'x', 'a', 13, 15),
    ];
    expect(checkLinearizable(kvModel, h)).toEqual({ ok: true });
  });

  it('treats a call at the same time as a return as concurrent with it', () => {
    // The simulator's clock ticks in whole milliseconds; both orders are possible within one.
    const h = [put(0, 'x', 'a', 0, 5), put(0, 'x', 'b', 6, 10), get(1, 'x', 'a', 10, 12)];
    expect(checkLinearizable(kvModel, h)).toEqual({ ok: true });
  });

  it('rejects a stale read after a completed write and names the read', () => {
    const h = [put(0, 'x', 'a', 0, 10), put(1, 'x', 'b', 20, 30), get(2, 'x', 'a', 40, 50)];
    const res = checkLinearizable(kvModel, h);
    expect(res.ok).toBe(false);
    if (res.ok !== false) return;
    expect(res.partition).toBe(0);
    expect(res.unplaced).toBe(h[2]);
    expect(res.linearized).toEqual([h[0], h[1]]);
    expect(res.explanation).toBe(
      [
        'partition 0 is not linearizable (3 operations).',
        'Longest linearizable prefix found (2 operations, in linearization order):',
        '  1. history[0] client 0: put(x, "a") -> ok  [call 0, ret 10]',
        '  2. history[1] client 1: put(x, "b") -> ok  [call 20, ret 30]',
        'State after it: {x: "b"}',
        'Could not place: history[2] client 2: get(x) -> "a"  [call 40, ret 50]',
        '  It must take effect by time 50, but no order of the operations still open then allows it, and none were.',
      ].join('\n'),
    );
  });

  it('rejects a read of a value never written', () => {
    const h = [put(0, 'x', 'a', 0, 10), get(1, 'x', 'zzz', 5, 15)];
    const res = checkLinearizable(kvModel, h);
    expect(res.ok).toBe(false);
    if (res.ok !== false) return;
    expect(res.unplaced).toBe(h[1]);
    expect(res.explanation).toContain('Could not place: history[1] client 1: get(x) -> "zzz"  [call 5, ret 15]');
    expect(res.linearized).toEqual([h[0]]);
    expect(res.explanation).toContain('State after it: {x: "a"}');
  });

  it('rejects a read of nothing after a completed write', () => {
    const h = [put(0, 'x', 'a', 0, 10), get(1, 'x', null, 11, 15)];
    const res = checkLinearizable(kvModel, h);
    expect(res.ok === false && res.unplaced === h[1]).toBe(true);
  });

  it('accepts an unknown-outcome put that a later read observes', () => {
    const h = [put(0, 'x', 'a', 0, 5), put(1, 'x', 'b', 10, Infinity), get(2, 'x', 'a', 20, 25), get(2, 'x', 'b', 100, 110)];
    expect(checkLinearizable(kvModel, h)).toEqual({ ok: true });
  });

  it('accepts an unknown-outcome put that nobody observes, whatever output was recorded for it', () => {
    const h: KvOp[] = [
      put(0, 'x', 'a', 0, 5),
      { clientId: 1, input: { op: 'put', key: 'x', value: 'b' }, call: 10, output: { value: 'garbage' }, ret: Infinity },
      get(2, 'x', 'a', 20, 25),
      get(2, 'x', 'a', 1000, 1010),
    ];
    expect(checkLinearizable(kvModel, h)).toEqual({ ok: true });
  });

  it('does not let an unknown-outcome put take effect before its call', () => {
    const h = [get(0, 'x', 'b', 0, 5), put(1, 'x', 'b', 10, Infinity)];
    const res = checkLinearizable(kvModel, h);
    expect(res.ok === false && res.unplaced === h[0]).toBe(true);
  });

  it('drops a get with an unknown outcome, since it constrains nothing', () => {
    const h = [put(0, 'x', 'a', 0, 5), get(1, 'x', 'never-written', 10, Infinity), get(2, 'x', 'a', 20, 25)];
    expect(checkLinearizable(kvModel, h)).toEqual({ ok: true });
  });

  it('places each of many pending unknown-outcome puts wherever a read needs it', () => {
    const h: KvOp[] = [];
    for (let i = 0; i < 30; i++) h.push(put(i, 'x', `u${i}`, i, Infinity));
    const reads = (...vs: string[]): KvOp[] => vs.map((v, i) => get(30, 'x', v, 40 + 2 * i, 41 + 2 * i));
    expect(checkLinearizable(kvModel, [...h, ...reads('u17', 'u5', 'u29', 'u3')])).toEqual({ ok: true });
    // Each put takes effect at most once: u5 cannot come back after u29 replaced it.
    const twice = [...h, ...reads('u17', 'u5', 'u29', 'u5')];
    const res = checkLinearizable(kvModel, twice);
    expect(res.ok === false && res.unplaced === twice[33]).toBe(true);
    // u31 is written only after this read returned.
    const late = [get(0, 'x', 'u31', 0, 10), put(1, 'x', 'u31', 11, Infinity)];
    expect(checkLinearizable(kvModel, late).ok).toBe(false);
  });

  it('checks compare-and-set, including one with an unknown outcome', () => {
    const good = [
      put(0, 'x', 'a', 0, 5),
      cas(1, 'x', 'a', 'b', true, 10, 15),
      cas(2, 'x', 'a', 'c', false, 20, 25),
      get(0, 'x', 'b', 30, 35),
    ];
    expect(checkLinearizable(kvModel, good)).toEqual({ ok: true });
    const bad = [put(0, 'x', 'a', 0, 5), cas(1, 'x', 'b', 'c', true, 10, 15)];
    const res = checkLinearizable(kvModel, bad);
    expect(res.ok === false && res.unplaced === bad[1]).toBe(true);
    const unknown = [put(0, 'x', 'a', 0, 5), cas(1, 'x', 'a', 'b', false, 10, Infinity), get(2, 'x', 'b', 20, 25)];
    expect(checkLinearizable(kvModel, unknown)).toEqual({ ok: true });
    // Operations still open when the unplaced one had to return are listed: they were tried.
    const open = [get(0, 'x', 'c', 0, 10), cas(1, 'x', 'q', 'r', true, 0, 20)];
    const res2 = checkLinearizable(kvModel, open);
    expect(res2.ok === false && res2.unplaced === open[0] && res2.linearized.length === 0).toBe(true);
    expect(res2.ok === false && res2.explanation).toContain(
      [
        'State after it: {} (nothing written)',
        'Could not place: history[0] client 0: get(x) -> "c"  [call 0, ret 10]',
        '  It must take effect by time 10, but no order of the operations still open then allows it; they were:',
        '  - history[1] client 1: cas(x, "q" -> "r") -> ok  [call 0, ret 20]',
      ].join('\n'),
    );
  });

  it('reports the partition of the one bad key among two', () => {
    const h = [
      put(0, 'x', 'a', 0, 10),
      put(1, 'y', 'p', 1, 11),
      get(2, 'x', 'a', 12, 20),
      put(0, 'y', 'q', 21, 30),
      get(1, 'y', 'p', 31, 40), // stale: q was written and acknowledged before this call
      get(2, 'x', 'a', 41, 50),
    ];
    const res = checkLinearizable(kvModel, h);
    expect(res.ok).toBe(false);
    if (res.ok !== false) return;
    expect(res.partition).toBe(1); // keys are partitioned in order of first use: x, then y
    expect(res.unplaced).toBe(h[4]);
    expect(res.linearized).toEqual([h[1], h[3]]);
    expect(res.explanation).toContain('partition 1 is not linearizable (3 operations).');
    expect(res.explanation).toContain('Could not place: history[4] client 1: get(y) -> "p"  [call 31, ret 40]');
  });

  it('answers unknown when the step budget runs out', () => {
    const h = [put(0, 'x', 'a', 0, 10), put(1, 'x', 'b', 1, 11), get(2, 'x', 'b', 12, 20)];
    const res = checkLinearizable(kvModel, h, { maxSteps: 1 });
    expect(res).toEqual({ ok: 'unknown', partition: 0, reason: expect.stringContaining('within 1 model steps') });
  });

  it('rejects a malformed history with a message naming the operation', () => {
    expect(() => checkLinearizable(kvModel, [put(0, 'x', 'a', 10, 5)])).toThrow(
      'history[0].ret must be ≥ call (10) or Infinity for an unknown outcome (got 5)',
    );
    expect(() => checkLinearizable(kvModel, [], { maxSteps: 0 })).toThrow('maxSteps must be a whole number ≥ 1 (got 0)');
  });
});

describe('checkLinearizable with another model', () => {
  // A counter without partitions or hints, to show the checker knows nothing of keys or
  // registers. Additions commute with each other and doubling does not, which exercises how
  // the search orders unknown-outcome operations.
  type CIn = { op: 'add'; n: number } | { op: 'double' } | { op: 'read' };
  type COut = { value: number } | { ok: true };
  const counter: Model<number, CIn, COut> = {
    init: () => 0,
    step(s, i, o) {
      if (i.op === 'add') return { ok: true, state: s + i.n };
      if (i.op === 'double') return { ok: true, state: 2 * s };
      return { ok: o === undefined || ('value' in o && o.value === s), state: s };
    },
    hash: (s) => String(s),
  };
  type COp = Operation<CIn, COut>;
  const add = (c: number, call: number, ret: number, n = 1): COp => ({
    clientId: c,
    input: { op: 'add', n },
    output: { ok: true },
    call,
    ret,
  });
  const read = (c: number, value: number, call: number, ret: number): COp => ({
    clientId: c,
    input: { op: 'read' },
    output: { value },
    call,
    ret,
  });

  it('accepts reads explained by unknown-outcome additions and rejects one that is not', () => {
    // Both unknown additions are needed before the read of 3, in either order.
    const base = [add(0, 0, Infinity), add(1, 1, Infinity), add(2, 2, 5), read(3, 1, 6, 7), read(3, 3, 8, 9)];
    expect(checkLinearizable(counter, base)).toEqual({ ok: true });
    const res = checkLinearizable(counter, [...base, read(3, 4, 10, 11)]);
    expect(res.ok).toBe(false);
    if (res.ok !== false) return;
    // Without describe hooks the explanation falls back to JSON and the state's hash.
    expect(res.explanation).toContain('Could not place: history[5] client 3: {"op":"read"} -> {"value":4}  [call 10, ret 11]');
    expect(res.explanation).toContain('State after it: 3');
  });

  it('agrees with brute force on small random counter histories', () => {
    const rng = new Rng(11);
    let acc = 0;
    let rej = 0;
    for (let round = 0; round < 3000; round++) {
      const h: COp[] = [];
      for (let c = 0, n = 1 + rng.int(8); c < n; c++) {
        const call = rng.int(15);
        const ret = rng.chance(0.4) ? Infinity : call + rng.int(8);
        const r = rng.int(4);
        if (r === 0) h.push(add(c, call, ret, 1 + rng.int(2)));
        else if (r === 1) h.push({ clientId: c, input: { op: 'double' }, output: { ok: true }, call, ret });
        else h.push(read(c, rng.int(7), call, ret));
      }
      const expected = bruteForce(counter, h);
      expect(checkLinearizable(counter, h).ok, JSON.stringify(h)).toBe(expected);
      if (expected) acc++;
      else rej++;
    }
    expect(acc).toBeGreaterThan(500);
    expect(rej).toBeGreaterThan(500);
  });
});

// ---------------------------------------------------------------------------------------------
// Randomized histories.
// ---------------------------------------------------------------------------------------------

interface GenOptions {
  clients: number;
  opsPerClient: number;
  keys: number;
  /** Chance that an operation's outcome is unknown to its client. */
  unknownP: number;
  casP: number;
}

/**
 * A history produced by a real sequential execution: each operation gets a linearization point
 * inside its interval (or, with an unknown outcome, anywhere after its call, or never), and the
 * outputs come from running the operations in point order.
 */
function generate(rng: Rng, o: GenOptions): KvOp[] {
  interface Planned {
    op: KvOp;
    point: number; // Infinity: never takes effect
    kind: 'put' | 'get' | 'cas';
  }
  const planned: Planned[] = [];
  for (let c = 0; c < o.clients; c++) {
    let t = rng.int(10);
    for (let k = 0; k < o.opsPerClient; k++) {
      const key = `k${rng.int(o.keys)}`;
      const r = rng.next();
      const kind = r < o.casP ? 'cas' : r < o.casP + (1 - o.casP) / 2 ? 'put' : 'get';
      const dur = 1 + rng.int(30);
      const unknown = rng.chance(o.unknownP);
      let point = t + rng.next() * dur;
      if (unknown) point = rng.chance(0.5) ? t + rng.next() * dur * 4 : Infinity;
      const op: KvOp = { clientId: c, input: { op: 'get', key }, call: t, output: { value: null }, ret: unknown ? Infinity : t + dur };
      planned.push({ op, point, kind });
      // A client that timed out moves on as if its call had taken `dur`.
      t += dur + rng.int(10);
    }
  }
  let seq = 0;
  const state = new Map<string, string>();
  const byPoint = [...planned].sort((a, b) => (a.point === b.point ? 0 : a.point - b.point));
  for (const p of byPoint) {
    const key = p.op.input.key;
    const current = state.get(key) ?? null;
    const effective = p.point !== Infinity;
    if (p.kind === 'put') {
      const value = `v${++seq}`;
      p.op.input = { op: 'put', key, value };
      p.op.output = { ok: true };
      if (effective) state.set(key, value);
      if (p.op.ret === Infinity && rng.chance(0.3)) p.op.output = { value: 'ignored' }; // irrelevant when unknown
    } else if (p.kind === 'cas') {
      const value = `v${++seq}`;
      const expected = rng.chance(0.6) ? current : rng.chance(0.5) ? null : `v${rng.int(seq) + 1}`;
      p.op.input = { op: 'cas', key, expected, value };
      const applies = effective && expected === current;
      p.op.output = { ok: applies };
      if (applies) state.set(key, value);
    } else {
      p.op.output = { value: effective ? current : 'unknown-read' };
    }
  }
  return planned.map((p) => p.op);
}

/** Changes one completed get to a value it cannot have read; returns that get, or undefined if none. */
function mutate(rng: Rng, h: KvOp[], kinds: Map<string, number>): KvOp | undefined {
  const gets = h.filter((op) => op.input.op === 'get' && op.ret !== Infinity);
  if (gets.length === 0) return undefined;
  const g = rng.pick(gets);
  const key = g.input.key;
  const seen = g.output as { value: string | null };
  const puts = h.filter((op): op is KvOp & { input: { op: 'put'; value: string } } => op.input.op === 'put' && op.input.key === key);
  const options: [string, string][] = [['never written', `never-${rng.int(1000)}`]];
  // A value written only by a put called after the read returned: a read from the future.
  for (const p of puts) if (p.call > g.ret) options.push(['future', p.input.value]);
  // A value overwritten before the read began: put A returned, then put B ran entirely, then the read.
  for (const a of puts) {
    if (a.ret === Infinity || a.input.value === seen.value) continue;
    if (puts.some((b) => b.ret !== Infinity && b.call > a.ret && b.ret < g.call)) options.push(['stale', a.input.value]);
  }
  const [kind, value] = rng.pick(options);
  kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  g.output = { value };
  return g;
}

/**
 * Exhaustive reference: tries every order that respects real time, applying the model's plain
 * step function and nothing else; operations with unknown outcomes may be left out.
 */
function bruteForce<S, I, O>(model: Model<S, I, O>, h: readonly Operation<I, O>[]): boolean {
  const go = (state: S, left: readonly Operation<I, O>[]): boolean => {
    if (left.every((op) => op.ret === Infinity)) return true;
    for (const o of left) {
      if (left.some((p) => p.ret < o.call)) continue; // p returned before o was called: p goes first
      const r = model.step(state, o.input, o.ret === Infinity ? undefined : o.output);
      if (
        r.ok &&
        go(
          r.state,
          left.filter((x) => x !== o),
        )
      )
        return true;
    }
    return false;
  };
  return go(model.init(), h);
}

/** The explanation's prefix must itself be a valid sequential run respecting real time. */
function assertValidPrefix(prefix: readonly KvOp[], all: readonly KvOp[]): void {
  let state = kvModel.init();
  for (let i = 0; i < prefix.length; i++) {
    const op = prefix[i] as KvOp;
    const r = kvModel.step(state, op.input, op.ret === Infinity ? undefined : op.output);
    expect(r.ok).toBe(true);
    state = r.state;
    // Nothing outside the prefix may have returned before this operation was called.
    const placed = new Set(prefix.slice(0, i + 1));
    expect(all.filter((p) => p.input.key === op.input.key && !placed.has(p) && p.ret < op.call)).toEqual([]);
  }
}

describe('checkLinearizable on randomized histories', () => {
  it('accepts every history from a real execution and rejects each after one read is corrupted', () => {
    const rng = new Rng(20240601);
    const kinds = new Map<string, number>();
    let mutated = 0;
    for (let round = 0; round < 400; round++) {
      const o: GenOptions = {
        clients: 1 + rng.int(6),
        opsPerClient: 2 + rng.int(15),
        keys: 1 + rng.int(3),
        unknownP: rng.chance(0.5) ? 0 : rng.next() * 0.3,
        casP: rng.chance(0.5) ? 0 : 0.2,
      };
      const h = generate(rng, o);
      expect(checkLinearizable(kvModel, h), `round ${round}`).toEqual({ ok: true });

      const g = mutate(rng, h, kinds);
      if (!g) continue;
      mutated++;
      const res = checkLinearizable(kvModel, h);
      expect(res.ok, `round ${round}`).toBe(false);
      if (res.ok !== false) continue;
      const parts = kvModel.partition?.(h) ?? [];
      expect(res.partition).toBe(parts.findIndex((p) => p.includes(g)));
      assertValidPrefix(res.linearized, h);
    }
    // The run exercised every kind of corruption, many times over.
    expect(mutated).toBeGreaterThan(300);
    for (const k of ['never written', 'future', 'stale']) expect(kinds.get(k) ?? 0, k).toBeGreaterThan(20);
  });

  it('agrees with brute force on small histories with arbitrary outputs', () => {
    const rng = new Rng(7);
    let accepted = 0;
    let rejected = 0;
    for (let round = 0; round < 3000; round++) {
      const h = generate(rng, {
        clients: 1 + rng.int(4),
        opsPerClient: 1 + rng.int(3),
        keys: 1 + rng.int(2),
        unknownP: rng.next() * 0.6,
        casP: rng.next() * 0.5,
      });
      // Perturb outputs at random so that both verdicts occur.
      for (const op of h) {
        if (op.input.op === 'get' && rng.chance(0.25)) op.output = { value: rng.chance(0.5) ? null : `v${1 + rng.int(6)}` };
        if (op.input.op === 'cas' && rng.chance(0.25)) op.output = { ok: rng.chance(0.5) };
      }
      const expected = bruteForce(kvModel, h);
      const res = checkLinearizable(kvModel, h);
      expect(res.ok, `round ${round}: ${JSON.stringify(h)}`).toBe(expected);
      if (expected) accepted++;
      else rejected++;
    }
    expect(accepted).toBeGreaterThan(200);
    expect(rejected).toBeGreaterThan(200);
  });

  it('agrees with brute force on arbitrary small histories with repeated values and unknown outcomes', () => {
    const bareKv: Model<KvState, KvInput, KvOutput> = { init: kvModel.init, step: kvModel.step, hash: kvModel.hash };
    const rng = new Rng(1007);
    const vals = ['a', 'b', 'c'];
    let acc = 0;
    let rej = 0;
    for (let round = 0; round < 4000; round++) {
      const n = 1 + rng.int(9);
      const h: KvOp[] = [];
      for (let i = 0; i < n; i++) {
        const call = rng.int(20);
        const ret = rng.chance(0.3) ? Infinity : call + rng.int(10);
        const key = rng.chance(0.8) ? 'x' : 'y';
        const r = rng.int(3);
        const v = (): string | null => (rng.chance(0.2) ? null : rng.pick(vals));
        if (r === 0) h.push({ clientId: i, input: { op: 'put', key, value: rng.pick(vals) }, call, output: { ok: rng.chance(0.9) }, ret });
        else if (r === 1) h.push({ clientId: i, input: { op: 'get', key }, call, output: { value: v() }, ret });
        else
          h.push({
            clientId: i,
            input: { op: 'cas', key, expected: v(), value: rng.pick(vals) },
            call,
            output: { ok: rng.chance(0.5) },
            ret,
          });
      }
      const expected = bruteForce(kvModel, h);
      expect(checkLinearizable(kvModel, h).ok, JSON.stringify(h)).toBe(expected);
      // The hints and the partitioning only save work: without them the verdict is the same.
      expect(checkLinearizable(bareKv, h).ok, JSON.stringify(h)).toBe(expected);
      if (expected) acc++;
      else rej++;
    }
    expect(acc).toBeGreaterThan(500);
    expect(rej).toBeGreaterThan(500);
  });

  it('copes with many unknown-outcome puts on one key', () => {
    const rng = new Rng(3);
    const h = generate(rng, { clients: 8, opsPerClient: 125, keys: 1, unknownP: 0.3, casP: 0 });
    expect(checkLinearizable(kvModel, h)).toEqual({ ok: true });
    const g = mutate(rng, h, new Map());
    const res = checkLinearizable(kvModel, h);
    expect(g !== undefined && res.ok).toBe(false);
  });

  it('checks 2,000 operations over 20 keys from 8 clients quickly', () => {
    const rng = new Rng(99);
    const h = generate(rng, { clients: 8, opsPerClient: 250, keys: 20, unknownP: 0.05, casP: 0.1 });
    expect(h.length).toBe(2000);
    const t0 = performance.now();
    const res = checkLinearizable(kvModel, h);
    const ms = performance.now() - t0;
    console.log(`linearizability: ${h.length} operations, 20 keys, 8 clients checked in ${ms.toFixed(1)} ms`);
    expect(res).toEqual({ ok: true });
  });
});

describe('Rng', () => {
  it('replays the same sequence for the same seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 100 }, () => a.uint32());
    expect(Array.from({ length: 100 }, () => b.uint32())).toEqual(xs);
    expect(Array.from({ length: 100 }, () => c.uint32())).not.toEqual(xs);
    // Seeds beyond 32 bits are distinct too.
    expect(new Rng(2 ** 40 + 1).uint32()).not.toBe(new Rng(1).uint32());
  });

  it('draws within range and roughly uniformly', () => {
    const rng = new Rng(1);
    const counts = new Array<number>(10).fill(0);
    let outOfRange = 0;
    for (let i = 0; i < 100_000; i++) {
      const x = rng.next();
      if (!(x >= 0 && x < 1)) outOfRange++;
      const k = rng.int(10);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    expect(outOfRange).toBe(0);
    for (const n of counts) expect(Math.abs(n - 10_000)).toBeLessThan(500);
    expect(rng.int(1)).toBe(0);
    expect(rng.int(2 ** 32)).toBeLessThan(2 ** 32);
    let heads = 0;
    for (let i = 0; i < 10_000; i++) if (rng.chance(0.25)) heads++;
    expect(Math.abs(heads - 2500)).toBeLessThan(200);
    expect(rng.chance(0)).toBe(false);
    expect(rng.chance(1)).toBe(true);
  });

  it('picks, shuffles and rejects bad arguments', () => {
    const rng = new Rng(5);
    const a = [1, 2, 3, 4, 5];
    expect(a).toContain(rng.pick(a));
    expect([...rng.shuffle([...a])].sort()).toEqual(a);
    expect(() => rng.pick([])).toThrow('non-empty');
    expect(() => rng.int(0)).toThrow('1 ≤ n ≤ 2^32 (got 0)');
    expect(() => rng.int(2.5)).toThrow('(got 2.5)');
    expect(() => new Rng(Number.NaN)).toThrow('finite');
  });
});
