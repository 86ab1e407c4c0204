// X.509 certificates and PKCS#10 requests for the cluster: the root CA, node
// keys and CSRs, signing a node's CSR into a certificate that carries its id,
// role and cluster, and reading and verifying such certificates. Built with
// asn1.ts and signed with node:crypto (ECDSA P-256, SHA-256).
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto';
import { UsageError } from '../lib/errors.js';
import * as asn1 from './asn1.js';
import {
  BadCAError,
  BadCertificateError,
  BadCSRError,
  CertificateExpiredError,
  CertificateNotYetValidError,
  CertificateRevokedError,
  NotOperatorError,
  UntrustedCertificateError,
  WrongClusterError,
} from './errors.js';

export type NodeRole = 'worker' | 'manager';

/** The OU of a node certificate, as in Swarm; also a DNS SAN, so TLS can check a peer's role by server name. */
export const roleOU: Readonly<Record<NodeRole, string>> = { worker: 'swarm-worker', manager: 'swarm-manager' };

export const DAY_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_ROOT_CA_VALIDITY_MS = 20 * 365 * DAY_MS;
export const DEFAULT_NODE_CERT_VALIDITY_MS = 90 * DAY_MS;
/** Certificates start this long before `now`, so a node whose clock is a little behind accepts them (Swarm: 1 h). */
export const DEFAULT_BACKDATE_MS = 60 * 60 * 1000;
export const DEFAULT_ROOT_CA_NAME = 'tsswarm-ca';

const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  prime256v1: '1.2.840.10045.3.1.7',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

const KeyUsageBit = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

/** PEM strings of a certificate and its private key (PKCS#8). */
export interface CertAndKey {
  certPem: string;
  keyPem: string;
}

export interface NodeKey {
  /** PKCS#8 PEM of an ECDSA P-256 private key. */
  privateKeyPem: string;
  /** SPKI PEM of its public key. */
  publicKeyPem: string;
}

/** What a node certificate says about its node. */
export interface NodeCertInfo {
  nodeId: string;
  role: NodeRole;
  clusterId: string;
  /** Lowercase hex, no leading zero bytes (the form revocation lists hold). */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 of the certificate's DER, lowercase hex. */
  fingerprint: string;
}

type Instant = Date | number;
const ms = (t: Instant): number => (typeof t === 'number' ? t : t.getTime());

// ------------------------------------------------------------------ helpers

const ecdsaWithSHA256 = (): Buffer => asn1.sequence(asn1.oid(OID.ecdsaWithSHA256));

interface NameAttr {
  oid: string;
  value: string;
}

function encodeName(attrs: readonly NameAttr[]): Buffer {
  return asn1.sequence(...attrs.map((a) => asn1.setOf(asn1.sequence(asn1.oid(a.oid), asn1.utf8String(a.value)))));
}

function parseName(el: asn1.Element | undefined, what: string): NameAttr[] {
  const out: NameAttr[] = [];
  for (const rdn of asn1.expectSequence(el, what)) {
    const atvs = asn1.expectSequence(rdn, `${what} RDN`, asn1.Tag.SET);
    if (atvs.length === 0) throw new asn1.Asn1Error(`${what}: empty RDN`);
    for (const atv of atvs) {
      const [type, value, ...extra] = asn1.expectSequence(atv, `${what} attribute`);
      if (extra.length) throw new asn1.Asn1Error(`${what}: attribute with extra fields`);
      out.push({ oid: asn1.readOid(type, `${what} attribute type`), value: asn1.readString(value, `${what} attribute value`) });
    }
  }
  return out;
}

/** The single value of a name attribute; two values (e.g. two CNs) make the identity ambiguous. */
function singleAttr(attrs: readonly NameAttr[], oid: string, label: string): string {
  const found = attrs.filter((a) => a.oid === oid);
  if (found.length !== 1)
    throw new asn1.Asn1Error(found.length ? `subject has ${found.length} ${label} attributes` : `subject has no ${label}`);
  return found[0]!.value;
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return asn1.sequence(asn1.oid(oid), ...(critical ? [asn1.boolean(true)] : []), asn1.octetString(value));
}

function loadPrivateKey(keyPem: string, what: string, makeError: (d: string, o?: { cause?: unknown }) => Error): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (cause) {
    throw makeError(`${what} is not a readable PEM private key`, { cause });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw makeError(
      `${what} must be an ECDSA P-256 key (got ${key.asymmetricKeyType ?? 'unknown'} ${key.asymmetricKeyDetails?.namedCurve ?? ''})`.trim(),
    );
  }
  return key;
}

function spkiDer(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

/** SubjectKeyIdentifier method 1 of RFC 5280: SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(spki: Buffer): Buffer {
  const [, bits] = asn1.expectSequence(asn1.parse(spki), 'subjectPublicKeyInfo');
  return createHash('sha1').update(asn1.readBitStringBytes(bits, 'subjectPublicKey')).digest();
}

function signed(tbs: Buffer, key: KeyObject): Buffer {
  return asn1.sequence(tbs, ecdsaWithSHA256(), asn1.bitString(sign('sha256', tbs, key)));
}

/** Lowercase hex without leading zeros: the one form serials are compared in. */
export function normalizeSerial(serial: string): string {
  const s = serial.replace(/:/g, '').toLowerCase().replace(/^0+/, '');
  return s === '' ? '0' : s;
}

function serialBytes(serial: string | bigint | undefined, rand: (n: number) => Buffer): Buffer {
  if (serial === undefined) {
    // 128 random bits, positive, first byte non-zero: always 16 bytes long.
    const b = Buffer.from(rand(16));
    b[0] = (b[0]! & 0x7f) | 0x40;
    return b;
  }
  const n = typeof serial === 'bigint' ? serial : /^[0-9a-f]{1,40}$/i.test(serial) ? BigInt(`0x${serial}`) : -1n;
  if (n <= 0n || n >= 1n << 159n) throw UsageError.invalid('serial', 'a positive number of at most 159 bits, in hex', serial);
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
}

function validityFor(now: Instant, validityMs: number, backdateMs: number, field: string): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(validityMs) || validityMs <= 0) throw UsageError.invalid(field, 'a positive number of milliseconds', validityMs);
  if (!Number.isFinite(backdateMs) || backdateMs < 0) throw UsageError.invalid('backdateMs', 'a number of milliseconds ≥ 0', backdateMs);
  const t = ms(now);
  if (!Number.isFinite(t)) throw UsageError.invalid('now', 'a valid time', now);
  // X.509 times have whole seconds.
  return {
    notBefore: new Date(Math.floor((t - backdateMs) / 1000) * 1000),
    notAfter: new Date(Math.floor((t + validityMs) / 1000) * 1000),
  };
}

// ------------------------------------------------------------------ parsing

interface Extension {
  critical: boolean;
  value: Buffer;
}

/** A certificate taken apart; the raw pieces are what signatures and name matching use. */
export interface ParsedCertificate {
  der: Buffer;
  serial: Buffer;
  signatureAlgorithm: string;
  issuerRaw: Buffer;
  subjectRaw: Buffer;
  subject: NameAttr[];
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  extensions: Map<string, Extension>;
}

export function parseCertificateDer(der: Buffer): ParsedCertificate {
  const [tbs, sigAlg, sig, ...rest] = asn1.expectSequence(asn1.parse(der), 'certificate');
  if (rest.length || !sig) throw new asn1.Asn1Error('certificate must have exactly three parts');
  asn1.readBitStringBytes(sig, 'signatureValue');
  const signatureAlgorithm = asn1.readOid(asn1.expectSequence(sigAlg, 'signatureAlgorithm')[0], 'signatureAlgorithm');
  const f = asn1.expectSequence(tbs, 'tbsCertificate');
  let i = 0;
  if (f[0]?.tag === 0xa0) {
    const [v] = asn1.children(f[0]);
    const version = asn1.readSmallInteger(v, 'version');
    if (version !== 2) throw new asn1.Asn1Error(`certificate version ${version + 1} is not supported (want v3)`);
    i = 1;
  } else {
    throw new asn1.Asn1Error('certificate is not X.509 v3');
  }
  const serial = asn1.readUnsignedInteger(f[i++], 'serialNumber');
  asn1.expectSequence(f[i++], 'tbsCertificate.signature');
  const issuer = f[i++];
  parseName(issuer, 'issuer');
  const [nb, na, ...vx] = asn1.expectSequence(f[i++], 'validity');
  if (vx.length) throw new asn1.Asn1Error('validity has extra fields');
  const subjectEl = f[i++];
  const subject = parseName(subjectEl, 'subject');
  const spkiEl = asn1.expectTag(f[i++], asn1.Tag.SEQUENCE, 'subjectPublicKeyInfo');
  const extensions = new Map<string, Extension>();
  for (; i < f.length; i++) {
    const el = f[i]!;
    if (el.tag === 0x81 || el.tag === 0x82) continue; // issuer/subject unique ids
    if (el.tag !== 0xa3) throw new asn1.Asn1Error(`unexpected field with tag 0x${el.tag.toString(16)} in tbsCertificate`);
    for (const ext of asn1.expectSequence(asn1.children(el)[0], 'extensions')) {
      const parts = asn1.expectSequence(ext, 'extension');
      const id = asn1.readOid(parts[0], 'extension id');
      if (parts.length < 2 || parts.length > 3) throw new asn1.Asn1Error(`extension ${id} is malformed`);
      const critical = parts.length === 3 ? asn1.readBoolean(parts[1], 'extension critical') : false;
      const value = asn1.expectTag(parts[parts.length - 1], asn1.Tag.OCTET_STRING, `extension ${id} value`).content;
      if (extensions.has(id)) throw new asn1.Asn1Error(`extension ${id} appears twice`);
      extensions.set(id, { critical, value });
    }
  }
  return {
    der,
    serial,
    signatureAlgorithm,
    issuerRaw: issuer!.raw,
    subjectRaw: subjectEl!.raw,
    subject,
    notBefore: asn1.readTime(nb, 'notBefore'),
    notAfter: asn1.readTime(na, 'notAfter'),
    spki: spkiEl.raw,
    extensions,
  };
}

function certDer(pem: string, makeError: (d: string, o?: { cause?: unknown }) => Error, what = 'the certificate'): Buffer {
  if (typeof pem !== 'string') throw makeError(`${what} must be a PEM string`);
  try {
    return asn1.pemToDer(pem, 'CERTIFICATE');
  } catch (cause) {
    throw makeError(`${what} is not PEM: ${(cause as Error).message}`, { cause });
  }
}

function parseCert(pem: string, makeError: (d: string, o?: { cause?: unknown }) => Error, what = 'the certificate'): ParsedCertificate {
  const der = certDer(pem, makeError, what);
  try {
    return parseCertificateDer(der);
  } catch (cause) {
    throw makeError(`${what} is not a well-formed X.509 certificate: ${(cause as Error).message}`, { cause });
  }
}

/**
 * OpenSSL's view of a certificate our parser accepted. OpenSSL is stricter in
 * places (the fuzz test found flipped bits it refuses), and its refusal must
 * reach the caller as our error, not as a bare crypto exception.
 */
function openssl(
  p: ParsedCertificate,
  makeError: (d: string, o?: { cause?: unknown }) => Error,
  what = 'the certificate',
): X509Certificate {
  try {
    return new X509Certificate(p.der);
  } catch (cause) {
    throw makeError(`${what} is not a well-formed X.509 certificate: ${(cause as Error).message}`, { cause });
  }
}

const makeBadCA = (d: string, o?: { cause?: unknown }): Error => new BadCAError(d, o);
const makeBadCert = (d: string, o?: { cause?: unknown }): Error => new BadCertificateError(d, o);
const _makeBadCSR = (d: string, o?: { cause?: unknown }): Error => new BadCSRError(d, o);

// ------------------------------------------------------------------ root CA

export interface CreateRootCAOptions {
  /** Subject CN of the root (default `tsswarm-ca`). */
  commonName?: string;
  now: Instant;
  /** Default 20 years, as Swarm. */
  validityMs?: number;
  backdateMs?: number;
  serial?: string | bigint;
  /** Random bytes for the serial (default crypto.randomBytes). */
  rand?: (n: number) => Buffer;
}

/** A new self-signed ECDSA P-256 root CA. */
export function createRootCA(opts: CreateRootCAOptions): CertAndKey {
  const cn = opts.commonName ?? DEFAULT_ROOT_CA_NAME;
  if (cn.length === 0 || cn.length > 64) throw UsageError.invalid('commonName', 'between 1 and 64 characters', cn);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = spkiDer(privateKey);
  const ski = keyIdentifier(spki);
  const name = encodeName([{ oid: OID.commonName, value: cn }]);
  const { notBefore, notAfter } = validityFor(
    opts.now,
    opts.validityMs ?? DEFAULT_ROOT_CA_VALIDITY_MS,
    opts.backdateMs ?? DEFAULT_BACKDATE_MS,
    'validityMs',
  );
  const tbs = asn1.sequence(
    asn1.explicit(0, asn1.integer(2)),
    asn1.integer(serialBytes(opts.serial, opts.rand ?? randomBytes)),
    ecdsaWithSHA256(),
    name,
    asn1.sequence(asn1.time(notBefore), asn1.time(notAfter)),
    name,
    spki,
    asn1.explicit(
      3,
      asn1.sequence(
        extension(OID.basicConstraints, true, asn1.sequence(asn1.boolean(true))),
        extension(OID.keyUsage, true, asn1.namedBits([KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign])),
        extension(OID.subjectKeyIdentifier, false, asn1.octetString(ski)),
      ),
    ),
  );
  return {
    certPem: asn1.derToPem(signed(tbs, privateKey), 'CERTIFICATE'),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

export interface CrossSignOptions {
  now: Instant;
  serial?: string | bigint;
  rand?: (n: number) => Buffer;
}

/**
 * The bridge of a root CA rotation: a certificate with the new root's
 * subject, public key and CA extensions, issued and signed by the current
 * root. A node that trusts only the current root accepts a certificate from
 * the new root when it comes with this one (leaf → cross-signed → current
 * root); a node that trusts the new root needs nothing more. Its validity is
 * the new root's, cut at the issuer's own expiry.
 */
export function crossSignRootCA(issuer: CertAndKey, newRootCertPem: string, opts: CrossSignOptions): string {
  const { parsed: by, key, ski: byKeyId } = loadCA(issuer);
  const root = parseCert(newRootCertPem, makeBadCA, 'the new root CA certificate');
  const rootX509 = openssl(root, makeBadCA, 'the new root CA certificate');
  if (!rootX509.ca) throw new BadCAError('the new root certificate is not a CA certificate (basicConstraints CA:TRUE is missing)');
  if (!root.issuerRaw.equals(root.subjectRaw) || !rootX509.verify(rootX509.publicKey))
    throw new BadCAError('the new root certificate is not self-signed: give a root, not an intermediate');
  // Two CA certificates with one key and different issuers make chains that verifiers build differently.
  if (root.spki.equals(by.spki)) throw new BadCAError('the new root has the same key as the current one: a rotation needs a new key');
  if (ms(opts.now) > by.notAfter.getTime()) throw new BadCAError(`the current root CA expired at ${by.notAfter.toISOString()}`);
  // biome-ignore lint/complexity/useMathMinMax: comparing Dates
  const notAfter = root.notAfter > by.notAfter ? by.notAfter : root.notAfter;
  const tbs = asn1.sequence(
    asn1.explicit(0, asn1.integer(2)),
    asn1.integer(serialBytes(opts.serial, opts.rand ?? randomBytes)),
    ecdsaWithSHA256(),
    by.subjectRaw,
    asn1.sequence(asn1.time(root.notBefore), asn1.time(notAfter)),
    root.subjectRaw,
    root.spki,
    asn1.explicit(
      3,
      asn1.sequence(
        extension(OID.basicConstraints, true, asn1.sequence(asn1.boolean(true))),
        extension(OID.keyUsage, true, asn1.namedBits([KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign])),
        extension(OID.subjectKeyIdentifier, false, asn1.octetString(keyIdentifier(root.spki))),
        extension(OID.authorityKeyIdentifier, false, asn1.sequence(asn1.implicit(0, byKeyId))),
      ),
    ),
  );
  return asn1.derToPem(signed(tbs, key), 'CERTIFICATE');
}

// ------------------------------------------------------------------ node keys and CSRs

/** A new ECDSA P-256 key pair for a node. */
export function generateNodeKey(): NodeKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/**
 * A PKCS#10 request for the node's key. The CA decides the certificate's
 * names itself; the subject CN here is only informative (a joining node does
 * not know its id yet).
 */
export function createCSR(keyPem: string, opts: { nodeId?: string } = {}): string {
  const key = loadPrivateKey(keyPem, 'the node key', (d, o) => new UsageError(`createCSR: ${d}`, { field: 'keyPem', ...o }));
  const cn = opts.nodeId ?? 'tsswarm-node';
  if (cn.length === 0 || cn.length > 64) throw UsageError.invalid('nodeId', 'between 1 and 64 characters', cn);
  const cri = asn1.sequence(
    asn1.integer(0),
    encodeName([{ oid: OID.commonName, value: cn }]),
    spkiDer(key),
    asn1.implicit(0, Buffer.alloc(0), true),
  );
  return asn1.derToPem(signed(cri, key), 'CERTIFICATE REQUEST');
}

interface ParsedCSR {
  subject: NameAttr[];
  publicKey: KeyObject;
  spki: Buffer;
}

/** Parses a CSR and checks that it is signed by the key it carries. */
export function parseCSR(csrPem: string): ParsedCSR {
  if (typeof csrPem !== 'string') throw new BadCSRError('the request must be a PEM string');
  let der: Buffer;
  try {
    der = asn1.pemToDer(csrPem, 'CERTIFICATE REQUEST');
  } catch (cause) {
    throw new BadCSRError(`not PEM: ${(cause as Error).message}`, { cause });
  }
  let cri: asn1.Element;
  let sigAlg: string;
  let sig: Buffer;
  let fields: asn1.Element[];
  try {
    const parts = asn1.expectSequence(asn1.parse(der), 'CertificationRequest');
    if (parts.length !== 3) throw new asn1.Asn1Error('CertificationRequest must have exactly three parts');
    cri = parts[0]!;
    const alg = asn1.expectSequence(parts[1], 'signatureAlgorithm');
    sigAlg = asn1.readOid(alg[0], 'signatureAlgorithm');
    if (alg.length !== 1) throw new asn1.Asn1Error('ecdsa-with-SHA256 takes no parameters');
    sig = asn1.readBitStringBytes(parts[2], 'signature');
    fields = asn1.expectSequence(cri, 'certificationRequestInfo');
    const version = asn1.readSmallInteger(fields[0], 'version');
    if (version !== 0) throw new asn1.Asn1Error(`version must be 0 (got ${version})`);
    if (fields.length !== 4 || fields[3]!.tag !== 0xa0)
      throw new asn1.Asn1Error('certificationRequestInfo must have version, subject, public key and attributes');
  } catch (cause) {
    throw new BadCSRError(`malformed request: ${(cause as Error).message}`, { cause });
  }
  let subject: NameAttr[];
  try {
    subject = parseName(fields[1], 'subject');
  } catch (cause) {
    throw new BadCSRError(`malformed subject: ${(cause as Error).message}`, { cause });
  }
  let publicKey: KeyObject;
  const spki = fields[2]!.raw;
  try {
    const [algId] = asn1.expectSequence(fields[2], 'subjectPublicKeyInfo');
    const [alg, curve] = asn1.expectSequence(algId, 'algorithm');
    const algOid = asn1.readOid(alg, 'algorithm');
    if (algOid !== OID.ecPublicKey) throw new asn1.Asn1Error(`algorithm ${algOid} is not an EC public key`);
    const curveOid = asn1.readOid(curve, 'curve');
    if (curveOid !== OID.prime256v1) throw new asn1.Asn1Error(`curve ${curveOid} is not P-256`);
    publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (cause) {
    throw new BadCSRError(`malformed public key (want ECDSA P-256): ${(cause as Error).message}`, { cause });
  }
  if (sigAlg !== OID.ecdsaWithSHA256) throw new BadCSRError(`signature algorithm ${sigAlg} is not ecdsa-with-SHA256`);
  let ok = false;
  try {
    ok = verify('sha256', cri.raw, publicKey, sig);
  } catch {
    ok = false;
  }
  if (!ok) throw new BadCSRError('its signature does not match its public key (the request was altered, or signed with another key)');
  return { subject, publicKey, spki };
}

// ------------------------------------------------------------------ signing node certificates

export interface SignNodeCSROptions {
  nodeId: string;
  role: NodeRole;
  clusterId: string;
  now: Instant;
  /** Default 90 days, as Swarm. Never past the root CA's own expiry. */
  validityMs?: number;
  backdateMs?: number;
  serial?: string | bigint;
  rand?: (n: number) => Buffer;
}

const nodeIdPattern = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

interface LoadedCA {
  parsed: ParsedCertificate;
  x509: X509Certificate;
  key: KeyObject;
  ski: Buffer;
}

function loadCA(ca: CertAndKey): LoadedCA {
  if (!ca || typeof ca.certPem !== 'string' || typeof ca.keyPem !== 'string')
    throw new BadCAError('pass { certPem, keyPem } of the root CA');
  const parsed = parseCert(ca.certPem, makeBadCA, 'the CA certificate');
  const x509 = openssl(parsed, makeBadCA, 'the CA certificate');
  if (!x509.ca) throw new BadCAError('its certificate is not a CA certificate (basicConstraints CA:TRUE is missing)');
  const key = loadPrivateKey(ca.keyPem, 'the CA key', makeBadCA);
  if (!spkiDer(key).equals(parsed.spki)) throw new BadCAError('the CA key does not belong to the CA certificate');
  const skiExt = parsed.extensions.get(OID.subjectKeyIdentifier);
  let ski: Buffer;
  try {
    ski = skiExt
      ? asn1.expectTag(asn1.parse(skiExt.value), asn1.Tag.OCTET_STRING, 'subjectKeyIdentifier').content
      : keyIdentifier(parsed.spki);
  } catch (cause) {
    throw new BadCAError(`its subjectKeyIdentifier is malformed`, { cause });
  }
  return { parsed, x509, key, ski };
}

interface LeafOptions {
  now: Instant;
  validityMs: number;
  backdateMs?: number;
  serial?: string | bigint;
  rand?: (n: number) => Buffer;
  /** O, OU, CN: what the CA decided, never the request's. */
  subject: { clusterId: string; ou: string; cn: string };
  /** Extended key usages (OIDs). */
  eku: readonly string[];
  /** GeneralNames of the subjectAltName, DER-encoded each. */
  san: readonly Buffer[];
}

/** Signs the key of `csrPem` into a leaf certificate of the root `ca`, never valid past the root itself. */
function signLeaf(ca: CertAndKey, csrPem: string, o: LeafOptions): string {
  if (typeof o.subject.clusterId !== 'string' || o.subject.clusterId.length === 0 || o.subject.clusterId.length > 64)
    throw UsageError.invalid('clusterId', 'between 1 and 64 characters', o.subject.clusterId);
  const { parsed: caCert, key: caKey, ski: caKeyId } = loadCA(ca);
  const csr = parseCSR(csrPem);
  if (csr.spki.equals(caCert.spki)) throw new BadCSRError("it carries the root CA's own public key");

  const { notBefore, notAfter: wanted } = validityFor(o.now, o.validityMs, o.backdateMs ?? DEFAULT_BACKDATE_MS, 'validityMs');
  // Dates, not numbers: Math.min would turn them into milliseconds.
  // biome-ignore lint/complexity/useMathMinMax: comparing Dates
  const notAfter = wanted > caCert.notAfter ? caCert.notAfter : wanted;
  if (notAfter <= new Date(ms(o.now))) throw new BadCAError(`the root CA expired at ${caCert.notAfter.toISOString()}; rotate the CA`);
  const tbs = asn1.sequence(
    asn1.explicit(0, asn1.integer(2)),
    asn1.integer(serialBytes(o.serial, o.rand ?? randomBytes)),
    ecdsaWithSHA256(),
    caCert.subjectRaw,
    asn1.sequence(asn1.time(notBefore), asn1.time(notAfter)),
    encodeName([
      { oid: OID.organization, value: o.subject.clusterId },
      { oid: OID.organizationalUnit, value: o.subject.ou },
      { oid: OID.commonName, value: o.subject.cn },
    ]),
    csr.spki,
    asn1.explicit(
      3,
      asn1.sequence(
        extension(OID.basicConstraints, true, asn1.sequence()),
        extension(OID.keyUsage, true, asn1.namedBits([KeyUsageBit.digitalSignature, KeyUsageBit.keyEncipherment])),
        extension(OID.extKeyUsage, false, asn1.sequence(...o.eku.map((e) => asn1.oid(e)))),
        extension(OID.subjectKeyIdentifier, false, asn1.octetString(keyIdentifier(csr.spki))),
        extension(OID.authorityKeyIdentifier, false, asn1.sequence(asn1.implicit(0, caKeyId))),
        ...(o.san.length ? [extension(OID.subjectAltName, false, asn1.sequence(...o.san))] : []),
      ),
    ),
  );
  return asn1.derToPem(signed(tbs, caKey), 'CERTIFICATE');
}

const dnsSan = (name: string): Buffer => asn1.implicit(2, Buffer.from(name, 'latin1'));

/**
 * Signs a node's CSR. The certificate's names come from the CA's decision,
 * not from the request: CN = node id, OU = `swarm-<role>`, O = cluster id;
 * DNS SANs are the node id and `swarm-<role>`. Every node is a TLS client and
 * a server, so both extended key usages are set.
 */
export function signNodeCSR(ca: CertAndKey, csrPem: string, opts: SignNodeCSROptions): string {
  if (typeof opts.nodeId !== 'string' || !nodeIdPattern.test(opts.nodeId))
    throw UsageError.invalid('nodeId', 'letters, digits and inner hyphens, at most 63 characters', opts.nodeId);
  if (opts.role !== 'worker' && opts.role !== 'manager') throw UsageError.invalid('role', 'worker or manager', opts.role);
  const ou = roleOU[opts.role];
  return signLeaf(ca, csrPem, {
    ...opts,
    validityMs: opts.validityMs ?? DEFAULT_NODE_CERT_VALIDITY_MS,
    subject: { clusterId: opts.clusterId, ou, cn: opts.nodeId },
    eku: [OID.serverAuth, OID.clientAuth],
    san: [dnsSan(opts.nodeId), dnsSan(ou)],
  });
}

// ------------------------------------------------------------------ operators and the Engine API's server

/**
 * The OU of an operator's client certificate: a human's credential for the
 * Docker Engine API over TCP (docs/engine-api.md). It is never a node's
 * identity (parseNodeCert refuses it), and a node certificate is never an
 * operator's (verifyOperatorCert refuses it).
 */
export const OPERATOR_OU = 'swarm-operator';
/** The OU of the certificate a node serves the Engine API over TCP with: a TLS server only, never a node's identity. */
export const ENGINE_SERVER_OU = 'swarm-engine-api';

export const DEFAULT_OPERATOR_CERT_VALIDITY_MS = 30 * DAY_MS;
export const MAX_OPERATOR_CERT_VALIDITY_MS = 365 * DAY_MS;
export const MIN_OPERATOR_CERT_VALIDITY_MS = 60_000;

/** An operator's name: the CN of its certificate, shown in the daemons' logs. */
export const OPERATOR_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export interface SignOperatorCSROptions {
  /** Who holds it (CN), e.g. `alice`; letters, digits and `._@-`, at most 64 characters. */
  name: string;
  clusterId: string;
  now: Instant;
  /** Default 30 days; from 1 minute to 1 year. Never past the root CA's own expiry. */
  validityMs?: number;
  backdateMs?: number;
  serial?: string | bigint;
  rand?: (n: number) => Buffer;
}

/** Signs an operator's CSR: CN = name, OU = swarm-operator, O = cluster id, a TLS client only. */
export function signOperatorCSR(ca: CertAndKey, csrPem: string, opts: SignOperatorCSROptions): string {
  if (typeof opts.name !== 'string' || !OPERATOR_NAME_PATTERN.test(opts.name))
    throw UsageError.invalid('--name', 'letters, digits and . _ @ -, starting with a letter or digit, at most 64 characters', opts.name);
  const validityMs = opts.validityMs ?? DEFAULT_OPERATOR_CERT_VALIDITY_MS;
  if (!Number.isFinite(validityMs) || validityMs < MIN_OPERATOR_CERT_VALIDITY_MS || validityMs > MAX_OPERATOR_CERT_VALIDITY_MS)
    throw UsageError.invalid('--expiry', 'a duration from 1m to 8760h (one year)', `${validityMs}ms`);
  return signLeaf(ca, csrPem, {
    ...opts,
    validityMs,
    // An hour's backdate at most, and never more than a tenth of a short validity.
    backdateMs: opts.backdateMs ?? Math.min(DEFAULT_BACKDATE_MS, Math.floor(validityMs / 10)),
    subject: { clusterId: opts.clusterId, ou: OPERATOR_OU, cn: opts.name },
    eku: [OID.clientAuth],
    san: [],
  });
}

export interface SignEngineServerCSROptions {
  nodeId: string;
  clusterId: string;
  now: Instant;
  /** IPv4 addresses the certificate names (iPAddress SANs): what a docker CLI's DOCKER_HOST may say. */
  ips: readonly string[];
  /** DNS names it names (dNSName SANs). */
  dnsNames: readonly string[];
  validityMs?: number;
  backdateMs?: number;
  serial?: string | bigint;
  rand?: (n: number) => Buffer;
}

const ipv4Pattern = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const dnsNamePattern = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** True for a name a dNSName SAN may carry (letters, digits, inner hyphens, dot-separated labels). */
export function isDnsName(s: string): boolean {
  return dnsNamePattern.test(s);
}

/**
 * Signs the CSR of a node's Engine API TLS server: CN = node id, OU =
 * swarm-engine-api, O = cluster id, the addresses and names a client may
 * reach it by as SANs (Go's TLS, the docker CLI's, checks an IP host against
 * iPAddress SANs and a name against dNSName SANs, never the CN). A TLS
 * server only: it cannot act as a node or an operator.
 */
export function signEngineServerCSR(ca: CertAndKey, csrPem: string, opts: SignEngineServerCSROptions): string {
  if (typeof opts.nodeId !== 'string' || !nodeIdPattern.test(opts.nodeId))
    throw UsageError.invalid('nodeId', 'letters, digits and inner hyphens, at most 63 characters', opts.nodeId);
  if (opts.ips.length + opts.dnsNames.length === 0 || opts.ips.length + opts.dnsNames.length > 16)
    throw UsageError.invalid('SANs', 'from 1 to 16 addresses and names', opts.ips.length + opts.dnsNames.length);
  const san: Buffer[] = [];
  for (const ip of opts.ips) {
    if (!ipv4Pattern.test(ip)) throw UsageError.invalid('ips', 'IPv4 addresses', ip);
    san.push(asn1.implicit(7, Buffer.from(ip.split('.').map(Number))));
  }
  for (const d of opts.dnsNames) {
    if (!isDnsName(d)) throw UsageError.invalid('dnsNames', 'DNS names', d);
    san.push(dnsSan(d));
  }
  return signLeaf(ca, csrPem, {
    ...opts,
    validityMs: opts.validityMs ?? DEFAULT_NODE_CERT_VALIDITY_MS,
    subject: { clusterId: opts.clusterId, ou: ENGINE_SERVER_OU, cn: opts.nodeId },
    eku: [OID.serverAuth],
    san,
  });
}

/** What an operator's certificate says. */
export interface OperatorCertInfo {
  name: string;
  clusterId: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint: string;
}

/**
 * Checks a TLS client's certificate (the first of `certPem`; a chain after
 * it is ignored) for an operator of this cluster: signed by the key of one
 * of the trusted roots itself (during a root rotation the trust holds the
 * current and the new root; a certificate of a root rotated out is
 * refused), within its validity, OU swarm-operator, a TLS client, of this
 * cluster. Returns what it says, or throws UntrustedCertificateError,
 * CertificateExpiredError, CertificateNotYetValidError, NotOperatorError,
 * WrongClusterError or BadCertificateError.
 */
export function verifyOperatorCert(trustPem: string, certPem: string, opts: { now: Instant; clusterId: string }): OperatorCertInfo {
  const trust = parseAll(trustPem, makeBadCA, 'the CA certificate');
  const [leaf] = parseAll(certPem, makeBadCert, 'the certificate');
  if (!leaf) throw new BadCertificateError('no certificate was presented');
  let cn: string, ou: string, clusterId: string;
  try {
    cn = singleAttr(leaf.subject, OID.commonName, 'CN');
    ou = singleAttr(leaf.subject, OID.organizationalUnit, 'OU');
    clusterId = singleAttr(leaf.subject, OID.organization, 'O');
  } catch (cause) {
    throw new BadCertificateError(`${(cause as Error).message}: it is not a tsswarm operator certificate`, { cause });
  }
  const x = openssl(leaf, makeBadCert);
  const root = trust.find((r) => issuedBy(x, leaf, openssl(r, makeBadCA, 'a CA certificate'), r));
  if (!root)
    throw new UntrustedCertificateError(
      `operator ${cn}`,
      'get a client certificate of this cluster with `tsswarm ca client-cert` on one of its managers',
    );
  if (ou !== OPERATOR_OU) {
    const what = Object.values(roleOU).includes(ou)
      ? `the node certificate of node ${cn} (${ou})`
      : `a certificate with OU ${JSON.stringify(ou)}`;
    throw new NotOperatorError(`the client certificate is ${what}`);
  }
  const usages = extendedKeyUsages(leaf);
  if (usages && !usages.includes(OID.clientAuth)) throw new NotOperatorError(`the certificate of operator ${cn} is not for TLS clients`);
  const now = ms(opts.now);
  const who = `operator ${cn}`;
  if (now > root.notAfter.getTime()) throw new CertificateExpiredError("the cluster's root CA", root.notAfter);
  if (now < leaf.notBefore.getTime()) throw new CertificateNotYetValidError(who, leaf.notBefore);
  if (now > leaf.notAfter.getTime()) throw new CertificateExpiredError(who, leaf.notAfter);
  if (clusterId !== opts.clusterId) throw new WrongClusterError(who, clusterId, opts.clusterId);
  return {
    name: cn,
    clusterId,
    serial: normalizeSerial(leaf.serial.toString('hex')),
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    fingerprint: createHash('sha256').update(leaf.der).digest('hex'),
  };
}

/** The extended key usages of a certificate (OIDs), undefined when it has none (any use). */
function extendedKeyUsages(p: ParsedCertificate): string[] | undefined {
  const ext = p.extensions.get(OID.extKeyUsage);
  if (!ext) return undefined;
  try {
    return asn1.expectSequence(asn1.parse(ext.value), 'extKeyUsage').map((e) => asn1.readOid(e, 'key purpose'));
  } catch (cause) {
    throw new BadCertificateError(`its extKeyUsage is malformed: ${(cause as Error).message}`, { cause });
  }
}

/** The subjectAltName of a certificate: its IPv4 addresses and DNS names (what Go's TLS checks a host against). */
export function certificateSans(certPem: string): { ips: string[]; dnsNames: string[] } {
  const p = parseCert(certPem, makeBadCert);
  const out = { ips: [] as string[], dnsNames: [] as string[] };
  const ext = p.extensions.get(OID.subjectAltName);
  if (!ext) return out;
  for (const g of asn1.expectSequence(asn1.parse(ext.value), 'subjectAltName')) {
    if (g.tag === 0x87 && g.content.length === 4) out.ips.push([...g.content].join('.'));
    else if (g.tag === 0x82) out.dnsNames.push(g.content.toString('latin1'));
  }
  return out;
}

// ------------------------------------------------------------------ reading and verifying node certificates

function roleOfOU(ou: string): NodeRole {
  for (const [role, name] of Object.entries(roleOU) as [NodeRole, string][]) if (name === ou) return role;
  if (ou === OPERATOR_OU || ou === ENGINE_SERVER_OU)
    throw new BadCertificateError(
      `its OU is ${ou}: it is ${ou === OPERATOR_OU ? "an operator's client certificate" : "a node's Docker Engine API server certificate"}, never a node's identity`,
    );
  throw new BadCertificateError(
    `its OU ${JSON.stringify(ou)} is not a node role (want ${roleOU.worker} or ${roleOU.manager}): it is not a tsswarm node certificate`,
  );
}

function infoOf(p: ParsedCertificate): NodeCertInfo {
  let nodeId: string, ou: string, clusterId: string;
  try {
    nodeId = singleAttr(p.subject, OID.commonName, 'CN');
    ou = singleAttr(p.subject, OID.organizationalUnit, 'OU');
    clusterId = singleAttr(p.subject, OID.organization, 'O');
  } catch (cause) {
    throw new BadCertificateError(`${(cause as Error).message}: it is not a tsswarm node certificate`, { cause });
  }
  return {
    nodeId,
    role: roleOfOU(ou),
    clusterId,
    serial: normalizeSerial(p.serial.toString('hex')),
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    fingerprint: createHash('sha256').update(p.der).digest('hex'),
  };
}

/** Reads a node certificate's identity (no trust decision: see verifyNodeCert). */
export function parseNodeCert(certPem: string): NodeCertInfo {
  return infoOf(parseCert(certPem, makeBadCert));
}

export interface VerifyNodeCertOptions {
  now: Instant;
  /** Serials of removed nodes' certificates, in any hex case, with or without leading zeros. */
  revokedSerials?: Iterable<string>;
  /** When given, the certificate must belong to this cluster. */
  clusterId?: string;
}

/** The certificates of a PEM text (a trust bundle, or a leaf and its chain), each parsed. */
function parseAll(pem: string, makeError: (d: string, o?: { cause?: unknown }) => Error, what: string): ParsedCertificate[] {
  if (typeof pem !== 'string') throw makeError(`${what} must be a PEM string`);
  let ders: Buffer[];
  try {
    ders = asn1.pemBlocksToDer(pem, 'CERTIFICATE');
  } catch (cause) {
    throw makeError(`${what} is not PEM: ${(cause as Error).message}`, { cause });
  }
  return ders.map((der) => {
    try {
      return parseCertificateDer(der);
    } catch (cause) {
      throw makeError(`${what} is not a well-formed X.509 certificate: ${(cause as Error).message}`, { cause });
    }
  });
}

/** `child` names `parent` as its issuer and carries its signature. */
function issuedBy(
  child: X509Certificate,
  childParsed: ParsedCertificate,
  parent: X509Certificate,
  parentParsed: ParsedCertificate,
): boolean {
  return childParsed.issuerRaw.equals(parentParsed.subjectRaw) && child.checkIssued(parent) && child.verify(parent.publicKey);
}

/** How many CA certificates may stand between a leaf and its root (a rotation needs one). */
const MAX_INTERMEDIATES = 2;

/**
 * The root of `trust` that `leaf` chains to, directly or through CA
 * certificates of `chain` that are valid at `now` (the cross-signed
 * certificate of a root rotation); undefined when none does.
 */
function chainRoot(
  trust: readonly ParsedCertificate[],
  leaf: ParsedCertificate,
  chain: readonly ParsedCertificate[],
  now: number,
  makeError: (d: string, o?: { cause?: unknown }) => Error,
): ParsedCertificate | undefined {
  const roots = trust.map((p) => ({ p, x: openssl(p, makeBadCA, 'a CA certificate') }));
  const links = chain.map((p) => ({ p, x: openssl(p, makeError, 'a certificate of the chain') }));
  let cur = { p: leaf, x: openssl(leaf, makeError) };
  const used = new Set<number>();
  for (let depth = 0; depth <= MAX_INTERMEDIATES; depth++) {
    const root = roots.find((r) => issuedBy(cur.x, cur.p, r.x, r.p));
    if (root) return root.p;
    const i = links.findIndex(
      (l, k) =>
        !used.has(k) && l.x.ca && now >= l.p.notBefore.getTime() && now <= l.p.notAfter.getTime() && issuedBy(cur.x, cur.p, l.x, l.p),
    );
    if (i < 0) return undefined;
    used.add(i);
    cur = links[i]!;
  }
  return undefined;
}

/**
 * Checks a node certificate against the cluster's trust: `caCertPem` holds
 * one root or several (during a root rotation, the current and the new one),
 * and `certPem` the node's certificate, possibly followed by its chain (a
 * certificate from a new root carries the cross-signed certificate that
 * links it to the current root). The certificate must chain to one of the
 * roots, be within its validity (and the root's), not revoked, of this
 * cluster. Returns what it says, or throws UntrustedCertificateError,
 * CertificateExpiredError, CertificateNotYetValidError,
 * CertificateRevokedError, WrongClusterError or BadCertificateError.
 */
export function verifyNodeCert(caCertPem: string, certPem: string, opts: VerifyNodeCertOptions): NodeCertInfo {
  const trust = parseAll(caCertPem, makeBadCA, 'the CA certificate');
  const [parsed, ...chain] = parseAll(certPem, makeBadCert, 'the certificate');
  const info = infoOf(parsed!);
  const who = `node ${info.nodeId}`;
  const now = ms(opts.now);
  const root = chainRoot(trust, parsed!, chain, now, makeBadCert);
  if (!root) throw new UntrustedCertificateError(who);
  if (now > root.notAfter.getTime()) throw new CertificateExpiredError("the cluster's root CA", root.notAfter);
  if (now < parsed!.notBefore.getTime()) throw new CertificateNotYetValidError(who, parsed!.notBefore);
  if (now > parsed!.notAfter.getTime()) throw new CertificateExpiredError(who, parsed!.notAfter);
  if (opts.revokedSerials) {
    for (const s of opts.revokedSerials) if (normalizeSerial(s) === info.serial) throw new CertificateRevokedError(who, info.serial);
  }
  if (opts.clusterId !== undefined && opts.clusterId !== info.clusterId) throw new WrongClusterError(who, info.clusterId, opts.clusterId);
  return info;
}

/**
 * The certificate of `trust` whose key signed `certPem`'s first certificate
 * itself (not through a chain), as PEM; undefined when none did. During a
 * root rotation this tells a certificate from the new root (signed by its
 * key) from one of the current root.
 */
export function directIssuer(trust: string, certPem: string): string | undefined {
  const [leaf] = parseAll(certPem, makeBadCert, 'the certificate');
  const x = openssl(leaf!, makeBadCert);
  for (const p of parseAll(trust, makeBadCA, 'the CA certificate')) {
    if (issuedBy(x, leaf!, openssl(p, makeBadCA, 'a CA certificate'), p)) return asn1.derToPem(p.der, 'CERTIFICATE');
  }
  return undefined;
}

/** Each certificate of a PEM text as its own PEM block, in order (a bundle's roots, a leaf and its chain). */
export function splitCertificates(pem: string): string[] {
  return parseAll(pem, makeBadCert, 'the certificates').map((p) => asn1.derToPem(p.der, 'CERTIFICATE'));
}

/** True when the private key belongs to the certificate (e.g. when loading a node's saved state). */
export function keyMatchesCert(keyPem: string, certPem: string): boolean {
  const parsed = parseCert(certPem, makeBadCert);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    return false;
  }
  return spkiDer(key).equals(parsed.spki);
}
