// Authorization decisions of manager/authz.ts on calls built by the test (a
// certificate the test signs, revocations and store roles it states), for the
// answers the over-the-wire tests in authz.test.ts check only by status code:
// expiry, the grace a revoked certificate keeps, and the store's last word.
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { type AuthzContext, callerOf, requireRole } from '../../manager/authz.js';
import { createCSR, createRootCA, generateNodeKey, signNodeCSR } from '../../ca/index.js';
import type { Revocation } from '../../ca/revocation.js';

const clusterId = 'tssauthzcallercluster0000';
const ca = createRootCA({ commonName: 'tss-authz-caller-ca', now: Date.now() });
const HOUR = 3_600_000;

function cert(nodeId: string, role: 'worker' | 'manager', o: { validityMs?: number } = {}): string {
  const key = generateNodeKey();
  return signNodeCSR(ca, createCSR(key.privateKeyPem), { nodeId, role, clusterId, now: Date.now(), validityMs: o.validityMs });
}

/** A call as grpc-js hands it to a handler, carrying `pem` as the peer certificate (or none). */
function callWith(pem?: string) {
  const pc = pem
    ? ({ raw: new X509Certificate(pem).raw, fingerprint256: new X509Certificate(pem).fingerprint256 } as PeerCertificate)
    : undefined;
  return { getAuthContext: () => ({ sslPeerCertificate: pc }) };
}

function ctx(o: { revocation?: Revocation; storeRole?: 'worker' | 'manager' | null } = {}): AuthzContext {
  return {
    caCertPem: () => ca.certPem,
    clusterId: () => clusterId,
    revocation: o.revocation ? () => o.revocation! : undefined,
    storeRole: o.storeRole === undefined ? undefined : () => o.storeRole!,
  };
}

const message = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return `${(e as { code: string }).code}: ${(e as Error).message}`;
  }
  throw new Error('expected a refusal, and the call was allowed');
};

describe('who is calling', () => {
  it('a call without a certificate has no caller, and a call that needs one is refused saying to join first', () => {
    expect(callerOf(callWith(), ctx())).toBeNull();
    expect(message(() => requireRole(callWith(), ctx(), ['worker', 'manager']))).toBe(
      'UNAUTHENTICATED: this call needs a node certificate: join the node to the cluster first',
    );
  });

  it('an expired certificate is refused naming the node and how to renew', () => {
    const pem = cert('tssexp1', 'worker', { validityMs: HOUR });
    expect(callerOf(callWith(pem), ctx())!.nodeId).toBe('tssexp1');
    const later = Date.now() + 2 * HOUR;
    expect(message(() => callerOf(callWith(pem), ctx(), later))).toBe(
      'UNAUTHENTICATED: the certificate of node tssexp1 expired: the node must renew it (restart its daemon) or join again',
    );
  });

  it("a demoted manager's revoked certificate may renew and open its session during the grace, and nothing else; after it, not even that", () => {
    const pem = cert('tssdem1', 'manager');
    const now = Date.now();
    const revocation: Revocation = { revoked: true, reason: 'demoted', graceUntilMs: now + HOUR, sessionGrace: true };
    const c = ctx({ revocation });
    expect(callerOf(callWith(pem), c, now, { renewal: true })?.nodeId).toBe('tssdem1');
    expect(callerOf(callWith(pem), c, now, { session: true })?.nodeId).toBe('tssdem1');
    const refused =
      /^PERMISSION_DENIED: the manager certificate of node tssdem1 \(serial [0-9a-f]+\) was revoked when the node was demoted: it may only renew/;
    expect(message(() => callerOf(callWith(pem), c, now))).toMatch(refused);
    expect(message(() => callerOf(callWith(pem), c, now + 2 * HOUR, { renewal: true }))).toMatch(refused);
    expect(message(() => callerOf(callWith(pem), c, now + 2 * HOUR, { session: true }))).toMatch(refused);
  });

  it('a certificate replaced by a renewal may still renew in its grace, but not open a session', () => {
    const pem = cert('tssren1', 'worker');
    const now = Date.now();
    const c = ctx({ revocation: { revoked: true, reason: 'replaced', graceUntilMs: now + HOUR, sessionGrace: false } });
    expect(callerOf(callWith(pem), c, now, { renewal: true })?.nodeId).toBe('tssren1');
    expect(message(() => callerOf(callWith(pem), c, now, { session: true }))).toMatch(
      /^PERMISSION_DENIED: the certificate of node tssren1 \(serial [0-9a-f]+\) was replaced by a renewal and is revoked/,
    );
  });

  it('a removed node is refused with every call, even renewal, with no grace', () => {
    const pem = cert('tssgone1', 'worker');
    const c = ctx({ revocation: { revoked: true, reason: 'removed', graceUntilMs: 0, sessionGrace: false } });
    for (const opts of [{}, { renewal: true }, { session: true }]) {
      expect(message(() => callerOf(callWith(pem), c, Date.now(), opts))).toBe(
        'PERMISSION_DENIED: node tssgone1 was removed from the cluster; its certificate is revoked. Join it again with a token',
      );
    }
  });
});

describe('the store has the last word', () => {
  it('a valid certificate of a node the store does not hold is refused, saying it was removed and to join again', () => {
    const pem = cert('tssnostore1', 'manager');
    expect(message(() => requireRole(callWith(pem), ctx({ storeRole: null }), ['manager']))).toBe(
      'PERMISSION_DENIED: node tssnostore1 is not a member of this cluster (it was removed, or this manager has not caught up yet): its certificates are refused; join it again with a token',
    );
  });

  it('a manager certificate of a node the store now holds as a worker is refused for manager calls, naming the demotion', () => {
    const pem = cert('tssdem2', 'manager');
    expect(message(() => requireRole(callWith(pem), ctx({ storeRole: 'worker' }), ['manager']))).toMatch(
      /^PERMISSION_DENIED: This node is not a swarm manager\..* \(node tssdem2 was demoted to worker: its manager certificate no longer grants manager calls\)$/,
    );
    // The same node may still make the calls every node may.
    expect(requireRole(callWith(pem), ctx({ storeRole: 'worker' }), ['worker', 'manager']).nodeId).toBe('tssdem2');
  });

  it('a worker certificate is refused for manager calls before the store is asked', () => {
    const pem = cert('tsswork1', 'worker');
    let asked = 0;
    const c: AuthzContext = { ...ctx(), storeRole: () => (asked++, 'manager') };
    expect(message(() => requireRole(callWith(pem), c, ['manager']))).toMatch(
      /^PERMISSION_DENIED: This node is not a swarm manager\. Worker nodes can't be used/,
    );
    expect(asked).toBe(0);
    expect(requireRole(callWith(pem), ctx({ storeRole: 'worker' }), ['worker', 'manager'])).toMatchObject({
      nodeId: 'tsswork1',
      role: 'worker',
    });
  });
});
