// The one way a test waits on a condition (`until`, polling with a deadline)
// and the one way it paces itself (`sleep`, e.g. a load generator). A fixed
// sleep never stands in for a condition: a loaded CI machine would flake it.
import { setTimeout as delay } from 'node:timers/promises';

export interface UntilOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Time between two calls of `fn` (default 20 ms). */
  everyMs?: number;
}

/**
 * Calls `fn` until it returns something truthy and resolves with that value.
 * A call that throws counts as "not yet"; on timeout the error names `what`
 * and the last error thrown, so the failure says what was awaited.
 */
export async function until<T>(
  what: string,
  fn: () => T | Promise<T>,
  { timeoutMs = 10_000, everyMs = 20 }: UntilOptions = {},
): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= end) {
      const why = last === undefined ? '' : `: ${last instanceof Error ? last.message : String(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await delay(everyMs);
  }
}

/** Waits `ms` milliseconds: only for pacing, never to wait for a condition (use `until`). */
export function sleep(ms: number): Promise<void> {
  return delay(ms);
}
