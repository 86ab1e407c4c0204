// When a node should renew its certificate: once less than a fraction of the
// validity remains, with per-node jitter so a cluster whose certificates were
// all issued together does not renew all at once.
import { UsageError } from '../lib/errors.js';

export interface RenewalOptions {
  /** Renew once less than this fraction of the validity remains (default 1/3). */
  remainingFraction?: number;
  /** Up to this extra fraction, chosen by `rand`, makes renewal earlier (default 1/6). */
  jitterFraction?: number;
  /**
   * A number in [0, 1). Draw it once per certificate (e.g. `() => r`) when
   * polling needsRenewal, or the earliest draw wins; default Math.random.
   */
  rand?: () => number;
}

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

function fraction(v: number | undefined, dflt: number, field: string): number {
  const f = v ?? dflt;
  if (!Number.isFinite(f) || f < 0 || f > 1) throw UsageError.invalid(field, 'a number between 0 and 1', v);
  return f;
}

/** The moment to renew: notAfter − validity × (remainingFraction + jitterFraction × rand()). */
export function renewalTime(cert: Validity, opts: RenewalOptions = {}): Date {
  const remaining = fraction(opts.remainingFraction, 1 / 3, 'remainingFraction');
  const jitter = fraction(opts.jitterFraction, 1 / 6, 'jitterFraction');
  const r = (opts.rand ?? Math.random)();
  if (!(r >= 0 && r < 1)) throw UsageError.invalid('rand()', 'a number in [0, 1)', r);
  const validity = cert.notAfter.getTime() - cert.notBefore.getTime();
  const f = Math.min(1, remaining + jitter * r);
  return new Date(cert.notAfter.getTime() - Math.max(0, validity) * f);
}

/** True when the certificate should be renewed at `now` (always once it has expired). */
export function needsRenewal(cert: Validity, now: Date | number, opts: RenewalOptions = {}): boolean {
  const t = typeof now === 'number' ? now : now.getTime();
  return t >= cert.notAfter.getTime() || t >= renewalTime(cert, opts).getTime();
}

/**
 * The earliest moment a node following renewalTime (with these options, any
 * draw of `rand`) would renew: notAfter − validity × (remainingFraction + jitterFraction).
 */
export function earliestRenewal(cert: Validity, opts: Omit<RenewalOptions, 'rand'> = {}): Date {
  const remaining = fraction(opts.remainingFraction, 1 / 3, 'remainingFraction');
  const jitter = fraction(opts.jitterFraction, 1 / 6, 'jitterFraction');
  const validity = Math.max(0, cert.notAfter.getTime() - cert.notBefore.getTime());
  return new Date(cert.notAfter.getTime() - validity * Math.min(1, remaining + jitter));
}

/**
 * From when the managers accept a node's renewal of `cert` (earlier ones are
 * refused): the earliest jittered renewal time, less a clock-skew allowance
 * of a tenth of the validity, at most `maxSkewMs`.
 */
export function renewalDueAt(cert: Validity, maxSkewMs: number, opts: Omit<RenewalOptions, 'rand'> = {}): Date {
  const validity = Math.max(0, cert.notAfter.getTime() - cert.notBefore.getTime());
  return new Date(earliestRenewal(cert, opts).getTime() - Math.min(maxSkewMs, Math.floor(validity / 10)));
}

/** True when a renewal of `cert` asked for at `now` is one the managers accept (renewalDueAt). */
export function renewalDue(cert: Validity, now: Date | number, maxSkewMs: number, opts: Omit<RenewalOptions, 'rand'> = {}): boolean {
  const t = typeof now === 'number' ? now : now.getTime();
  return t >= renewalDueAt(cert, maxSkewMs, opts).getTime();
}
