// Certificate revocation as node operations write it into the cluster object:
// on demotion (manager certificates), on removal (every certificate of the
// node), keeping the per-serial entries of earlier versions until they expire.
import { DEFAULT_NODE_CERT_VALIDITY_MS, liveLegacyRevocations, revokeOnDemote } from '../../ca/index.js';
import { Cluster, type ClusterSpec, type Node, type NodeRevocation } from '../../proto/gen/objects.js';
import type { MemoryStore } from '../store/index.js';

type StoreTx = Parameters<Parameters<MemoryStore['update']>[0]>[0];

/**
 * In the demotion's transaction: the node's manager certificates are revoked
 * with its role. They may still renew (to a worker certificate) and open the
 * node's session, nothing else: not the Raft port, not the Control API.
 */
export function revokeDemoted(tx: StoreTx, n: Node, now: number): void {
  const cur = tx.cluster.list()[0]!;
  const rev = revokeOnDemote(cur.spec.nodeRevocations, {
    nodeId: n.meta.id,
    certExpiryMs: Number(n.certificate?.expiryMs ?? 0),
    now,
    defaultExpiryMs: nodeCertValidityMs(cur.spec),
  });
  tx.cluster.update(withRevocations(cur, rev, now));
}

/** The cluster with these per-node revocations, and the per-serial ones of earlier versions that have not expired. */
export function withRevocations(c: Cluster, nodeRevocations: NodeRevocation[], now: number): Cluster {
  return Cluster.create({
    ...c,
    spec: { ...c.spec, nodeRevocations, revokedCertificates: liveLegacyRevocations(c.spec.revokedCertificates, now) },
  });
}

export function nodeCertValidityMs(spec: ClusterSpec): number {
  return Number(spec.nodeCertExpiryMs) || DEFAULT_NODE_CERT_VALIDITY_MS;
}
