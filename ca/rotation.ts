// Root CA rotation as Swarm does it, as pure functions of the cluster's CA
// fields: start (a new root and its cross-signed certificate), what nodes
// trust and who signs meanwhile, progress over the nodes' certificates, and
// the end (the new root alone, new join tokens). The manager writes what
// these return; time and randomness are arguments.
import { createHash, randomBytes } from 'node:crypto';
import type { RootRotation } from '../proto/gen/objects.js';
import { pemBlocksToDer } from './asn1.js';
import { caDigest, makeJoinToken } from './tokens.js';
import { type CertAndKey, createRootCA, crossSignRootCA } from './x509.js';

/** The CA fields of a cluster spec that a rotation reads and writes. */
export interface RootCAFields {
  rootCaCertPem: string;
  rootCaKeyPem: string;
  workerToken: string;
  managerToken: string;
  rootRotation?: RootRotation | null;
}

/** The certificates of several PEM texts as one PEM text, each once, in order. */
export function joinCertificates(...pems: readonly string[]): string {
  const seen = new Set<string>();
  let out = '';
  for (const pem of pems) {
    if (!pem) continue;
    for (const der of pemBlocksToDer(pem, 'CERTIFICATE')) {
      const k = der.toString('base64');
      if (seen.has(k)) continue;
      seen.add(k);
      out += `-----BEGIN CERTIFICATE-----\n${k.replace(/.{64}/g, '$&\n')}${k.length % 64 ? '\n' : ''}-----END CERTIFICATE-----\n`;
    }
  }
  return out;
}

/** SHA-256 of a trust bundle's certificates (their DER, in order), hex: what sessions compare. */
export function bundleDigest(pem: string): string {
  const h = createHash('sha256');
  for (const der of pemBlocksToDer(pem, 'CERTIFICATE')) h.update(der);
  return h.digest('hex');
}

/**
 * The roots nodes trust: the current one; during a rotation also the new one
 * and those of rotations it restarted (a node that moved to one of them must
 * still be heard until it moves again).
 */
export function trustBundle(s: RootCAFields): string {
  const r = s.rootRotation;
  return r ? joinCertificates(s.rootCaCertPem, ...r.supersededCaCertPems, r.caCertPem) : joinCertificates(s.rootCaCertPem);
}

/**
 * Who signs node certificates: the current root, or during a rotation the
 * new root's key; `chainPem` is what goes after the node's certificate so
 * that nodes trusting only the current root accept it (the cross-signed
 * certificate), '' when nothing is needed.
 */
export function signingCA(s: RootCAFields): { ca: CertAndKey; chainPem: string; rootDigest: string } {
  const r = s.rootRotation;
  if (r) return { ca: { certPem: r.caCertPem, keyPem: r.caKeyPem }, chainPem: r.crossSignedCaCertPem, rootDigest: caDigest(r.caCertPem) };
  return { ca: { certPem: s.rootCaCertPem, keyPem: s.rootCaKeyPem }, chainPem: '', rootDigest: caDigest(s.rootCaCertPem) };
}

export interface StartRotationOptions {
  now: number;
  /** Subject CN of the new root; it should differ from the current root's, so the two are told apart by name too. */
  commonName: string;
  rand?: (n: number) => Buffer;
}

/**
 * A rotation to a fresh root, cross-signed by the current root's key. A
 * rotation already under way is replaced (as Swarm does on a second
 * `--rotate`): its new root stays trusted until this one ends.
 */
export function startRotation(s: RootCAFields, o: StartRotationOptions): RootRotation {
  const next = createRootCA({ commonName: o.commonName, now: o.now, rand: o.rand });
  const cross = crossSignRootCA({ certPem: s.rootCaCertPem, keyPem: s.rootCaKeyPem }, next.certPem, { now: o.now, rand: o.rand });
  const prev = s.rootRotation;
  return {
    caCertPem: next.certPem,
    caKeyPem: next.keyPem,
    crossSignedCaCertPem: cross,
    startedAtMs: o.now,
    supersededCaCertPems: prev ? [...prev.supersededCaCertPems, prev.caCertPem] : [],
  };
}

/** What a rotation's progress is read from: each node and the root its certificate came from. */
export interface NodeRoot {
  id: string;
  name: string;
  /** caDigest of the root that signed the node's current certificate ('' unknown). */
  rootDigest: string;
}

export interface RotationProgress {
  inProgress: boolean;
  /** Nodes whose certificate is from the root being rotated to. */
  done: number;
  total: number;
  /** The other nodes' names, in the order given. */
  pending: string[];
}

export function rotationProgress(s: RootCAFields, nodes: readonly NodeRoot[]): RotationProgress {
  const r = s.rootRotation;
  if (!r) return { inProgress: false, done: nodes.length, total: nodes.length, pending: [] };
  const want = caDigest(r.caCertPem);
  const pending = nodes.filter((n) => n.rootDigest !== want).map((n) => n.name || n.id);
  return { inProgress: true, done: nodes.length - pending.length, total: nodes.length, pending };
}

/**
 * The end of a rotation: the new root is the root, the current one and any
 * superseded ones are no longer trusted, and the join tokens are new (they
 * pin the root's digest, so the old ones would be refused by a joining
 * node's CA check anyway). Call it once every node's certificate is from
 * the new root (rotationProgress); undefined when no rotation is under way.
 */
export function finishRotation(s: RootCAFields, rand: (n: number) => Buffer = randomBytes): RootCAFields | undefined {
  const r = s.rootRotation;
  if (!r) return undefined;
  return {
    rootCaCertPem: r.caCertPem,
    rootCaKeyPem: r.caKeyPem,
    workerToken: makeJoinToken(r.caCertPem, 'worker', rand),
    managerToken: makeJoinToken(r.caCertPem, 'manager', rand),
    rootRotation: null,
  };
}
