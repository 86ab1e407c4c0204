// Who is calling: every manager service checks the caller's mTLS certificate
// per call (the TLS layer requests one but lets calls without it through, so
// joining can work on the same port). A certificate must be signed by this
// cluster's CA, unexpired and not revoked; then the store has the last word:
// the node must still exist, with the role the call needs (a removed node's
// every certificate, and a demoted manager's manager certificate, stop
// working at once, whatever they say). During a root CA rotation the trust
// holds several roots, and the caller learns which one signed its certificate.
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { TsswarmError } from '../lib/errors.js';
import { peerCertificate } from '../lib/tls.js';
import {
  CAError,
  CLOCK_SKEW_MS,
  type CertRef,
  caDigest,
  parseNodeCert,
  REPLACED_RENEWAL_GRACE_MS,
  type Revocation,
  splitCertificates,
} from '../ca/index.js';

export { CLOCK_SKEW_MS, REPLACED_RENEWAL_GRACE_MS };

export type Role = 'worker' | 'manager';

export interface Caller {
  nodeId: string;
  role: Role;
  serial: string;
  /** The certificate's validity (unix ms). */
  notBeforeMs: number;
  notAfterMs: number;
  /** caDigest of the trusted root whose key signed the certificate (a rotation tells old from new by it). */
  rootDigest?: string;
}

export interface AuthzContext {
  /** The roots this manager trusts, as PEM (several during a root CA rotation). */
  caCertPem: () => string;
  clusterId: () => string;
  /** Whether the cluster revoked this certificate (ca/revocation.ts); absent: nothing is revoked. */
  revocation?: (cert: CertRef) => Revocation;
  /**
   * The node's role in the store (the role it is meant to have: spec.role),
   * null when the store does not hold the node. Absent: the certificate alone decides.
   */
  storeRole?: (nodeId: string) => Role | null;
}

function derToPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}

const verified = new Map<string, { ca: string; until: number; rootDigest: string }>();

/** The trusted roots, parsed once per trust text (it changes only with a rotation). */
let trustCache: { pem: string; roots: { x: X509Certificate; digest: string }[] } | undefined;
function trustRoots(pem: string): { x: X509Certificate; digest: string }[] {
  if (trustCache?.pem !== pem) {
    const roots = pem ? splitCertificates(pem).map((p) => ({ x: new X509Certificate(p), digest: caDigest(p) })) : [];
    trustCache = { pem, roots };
  }
  return trustCache.roots;
}

/**
 * The verified caller, or null when the call carries no certificate. Throws
 * for a bad certificate. `renewal`: the call renews the caller's own
 * certificate, which a just-replaced certificate may still do for a grace.
 * `session`: the call opens the node's session, which a demoted manager's
 * revoked certificate may still do for the grace, to learn its new role.
 * A certificate is accepted up to CLOCK_SKEW_MS before its notBefore: the
 * manager that signed it may have a clock that runs ahead of this one.
 */
export function callerOf(
  call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null },
  ctx: AuthzContext,
  now = Date.now(),
  opts: { renewal?: boolean; session?: boolean } = {},
): Caller | null {
  const pc = peerCertificate(call);
  if (!pc) return null;
  const pem = derToPem(pc.raw);
  const ca = ctx.caCertPem();
  const key = pc.fingerprint256;
  const cached = verified.get(key);
  if (!cached || cached.ca !== ca) {
    const x = new X509Certificate(pem);
    // Only roots are trusted here: a certificate signed by the key of a root being rotated to is
    // accepted because that root is in the trust, never because of a chain the caller sent.
    const root = trustRoots(ca).find((r) => x.verify(r.x.publicKey));
    if (!root) {
      throw new TsswarmError(
        'UNAUTHENTICATED',
        "the client certificate was not issued by this cluster's CA: the node belongs to another cluster (or still holds a certificate of a root CA rotated out); make it leave and join this one",
      );
    }
    verified.set(key, { ca, until: Date.parse(x.validTo), rootDigest: root.digest });
    if (verified.size > 10_000) verified.delete(verified.keys().next().value as string);
  }
  let info: ReturnType<typeof parseNodeCert>;
  try {
    info = parseNodeCert(pem);
  } catch (e) {
    // Signed by the cluster's root but no node's: an operator's client certificate, say.
    if (e instanceof CAError) throw new TsswarmError('UNAUTHENTICATED', `the client certificate is not a node certificate: ${e.message}`);
    throw e;
  }
  if (now > (verified.get(key)?.until ?? 0))
    throw new TsswarmError(
      'UNAUTHENTICATED',
      `the certificate of node ${info.nodeId} expired: the node must renew it (restart its daemon) or join again`,
    );
  if (info.clusterId && info.clusterId !== ctx.clusterId())
    throw new TsswarmError('UNAUTHENTICATED', `node ${info.nodeId} belongs to cluster ${info.clusterId}, not this one`);
  const notBeforeMs = info.notBefore.getTime();
  if (now + CLOCK_SKEW_MS < notBeforeMs) {
    throw new TsswarmError(
      'UNAUTHENTICATED',
      `the certificate of node ${info.nodeId} is not valid before ${info.notBefore.toISOString()}, more than ${CLOCK_SKEW_MS / 60_000} minutes after this manager's clock (${new Date(now).toISOString()}): correct the clock of this manager or of the one that issued it (run NTP)`,
    );
  }
  const r = ctx.revocation?.({ nodeId: info.nodeId, serial: info.serial, notBeforeMs });
  if (r?.revoked) {
    const inGrace = now < r.graceUntilMs && (opts.renewal || (opts.session && r.sessionGrace));
    if (!inGrace) throw revokedError(info.nodeId, info.serial, r.reason);
  }
  return {
    nodeId: info.nodeId,
    role: info.role,
    serial: info.serial,
    notBeforeMs,
    notAfterMs: info.notAfter.getTime(),
    rootDigest: verified.get(key)?.rootDigest ?? '',
  };
}

function revokedError(nodeId: string, serial: string, reason: 'removed' | 'replaced' | 'demoted'): TsswarmError {
  switch (reason) {
    case 'removed':
      return new TsswarmError(
        'PERMISSION_DENIED',
        `node ${nodeId} was removed from the cluster; its certificate is revoked. Join it again with a token`,
      );
    case 'replaced':
      return new TsswarmError(
        'PERMISSION_DENIED',
        `the certificate of node ${nodeId} (serial ${serial}) was replaced by a renewal and is revoked: the node must use its new certificate (restart its daemon), or leave and join again`,
      );
    case 'demoted':
      return new TsswarmError(
        'PERMISSION_DENIED',
        `the manager certificate of node ${nodeId} (serial ${serial}) was revoked when the node was demoted: it may only renew, to get its worker certificate (restart its daemon), or leave and join again`,
      );
  }
}

const NOT_A_MANAGER =
  "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";

/** Refuses a caller the store does not know (removed), or knows with a role the call does not allow (demoted). */
export function requireStoreRole(c: Caller, ctx: AuthzContext, roles: readonly Role[]): void {
  if (!ctx.storeRole) return;
  const r = ctx.storeRole(c.nodeId);
  if (r === null) {
    throw new TsswarmError(
      'PERMISSION_DENIED',
      `node ${c.nodeId} is not a member of this cluster (it was removed, or this manager has not caught up yet): its certificates are refused; join it again with a token`,
    );
  }
  if (!roles.includes(r)) {
    throw new TsswarmError(
      'PERMISSION_DENIED',
      `${NOT_A_MANAGER} (node ${c.nodeId} was demoted to ${r}: its ${c.role} certificate no longer grants manager calls)`,
    );
  }
}

/** The caller, who must present a valid certificate with one of the roles, and hold one of them in the store. */
export function requireRole(
  call: Parameters<typeof callerOf>[0],
  ctx: AuthzContext,
  roles: readonly Role[],
  opts: Parameters<typeof callerOf>[3] = {},
): Caller {
  const c = callerOf(call, ctx, Date.now(), opts);
  if (!c) throw new TsswarmError('UNAUTHENTICATED', 'this call needs a node certificate: join the node to the cluster first');
  if (!roles.includes(c.role)) throw new TsswarmError('PERMISSION_DENIED', NOT_A_MANAGER);
  requireStoreRole(c, ctx, roles);
  return c;
}
