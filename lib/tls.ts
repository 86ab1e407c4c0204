// TLS credentials for tsswarm's gRPC: one in-memory certificate provider per
// daemon, so a renewed certificate or a new CA takes effect on the next
// connection without restarting servers; servers ask for a client
// certificate but let calls without one through, and each service decides
// per call (joining needs no certificate, everything else does).
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';

type CaListener = (u: { caCertificate: Buffer } | null) => void;
type IdListener = (u: { certificate: Buffer; privateKey: Buffer } | null) => void;

/** Holds the CA certificate and this node's key pair; set() pushes new ones to every listener. */
export class MemoryCertificateProvider implements grpc.experimental.CertificateProvider {
  private ca: Buffer | null = null;
  private id: { certificate: Buffer; privateKey: Buffer } | null = null;
  private readonly caListeners = new Set<CaListener>();
  private readonly idListeners = new Set<IdListener>();

  set(caPem: string, certPem?: string, keyPem?: string): void {
    this.ca = Buffer.from(caPem);
    this.id = certPem && keyPem ? { certificate: Buffer.from(certPem), privateKey: Buffer.from(keyPem) } : null;
    for (const l of this.caListeners) l({ caCertificate: this.ca });
    for (const l of this.idListeners) l(this.id);
  }

  get hasIdentity(): boolean {
    return this.id !== null;
  }

  // grpc-js starts listening for updates only after add*Listener returns: the
  // current material is handed over a microtask later, or it would be missed
  // and the server would drop every connection for "unloaded credentials".
  addCaCertificateListener(l: CaListener): void {
    this.caListeners.add(l);
    queueMicrotask(() => {
      if (this.ca && this.caListeners.has(l)) l({ caCertificate: this.ca });
    });
  }
  removeCaCertificateListener(l: CaListener): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: IdListener): void {
    this.idListeners.add(l);
    queueMicrotask(() => {
      if (this.id && this.idListeners.has(l)) l(this.id);
    });
  }
  removeIdentityCertificateListener(l: IdListener): void {
    this.idListeners.delete(l);
  }
}

/** Server side: our certificate; a client certificate is requested, and checked per call by the services. */
export function serverCredentials(p: MemoryCertificateProvider): grpc.ServerCredentials {
  return grpc.experimental.createCertificateProviderServerCredentials(p, p, false);
}

/**
 * Client side: the server must present a certificate signed by our CA; host
 * names are not checked (nodes are reached by IP address), `checkPeer` checks
 * the certificate's identity instead (e.g. that it is a manager's).
 */
export function channelCredentials(
  p: MemoryCertificateProvider,
  checkPeer?: (cert: PeerCertificate, host: string) => Error | undefined,
): grpc.ChannelCredentials {
  // A fresh closure per call on purpose: grpc-js shares connections between
  // credentials whose checkServerIdentity is the same function, and a client
  // made after a renewal must open its own connection with the new certificate.
  return grpc.experimental.createCertificateProviderChannelCredentials(p, p.hasIdentity ? p : null, {
    checkServerIdentity: (host, cert) => checkPeer?.(cert, host),
  });
}

/**
 * Client side before we know the CA (the first step of joining): no
 * verification at all. Only GetRootCA is called this way, and its answer is
 * checked against the digest pinned in the join token.
 */
export function untrustedChannelCredentials(): grpc.ChannelCredentials {
  // Made once: each createSsl without roots builds a TLS context holding the system's whole CA store
  // (about 30 ms of CPU), which nothing here uses, since nothing is verified.
  untrusted ??= grpc.credentials.createSsl(null, null, null, { rejectUnauthorized: false, checkServerIdentity: () => undefined });
  return untrusted;
}
let untrusted: grpc.ChannelCredentials | undefined;

/** The verified client certificate of a call, or null when the caller sent none. */
export function peerCertificate(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null }): PeerCertificate | null {
  const c = call.getAuthContext()?.sslPeerCertificate;
  return c && c.raw && c.raw.length > 0 ? c : null;
}
