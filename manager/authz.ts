// Who is calling: every manager service checks the caller's mTLS certificate
// per call (the TLS layer requests one but lets calls without it through, so
// joining can work on the same port). A certificate must be signed by this
// cluster's CA, unexpired and not revoked; its role decides what it may call.
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { TsswarmError } from '../lib/errors.js';
import { peerCertificate } from '../lib/tls.js';
import { parseNodeCert } from './ca/index.js';

export interface Caller {
  nodeId: string;
  role: 'worker' | 'manager';
  serial: string;
}

export interface AuthzContext {
  caCertPem: () => string;
  clusterId: () => string;
  revoked: (serial: string) => boolean;
}

function derToPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}

const verified = new Map<string, { ca: string; until: number }>();

/** The verified caller, or null when the call carries no certificate. Throws for a bad certificate. */
export function callerOf(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null }, ctx: AuthzContext, now = Date.now()): Caller | null {
  const pc = peerCertificate(call);
  if (!pc) return null;
  const pem = derToPem(pc.raw);
  const ca = ctx.caCertPem();
  const key = pc.fingerprint256;
  const cached = verified.get(key);
  if (!cached || cached.ca !== ca) {
    const x = new X509Certificate(pem);
    if (!x.verify(new X509Certificate(ca).publicKey)) {
      throw new TsswarmError('UNAUTHENTICATED', 'the client certificate was not issued by this cluster\'s CA: the node belongs to another cluster; make it leave and join this one');
    }
    verified.set(key, { ca, until: Date.parse(x.validTo) });
    if (verified.size > 10_000) verified.delete(verified.keys().next().value as string);
  }
  const info = parseNodeCert(pem);
  if (now > (verified.get(key)?.until ?? 0)) throw new TsswarmError('UNAUTHENTICATED', `the certificate of node ${info.nodeId} expired: the node must renew it (restart its daemon) or join again`);
  if (ctx.revoked(info.serial)) throw new TsswarmError('PERMISSION_DENIED', `node ${info.nodeId} was removed from the cluster; its certificate is revoked. Join it again with a token`);
  if (info.clusterId && info.clusterId !== ctx.clusterId()) throw new TsswarmError('UNAUTHENTICATED', `node ${info.nodeId} belongs to cluster ${info.clusterId}, not this one`);
  return { nodeId: info.nodeId, role: info.role, serial: info.serial };
}

/** The caller, who must present a valid certificate with one of the roles. */
export function requireRole(call: Parameters<typeof callerOf>[0], ctx: AuthzContext, roles: readonly ('worker' | 'manager')[]): Caller {
  const c = callerOf(call, ctx);
  if (!c) throw new TsswarmError('UNAUTHENTICATED', 'this call needs a node certificate: join the node to the cluster first');
  if (!roles.includes(c.role)) {
    throw new TsswarmError(
      'PERMISSION_DENIED',
      "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.",
    );
  }
  return c;
}
