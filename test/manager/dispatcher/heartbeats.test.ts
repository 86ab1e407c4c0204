import { describe, expect, it } from 'vitest';
import { HeartbeatTracker } from '../../../manager/dispatcher/heartbeats.js';

describe('heartbeat tracker', () => {
  const cfg = { periodMs: 1000, graceMultiplier: 3 };

  it('a node that keeps beating is never reported', () => {
    const t = new HeartbeatTracker(cfg);
    for (let now = 0; now < 20_000; now += 1000) {
      t.beat('n1', now);
      expect(t.expired(now)).toEqual([]);
    }
  });

  it('a node silent for the grace period is reported DOWN once, and comes back with its next beat', () => {
    const t = new HeartbeatTracker(cfg);
    t.beat('n1', 0);
    expect(t.expired(2999)).toEqual([]);
    expect(t.expired(3000)).toEqual(['n1']);
    expect(t.expired(10_000)).toEqual([]);
    expect(t.isDown('n1')).toBe(true);
    expect(t.beat('n1', 10_500)).toBe(true);
    expect(t.isDown('n1')).toBe(false);
  });

  it('a new leader gives every node a fresh grace period instead of judging by old deadlines', () => {
    const t = new HeartbeatTracker(cfg);
    t.beat('n1', 0);
    t.beat('n2', 0);
    // The old leader died at 1000; the new one takes over at 5000, long after the old deadlines.
    t.reset(['n1', 'n2'], 5000);
    expect(t.expired(5000)).toEqual([]);
    t.beat('n1', 6000);
    expect(t.expired(8000)).toEqual(['n2']);
  });

  it('tells the caller when to look again', () => {
    const t = new HeartbeatTracker(cfg);
    expect(t.nextDeadline(0)).toBeNull();
    t.beat('n1', 0);
    t.beat('n2', 1000);
    expect(t.nextDeadline(500)).toBe(2500);
    t.forget('n1');
    expect(t.nextDeadline(500)).toBe(3500);
  });

  it('a longer period (swarm update --dispatcher-heartbeat) gives live nodes the new grace at once; a shorter one waits for their next beat', () => {
    const t = new HeartbeatTracker(cfg);
    t.beat('n1', 0);
    t.beat('n2', 0);
    expect(t.expired(3000)).toEqual(['n1', 'n2']);
    t.beat('n1', 2000);
    // n1 still beats every second until its next ack: it must not be DOWN before it learns the new period.
    t.configure({ periodMs: 10_000, graceMultiplier: 3 });
    t.extend(2500);
    expect(t.expired(4999)).toEqual([]);
    expect(t.expired(32_499)).toEqual([]);
    expect(t.expired(32_500)).toEqual(['n1']);
    // A DOWN node stays DOWN until it beats.
    expect(t.isDown('n2')).toBe(true);
    t.configure(cfg);
    t.extend(40_000);
    t.beat('n1', 40_000);
    expect(t.expired(43_000)).toEqual(['n1']);
  });
});
