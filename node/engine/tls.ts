// The Docker Engine API over TCP with TLS, the docker CLI's `--tlsverify`
// model: the client must present a certificate of this cluster's CA with the
// operator role (ca/ OPERATOR_OU). One without a certificate, or with one the
// cluster's roots did not sign, or expired, fails the TLS handshake (as
// dockerd's does); a certificate of the cluster that is not an operator's (a
// node's) gets a 403 for every request, before any route runs. There is no
// plain mode. The same handler as the unix socket serves the rest
// (./server.ts), with its header and body limits, plus a connection limit.
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type pino from 'pino';
import { UsageError } from '../../lib/errors.js';
import { CAError, verifyOperatorCert } from '../../ca/index.js';
import { DockerError } from './errors.js';
import { answerClientError, type EngineHandlerOptions, engineHandler, MAX_HEADER_BYTES } from './server.js';

/** The TLS material of the listener: the roots that sign operators' certificates, and this node's server certificate. */
export interface EngineTlsCredentials {
  /** Every root the cluster trusts (several during a root rotation). */
  caPem: string;
  /** The server certificate (ca/ signEngineServerCSR), followed by its chain during a rotation. */
  certPem: string;
  keyPem: string;
}

export interface EngineTlsOptions extends Omit<EngineHandlerOptions, 'authorize'> {
  /** `IP:PORT` to listen on. */
  addr: string;
  credentials: EngineTlsCredentials;
  /** This node's cluster: an operator's certificate must name it. */
  clusterId: () => string;
  /** At most this many connections at once (default 64); more are closed as they arrive. */
  maxConnections?: number;
  /** Where the setting came from, for errors (default `--docker-tcp`). */
  field?: string;
}

export interface EngineTlsServer {
  /** `IP:PORT` actually bound (the port is chosen when 0 was asked). */
  readonly address: string;
  /** New roots or a new server certificate, for the connections that come next. */
  setCredentials(c: EngineTlsCredentials): void;
  close(): Promise<void>;
}

/**
 * TLS 1.2's suites for our ECDSA keys: ECDHE and AEAD only (the docker CLI's
 * go-connections client default offers these first). TLS 1.3 keeps its own
 * defaults, which are all AEAD.
 */
export const TLS12_CIPHERS = ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305'].join(':');

export const DEFAULT_MAX_CONNECTIONS = 64;

function tlsOptions(c: EngineTlsCredentials) {
  return {
    ca: c.caPem,
    cert: c.certPem,
    key: c.keyPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2' as const,
    ciphers: TLS12_CIPHERS,
    honorCipherOrder: true,
  };
}

/**
 * The operator behind a request, checked against the current roots: once per
 * connection and trust, and its expiry at every request (a connection may
 * outlive its certificate; a resumed session skips the handshake's checks).
 */
export function operatorAuthorizer(
  trust: () => string,
  clusterId: () => string,
  log: pino.Logger,
  now: () => number = Date.now,
): (req: IncomingMessage) => void {
  const seen = new WeakMap<object, { trust: string; name: string; notAfter: number } | { trust: string; error: DockerError }>();
  return (req) => {
    const sock = req.socket as TLSSocket;
    const t = trust();
    let v = seen.get(sock);
    if (!v || v.trust !== t) {
      const peer = typeof sock.getPeerX509Certificate === 'function' ? sock.getPeerX509Certificate() : undefined;
      if (!peer) v = { trust: t, error: new DockerError(401, 'a client certificate is required: get one with `tsswarm ca client-cert`') };
      else {
        try {
          const info = verifyOperatorCert(t, peer.toString(), { now: now(), clusterId: clusterId() });
          v = { trust: t, name: info.name, notAfter: info.notAfter.getTime() };
          log.info({ operator: info.name, serial: info.serial, remote: sock.remoteAddress }, 'operator connected over TCP');
        } catch (e) {
          if (!(e instanceof CAError)) throw e;
          v = { trust: t, error: new DockerError(e.code === 'PERMISSION_DENIED' ? 403 : 401, e.message) };
          log.warn(
            { remote: sock.remoteAddress, subject: peer.subject.replace(/\n/g, ', '), reason: e.reason },
            'client certificate refused',
          );
        }
      }
      seen.set(sock, v);
    }
    if ('error' in v) throw v.error;
    if (now() > v.notAfter)
      throw new DockerError(401, `the certificate of operator ${v.name} has expired: get a new one with \`tsswarm ca client-cert\``);
  };
}

export async function serveEngineTls(o: EngineTlsOptions): Promise<EngineTlsServer> {
  const log = o.logger.child({ component: 'engine-tls' });
  const field = o.field ?? '--docker-tcp';
  let creds = o.credentials;
  const server: Server = createServer(
    { ...tlsOptions(creds), maxHeaderSize: MAX_HEADER_BYTES, handshakeTimeout: 10_000 },
    engineHandler({ ...o, authorize: operatorAuthorizer(() => creds.caPem, o.clusterId, log) }),
  );
  server.maxConnections = o.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  // Slow clients do not hold connections: the request head within 20 s, the whole request within a minute.
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  server.on('clientError', answerClientError);
  // A handshake refused (no certificate, an untrusted or expired one) is the client's business: a debug line.
  server.on('tlsClientError', (err: Error, sock: TLSSocket) =>
    log.debug({ err: err.message, remote: sock.remoteAddress }, 'TLS handshake refused'),
  );
  const m = /^(.*):(\d+)$/.exec(o.addr);
  if (!m) throw UsageError.invalid(field, 'IP:PORT', o.addr);
  await new Promise<void>((resolve, reject) => {
    const fail = (e: NodeJS.ErrnoException): void =>
      reject(
        new UsageError(`${field} ${o.addr}: cannot listen there (${e.code ?? e.message}): choose a free port of an address of this host`, {
          field,
        }),
      );
    server.once('error', fail);
    server.listen(Number(m[2]), m[1], () => {
      server.off('error', fail);
      resolve();
    });
  });
  const a = server.address();
  const address = a && typeof a === 'object' ? `${a.address}:${a.port}` : o.addr;
  log.info(
    { addr: address, maxConnections: server.maxConnections },
    'serving the Docker Engine API over TCP with TLS (operator certificates only)',
  );
  return {
    address,
    setCredentials(c) {
      creds = c;
      server.setSecureContext(tlsOptions(c));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
