// The health monitor with a fake clock and a fake exec: docker's rules for
// starting, healthy and unhealthy, the start period and the probe timeout.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HealthMonitor, mergeHealthcheck, type HealthExec } from '../../../agent/runtime/index.js';
import { FakeClock } from './fake-health-clock.js';

/** Each probe answers with the next result: an exit code, or 'hang' (exits only when aborted). */
function fakeExec(results: (number | 'hang')[], calls: string[][]): HealthExec {
  return {
    exec: (_id, o) => {
      calls.push(o.cmd);
      const r = results.shift() ?? 0;
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const exit = new Promise<number>((res) => {
        if (r === 'hang') o.signal?.addEventListener('abort', () => res(137));
        else {
          stdout.end(`probe ${calls.length}\n`);
          res(r);
        }
      });
      return { stdout, stderr, exit, kill: () => undefined };
    },
  };
}

const cfg = (
  over: Partial<{
    test: string[];
    intervalMs: number;
    timeoutMs: number;
    retries: number;
    startPeriodMs: number;
    startIntervalMs: number;
  }> = {},
) => ({
  test: ['CMD-SHELL', 'test -f /ok'],
  intervalMs: 1000,
  timeoutMs: 500,
  retries: 3,
  startPeriodMs: 0,
  startIntervalMs: 0,
  ...over,
});

describe('HealthMonitor', () => {
  it('is starting, then healthy after one success, then unhealthy after `retries` failures in a row', async () => {
    const clock = new FakeClock();
    const calls: string[][] = [];
    const seen: string[] = [];
    const m = new HealthMonitor(fakeExec([0, 1, 1, 0, 1, 1, 1], calls), 'tss-h', cfg(), (s) => seen.push(s), clock);
    m.start();
    expect(seen).toEqual(['starting']);
    await clock.advance(1000);
    expect(seen).toEqual(['starting', 'healthy']);
    await clock.advance(3000); // fail, fail, success: the count starts over
    expect(seen).toEqual(['starting', 'healthy']);
    await clock.advance(2000);
    expect(seen).toEqual(['starting', 'healthy']);
    await clock.advance(1000);
    expect(seen).toEqual(['starting', 'healthy', 'unhealthy']);
    expect(calls[0]).toEqual(['/bin/sh', '-c', 'test -f /ok']);
    m.stop();
    expect(clock.pending).toBe(0);
  });

  it('failures in the start period do not count; a probe that outlives its timeout is a failure', async () => {
    const clock = new FakeClock();
    const seen: string[] = [];
    const m = new HealthMonitor(
      fakeExec([1, 1, 1, 'hang', 'hang'], []),
      'tss-h',
      cfg({ retries: 2, startPeriodMs: 3500 }),
      (s, out) => seen.push(`${s}${out ? `:${out.trim()}` : ''}`),
      clock,
    );
    m.start();
    await clock.advance(3000); // three failures inside the start period
    expect(seen).toEqual(['starting']);
    await clock.advance(1000 + 500); // a hang at 4000, aborted at 4500
    expect(seen).toEqual(['starting']);
    await clock.advance(1500);
    expect(seen).toEqual(['starting', 'unhealthy']);
    m.stop();
  });

  it("NONE disables the check; defaults are docker's", async () => {
    const clock = new FakeClock();
    const calls: string[][] = [];
    const m = new HealthMonitor(fakeExec([], calls), 'tss-h', cfg({ test: ['NONE'] }), () => undefined, clock);
    m.start();
    await clock.advance(100_000);
    expect(calls).toHaveLength(0);
    const d = new HealthMonitor(
      fakeExec([0], calls),
      'tss-h',
      { test: ['CMD', 'true'], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, startIntervalMs: 0 },
      () => undefined,
      clock,
    );
    d.start();
    await clock.advance(29_999);
    expect(calls).toHaveLength(0);
    await clock.advance(1);
    expect(calls).toEqual([['true']]);
    d.stop();
  });
});

describe("the service's health check merged with the image's, as Docker merges them", () => {
  const image = {
    test: ['CMD-SHELL', 'test -f /ok'],
    intervalMs: 30_000,
    timeoutMs: 5_000,
    retries: 3,
    startPeriodMs: 1_000,
    startIntervalMs: 0,
  };
  const none = { test: [], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, startIntervalMs: 0 };

  it("timings without a test run the image's test with the given timings, the rest the image's", () => {
    expect(mergeHealthcheck({ ...none, intervalMs: 200, retries: 7 }, image)).toEqual({ ...image, intervalMs: 200, retries: 7 });
    expect(mergeHealthcheck({ ...none, timeoutMs: 900, startPeriodMs: 50 }, image)).toEqual({
      ...image,
      timeoutMs: 900,
      startPeriodMs: 50,
    });
  });

  it("the service's own test wins, its zero timings taken from the image; no service check is the image's", () => {
    expect(mergeHealthcheck({ ...none, test: ['CMD', 'true'], intervalMs: 100 }, image)).toEqual({
      ...image,
      test: ['CMD', 'true'],
      intervalMs: 100,
    });
    expect(mergeHealthcheck(null, image)).toEqual(image);
    expect(mergeHealthcheck({ ...none, test: ['CMD', 'true'] }, undefined)).toEqual({ ...none, test: ['CMD', 'true'] });
  });

  it('--no-healthcheck (NONE) or no test anywhere is no check', () => {
    expect(mergeHealthcheck({ ...none, test: ['NONE'] }, image)).toBeNull();
    expect(mergeHealthcheck({ ...none, intervalMs: 200 }, undefined)).toBeNull();
    expect(mergeHealthcheck(null, null)).toBeNull();
  });
});
