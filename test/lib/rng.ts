// Seeded, deterministic pseudo-random numbers for tests and the cluster simulation:
// xoshiro128** (128-bit state, period 2^128 - 1) seeded through splitmix32, so a seed
// is a one-line replay. Not for cryptography.

const TWO_32 = 0x1_0000_0000;
const TWO_53 = 0x20_0000_0000_0000;

/** splitmix32: spreads a simple seed over well-mixed words, as xoshiro's authors advise. */
function splitmix32(x: number): [number, number] {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [x, (z ^ (z >>> 16)) >>> 0];
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** Any finite number is a valid seed; integers up to 2^53 are distinct seeds. */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng seed must be a finite number (got ${seed})`);
    // Fold the high bits in as well, so seeds such as Date.now() or 2^40 + 1 stay distinct.
    const whole = Math.trunc(Math.abs(seed));
    let x = (whole >>> 0) ^ Math.imul((whole / TWO_32) >>> 0, 0x27d4eb2d) ^ (seed < 0 ? 0x5bd1e995 : 0);
    let w: number;
    [x, w] = splitmix32(x);
    this.s0 = w;
    [x, w] = splitmix32(x);
    this.s1 = w;
    [x, w] = splitmix32(x);
    this.s2 = w;
    [, w] = splitmix32(x);
    this.s3 = w;
    // The all-zero state is xoshiro's one fixed point; splitmix32 cannot produce it from
    // four consecutive outputs, but guard anyway since the cost is nil.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  uint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform float in [0, 1) with the full 53 bits of precision. */
  next(): number {
    const hi = this.uint32() >>> 5; // 27 bits
    const lo = this.uint32() >>> 6; // 26 bits
    return (hi * 0x400_0000 + lo) / TWO_53;
  }

  /** A uniform integer in [0, n), without modulo bias; n is an integer in [1, 2^32]. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_32) {
      throw new RangeError(`Rng.int(n) needs a whole number 1 ≤ n ≤ 2^32 (got ${n})`);
    }
    // Reject the top sliver of the 32-bit range that does not divide evenly by n.
    const limit = TWO_32 - (TWO_32 % n);
    for (;;) {
      const x = this.uint32();
      if (x < limit) return x % n;
    }
  }

  /** True with probability p (p ≤ 0 never, p ≥ 1 always). */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(a: readonly T[]): T {
    if (a.length === 0) throw new RangeError('Rng.pick needs a non-empty array');
    return a[this.int(a.length)] as T;
  }

  /** Shuffles in place (Fisher–Yates) and returns the same array. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i] as T;
      a[i] = a[j] as T;
      a[j] = t;
    }
    return a;
  }

  /** An independent generator derived from this one, so a sub-system's draws do not shift the parent's. */
  fork(): Rng {
    return new Rng(this.uint32() * 0x20_0000 + (this.uint32() >>> 11));
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
