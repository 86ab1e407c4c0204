// --health-start-interval: while a container is starting within its start
// period, checks run every start interval; after it (or once healthy), every
// interval. A fake clock and a fake exec count the probes.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HealthMonitor, mergeHealthcheck, type HealthExec } from '../../../agent/runtime/index.js';
import { FakeClock } from './fake-health-clock.js';

/** Probes answer with the next code (then 0); `at` records when each ran. */
function exec(codes: number[], at: number[], clock: FakeClock): HealthExec {
  return {
    exec: () => {
      at.push(clock.now());
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      stdout.end();
      stderr.end();
      return { stdout, stderr, exit: Promise.resolve(codes.shift() ?? 0), kill: () => undefined };
    },
  };
}

const cfg = { test: ['CMD', 'check'], intervalMs: 10_000, timeoutMs: 1000, retries: 3, startPeriodMs: 5000, startIntervalMs: 1000 };

describe('health start interval', () => {
  it('probes every start interval while starting in the start period, then every interval', async () => {
    const clock = new FakeClock();
    const at: number[] = [];
    const m = new HealthMonitor(exec([1, 1, 1, 1, 1, 1, 1], at, clock), 'tss-h', cfg, () => undefined, clock);
    m.start();
    await clock.advance(30_000);
    // 1..5 s within the start period (failures that do not count), then the interval from the probe at 5 s.
    expect(at).toEqual([1000, 2000, 3000, 4000, 5000, 15_000, 25_000]);
    m.stop();
  });

  it('once healthy, the interval applies even within the start period', async () => {
    const clock = new FakeClock();
    const at: number[] = [];
    const seen: string[] = [];
    const m = new HealthMonitor(exec([1, 0], at, clock), 'tss-h', cfg, (s) => seen.push(s), clock);
    m.start();
    await clock.advance(13_000);
    expect(at).toEqual([1000, 2000, 12_000]);
    expect(seen).toEqual(['starting', 'healthy']);
    m.stop();
  });

  it("without a start interval the interval applies from the start; the service's wins over the image's", async () => {
    const clock = new FakeClock();
    const at: number[] = [];
    const m = new HealthMonitor(exec([1, 1], at, clock), 'tss-h', { ...cfg, startIntervalMs: 0 }, () => undefined, clock);
    m.start();
    await clock.advance(20_000);
    expect(at).toEqual([10_000, 20_000]);
    m.stop();
    const none = { test: [], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, startIntervalMs: 0 };
    expect(mergeHealthcheck({ ...none, startIntervalMs: 500 }, cfg)?.startIntervalMs).toBe(500);
    expect(mergeHealthcheck(none, cfg)?.startIntervalMs).toBe(1000);
  });
});
