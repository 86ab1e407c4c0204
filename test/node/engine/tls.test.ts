// The Engine API over TCP with TLS (node/engine/tls.ts), on loopback with a
// fake backend: an operator's certificate gets in and sees the server
// certificate verified for 127.0.0.1; a node's certificate gets a 403 before
// any route runs; no certificate, a self-signed "operator", another cluster's
// CA and an expired certificate fail the handshake; new roots apply to the
// next connections; TLS 1.2 uses ECDHE-ECDSA AEAD; the connection limit holds.
import { request } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createCSR,
  createRootCA,
  generateNodeKey,
  OPERATOR_OU,
  signEngineServerCSR,
  signNodeCSR,
  signOperatorCSR,
} from '../../../ca/index.js';
import { joinCertificates } from '../../../ca/rotation.js';
import { ENGINE_ROUTES } from '../../../node/engine/index.js';
import { type EngineTlsServer, serveEngineTls } from '../../../node/engine/tls.js';
import { selfSignedClientCert } from '../../lib/forged-cert.js';
import { until } from '../../lib/wait.js';
import { fakeBackend } from './fake.js';

const CLUSTER = 'cluster-a';
const root = createRootCA({ now: Date.now(), commonName: 'root-a' });
const otherRoot = createRootCA({ now: Date.now(), commonName: 'root-b' });

interface Pair {
  cert: string;
  key: string;
}

function operator(ca = root, o: { now?: number; validityMs?: number; backdateMs?: number } = {}): Pair {
  const k = generateNodeKey();
  const cert = signOperatorCSR(ca, createCSR(k.privateKeyPem), { name: 'alice', clusterId: CLUSTER, now: o.now ?? Date.now(), ...o });
  return { cert, key: k.privateKeyPem };
}

function worker(): Pair {
  const k = generateNodeKey();
  const cert = signNodeCSR(root, createCSR(k.privateKeyPem), { nodeId: 'w1', role: 'worker', clusterId: CLUSTER, now: Date.now() });
  return { cert, key: k.privateKeyPem };
}

function serverCert(ca = root): Pair {
  const k = generateNodeKey();
  const cert = signEngineServerCSR(ca, createCSR(k.privateKeyPem), {
    nodeId: 'm1',
    clusterId: CLUSTER,
    now: Date.now(),
    ips: ['127.0.0.1'],
    dnsNames: ['localhost'],
  });
  return { cert, key: k.privateKeyPem };
}

let s: EngineTlsServer | undefined;
const sockets: TLSSocket[] = [];
afterEach(async () => {
  for (const x of sockets.splice(0)) x.destroy();
  await s?.close();
  s = undefined;
});

async function start(o: { maxConnections?: number } = {}): Promise<EngineTlsServer> {
  const srv = serverCert();
  s = await serveEngineTls({
    addr: '127.0.0.1:0',
    credentials: { caPem: root.certPem, certPem: srv.cert, keyPem: srv.key },
    clusterId: () => CLUSTER,
    backend: fakeBackend().backend,
    routes: ENGINE_ROUTES,
    logger: pino({ level: 'silent' }),
    maxConnections: o.maxConnections,
  });
  return s;
}

/** GET `path` over a new connection, verifying the server against `ca` for host 127.0.0.1, with the client pair when given. */
function get(
  server: EngineTlsServer,
  path: string,
  client?: Pair,
  ca = root.certPem,
): Promise<{ status: number; body: string; type?: string }> {
  const port = Number(server.address.split(':')[1]);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', ca, cert: client?.cert, key: client?.key, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the Engine API over TCP with TLS', () => {
  it("serves an operator, whose client checks the server certificate against the cluster's root for 127.0.0.1", async () => {
    const server = await start();
    const r = await get(server, '/_ping', operator());
    expect(r).toMatchObject({ status: 200, body: 'OK' });
    const info = await get(server, '/v1.41/info', operator());
    expect(info.status).toBe(200);
    expect(JSON.parse(info.body).Swarm.LocalNodeState).toBe('active');
    // Another cluster's client does not trust this server.
    await expect(get(server, '/_ping', operator(), otherRoot.certPem)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });

  it("refuses a worker's node certificate with a 403 JSON message before any route runs", async () => {
    const server = await start();
    const r = await get(server, '/v1.41/nodes', worker());
    expect(r.status).toBe(403);
    expect(r.type).toBe('application/json');
    expect(JSON.parse(r.body).message).toMatch(
      /the node certificate of node w1 \(swarm-worker\).*only an operator's client certificate is accepted/,
    );
  });

  it('fails the handshake without a certificate, with a self-signed "operator", another CA\'s operator, or an expired one', async () => {
    const server = await start();
    const forged = selfSignedClientCert({ o: CLUSTER, ou: OPERATOR_OU, cn: 'mallory' });
    const expired = operator(root, { now: Date.now() - 2 * 3_600_000, validityMs: 3_600_000, backdateMs: 0 });
    for (const [what, client] of [
      ['no certificate', undefined],
      ['self-signed', { cert: forged.certPem, key: forged.keyPem }],
      ['another CA', operator(otherRoot)],
      ['expired', expired],
    ] as const) {
      await expect(get(server, '/_ping', client), what).rejects.toThrow();
    }
    // The server still serves its operators afterwards.
    expect((await get(server, '/_ping', operator())).status).toBe(200);
  });

  it('takes new roots for the next connections (a root rotation that ends drops the old root)', async () => {
    const server = await start();
    const next = createRootCA({ now: Date.now(), commonName: 'root-a2' });
    const oldOp = operator();
    const newOp = operator(next);
    const both = joinCertificates(root.certPem, next.certPem);
    const srv = serverCert(next);
    server.setCredentials({ caPem: both, certPem: srv.cert, keyPem: srv.key });
    expect((await get(server, '/_ping', oldOp, both)).status).toBe(200);
    expect((await get(server, '/_ping', newOp, both)).status).toBe(200);
    server.setCredentials({ caPem: next.certPem, certPem: srv.cert, keyPem: srv.key });
    expect((await get(server, '/_ping', newOp, next.certPem)).status).toBe(200);
    await expect(get(server, '/_ping', oldOp, next.certPem)).rejects.toThrow();
  });

  it('speaks TLS 1.2 only with ECDHE-ECDSA AEAD suites, and 1.3 by default', async () => {
    const server = await start();
    const port = Number(server.address.split(':')[1]);
    const op = operator();
    const hello = (maxVersion?: 'TLSv1.2'): Promise<{ protocol: string | null; cipher: string }> =>
      new Promise((resolve, reject) => {
        const c = connect({ host: '127.0.0.1', port, ca: root.certPem, cert: op.cert, key: op.key, maxVersion }, () => {
          resolve({ protocol: c.getProtocol(), cipher: c.getCipher().name });
          c.destroy();
        });
        c.on('error', reject);
      });
    expect((await hello()).protocol).toBe('TLSv1.3');
    const v12 = await hello('TLSv1.2');
    expect(v12.protocol).toBe('TLSv1.2');
    expect(v12.cipher).toMatch(/^ECDHE-ECDSA-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)$/);
  });

  it('closes connections over the limit as they arrive', async () => {
    const server = await start({ maxConnections: 1 });
    const port = Number(server.address.split(':')[1]);
    const op = operator();
    const open = (): Promise<TLSSocket> =>
      new Promise((resolve, reject) => {
        const c = connect({ host: '127.0.0.1', port, ca: root.certPem, cert: op.cert, key: op.key }, () => resolve(c));
        sockets.push(c);
        c.on('error', reject);
      });
    await open();
    let closed = false;
    const second = connect({ host: '127.0.0.1', port, ca: root.certPem, cert: op.cert, key: op.key });
    sockets.push(second);
    second.on('error', () => undefined);
    second.on('close', () => {
      closed = true;
    });
    await until('the connection over the limit is closed', () => closed);
    expect(second.authorized).toBe(false);
  });
});
