// The operator role and the Engine API's server certificates (ca/x509.ts):
// what an operator's certificate carries, that it is never a node's identity
// nor a node's certificate an operator's, and that verifyOperatorCert refuses
// every forgery: self-signed with the operator OU, another cluster's CA, a
// worker's or manager's node certificate, an expired one, a root rotated out.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CAError,
  certificateSans,
  createCSR,
  createRootCA,
  ENGINE_SERVER_OU,
  generateNodeKey,
  OPERATOR_OU,
  parseNodeCert,
  signEngineServerCSR,
  signNodeCSR,
  signOperatorCSR,
  verifyOperatorCert,
} from '../../ca/index.js';
import { joinCertificates } from '../../ca/rotation.js';
import { usageError } from '../errors.js';
import { selfSignedClientCert } from '../lib/forged-cert.js';

const NOW = Date.parse('2026-12-07T12:00:00Z');
const DAY = 86_400_000;
const root = createRootCA({ now: NOW, commonName: 'root-a' });
const otherRoot = createRootCA({ now: NOW, commonName: 'root-b' });
const CLUSTER = 'cluster-a';

function operator(name = 'alice', o: { validityMs?: number; now?: number; ca?: typeof root; clusterId?: string } = {}): string {
  const key = generateNodeKey();
  return signOperatorCSR(o.ca ?? root, createCSR(key.privateKeyPem, { nodeId: 'operator' }), {
    name,
    clusterId: o.clusterId ?? CLUSTER,
    now: o.now ?? NOW,
    validityMs: o.validityMs,
  });
}

function nodeCert(role: 'worker' | 'manager'): string {
  const key = generateNodeKey();
  return signNodeCSR(root, createCSR(key.privateKeyPem), { nodeId: `n${role}1`, role, clusterId: CLUSTER, now: NOW });
}

/** The CA error's reason and message of what `fn` throws. */
function refusal(fn: () => unknown): { reason: string; code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof CAError) return { reason: e.reason, code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('operator certificates', () => {
  it('carry the name, the operator OU and the cluster; a TLS client only, 30 days by default', () => {
    const pem = operator('alice');
    const x = new X509Certificate(pem);
    expect(x.subject.split('\n')).toEqual(['O=cluster-a', `OU=${OPERATOR_OU}`, 'CN=alice']);
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(x.subjectAltName).toBeUndefined();
    expect(x.checkIssued(new X509Certificate(root.certPem))).toBe(true);
    expect(Date.parse(x.validTo) - NOW).toBe(30 * DAY);
    const info = verifyOperatorCert(root.certPem, pem, { now: NOW, clusterId: CLUSTER });
    expect(info).toMatchObject({ name: 'alice', clusterId: CLUSTER });
    expect(info.notAfter.getTime()).toBe(NOW + 30 * DAY);
  });

  it('are bounded: from 1 minute to a year, and a name of letters, digits and . _ @ -', () => {
    expect(Date.parse(new X509Certificate(operator('bob', { validityMs: 365 * DAY })).validTo) - NOW).toBe(365 * DAY);
    expect(usageError(() => operator('bob', { validityMs: 366 * DAY })).message).toMatch(/--expiry must be a duration from 1m to 8760h/);
    expect(usageError(() => operator('bob', { validityMs: 59_000 })).field).toBe('--expiry');
    for (const bad of ['', '-x', 'a b', 'a/b', 'x'.repeat(65), 'ünï']) expect(usageError(() => operator(bad)).field, bad).toBe('--name');
    expect(verifyOperatorCert(root.certPem, operator('ops@example.org'), { now: NOW, clusterId: CLUSTER }).name).toBe('ops@example.org');
  });

  it('are never a node identity: parseNodeCert refuses one, naming what it is', () => {
    expect(refusal(() => parseNodeCert(operator())).message).toMatch(
      /its OU is swarm-operator: it is an operator's client certificate, never a node's identity/,
    );
  });

  it('during a root rotation, one from the new root is accepted while both roots are trusted, and refused once the old root alone is', () => {
    const next = createRootCA({ now: NOW, commonName: 'root-a2' });
    const pem = operator('carol', { ca: next });
    const both = joinCertificates(root.certPem, next.certPem);
    expect(verifyOperatorCert(both, pem, { now: NOW, clusterId: CLUSTER }).name).toBe('carol');
    expect(verifyOperatorCert(next.certPem, pem, { now: NOW, clusterId: CLUSTER }).name).toBe('carol');
    // A certificate of the root rotated out is refused once that root is no longer trusted.
    expect(refusal(() => verifyOperatorCert(next.certPem, operator('dave'), { now: NOW, clusterId: CLUSTER })).reason).toBe(
      'CERT_UNTRUSTED',
    );
  });
});

describe('verifyOperatorCert refuses every certificate but an operator one of this cluster', () => {
  it('a self-signed certificate with the operator OU and the right cluster', () => {
    const forged = selfSignedClientCert({ o: CLUSTER, ou: OPERATOR_OU, cn: 'mallory' }, NOW);
    const r = refusal(() => verifyOperatorCert(root.certPem, forged.certPem, { now: NOW, clusterId: CLUSTER }));
    expect(r.reason).toBe('CERT_UNTRUSTED');
    expect(r.code).toBe('UNAUTHENTICATED');
    expect(r.message).toMatch(/operator mallory was not issued by this cluster's root CA.*tsswarm ca client-cert/);
  });

  it("an operator certificate of another cluster's CA", () => {
    const r = refusal(() => verifyOperatorCert(root.certPem, operator('eve', { ca: otherRoot }), { now: NOW, clusterId: CLUSTER }));
    expect(r.reason).toBe('CERT_UNTRUSTED');
  });

  it("a worker's and a manager's node certificate, signed by this cluster's root", () => {
    for (const role of ['worker', 'manager'] as const) {
      const r = refusal(() => verifyOperatorCert(root.certPem, nodeCert(role), { now: NOW, clusterId: CLUSTER }));
      expect(r.reason, role).toBe('NOT_OPERATOR');
      expect(r.code, role).toBe('PERMISSION_DENIED');
      expect(r.message, role).toMatch(
        new RegExp(`the node certificate of node n${role}1 \\(swarm-${role}\\).*only an operator's client certificate`),
      );
    }
  });

  it("a node's Engine API server certificate", () => {
    const key = generateNodeKey();
    const server = signEngineServerCSR(root, createCSR(key.privateKeyPem), {
      nodeId: 'n1',
      clusterId: CLUSTER,
      now: NOW,
      ips: ['10.0.0.1'],
      dnsNames: [],
    });
    expect(refusal(() => verifyOperatorCert(root.certPem, server, { now: NOW, clusterId: CLUSTER })).reason).toBe('NOT_OPERATOR');
  });

  it('an expired operator certificate, and one not valid yet', () => {
    const pem = operator('frank', { validityMs: DAY });
    const late = refusal(() => verifyOperatorCert(root.certPem, pem, { now: NOW + DAY + 1000, clusterId: CLUSTER }));
    expect(late.reason).toBe('CERT_EXPIRED');
    expect(late.message).toMatch(/operator frank/);
    expect(refusal(() => verifyOperatorCert(root.certPem, pem, { now: NOW - 2 * 3_600_000, clusterId: CLUSTER })).reason).toBe(
      'CERT_NOT_YET_VALID',
    );
  });

  it('an operator certificate naming another cluster, signed by the same root', () => {
    const r = refusal(() =>
      verifyOperatorCert(root.certPem, operator('gina', { clusterId: 'cluster-b' }), { now: NOW, clusterId: CLUSTER }),
    );
    expect(r.reason).toBe('WRONG_CLUSTER');
  });
});

describe('Engine API server certificates', () => {
  it('name the addresses and host names given, for TLS servers only, and are never a node identity', () => {
    const key = generateNodeKey();
    const pem = signEngineServerCSR(root, createCSR(key.privateKeyPem), {
      nodeId: 'n1',
      clusterId: CLUSTER,
      now: NOW,
      ips: ['10.77.0.11', '127.0.0.1'],
      dnsNames: ['h1', 'localhost'],
    });
    const x = new X509Certificate(pem);
    expect(x.subject.split('\n')).toEqual(['O=cluster-a', `OU=${ENGINE_SERVER_OU}`, 'CN=n1']);
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(x.checkIP('10.77.0.11')).toBe('10.77.0.11');
    expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x.checkIP('10.77.0.12')).toBeUndefined();
    expect(x.checkHost('h1')).toBe('h1');
    expect(x.checkHost('h2')).toBeUndefined();
    expect(certificateSans(pem)).toEqual({ ips: ['10.77.0.11', '127.0.0.1'], dnsNames: ['h1', 'localhost'] });
    expect(refusal(() => parseNodeCert(pem)).message).toMatch(/Docker Engine API server certificate, never a node's identity/);
  });

  it('refuse a name that is no address or DNS name, and an empty or overlong list', () => {
    const csr = createCSR(generateNodeKey().privateKeyPem);
    const sign = (ips: string[], dnsNames: string[]) => () =>
      signEngineServerCSR(root, csr, { nodeId: 'n1', clusterId: CLUSTER, now: NOW, ips, dnsNames });
    expect(usageError(sign(['10.0.0.300'], [])).field).toBe('ips');
    expect(usageError(sign([], ['bad_name'])).field).toBe('dnsNames');
    expect(usageError(sign([], [])).field).toBe('SANs');
    expect(
      usageError(
        sign(
          Array.from({ length: 17 }, (_, i) => `10.0.0.${i}`),
          [],
        ),
      ).field,
    ).toBe('SANs');
  });
});
