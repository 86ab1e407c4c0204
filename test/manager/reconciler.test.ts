// The one reconciliation loop the allocator, scheduler and orchestrator share,
// driven by a manual clock: kicks gather into one pass, one pass at a time,
// leftover work and failures run again, wakes fire at their time, stop ends all.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ReconcileLoop } from '../../manager/reconciler.js';
import { FakeClock } from '../lib/clock.js';

const silent = pino({ level: 'silent' });

function loop(
  pass: () => Promise<boolean | void>,
  o: { onError?: (e: unknown) => 'warn' | 'quiet' | 'now'; onWake?: () => void; log?: pino.Logger } = {},
) {
  const clock = new FakeClock();
  const l = new ReconcileLoop({
    name: 'test',
    log: o.log ?? silent,
    clock,
    gatherMs: 5,
    retryMs: 50,
    pass,
    onError: o.onError,
    onWake: o.onWake,
  });
  return { l, clock };
}

describe('ReconcileLoop', () => {
  it('kicks within the gather time make one pass, run when the clock reaches it', async () => {
    let n = 0;
    const { l, clock } = loop(async () => void n++);
    l.start();
    l.kick();
    l.kick();
    expect(n).toBe(0);
    clock.advance(4);
    expect(n).toBe(0);
    clock.advance(1);
    await l.idle();
    expect(n).toBe(1);
    expect(l.due).toBe(false);
  });

  it('a kick during a pass runs one more pass after it, never two at once', async () => {
    let inside = 0;
    let most = 0;
    let n = 0;
    let release: () => void = () => undefined;
    const { l } = loop(async () => {
      inside++;
      most = Math.max(most, inside);
      n++;
      if (n === 1) await new Promise<void>((r) => (release = r));
      inside--;
    });
    l.start();
    const settled = l.idle();
    await Promise.resolve();
    l.kick();
    l.kick();
    release();
    await settled;
    await l.idle();
    expect(n).toBe(2);
    expect(most).toBe(1);
  });

  it('a pass that leaves work runs again; a failed one is retried after the pause, with a warning unless quiet', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(s) });
    const results: Array<'more' | 'fail' | 'quiet' | 'done'> = ['more', 'fail', 'quiet', 'done'];
    let n = 0;
    const { l, clock } = loop(
      async () => {
        const r = results[n++];
        if (r === 'fail') throw new Error('boom');
        if (r === 'quiet') throw Object.assign(new Error('conflict'), { quiet: true });
        return r === 'more';
      },
      { log, onError: (e) => ((e as { quiet?: boolean }).quiet ? 'quiet' : 'warn') },
    );
    l.start();
    clock.advance(5);
    await new Promise((r) => setImmediate(r));
    // 'more' ran and asked again; the gather timer of the next pass is due.
    expect(n).toBe(1);
    clock.advance(5);
    await new Promise((r) => setImmediate(r));
    expect(n).toBe(2); // failed: nothing until the retry pause has passed
    clock.advance(49);
    await new Promise((r) => setImmediate(r));
    expect(n).toBe(2);
    clock.advance(1);
    await new Promise((r) => setImmediate(r));
    expect(n).toBe(3);
    await l.idle();
    expect(n).toBe(4);
    expect(lines.filter((x) => x.includes('test pass failed'))).toHaveLength(1);
  });

  it('wake() runs a pass at its time, the earliest asked for wins, and onWake comes first', async () => {
    const seen: string[] = [];
    const { l, clock } = loop(async () => void seen.push(`pass@${clock.now() - t0}`), { onWake: () => seen.push('wake') });
    const t0 = clock.now();
    l.start();
    await l.idle();
    seen.length = 0;
    l.wake(t0 + 1000);
    l.wake(t0 + 300);
    l.wake(t0 + 2000);
    clock.advance(299);
    await l.idle();
    expect(seen).toEqual([]);
    clock.advance(1);
    clock.advance(5);
    await l.idle();
    expect(seen).toEqual(['wake', 'pass@305']);
    expect(l.busy).toBe(false);
  });

  it('stop() clears every timer and waits for the running pass; kicks after it do nothing', async () => {
    let n = 0;
    const { l, clock } = loop(async () => void n++);
    l.start();
    l.wake(clock.now() + 1000);
    expect(clock.pending).toBe(2);
    await l.stop();
    expect(clock.pending).toBe(0);
    l.kick();
    l.wake(clock.now() + 10);
    expect(clock.pending).toBe(0);
    expect(l.busy).toBe(false);
    expect(n).toBe(0);
  });
});
