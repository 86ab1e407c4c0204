// The Control API's root CA calls (`swarm ca`): the root and a rotation's
// progress, starting (or restarting) a rotation, and the leader's duty of
// ending one once every node holds a certificate from the new root. The
// steps themselves are ca/rotation.ts; this file reads the store and writes
// what they return. Also the certificates of the Docker Engine API over TCP:
// operators' client certificates and the nodes' server certificates.
import { randomBytes } from 'node:crypto';
import { TsswarmError } from '../../lib/errors.js';
import type {
  IssueEngineCertificateResponse,
  IssueOperatorCertificateRequest,
  IssueOperatorCertificateResponse,
  RootCAStatus,
} from '../../proto/gen/control.js';
import { Cluster, type ClusterSpec, type Node } from '../../proto/gen/objects.js';
import {
  finishRotation,
  isDnsName,
  type NodeRoot,
  parseCertificateDer,
  rotationProgress,
  signEngineServerCSR,
  signingCA,
  signOperatorCSR,
  splitCertificates,
  startRotation,
  trustBundle,
} from '../../ca/index.js';
import { certValidity } from '../../ca/validity.js';
import { VersionConflictError } from '../store/index.js';
import type { ManagerContext } from './context.js';

/** The root a node's certificate is from: its session's when known, else the store's record of the last one issued. */
function rootOf(n: Node, sessionRoots: ReadonlyMap<string, string>): string {
  const stored = n.certificate?.rootDigest ?? '';
  const live = sessionRoots.get(n.meta.id);
  return live !== undefined && live !== stored ? '' : stored;
}

/** At most this many pending nodes are named in a status. */
const PENDING_NAMED = 20;

export class CaApi {
  /** Set while a rotation's end is being written, so the periodic check does not write it twice. */
  private finishing = false;

  /**
   * `sessionRoots`: on the leader, the root of the certificate each node opened its latest
   * session with. It has the last word over the store's record of the latest certificate
   * issued: a node whose answer was lost still holds its old certificate, and must renew again
   * before the old root stops being trusted.
   */
  constructor(
    private readonly m: ManagerContext,
    private readonly sessionRoots: () => ReadonlyMap<string, string> = () => new Map(),
  ) {}

  private nodeRoots(): NodeRoot[] {
    const live = this.sessionRoots();
    return this.m.store.view((tx) =>
      tx.nodes.list().map((n) => ({ id: n.meta.id, name: n.spec?.name ?? '', rootDigest: rootOf(n, live) })),
    );
  }

  /** The root and a rotation's progress, from this manager's state (the cluster object and the nodes). */
  status(stale = false): RootCAStatus {
    const c = this.m.cluster();
    if (!c) throw new TsswarmError('UNAVAILABLE', 'the cluster is still being created; retry in a moment');
    const p = rotationProgress(c.spec, this.nodeRoots());
    return {
      rootCaCertPem: c.spec.rootCaCertPem,
      rotationInProgress: p.inProgress,
      newRootCaCertPem: c.spec.rootRotation?.caCertPem ?? '',
      nodesDone: p.done,
      nodesTotal: p.total,
      pendingNodes: p.pending.slice(0, PENDING_NAMED),
      startedAtMs: Number(c.spec.rootRotation?.startedAtMs ?? 0),
      stale,
    };
  }

  async getStatus(): Promise<RootCAStatus> {
    const r = await this.m.readView(() => undefined);
    return this.status(r.stale);
  }

  /**
   * Starts a rotation to a fresh root; one under way is restarted with another fresh root (its
   * nodes renew again). Every node is then asked, through its session, to renew.
   */
  async rotate(): Promise<RootCAStatus> {
    this.m.requireLeader();
    for (let attempt = 1; ; attempt++) {
      const c = this.m.cluster();
      if (!c) throw new TsswarmError('UNAVAILABLE', 'the cluster is still being created; retry in a moment');
      const now = Date.now();
      const rootRotation = startRotation(c.spec, {
        now,
        commonName: `tsswarm-root-ca-${c.meta.id.slice(0, 8)}-${randomBytes(4).toString('hex')}`,
      });
      try {
        await this.m.store.update((tx) => tx.cluster.update(Cluster.create({ ...c, spec: { ...c.spec, rootRotation } })));
      } catch (e) {
        if (!(e instanceof VersionConflictError) || attempt >= 5) throw e;
        continue;
      }
      this.m.log.info(
        { restarted: !!c.spec.rootRotation, nodes: this.nodeRoots().length },
        c.spec.rootRotation ? 'root CA rotation restarted with a fresh root' : 'root CA rotation started',
      );
      return this.status();
    }
  }

  /**
   * The leader's check, after each renewal and periodically: once every node's certificate is
   * from the new root, the new root replaces the current one and the join tokens change.
   */
  async reconcile(): Promise<void> {
    if (!this.m.consensus.isLeader || this.finishing) return;
    const c = this.m.cluster();
    if (!c?.spec.rootRotation) return;
    const p = rotationProgress(c.spec, this.nodeRoots());
    if (p.pending.length > 0) return;
    this.finishing = true;
    try {
      await this.m.store.update((tx) => {
        const cur = tx.cluster.list()[0];
        // Read again in the transaction: a second --rotate or a new node may have landed since.
        if (!cur?.spec.rootRotation || cur.spec.rootRotation.caCertPem !== c.spec.rootRotation?.caCertPem) return;
        const live = this.sessionRoots();
        const nodes = tx.nodes.list().map((n) => ({ id: n.meta.id, name: n.spec?.name ?? '', rootDigest: rootOf(n, live) }));
        if (rotationProgress(cur.spec, nodes).pending.length > 0) return;
        const done = finishRotation(cur.spec)!;
        const spec: ClusterSpec = { ...cur.spec, ...done };
        tx.cluster.update(Cluster.create({ ...cur, spec }));
      });
      if (!this.m.cluster()?.spec.rootRotation)
        this.m.log.info({ nodes: p.total }, 'root CA rotation done: every node holds a certificate from the new root; join tokens changed');
    } catch (err) {
      this.m.log.warn({ err }, 'ending the root CA rotation failed; the next check tries again');
    } finally {
      this.finishing = false;
    }
  }

  /**
   * `tsswarm ca client-cert`: signs an operator's CSR (the key stays with the operator). Whoever
   * reaches this call is root on a manager (the local socket) or a manager itself (the managers'
   * port), so may already do anything an operator can: the certificate carries it elsewhere.
   */
  issueOperatorCertificate(req: IssueOperatorCertificateRequest): IssueOperatorCertificateResponse {
    this.m.requireLeader();
    const c = this.m.cluster();
    if (!c) throw new TsswarmError('UNAVAILABLE', 'the cluster is still being created; retry in a moment');
    const signer = signingCA(c.spec);
    const cert = signOperatorCSR(signer.ca, req.csrPem, {
      name: req.name,
      clusterId: c.meta.id,
      now: Date.now(),
      validityMs: Number(req.validityMs) || undefined,
    });
    const leaf = parseCertificateDer(Buffer.from(splitCertificates(cert)[0]!.replace(/-----[^-]+-----|\s+/g, ''), 'base64'));
    const serial = leaf.serial.toString('hex');
    this.m.log.info(
      { operator: req.name, serial, notAfter: leaf.notAfter.toISOString() },
      'operator client certificate issued (Docker Engine API over TCP)',
    );
    return { certPem: cert + signer.chainPem, caCertPem: trustBundle(c.spec), notAfterMs: leaf.notAfter.getTime(), serial };
  }

  /**
   * The certificate node `nodeId` serves the Engine API over TCP with. Its names are the store's,
   * never the caller's: the node's address as the managers hold it, loopback, and its host name
   * when it is a DNS name no other node goes by (a node cannot get a certificate for another).
   */
  issueEngineCertificate(nodeId: string, csrPem: string): IssueEngineCertificateResponse {
    this.m.requireLeader();
    const c = this.m.cluster();
    if (!c) throw new TsswarmError('UNAVAILABLE', 'the cluster is still being created; retry in a moment');
    const nodes = this.m.store.view((tx) => tx.nodes.list());
    const n = nodes.find((x) => x.meta.id === nodeId);
    if (!n) throw new TsswarmError('PERMISSION_DENIED', `node ${nodeId} is not a member of this cluster`);
    const { ips, dnsNames } = engineNames(n, nodes);
    const signer = signingCA(c.spec);
    const cert = signEngineServerCSR(signer.ca, csrPem, {
      nodeId,
      clusterId: c.meta.id,
      now: Date.now(),
      ips,
      dnsNames,
      ...certValidity(Number(c.spec.nodeCertExpiryMs) || 0),
    });
    this.m.log.info({ node: nodeId, ips, dnsNames }, 'Engine API server certificate issued');
    return { certPem: cert + signer.chainPem, caCertPem: trustBundle(c.spec) };
  }
}

/** The names a node's Engine API server certificate carries (see issueEngineCertificate). */
export function engineNames(n: Node, nodes: readonly Node[]): { ips: string[]; dnsNames: string[] } {
  const ips = ['127.0.0.1'];
  const addr = (n.status?.addr ?? '').replace(/:\d+$/, '');
  if (/^\d+\.\d+\.\d+\.\d+$/.test(addr) && addr !== '127.0.0.1' && addr !== '0.0.0.0') ips.unshift(addr);
  const dnsNames = ['localhost'];
  const host = (n.description?.hostname ?? '').toLowerCase();
  const taken = nodes.some(
    (o) => o.meta.id !== n.meta.id && [o.description?.hostname, o.spec?.name].some((x) => (x ?? '').toLowerCase() === host),
  );
  if (host && host !== 'localhost' && isDnsName(host) && !taken) dnsNames.unshift(host);
  return { ips, dnsNames };
}
