// The one reconciliation loop of the manager's controllers (allocator, scheduler,
// orchestrator): store events kick it, a short gather lets a burst of events
// make one pass, one pass runs at a time, a pass that leaves work or fails runs
// again, and every delay comes from an injected clock so tests drive it directly.
import type pino from 'pino';

/** Time as a controller sees it; tests inject one they move by hand (test/lib/clock.ts). */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** What to do after a failed pass: `quiet` retries after the pause without a warning (an expected race); `now` retries at once. */
export type FailureAction = 'warn' | 'quiet' | 'now';

export interface ReconcileLoopOptions {
  /** The controller's name, in the warning a failed pass logs. */
  name: string;
  log: pino.Logger;
  clock?: Clock;
  /** How long a kick waits for more events before the pass starts (ms). */
  gatherMs?: number;
  /** Pause after a failed pass before the next (ms). */
  retryMs?: number;
  /** One pass over what changed. Resolves true when work is left over (a conflict, a chunk limit): another pass follows. */
  pass: () => Promise<boolean | void>;
  /** How a failed pass is handled (default: warn, retry after retryMs). */
  onError?: (err: unknown) => FailureAction | void;
  /** Called when a timer set with wake() fires, before its pass. */
  onWake?: () => void;
}

export class ReconcileLoop {
  /** Passes started (tests, metrics). */
  passes = 0;
  private readonly clock: Clock;
  private timer: unknown = null;
  private wakeTimer: unknown = null;
  private wakeAt = Infinity;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;

  constructor(private readonly o: ReconcileLoopOptions) {
    this.clock = o.clock ?? systemClock;
  }

  start(): void {
    this.stopped = false;
    this.kick();
  }

  /** Something changed: a pass runs after the gather, or after the running one. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) this.again = true;
    else if (!this.timer) this.schedule(this.o.gatherMs ?? 0);
  }

  /** A pass at clock time `at` (restart delays, update monitors); the earliest asked for wins. */
  wake(at: number): void {
    if (this.stopped || (at >= this.wakeAt && this.wakeTimer)) return;
    if (this.wakeTimer) this.clock.clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = this.clock.setTimeout(
      () => {
        this.wakeTimer = null;
        this.wakeAt = Infinity;
        this.o.onWake?.();
        this.kick();
      },
      Math.min(2 ** 31 - 1, Math.max(1, at - this.clock.now())),
    );
  }

  private schedule(ms: number): void {
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.run();
    }, ms);
  }

  private run(): void {
    if (this.stopped) return;
    this.again = false;
    this.passes++;
    let retryIn = -1;
    this.running = Promise.resolve()
      .then(() => this.o.pass())
      .then(
        (more) => {
          if (more) this.again = true;
        },
        (err: unknown) => {
          const how = this.o.onError?.(err) ?? 'warn';
          if (how === 'warn') this.o.log.warn({ err }, `${this.o.name} pass failed; retrying`);
          retryIn = how === 'now' ? 0 : (this.o.retryMs ?? 50);
        },
      )
      .finally(() => {
        this.running = null;
        if (this.stopped) return;
        if (retryIn >= 0) {
          if (!this.timer) this.schedule(retryIn);
        } else if (this.again) this.kick();
      });
  }

  /**
   * Resolves once no pass is running or due, running a due one at once instead of waiting out
   * its gather or retry pause (tests, benchmarks). A wake() set for later is not due.
   */
  async idle(): Promise<void> {
    for (;;) {
      if (this.running) await this.running;
      else if (this.timer && !this.stopped) {
        this.clock.clearTimeout(this.timer);
        this.timer = null;
        this.run();
      } else return;
    }
  }

  /** Whether a pass runs or is due (a wake set for later does not count). */
  get due(): boolean {
    return !!(this.timer || this.running);
  }

  /** Whether a pass runs or is due, or a wake is set. */
  get busy(): boolean {
    return !!(this.timer || this.wakeTimer || this.running);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    if (this.wakeTimer) this.clock.clearTimeout(this.wakeTimer);
    this.timer = null;
    this.wakeTimer = null;
    this.wakeAt = Infinity;
    await this.running?.catch(() => undefined);
  }
}
