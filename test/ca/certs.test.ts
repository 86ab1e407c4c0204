// The root CA and node certificates: what they contain, how they are checked
// (issuer, validity, revocation, cluster), CSR tamper detection, and an
// openssl cross-check of what we build.
import { spawnSync } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as asn1 from '../../ca/asn1.js';
import {
  BadCSRError,
  CAError,
  createCSR,
  createRootCA,
  generateNodeKey,
  keyMatchesCert,
  parseNodeCert,
  signNodeCSR,
  verifyNodeCert,
} from '../../ca/index.js';
import { have } from '../have.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const root = createRootCA({ now: NOW });
const otherRoot = createRootCA({ now: NOW });
const DAY = 24 * 60 * 60 * 1000;

function issue(role: 'worker' | 'manager', nodeId: string, extra: Partial<Parameters<typeof signNodeCSR>[2]> = {}, ca = root) {
  const key = generateNodeKey();
  const certPem = signNodeCSR(ca, createCSR(key.privateKeyPem), { nodeId, role, clusterId: 'cluster-a', now: NOW, ...extra });
  return { key, certPem };
}

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof CAError) return `${e.reason}: ${e.message}`;
    throw e;
  }
  throw new Error('expected a CAError');
}

describe('root CA', () => {
  it('is a self-signed ECDSA P-256 CA for 20 years that may sign certificates and CRLs', () => {
    const x = new X509Certificate(root.certPem);
    expect(x.ca).toBe(true);
    expect(x.subject).toBe('CN=tsswarm-ca');
    expect(x.issuer).toBe(x.subject);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.checkIssued(x)).toBe(true);
    expect(x.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(Date.parse(x.validTo) - NOW).toBeGreaterThanOrEqual(20 * 365 * DAY - 1000);
    expect(Date.parse(x.validFrom)).toBeLessThanOrEqual(NOW);
    expect(keyMatchesCert(root.keyPem, root.certPem)).toBe(true);
    expect(keyMatchesCert(otherRoot.keyPem, root.certPem)).toBe(false);
  });

  it('uses GeneralizedTime past 2049 and Node still reads the dates', () => {
    const late = createRootCA({ now: Date.parse('2045-06-01T00:00:00Z'), commonName: 'late', backdateMs: 0 });
    expect(new X509Certificate(late.certPem).validTo).toBe('May 27 00:00:00 2065 GMT');
  });
});

describe('node certificates', () => {
  it('carry node id, role and cluster in CN, OU and O, with SANs for the id and the role', () => {
    const { key, certPem } = issue('manager', 'n0de1');
    const x = new X509Certificate(certPem);
    expect(x.subject.split('\n')).toEqual(['O=cluster-a', 'OU=swarm-manager', 'CN=n0de1']);
    expect(x.subjectAltName).toBe('DNS:n0de1, DNS:swarm-manager');
    expect(x.ca).toBe(false);
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(x.checkIssued(new X509Certificate(root.certPem))).toBe(true);
    expect(x.verify(new X509Certificate(root.certPem).publicKey)).toBe(true);
    expect(x.checkPrivateKey(createPrivateKey(key.privateKeyPem))).toBe(true);
    expect(x.checkHost('swarm-manager')).toBe('swarm-manager');
    expect(x.checkHost('swarm-worker')).toBeUndefined();

    const info = parseNodeCert(certPem);
    expect(info).toMatchObject({ nodeId: 'n0de1', role: 'manager', clusterId: 'cluster-a' });
    expect(info.serial).toBe(x.serialNumber.toLowerCase().replace(/^0+/, ''));
    expect(info.fingerprint).toBe(x.fingerprint256.replace(/:/g, '').toLowerCase());
    expect(info.notAfter.getTime()).toBe(Math.floor((NOW + 90 * DAY) / 1000) * 1000);
    expect(info.notBefore.getTime()).toBe(NOW - 60 * 60 * 1000);
    expect(parseNodeCert(issue('worker', 'w1').certPem).role).toBe('worker');
  });

  it('take the serial and validity they are given, and never outlive the root CA', () => {
    const { certPem } = issue('worker', 'w1', { serial: '0abc', validityMs: DAY, backdateMs: 0 });
    const info = parseNodeCert(certPem);
    expect(info.serial).toBe('abc');
    expect(info.notAfter.getTime() - info.notBefore.getTime()).toBe(DAY);
    const shortRoot = createRootCA({ now: NOW, validityMs: 10 * DAY });
    const clamped = parseNodeCert(issue('worker', 'w2', {}, shortRoot).certPem);
    expect(clamped.notAfter.getTime()).toBe(new Date(new X509Certificate(shortRoot.certPem).validTo).getTime());
  });

  it('verify: ok within validity, then expired, not yet valid, revoked, wrong cluster, other CA', () => {
    const { certPem } = issue('worker', 'w1');
    const info = parseNodeCert(certPem);
    expect(verifyNodeCert(root.certPem, certPem, { now: NOW, clusterId: 'cluster-a', revokedSerials: ['ff'] })).toEqual(info);
    expect(reasonOf(() => verifyNodeCert(root.certPem, certPem, { now: NOW + 91 * DAY }))).toMatch(
      /^CERT_EXPIRED: the certificate of node w1 expired at .*renew/,
    );
    expect(reasonOf(() => verifyNodeCert(root.certPem, certPem, { now: NOW - 2 * 60 * 60 * 1000 }))).toMatch(
      /^CERT_NOT_YET_VALID: .*clocks/,
    );
    expect(reasonOf(() => verifyNodeCert(root.certPem, certPem, { now: NOW, revokedSerials: [info.serial.toUpperCase()] }))).toMatch(
      /^CERT_REVOKED: .*removed from the cluster/,
    );
    expect(reasonOf(() => verifyNodeCert(root.certPem, certPem, { now: NOW, clusterId: 'cluster-b' }))).toMatch(
      /^WRONG_CLUSTER: node w1 belongs to cluster "cluster-a"/,
    );
    expect(reasonOf(() => verifyNodeCert(otherRoot.certPem, certPem, { now: NOW }))).toMatch(
      /^CERT_UNTRUSTED: .*not issued by this cluster's root CA/,
    );
    expect(reasonOf(() => verifyNodeCert(root.certPem, certPem, { now: NOW + 21 * 365 * DAY }))).toMatch(
      /^CERT_EXPIRED: the certificate of the cluster's root CA/,
    );
  });

  it('verify refuses a certificate from an impostor CA with the same name', () => {
    const impostor = createRootCA({ now: NOW, commonName: 'tsswarm-ca' });
    const { certPem } = issue('manager', 'm1', {}, impostor);
    expect(new X509Certificate(certPem).issuer).toBe(new X509Certificate(root.certPem).subject);
    expect(reasonOf(() => verifyNodeCert(root.certPem, certPem, { now: NOW }))).toMatch(/^CERT_UNTRUSTED/);
  });

  it('errors carry a shared code for the gRPC status and a CA reason', () => {
    const { certPem } = issue('worker', 'w1');
    try {
      verifyNodeCert(root.certPem, certPem, { now: NOW, revokedSerials: [parseNodeCert(certPem).serial] });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CAError);
      expect((e as CAError).code).toBe('PERMISSION_DENIED');
      expect((e as CAError).grpcStatus).toBe(7);
      expect((e as CAError).name).toBe('CertificateRevokedError');
    }
  });

  it('parseNodeCert refuses a certificate that is not a node certificate', () => {
    expect(reasonOf(() => parseNodeCert(root.certPem))).toMatch(/^BAD_CERT: invalid node certificate: subject has no OU/);
    expect(reasonOf(() => parseNodeCert('hello'))).toMatch(/^BAD_CERT: .*not PEM/);
    const der = asn1.pemToDer(issue('worker', 'w1').certPem, 'CERTIFICATE');
    const cut = asn1.derToPem(der.subarray(0, der.length - 3), 'CERTIFICATE');
    expect(reasonOf(() => parseNodeCert(cut))).toMatch(/^BAD_CERT: .*not a well-formed X\.509 certificate/);
  });

  it('the CA must be a CA and its key must match its certificate', () => {
    const csr = createCSR(generateNodeKey().privateKeyPem);
    const opts = { nodeId: 'x', role: 'worker' as const, clusterId: 'c', now: NOW };
    expect(reasonOf(() => signNodeCSR({ certPem: root.certPem, keyPem: otherRoot.keyPem }, csr, opts))).toMatch(
      /^BAD_CA: .*key does not belong/,
    );
    const leaf = issue('manager', 'm1');
    expect(reasonOf(() => signNodeCSR({ certPem: leaf.certPem, keyPem: leaf.key.privateKeyPem }, csr, opts))).toMatch(
      /^BAD_CA: .*not a CA certificate/,
    );
    expect(() => signNodeCSR(root, csr, { ...opts, nodeId: 'bad id' })).toThrow(/nodeId must be letters, digits and inner hyphens/);
    expect(() => signNodeCSR(root, csr, { ...opts, role: 'admin' as 'worker' })).toThrow(/role must be worker or manager/);
  });
});

// ------------------------------------------------------------------ CSRs

/** A CSR built by hand and properly signed, to make ones with malformed contents. */
function handCSR(
  subject: Buffer,
  spki: Buffer,
  signWith: Parameters<typeof sign>[2],
  alg = '1.2.840.10045.4.3.2',
  digest: string | null = 'sha256',
): string {
  const cri = asn1.sequence(asn1.integer(0), subject, spki, asn1.implicit(0, Buffer.alloc(0), true));
  return asn1.derToPem(
    asn1.sequence(cri, asn1.sequence(asn1.oid(alg)), asn1.bitString(sign(digest, cri, signWith))),
    'CERTIFICATE REQUEST',
  );
}
const cnName = (cn: string) => asn1.sequence(asn1.setOf(asn1.sequence(asn1.oid('2.5.4.3'), asn1.utf8String(cn))));

describe('certificate signing requests', () => {
  const key = generateNodeKey();
  const csr = createCSR(key.privateKeyPem, { nodeId: 'abc' });
  const der = asn1.pemToDer(csr, 'CERTIFICATE REQUEST');
  const opts = { nodeId: 'n1', role: 'worker' as const, clusterId: 'cluster-a', now: NOW };

  it('a well-formed request is accepted and its key ends up in the certificate', () => {
    const cert = signNodeCSR(root, csr, opts);
    expect(keyMatchesCert(key.privateKeyPem, cert)).toBe(true);
    expect(parseNodeCert(cert).nodeId).toBe('n1');
  });

  it('a request changed after signing is refused (tampered subject)', () => {
    const i = der.indexOf(Buffer.from('abc'));
    const t = Buffer.from(der);
    t[i + 2] = 'd'.charCodeAt(0);
    expect(reasonOf(() => signNodeCSR(root, asn1.derToPem(t, 'CERTIFICATE REQUEST'), opts))).toMatch(
      /^BAD_CSR: .*signature does not match its public key/,
    );
  });

  it('a request whose public key was swapped is refused', () => {
    const other = asn1.pemToDer(generateNodeKey().publicKeyPem, 'PUBLIC KEY');
    const mine = asn1.pemToDer(key.publicKeyPem, 'PUBLIC KEY');
    const t = Buffer.from(der);
    expect(der.indexOf(mine)).toBeGreaterThan(0);
    expect(other.length).toBe(mine.length);
    other.copy(t, der.indexOf(mine));
    expect(reasonOf(() => signNodeCSR(root, asn1.derToPem(t, 'CERTIFICATE REQUEST'), opts))).toMatch(
      /^BAD_CSR: .*signature does not match/,
    );
  });

  it('a request with a malformed subject is refused, even when properly signed', () => {
    const spki = asn1.pemToDer(key.publicKeyPem, 'PUBLIC KEY');
    const priv = createPrivateKey(key.privateKeyPem);
    // An attribute with a type but no value.
    const noValue = asn1.sequence(asn1.setOf(asn1.sequence(asn1.oid('2.5.4.3'))));
    expect(reasonOf(() => signNodeCSR(root, handCSR(noValue, spki, priv), opts))).toMatch(
      /^BAD_CSR: invalid certificate signing request: malformed subject: subject attribute value is missing/,
    );
    // A SET where the Name's SEQUENCE belongs.
    expect(reasonOf(() => signNodeCSR(root, handCSR(asn1.setOf(), spki, priv), opts))).toMatch(/^BAD_CSR: .*malformed subject/);
    // An OCTET STRING as a name's value.
    const binary = asn1.sequence(asn1.setOf(asn1.sequence(asn1.oid('2.5.4.3'), asn1.octetString(Buffer.from('x')))));
    expect(reasonOf(() => signNodeCSR(root, handCSR(binary, spki, priv), opts))).toMatch(
      /^BAD_CSR: .*malformed subject: .*expected a string/,
    );
    // The hand-built encoder itself is fine: a good subject passes.
    expect(() => signNodeCSR(root, handCSR(cnName('ok'), spki, priv), opts)).not.toThrow();
  });

  it('a request with a malformed or unsupported public key is refused', () => {
    const priv = createPrivateKey(key.privateKeyPem);
    const spki = asn1.pemToDer(key.publicKeyPem, 'PUBLIC KEY');
    // A point that is not on the curve.
    const bad = Buffer.from(spki);
    bad[bad.length - 1]! ^= 0x01;
    expect(reasonOf(() => signNodeCSR(root, handCSR(cnName('x'), bad, priv), opts))).toMatch(
      /^BAD_CSR: .*malformed public key \(want ECDSA P-256\)/,
    );
    // An Ed25519 key, or a P-384 key: well formed but not what nodes use.
    const ed = generateKeyPairSync('ed25519');
    const edSpki = ed.publicKey.export({ type: 'spki', format: 'der' });
    expect(reasonOf(() => signNodeCSR(root, handCSR(cnName('x'), edSpki, ed.privateKey, '1.3.101.112', null), opts))).toMatch(
      /^BAD_CSR: .*algorithm 1\.3\.101\.112 is not an EC public key/,
    );
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    expect(
      reasonOf(() =>
        signNodeCSR(root, handCSR(cnName('x'), p384.publicKey.export({ type: 'spki', format: 'der' }), p384.privateKey), opts),
      ),
    ).toMatch(/^BAD_CSR: .*curve 1\.3\.132\.0\.34 is not P-256/);
  });

  it('garbage and truncated requests are refused with BAD_CSR', () => {
    expect(reasonOf(() => signNodeCSR(root, 'not a csr', opts))).toMatch(/^BAD_CSR: .*not PEM/);
    expect(reasonOf(() => signNodeCSR(root, asn1.derToPem(der.subarray(0, 40), 'CERTIFICATE REQUEST'), opts))).toMatch(
      /^BAD_CSR: .*malformed request/,
    );
    expect(new BadCSRError('x').message).toMatch(/create a new one/);
  });
});

// ------------------------------------------------------------------ openssl

const opensslPresent = have('openssl', ['version']);
if (!opensslPresent) console.log('skipping openssl cross-checks: `openssl` is not installed');
const dir = mkdtempSync(join(tmpdir(), 'tss-ca-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** stdout and stderr of openssl; throws when it exits non-zero. */
function openssl(args: string[], input?: string): string {
  const r = spawnSync('openssl', args, { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout + r.stderr;
}

describe.skipIf(!opensslPresent)('openssl agrees', () => {
  it('reads the root CA as a CA and the node certificate as verified for TLS server and client use', () => {
    const caFile = join(dir, 'ca.pem');
    const certFile = join(dir, 'node.pem');
    writeFileSync(caFile, root.certPem);
    const { certPem } = issue('manager', 'm1', { now: Date.now() });
    writeFileSync(certFile, certPem);
    const caText = openssl(['x509', '-noout', '-text', '-in', caFile]);
    expect(caText).toMatch(/CA:TRUE/);
    expect(caText).toMatch(/Certificate Sign, CRL Sign/);
    const text = openssl(['x509', '-noout', '-text', '-in', certFile]);
    expect(text).toMatch(/Subject: O = cluster-a, OU = swarm-manager, CN = m1/);
    expect(text).toMatch(/DNS:m1, DNS:swarm-manager/);
    expect(text).toMatch(/Digital Signature, Key Encipherment/);
    expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/CA:FALSE/);
    for (const purpose of ['sslserver', 'sslclient']) {
      expect(openssl(['verify', '-CAfile', caFile, '-purpose', purpose, certFile])).toMatch(/: OK/);
    }
    // And refuses it against another CA.
    writeFileSync(join(dir, 'other.pem'), otherRoot.certPem);
    expect(() => openssl(['verify', '-CAfile', join(dir, 'other.pem'), certFile])).toThrow();
  });

  it('verifies our CSR signature and rejects a tampered one', () => {
    const csr = createCSR(generateNodeKey().privateKeyPem, { nodeId: 'abc' });
    const out = openssl(['req', '-noout', '-verify', '-text'], csr);
    expect(out).toMatch(/Subject: CN = abc/);
    expect(out).toMatch(/self-signature verify OK/);
    const der = asn1.pemToDer(csr, 'CERTIFICATE REQUEST');
    der[der.indexOf(Buffer.from('abc'))] = 'x'.charCodeAt(0);
    // openssl 3.0 exits 0 here; the verdict is on stderr.
    expect(openssl(['req', '-noout', '-verify'], asn1.derToPem(der, 'CERTIFICATE REQUEST'))).toMatch(/verify failure/);
  });

  it('signs a CSR that openssl made, and openssl verifies the result', () => {
    const keyFile = join(dir, 'ossl.key');
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
    const csr = openssl(['req', '-new', '-key', keyFile, '-subj', '/CN=from-openssl']);
    const cert = signNodeCSR(root, csr, { nodeId: 'o1', role: 'worker', clusterId: 'cluster-a', now: Date.now() });
    writeFileSync(join(dir, 'o1.pem'), cert);
    writeFileSync(join(dir, 'ca.pem'), root.certPem);
    expect(openssl(['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'o1.pem')])).toMatch(/: OK/);
  });
});
