// Root CA rotation in ca/: the cross-signed certificate, verification of a
// new root's certificates against the old root alone (through it) and
// against the new one, forged cross-signs, and the pure rotation steps.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  bundleDigest,
  type CAError,
  caDigest,
  checkCAPin,
  createCSR,
  createRootCA,
  crossSignRootCA,
  directIssuer,
  finishRotation,
  generateNodeKey,
  joinCertificates,
  makeJoinToken,
  type RootCAFields,
  rotationProgress,
  signingCA,
  signNodeCSR,
  splitCertificates,
  startRotation,
  trustBundle,
  verifyNodeCert,
} from '../../ca/index.js';

const NOW = Date.UTC(2026, 0, 1);
const oldRoot = createRootCA({ commonName: 'tsswarm-root-ca-old', now: NOW });
const newRoot = createRootCA({ commonName: 'tsswarm-root-ca-new', now: NOW });
const cross = crossSignRootCA(oldRoot, newRoot.certPem, { now: NOW });

function leaf(by: { certPem: string; keyPem: string }, nodeId = 'n1'): string {
  const key = generateNodeKey();
  return signNodeCSR(by, createCSR(key.privateKeyPem), { nodeId, role: 'worker', clusterId: 'c1', now: NOW });
}

const reason = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as CAError).reason ?? (e as Error).message;
  }
  return 'accepted';
};

describe('cross-signing a new root', () => {
  it("keeps the new root's subject and key, takes the old root as issuer and signer, and is a CA", () => {
    const x = new X509Certificate(cross);
    const n = new X509Certificate(newRoot.certPem);
    const o = new X509Certificate(oldRoot.certPem);
    expect(x.subject).toBe(n.subject);
    expect(x.issuer).toBe(o.subject);
    expect(x.publicKey.export({ type: 'spki', format: 'der' })).toEqual(n.publicKey.export({ type: 'spki', format: 'der' }));
    expect(x.ca).toBe(true);
    expect(x.verify(o.publicKey)).toBe(true);
    expect(x.checkIssued(o)).toBe(true);
    expect(x.validTo).toBe(n.validTo);
  });

  it('refuses a new root with the old key, a non-root, and an issuer without its key', () => {
    expect(reason(() => crossSignRootCA(oldRoot, oldRoot.certPem, { now: NOW }))).toBe('BAD_CA');
    expect(reason(() => crossSignRootCA(oldRoot, cross, { now: NOW }))).toBe('BAD_CA');
    expect(reason(() => crossSignRootCA({ certPem: oldRoot.certPem, keyPem: newRoot.keyPem }, newRoot.certPem, { now: NOW }))).toBe(
      'BAD_CA',
    );
  });
});

describe('verifying certificates across a rotation', () => {
  const fromNew = leaf(newRoot);
  const fromOld = leaf(oldRoot);
  const chained = fromNew + cross;

  it('a leaf from the new root verifies against the old root alone through the cross-signed certificate', () => {
    expect(verifyNodeCert(oldRoot.certPem, chained, { now: NOW }).nodeId).toBe('n1');
    // Without the chain it does not.
    expect(reason(() => verifyNodeCert(oldRoot.certPem, fromNew, { now: NOW }))).toBe('CERT_UNTRUSTED');
  });

  it('a leaf from the new root verifies against the new root, with or without its chain, and against the bundle', () => {
    expect(verifyNodeCert(newRoot.certPem, fromNew, { now: NOW }).nodeId).toBe('n1');
    expect(verifyNodeCert(newRoot.certPem, chained, { now: NOW }).nodeId).toBe('n1');
    const bundle = joinCertificates(oldRoot.certPem, newRoot.certPem);
    expect(verifyNodeCert(bundle, fromNew, { now: NOW }).nodeId).toBe('n1');
    expect(verifyNodeCert(bundle, fromOld, { now: NOW }).nodeId).toBe('n1');
    // Once the old root is dropped, its certificates are no longer trusted.
    expect(reason(() => verifyNodeCert(newRoot.certPem, fromOld, { now: NOW }))).toBe('CERT_UNTRUSTED');
  });

  it('openssl agrees: the chain verifies to the old root', () => {
    const [l, c] = splitCertificates(chained).map((p) => new X509Certificate(p));
    expect(l!.verify(c!.publicKey)).toBe(true);
    expect(c!.verify(new X509Certificate(oldRoot.certPem).publicKey)).toBe(true);
  });

  it('a forged cross-sign (signed by another key) fails', () => {
    const mallory = createRootCA({ commonName: 'tsswarm-root-ca-old', now: NOW });
    const forged = crossSignRootCA(mallory, newRoot.certPem, { now: NOW });
    expect(new X509Certificate(forged).issuer).toBe(new X509Certificate(oldRoot.certPem).subject);
    expect(reason(() => verifyNodeCert(oldRoot.certPem, fromNew + forged, { now: NOW }))).toBe('CERT_UNTRUSTED');
    // A leaf of the attacker's own, chained through the genuine cross-sign, fails too.
    expect(reason(() => verifyNodeCert(oldRoot.certPem, leaf(mallory) + cross, { now: NOW }))).toBe('CERT_UNTRUSTED');
  });

  it('an expired cross-signed certificate does not link', () => {
    const later = NOW + 21 * 365 * 24 * 3600_000;
    expect(reason(() => verifyNodeCert(oldRoot.certPem, chained, { now: later }))).toMatch(/CERT_UNTRUSTED|CERT_EXPIRED/);
  });

  it('directIssuer names the root whose own key signed the leaf', () => {
    const bundle = joinCertificates(oldRoot.certPem, newRoot.certPem);
    expect(caDigest(directIssuer(bundle, chained)!)).toBe(caDigest(newRoot.certPem));
    expect(caDigest(directIssuer(bundle, fromOld)!)).toBe(caDigest(oldRoot.certPem));
    expect(directIssuer(oldRoot.certPem, chained)).toBeUndefined();
  });
});

describe('bundles', () => {
  it('join each certificate once, in order, and digest their DER', () => {
    const b = joinCertificates(oldRoot.certPem, `junk\n${newRoot.certPem}`, oldRoot.certPem);
    expect(splitCertificates(b)).toHaveLength(2);
    expect(bundleDigest(b)).toBe(bundleDigest(joinCertificates(oldRoot.certPem, newRoot.certPem)));
    expect(bundleDigest(b)).not.toBe(bundleDigest(joinCertificates(newRoot.certPem, oldRoot.certPem)));
    expect(bundleDigest(oldRoot.certPem)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('the rotation steps', () => {
  const base: RootCAFields = {
    rootCaCertPem: oldRoot.certPem,
    rootCaKeyPem: oldRoot.keyPem,
    workerToken: makeJoinToken(oldRoot.certPem, 'worker'),
    managerToken: makeJoinToken(oldRoot.certPem, 'manager'),
  };

  it('start: trust both roots, sign with the new key and hand out the cross-signed chain', () => {
    expect(splitCertificates(trustBundle(base))).toHaveLength(1);
    const r = startRotation(base, { now: NOW, commonName: 'tsswarm-root-ca-r1' });
    const s = { ...base, rootRotation: r };
    expect(splitCertificates(trustBundle(s))).toEqual([oldRoot.certPem, r.caCertPem].map((p) => splitCertificates(p)[0]));
    const signer = signingCA(s);
    expect(signer.ca.certPem).toBe(r.caCertPem);
    expect(signer.rootDigest).toBe(caDigest(r.caCertPem));
    const issued = leaf(signer.ca) + signer.chainPem;
    expect(verifyNodeCert(oldRoot.certPem, issued, { now: NOW }).nodeId).toBe('n1');
    expect(verifyNodeCert(trustBundle(s), issued, { now: NOW }).nodeId).toBe('n1');
  });

  it('progress counts nodes holding a certificate of the new root; finish drops the old root and changes the tokens', () => {
    const r = startRotation(base, { now: NOW, commonName: 'tsswarm-root-ca-r1' });
    const s = { ...base, rootRotation: r };
    const nd = caDigest(r.caCertPem);
    const p = rotationProgress(s, [
      { id: 'a', name: 'm1', rootDigest: nd },
      { id: 'b', name: 'w1', rootDigest: caDigest(oldRoot.certPem) },
      { id: 'c', name: '', rootDigest: '' },
    ]);
    expect(p).toEqual({ inProgress: true, done: 1, total: 3, pending: ['w1', 'c'] });
    expect(rotationProgress(base, [{ id: 'a', name: 'm1', rootDigest: '' }])).toMatchObject({ inProgress: false, pending: [] });
    const f = finishRotation(s)!;
    expect(f.rootCaCertPem).toBe(r.caCertPem);
    expect(f.rootRotation).toBeNull();
    expect(trustBundle(f)).toBe(joinCertificates(r.caCertPem));
    expect(f.workerToken).not.toBe(base.workerToken);
    expect(f.managerToken).not.toBe(base.managerToken);
    // A joining node checks the old token's pin against the root the managers now present: refused.
    expect(reason(() => checkCAPin(base.workerToken, f.rootCaCertPem))).toBe('CA_MISMATCH');
    expect(checkCAPin(f.workerToken, f.rootCaCertPem).caDigest).toBe(caDigest(r.caCertPem));
    expect(finishRotation(base)).toBeUndefined();
  });

  it('a second rotation restarts with a fresh root, cross-signed by the current root, still trusting the one it replaces', () => {
    const r1 = startRotation(base, { now: NOW, commonName: 'tsswarm-root-ca-r1' });
    const s1 = { ...base, rootRotation: r1 };
    const r2 = startRotation(s1, { now: NOW, commonName: 'tsswarm-root-ca-r2' });
    expect(r2.caCertPem).not.toBe(r1.caCertPem);
    expect(r2.supersededCaCertPems).toEqual([r1.caCertPem]);
    expect(new X509Certificate(r2.crossSignedCaCertPem).verify(new X509Certificate(oldRoot.certPem).publicKey)).toBe(true);
    const s2 = { ...base, rootRotation: r2 };
    expect(splitCertificates(trustBundle(s2))).toHaveLength(3);
    // A node that moved to r1 is still trusted, and is pending again.
    const onR1 = leaf({ certPem: r1.caCertPem, keyPem: r1.caKeyPem }) + r1.crossSignedCaCertPem;
    expect(verifyNodeCert(trustBundle(s2), onR1, { now: NOW }).nodeId).toBe('n1');
    expect(rotationProgress(s2, [{ id: 'a', name: 'm1', rootDigest: caDigest(r1.caCertPem) }]).done).toBe(0);
    // At the end, only r2 is trusted.
    expect(reason(() => verifyNodeCert(trustBundle(finishRotation(s2)!), onR1.slice(0, onR1.indexOf('-----END')), { now: NOW }))).toMatch(
      /BAD_CERT|CERT_UNTRUSTED/,
    );
  });
});
