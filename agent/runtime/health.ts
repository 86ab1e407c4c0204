// Health checks as docker runs them: the test command inside the container
// every interval, with a timeout; "starting" until the first success,
// "healthy" after one, "unhealthy" after `retries` failures in a row (and
// healthy again after a success). Failures within the start period do not count,
// and while a container is starting within it, checks run every start interval
// (when one is set) instead of every interval.
import type { HealthConfig } from '../../proto/gen/objects.js';
import type { ExecHandle } from './types.js';

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface HealthExec {
  exec(id: string, o: { cmd: string[]; signal?: AbortSignal }): ExecHandle;
}

export interface HealthClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
}

const realClock: HealthClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};

export const HEALTH_DEFAULTS = { intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 };

/** The command a health test runs: CMD args as given, CMD-SHELL through /bin/sh -c. */
export function healthCommand(test: readonly string[]): string[] | null {
  if (!test.length || test[0] === 'NONE') return null;
  if (test[0] === 'CMD') return test.slice(1);
  if (test[0] === 'CMD-SHELL') return ['/bin/sh', '-c', test.slice(1).join(' ')];
  return [...test];
}

/**
 * The check a container runs, as Docker merges it: the service's own, with
 * each part it leaves empty (the test, a zero interval, timeout, retries or
 * start period) taken from the image's HEALTHCHECK; null when there is no
 * test or it is NONE (--no-healthcheck).
 */
export function mergeHealthcheck(service: HealthConfig | null | undefined, image: HealthConfig | null | undefined): HealthConfig | null {
  const s = service ?? undefined;
  const i = image ?? undefined;
  const test = s?.test.length ? s.test : (i?.test ?? []);
  if (!test.length || test[0] === 'NONE') return null;
  return {
    test: [...test],
    intervalMs: s?.intervalMs || i?.intervalMs || 0,
    timeoutMs: s?.timeoutMs || i?.timeoutMs || 0,
    retries: s?.retries || i?.retries || 0,
    startPeriodMs: s?.startPeriodMs || i?.startPeriodMs || 0,
    startIntervalMs: s?.startIntervalMs || i?.startIntervalMs || 0,
  };
}

/** The pure part: given one probe result, the next status. */
export class HealthState {
  status: HealthStatus = 'starting';
  private failures = 0;

  constructor(
    private readonly retries: number,
    private readonly startPeriodMs: number,
    private readonly startedAt: number,
  ) {}

  /** Still starting, within the start period: the start interval applies (as Docker's). */
  inStartPeriod(at: number): boolean {
    return this.status === 'starting' && at - this.startedAt < this.startPeriodMs;
  }

  record(ok: boolean, at: number): HealthStatus {
    if (ok) {
      this.failures = 0;
      this.status = 'healthy';
    } else if (!(this.status === 'starting' && at - this.startedAt < this.startPeriodMs)) {
      this.failures++;
      if (this.failures >= this.retries) this.status = 'unhealthy';
    }
    return this.status;
  }
}

export class HealthMonitor {
  private timer: unknown = null;
  private stopped = false;
  private readonly state: HealthState;
  private readonly cmd: string[] | null;
  private readonly intervalMs: number;
  /** 0: the interval, also in the start period. */
  private readonly startIntervalMs: number;
  private readonly timeoutMs: number;
  private ac: AbortController | null = null;

  constructor(
    private readonly runtime: HealthExec,
    private readonly id: string,
    cfg: HealthConfig,
    private readonly onChange: (status: HealthStatus, output: string) => void,
    private readonly clock: HealthClock = realClock,
  ) {
    this.cmd = healthCommand(cfg.test);
    this.intervalMs = cfg.intervalMs || HEALTH_DEFAULTS.intervalMs;
    this.startIntervalMs = cfg.startIntervalMs || 0;
    this.timeoutMs = cfg.timeoutMs || HEALTH_DEFAULTS.timeoutMs;
    this.state = new HealthState(cfg.retries || HEALTH_DEFAULTS.retries, cfg.startPeriodMs || 0, clock.now());
  }

  start(): void {
    if (!this.cmd) return;
    this.onChange('starting', '');
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    const start = this.startIntervalMs > 0 && this.state.inStartPeriod(this.clock.now());
    this.timer = this.clock.setTimeout(() => void this.probe(), start ? this.startIntervalMs : this.intervalMs);
  }

  private async probe(): Promise<void> {
    if (this.stopped || !this.cmd) return;
    this.ac = new AbortController();
    const h = this.runtime.exec(this.id, { cmd: this.cmd, signal: this.ac.signal });
    let output = '';
    const take = (b: Buffer): void => {
      if (output.length < 4096) output += b.toString();
    };
    h.stdout.on('data', take);
    h.stderr.on('data', take);
    const t = this.clock.setTimeout(() => this.ac?.abort(), this.timeoutMs);
    const code = await h.exit;
    this.clock.clearTimeout(t);
    if (this.stopped) return;
    const before = this.state.status;
    const after = this.state.record(code === 0, this.clock.now());
    if (after !== before) this.onChange(after, output);
    // As docker: probes go on when unhealthy, and one success makes it healthy again.
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.ac?.abort();
  }
}
