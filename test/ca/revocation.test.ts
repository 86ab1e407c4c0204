// Revocation by node (ca/revocation.ts), as pure functions: renewals
// keep one entry per node however often they happen, a renewal revokes every
// older certificate (also one issued in the same second, with the same
// backdated notBefore), a demotion revokes the manager certificate but lets it
// renew and open its session, a removal revokes everything, and expired
// entries go. Also when the managers accept a renewal (renewalDue).
import { describe, expect, it } from 'vitest';
import {
  CLOCK_SKEW_MS,
  REPLACED_RENEWAL_GRACE_MS,
  RevocationIndex,
  renewalDue,
  renewalDueAt,
  revokeOnDemote,
  revokeOnRemove,
  revokeOnRenewal,
} from '../../ca/index.js';
import { ClusterSpec, type NodeRevocation, RevokedCertificate } from '../../proto/gen/objects.js';

const DAY = 24 * 3_600_000;
const T0 = Date.parse('2026-03-01T00:00:00Z');
const BACKDATE = 3_600_000;

/** A certificate as signNodeCSR makes it at `t`: notBefore backdated and cut to the second. */
function cert(serial: string, t: number, validity = 90 * DAY) {
  return { serial, notBeforeMs: Math.floor((t - BACKDATE) / 1000) * 1000, notAfterMs: Math.floor((t + validity) / 1000) * 1000 };
}

function renew(
  list: NodeRevocation[],
  nodeId: string,
  presented: ReturnType<typeof cert>,
  issued: ReturnType<typeof cert>,
  now: number,
  recordExpiryMs = presented.notAfterMs,
): NodeRevocation[] {
  return revokeOnRenewal(list, {
    nodeId,
    serial: issued.serial,
    issued,
    replaced: [presented, { notAfterMs: recordExpiryMs }],
    now,
    defaultExpiryMs: 90 * DAY,
  });
}

const check = (list: NodeRevocation[], nodeId: string, c: ReturnType<typeof cert>) =>
  new RevocationIndex({ nodeRevocations: list }).check({ nodeId, serial: c.serial, notBeforeMs: c.notBeforeMs });

describe('revocation by node', () => {
  it('a node renewing a thousand times keeps one entry, and the encoded cluster spec stops growing', () => {
    let list: NodeRevocation[] = [];
    let held = cert('a0', T0);
    const sizes: number[] = [];
    for (let i = 1; i <= 1000; i++) {
      const now = T0 + i * 10_000;
      const next = cert(`b${i.toString(16)}`, now);
      list = renew(list, 'n1', held, next, now);
      held = next;
      sizes.push(ClusterSpec.encode(ClusterSpec.create({ nodeRevocations: list })).length);
    }
    expect(list).toHaveLength(1);
    expect(Math.max(...sizes) - sizes[0]!).toBeLessThanOrEqual(8); // varints and serial lengths only
    expect(check(list, 'n1', held).revoked).toBe(false);
  });

  it('a renewal revokes every older certificate of the node, also one issued in the same second, and not the new one', () => {
    const first = cert('aa01', T0);
    const same = cert('aa02', T0 + 200); // same second: the same notBefore as `first`
    const list = renew([], 'n1', first, same, T0 + 200);
    expect(first.notBeforeMs).toBe(same.notBeforeMs);
    expect(check(list, 'n1', first)).toMatchObject({
      revoked: true,
      reason: 'replaced',
      graceUntilMs: T0 + 200 + REPLACED_RENEWAL_GRACE_MS,
      sessionGrace: false,
    });
    expect(check(list, 'n1', same)).toEqual({ revoked: false });
    // Another node is untouched.
    expect(check(list, 'n2', first)).toEqual({ revoked: false });
  });

  it('an answer lost: the certificate on record and the one presented are both revoked by the retry', () => {
    const c0 = cert('c0', T0);
    const lost = cert('c1', T0 + 60 * DAY);
    let list = renew([], 'n1', c0, lost, T0 + 60 * DAY);
    const again = cert('c2', T0 + 60 * DAY + 30_000);
    list = renew(list, 'n1', c0, again, T0 + 60 * DAY + 30_000, lost.notAfterMs);
    expect(list).toHaveLength(1);
    expect(check(list, 'n1', c0).revoked).toBe(true);
    expect(check(list, 'n1', lost).revoked).toBe(true);
    expect(check(list, 'n1', again).revoked).toBe(false);
    expect(Number(list[0]!.expiryMs)).toBe(lost.notAfterMs);
  });

  it('a manager whose store lags behind one renewal still accepts the new certificate', () => {
    const c0 = cert('d0', T0);
    const c1 = cert('d1', T0 + 60 * DAY);
    const c2 = cert('d2', T0 + 120 * DAY);
    const lagging = renew([], 'n1', c0, c1, T0 + 60 * DAY);
    expect(check(lagging, 'n1', c2)).toEqual({ revoked: false });
  });

  it('a demotion revokes the manager certificate for all but renewal and the session, until it expires; the worker certificate it renews to is good', () => {
    const mgr = cert('e0', T0);
    const now = T0 + DAY;
    let list = revokeOnDemote([], { nodeId: 'n1', certExpiryMs: mgr.notAfterMs, now, defaultExpiryMs: 90 * DAY });
    expect(check(list, 'n1', mgr)).toMatchObject({ revoked: true, reason: 'demoted', graceUntilMs: mgr.notAfterMs, sessionGrace: true });
    // A certificate another leader signed with a clock up to the skew ahead is covered too.
    expect(check(list, 'n1', { serial: 'e9', notBeforeMs: now + CLOCK_SKEW_MS, notAfterMs: 0 }).revoked).toBe(true);
    const worker = cert('e1', now + 5_000);
    list = renew(list, 'n1', mgr, worker, now + 5_000);
    expect(check(list, 'n1', worker)).toEqual({ revoked: false });
    expect(check(list, 'n1', mgr)).toMatchObject({
      revoked: true,
      reason: 'replaced',
      graceUntilMs: now + 5_000 + REPLACED_RENEWAL_GRACE_MS,
      sessionGrace: false,
    });
  });

  it('a removal revokes every certificate of the node with no grace, whatever its notBefore', () => {
    const c = cert('f0', T0);
    const list = revokeOnRemove(renew([], 'n1', cert('ef', T0 - DAY), c, T0), {
      nodeId: 'n1',
      certExpiryMs: c.notAfterMs,
      now: T0 + 1000,
      defaultExpiryMs: 90 * DAY,
    });
    expect(list).toHaveLength(1);
    expect(check(list, 'n1', c)).toMatchObject({ revoked: true, reason: 'removed', graceUntilMs: 0 });
    expect(check(list, 'n1', { serial: 'f1', notBeforeMs: T0 + 10 * DAY, notAfterMs: 0 }).revoked).toBe(true);
  });

  it('entries whose revoked certificates have all expired are dropped at the next write', () => {
    const gone = revokeOnRemove([], { nodeId: 'old', certExpiryMs: T0 + DAY, now: T0, defaultExpiryMs: 90 * DAY });
    const list = renew(gone, 'n1', cert('g0', T0), cert('g1', T0 + 2 * DAY), T0 + 2 * DAY);
    expect(list.map((r) => r.nodeId)).toEqual(['n1']);
  });

  it('per-serial revocations of earlier versions are still honoured, with the renewal grace', () => {
    const idx = new RevocationIndex({
      revokedCertificates: [
        RevokedCertificate.create({ serial: 'aa', nodeId: 'n1', expiryMs: T0 + DAY, replacedAtMs: T0 }),
        RevokedCertificate.create({ serial: 'bb', nodeId: 'n2', expiryMs: T0 + DAY, replacedAtMs: 0 }),
      ],
      revokedSerials: ['cc'],
    });
    expect(idx.check({ nodeId: 'n1', serial: 'aa', notBeforeMs: 0 })).toMatchObject({
      revoked: true,
      reason: 'replaced',
      graceUntilMs: T0 + REPLACED_RENEWAL_GRACE_MS,
    });
    expect(idx.check({ nodeId: 'n2', serial: 'bb', notBeforeMs: 0 })).toMatchObject({ revoked: true, reason: 'removed' });
    expect(idx.check({ nodeId: 'n3', serial: 'cc', notBeforeMs: 0 })).toMatchObject({ revoked: true, reason: 'removed' });
    expect(idx.check({ nodeId: 'n1', serial: 'dd', notBeforeMs: 0 })).toEqual({ revoked: false });
  });
});

describe('when the managers accept a renewal', () => {
  const c = { notBefore: new Date(T0), notAfter: new Date(T0 + 90 * DAY) };

  it('from half the validity left (the earliest jittered renewal), less the clock skew', () => {
    expect(renewalDueAt(c, CLOCK_SKEW_MS).getTime()).toBe(T0 + 45 * DAY - CLOCK_SKEW_MS);
    expect(renewalDue(c, T0 + 45 * DAY - CLOCK_SKEW_MS - 1, CLOCK_SKEW_MS)).toBe(false);
    expect(renewalDue(c, T0 + 45 * DAY - CLOCK_SKEW_MS, CLOCK_SKEW_MS)).toBe(true);
    expect(renewalDue(c, T0 + DAY, CLOCK_SKEW_MS)).toBe(false);
    expect(renewalDue(c, T0 + 91 * DAY, CLOCK_SKEW_MS)).toBe(true);
  });

  it('a short certificate gets a tenth of its validity as skew allowance, not five minutes', () => {
    const short = { notBefore: new Date(T0), notAfter: new Date(T0 + 30_000) };
    expect(renewalDueAt(short, CLOCK_SKEW_MS).getTime()).toBe(T0 + 15_000 - 3_000);
    expect(renewalDue(short, T0 + 11_999, CLOCK_SKEW_MS)).toBe(false);
  });
});
