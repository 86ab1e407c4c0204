// Revocation by node: one entry per node in the cluster object says which of
// its certificates are revoked (all issued up to a moment, but its newest),
// so renewals replace an entry instead of adding serials. Pure functions of
// the entries and the time; manager.ts writes what they return.
import type { NodeRevocation, RevokedCertificate } from '../proto/gen/objects.js';

/**
 * Clock skew tolerated between the manager that signed a certificate and the
 * one checking it: a certificate up to this far before its notBefore is
 * accepted, and a demotion revokes certificates with a notBefore up to this
 * far in the future (another leader's clock may run ahead).
 */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** How long a certificate replaced by a renewal may still renew (the answer carrying its successor may have been lost). */
export const REPLACED_RENEWAL_GRACE_MS = 120_000;

/** What is needed of a certificate to tell whether it is revoked. */
export interface CertRef {
  nodeId: string;
  /** Normalized (ca/ normalizeSerial). */
  serial: string;
  notBeforeMs: number;
}

export type Revocation =
  | { revoked: false }
  | {
      revoked: true;
      /** removed: every certificate of the node; replaced: by a renewal; demoted: its manager certificate, by a demotion. */
      reason: 'removed' | 'replaced' | 'demoted';
      /** Until then the certificate may still renew (0: never). */
      graceUntilMs: number;
      /** The certificate may also open its session during the grace (after a demotion, to learn the new role). */
      sessionGrace: boolean;
    };

const GOOD: Revocation = { revoked: false };

/** The revocation fields of a cluster spec (generated type, optional pieces allowed). */
export interface RevocationSpec {
  nodeRevocations?: NodeRevocation[];
  revokedCertificates?: RevokedCertificate[];
  revokedSerials?: string[];
}

/** O(1) lookups over a cluster's revocations; build once per cluster version. */
export class RevocationIndex {
  private readonly byNode = new Map<string, NodeRevocation>();
  /** Serials revoked one by one by earlier versions: replacedAtMs, 0 for a removal. */
  private readonly legacy = new Map<string, number>();

  constructor(spec: RevocationSpec | undefined) {
    for (const r of spec?.nodeRevocations ?? []) this.byNode.set(r.nodeId, r);
    for (const s of spec?.revokedSerials ?? []) this.legacy.set(s, 0);
    for (const r of spec?.revokedCertificates ?? []) this.legacy.set(r.serial, Number(r.replacedAtMs) || 0);
  }

  get nodes(): number {
    return this.byNode.size;
  }

  check(c: CertRef): Revocation {
    const old = this.legacy.get(c.serial);
    if (old !== undefined) {
      return old > 0
        ? { revoked: true, reason: 'replaced', graceUntilMs: old + REPLACED_RENEWAL_GRACE_MS, sessionGrace: false }
        : { revoked: true, reason: 'removed', graceUntilMs: 0, sessionGrace: false };
    }
    const e = this.byNode.get(c.nodeId);
    if (!e) return GOOD;
    if (e.removed) return { revoked: true, reason: 'removed', graceUntilMs: 0, sessionGrace: false };
    if (e.currentSerial && c.serial === e.currentSerial) return GOOD;
    if (c.notBeforeMs > Number(e.issuedBeforeMs)) return GOOD;
    return {
      revoked: true,
      reason: e.demoted ? 'demoted' : 'replaced',
      graceUntilMs: Number(e.graceUntilMs) || 0,
      sessionGrace: e.demoted,
    };
  }
}

/** A certificate's validity, as the manager knows it. */
export interface CertTimes {
  notBeforeMs: number;
  notAfterMs: number;
}

/** The entries without the node's and without those whose every revoked certificate has expired, and the node's previous entry. */
function others(
  list: readonly NodeRevocation[],
  nodeId: string,
  now: number,
): { kept: NodeRevocation[]; prev: NodeRevocation | undefined } {
  let prev: NodeRevocation | undefined;
  const kept: NodeRevocation[] = [];
  for (const r of list) {
    if (r.nodeId === nodeId) prev = r;
    else if (Number(r.expiryMs) > now) kept.push(r);
  }
  return { kept, prev };
}

function entry(r: Omit<NodeRevocation, 'removed' | 'demoted'> & Partial<Pick<NodeRevocation, 'removed' | 'demoted'>>): NodeRevocation {
  return { removed: false, demoted: false, ...r };
}

/**
 * After a renewal: every older certificate of the node is revoked, the new
 * one is its current; the replaced certificates may renew for the grace.
 * `replaced` are the certificates known to be replaced (the one presented
 * and the one on record); the previous entry already covers earlier ones,
 * because each renewal moves issuedBefore past the notBefore it issued.
 */
export function revokeOnRenewal(
  list: readonly NodeRevocation[],
  r: {
    nodeId: string;
    serial: string;
    issued: CertTimes;
    replaced: ReadonlyArray<Partial<CertTimes>>;
    now: number;
    defaultExpiryMs: number;
  },
): NodeRevocation[] {
  const { kept, prev } = others(list, r.nodeId, r.now);
  let before = Math.max(Number(prev?.issuedBeforeMs ?? 0), r.issued.notBeforeMs);
  let expiry = prev ? Number(prev.expiryMs) : 0;
  for (const c of r.replaced) {
    if (c.notBeforeMs !== undefined) before = Math.max(before, c.notBeforeMs);
    expiry = Math.max(expiry, c.notAfterMs || r.now + r.defaultExpiryMs);
  }
  return [
    ...kept,
    entry({
      nodeId: r.nodeId,
      issuedBeforeMs: before,
      currentSerial: r.serial,
      graceUntilMs: r.now + REPLACED_RENEWAL_GRACE_MS,
      expiryMs: expiry,
    }),
  ];
}

/**
 * After a demotion: every certificate the node holds now (its manager
 * certificate) is revoked. It may still renew, and open its session, until
 * that certificate expires: a renewal only ever hands it the worker
 * certificate the store allows, and a node that was down when demoted must
 * still be able to learn its new role when it comes back.
 */
export function revokeOnDemote(
  list: readonly NodeRevocation[],
  r: { nodeId: string; certExpiryMs: number; now: number; defaultExpiryMs: number },
): NodeRevocation[] {
  const { kept, prev } = others(list, r.nodeId, r.now);
  const certExpiry = r.certExpiryMs || r.now + r.defaultExpiryMs;
  return [
    ...kept,
    entry({
      nodeId: r.nodeId,
      issuedBeforeMs: Math.max(Number(prev?.issuedBeforeMs ?? 0), r.now + CLOCK_SKEW_MS),
      currentSerial: '',
      graceUntilMs: Math.max(r.now + REPLACED_RENEWAL_GRACE_MS, certExpiry),
      expiryMs: Math.max(Number(prev?.expiryMs ?? 0), certExpiry),
      demoted: true,
    }),
  ];
}

/** After a removal: every certificate of the node is revoked, with no grace, until the last one expires. */
export function revokeOnRemove(
  list: readonly NodeRevocation[],
  r: { nodeId: string; certExpiryMs: number; now: number; defaultExpiryMs: number },
): NodeRevocation[] {
  const { kept, prev } = others(list, r.nodeId, r.now);
  return [
    ...kept,
    entry({
      nodeId: r.nodeId,
      issuedBeforeMs: Math.max(Number(prev?.issuedBeforeMs ?? 0), r.now + CLOCK_SKEW_MS),
      currentSerial: '',
      graceUntilMs: 0,
      expiryMs: Math.max(Number(prev?.expiryMs ?? 0), r.certExpiryMs || r.now + r.defaultExpiryMs),
      removed: true,
    }),
  ];
}

/** The per-serial entries of earlier versions that have not expired yet (they are never added to any more). */
export function liveLegacyRevocations(list: readonly RevokedCertificate[], now: number): RevokedCertificate[] {
  return list.filter((x) => Number(x.expiryMs) > now);
}
