// Renewal timing: once less than a third (by default) of the validity
// remains, made earlier by a per-node jitter drawn from an injected rand.
import { describe, expect, it } from 'vitest';
import { needsRenewal, renewalTime } from '../../ca/index.js';

const DAY = 24 * 60 * 60 * 1000;
const notBefore = new Date('2026-01-01T00:00:00Z');
const cert = { notBefore, notAfter: new Date(notBefore.getTime() + 90 * DAY) };
const at = (days: number) => notBefore.getTime() + days * DAY;

describe('certificate renewal', () => {
  it('without jitter, renews once less than a third of the validity remains', () => {
    const opts = { rand: () => 0 };
    expect(renewalTime(cert, opts).getTime()).toBe(at(60));
    expect(needsRenewal(cert, at(59.9), opts)).toBe(false);
    expect(needsRenewal(cert, at(60), opts)).toBe(true);
    expect(needsRenewal(cert, new Date(at(89)), opts)).toBe(true);
  });

  it('jitter makes renewal earlier, by up to a sixth of the validity by default', () => {
    expect(renewalTime(cert, { rand: () => 0.5 }).getTime()).toBe(at(52.5));
    expect(renewalTime(cert, { rand: () => 0.999999 }).getTime()).toBeCloseTo(at(45), -4);
    const times = Array.from({ length: 200 }, () => renewalTime(cert).getTime());
    expect(Math.min(...times)).toBeGreaterThanOrEqual(at(45));
    expect(Math.max(...times)).toBeLessThanOrEqual(at(60));
    expect(new Set(times).size).toBeGreaterThan(1);
  });

  it('the fractions are configurable and validated', () => {
    expect(renewalTime(cert, { remainingFraction: 0.5, jitterFraction: 0, rand: () => 0.7 }).getTime()).toBe(at(45));
    expect(renewalTime(cert, { remainingFraction: 0.9, jitterFraction: 0.5, rand: () => 0.9 }).getTime()).toBe(at(0));
    expect(() => renewalTime(cert, { remainingFraction: 1.5 })).toThrow(/remainingFraction must be a number between 0 and 1/);
    expect(() => renewalTime(cert, { rand: () => 1 })).toThrow(/rand\(\) must be a number in \[0, 1\)/);
  });

  it('an expired certificate always needs renewal', () => {
    expect(needsRenewal(cert, at(91), { remainingFraction: 0, jitterFraction: 0, rand: () => 0 })).toBe(true);
    expect(needsRenewal(cert, at(89), { remainingFraction: 0, jitterFraction: 0, rand: () => 0 })).toBe(false);
  });
});
