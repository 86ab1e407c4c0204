// Certificates from our CA on real gRPC mTLS (@grpc/grpc-js on 127.0.0.1):
// two nodes talk; a client certificate from another CA is refused; the server
// reads the caller's node id and role from the peer certificate
// (call.getAuthContext().sslPeerCertificate) and refuses a worker calling a
// manager-only method; a client pins the server's role by TLS server name.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TsswarmError } from '../../../lib/errors.js';
import { derToPem } from '../../../manager/ca/asn1.js';
import {
  type CertAndKey,
  createCSR,
  createRootCA,
  generateNodeKey,
  type NodeRole,
  parseNodeCert,
  roleOU,
  signNodeCSR,
  verifyNodeCert,
} from '../../../manager/ca/index.js';

const CLUSTER = 'cluster-a';
// TLS checks validity against the real clock, so these certificates are issued now.
const now = Date.now();
const root = createRootCA({ now });
const foreignRoot = createRootCA({ now });

interface Identity {
  certPem: string;
  keyPem: string;
}

function node(nodeId: string, role: NodeRole, ca: CertAndKey = root, clusterId = CLUSTER): Identity {
  const key = generateNodeKey();
  return { certPem: signNodeCSR(ca, createCSR(key.privateKeyPem), { nodeId, role, clusterId, now }), keyPem: key.privateKeyPem };
}

// ------------------------------------------------------------------ a two-method service without .proto

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as Record<string, unknown>,
};
const method = (name: string) => ({
  path: `/tsswarm.test.Probe/${name}`,
  requestStream: false,
  responseStream: false,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});
const ProbeService = { whoAmI: method('WhoAmI'), managerOnly: method('ManagerOnly') } satisfies grpc.ServiceDefinition;
const ProbeClient = grpc.makeGenericClientConstructor(ProbeService, 'Probe');
type Probe = InstanceType<typeof ProbeClient>;

const revoked = new Set<string>();

/** The caller's verified identity, from the TLS peer certificate grpc-js exposes on the call. */
function caller(call: grpc.ServerUnaryCall<unknown, unknown>): { nodeId: string; role: NodeRole } {
  const pc = call.getAuthContext().sslPeerCertificate;
  if (!pc?.raw?.length) throw new TsswarmError('UNAUTHENTICATED', 'this call needs a node certificate signed by the cluster CA');
  const info = verifyNodeCert(root.certPem, derToPem(pc.raw, 'CERTIFICATE'), { now: Date.now(), clusterId: CLUSTER, revokedSerials: revoked });
  return { nodeId: info.nodeId, role: info.role };
}

function handler(body: (c: { nodeId: string; role: NodeRole }) => Record<string, unknown>): grpc.handleUnaryCall<unknown, unknown> {
  return (call, cb) => {
    try {
      cb(null, body(caller(call)));
    } catch (e) {
      cb({ code: e instanceof TsswarmError ? e.grpcStatus : grpc.status.INTERNAL, details: (e as Error).message });
    }
  };
}

const implementation = {
  whoAmI: handler((c) => ({ ...c })),
  managerOnly: handler((c) => {
    if (c.role !== 'manager') throw new TsswarmError('PERMISSION_DENIED', `node ${c.nodeId} is a worker: this call is for managers`);
    return { ok: true, by: c.nodeId };
  }),
};

const servers: grpc.Server[] = [];
const clients: Probe[] = [];

async function serve(creds: grpc.ServerCredentials): Promise<string> {
  const server = new grpc.Server();
  server.addService(ProbeService, implementation);
  servers.push(server);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  return `127.0.0.1:${port}`;
}

/** A strict server: the TLS handshake itself requires a client certificate signed by our CA. */
const strictServer = (id: Identity) =>
  serve(grpc.ServerCredentials.createSsl(Buffer.from(root.certPem), [{ cert_chain: Buffer.from(id.certPem), private_key: Buffer.from(id.keyPem) }], true));

/**
 * Like lib/tls.ts: a client certificate is requested, not required; services
 * decide per call. The first update is delivered asynchronously on purpose:
 * grpc-js 1.14 (server.js createHttp2Server) registers its watcher only after
 * the provider's add*Listener returns, so a synchronous first update is lost
 * and the server drops every connection "due to unloaded credentials" until
 * the provider pushes another update.
 */
class StaticProvider implements grpc.experimental.CertificateProvider {
  constructor(private readonly id: Identity) {}
  addCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    queueMicrotask(() => l({ caCertificate: Buffer.from(root.certPem) }));
  }
  removeCaCertificateListener(): void {}
  addIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    queueMicrotask(() => l({ certificate: Buffer.from(this.id.certPem), privateKey: Buffer.from(this.id.keyPem) }));
  }
  removeIdentityCertificateListener(): void {}
}
const lenientServer = (id: Identity) => {
  const p = new StaticProvider(id);
  return serve(grpc.experimental.createCertificateProviderServerCredentials(p, p, false));
};

function client(addr: string, id: Identity | null, opts: { trust?: string; serverRole?: NodeRole } = {}): Probe {
  const creds = grpc.credentials.createSsl(Buffer.from(opts.trust ?? root.certPem), id ? Buffer.from(id.keyPem) : null, id ? Buffer.from(id.certPem) : null);
  // Nodes are dialled by IP; the name checked in the server's certificate is its role.
  const c = new ProbeClient(addr, creds, { 'grpc.ssl_target_name_override': roleOU[opts.serverRole ?? 'manager'] });
  clients.push(c);
  return c;
}

function call(c: Probe, name: 'whoAmI' | 'managerOnly'): Promise<{ ok: true; value: Record<string, unknown> } | { ok: false; code: number; details: string }> {
  return new Promise((resolve) => {
    const fn = c[name] as unknown as (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, v?: Record<string, unknown>) => void) => void;
    fn.call(c, {}, { deadline: Date.now() + 10_000 }, (err, value) => resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true, value: value! }));
  });
}

afterAll(() => {
  for (const c of clients) c.close();
  for (const s of servers) s.forceShutdown();
});

describe('mTLS with certificates from our CA (grpc-js)', () => {
  const manager1 = node('m1', 'manager');
  const manager2 = node('m2', 'manager');
  const worker1 = node('w1', 'worker');
  let strictAddr = '';

  beforeAll(async () => {
    strictAddr = await strictServer(manager1);
  });

  it('two nodes talk, and the server reads the caller\'s node id and role from its certificate', async () => {
    expect(await call(client(strictAddr, worker1), 'whoAmI')).toEqual({ ok: true, value: { nodeId: 'w1', role: 'worker' } });
    expect(await call(client(strictAddr, manager2), 'whoAmI')).toEqual({ ok: true, value: { nodeId: 'm2', role: 'manager' } });
  });

  it('a worker calling a manager-only method is refused; a manager is served', async () => {
    const r = await call(client(strictAddr, worker1), 'managerOnly');
    expect(r).toMatchObject({ ok: false, code: grpc.status.PERMISSION_DENIED, details: 'node w1 is a worker: this call is for managers' });
    expect(await call(client(strictAddr, manager2), 'managerOnly')).toEqual({ ok: true, value: { ok: true, by: 'm2' } });
  });

  it('a client certificate from another CA is refused in the handshake', async () => {
    const intruder = node('m1', 'manager', foreignRoot);
    const r = await call(client(strictAddr, intruder), 'whoAmI');
    expect(r.ok).toBe(false);
    expect(r).toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('a client without a certificate is refused in the handshake', async () => {
    expect(await call(client(strictAddr, null), 'whoAmI')).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
  });

  it('a client refuses a server whose certificate is from another CA', async () => {
    const addr = await strictServer(node('m9', 'manager', foreignRoot));
    expect(await call(client(addr, worker1), 'whoAmI')).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
  });

  it('a client that wants a manager refuses a worker acting as server (server name = role SAN)', async () => {
    const addr = await strictServer(node('w5', 'worker'));
    const r = await call(client(addr, manager2, { serverRole: 'manager' }), 'whoAmI');
    expect(r).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    expect(await call(client(addr, manager2, { serverRole: 'worker' }), 'whoAmI')).toEqual({ ok: true, value: { nodeId: 'm2', role: 'manager' } });
  });

  it('a revoked node certificate passes TLS but is refused per call', async () => {
    const gone = node('w7', 'worker');
    const { serial } = parseNodeCert(gone.certPem);
    revoked.add(serial);
    try {
      const r = await call(client(strictAddr, gone), 'whoAmI');
      expect(r).toMatchObject({ ok: false, code: grpc.status.PERMISSION_DENIED });
      expect((r as { details: string }).details).toMatch(/revoked/);
    } finally {
      revoked.delete(serial);
    }
  });

  it('on a server that only requests client certificates, a foreign certificate yields no peer certificate', async () => {
    const addr = await lenientServer(manager1);
    expect(await call(client(addr, worker1), 'whoAmI')).toEqual({ ok: true, value: { nodeId: 'w1', role: 'worker' } });
    // The handshake succeeds, but grpc-js reports an unauthorized peer's certificate as absent.
    const intruder = node('m1', 'manager', foreignRoot);
    expect(await call(client(addr, intruder), 'whoAmI')).toMatchObject({ ok: false, code: grpc.status.UNAUTHENTICATED });
    expect(await call(client(addr, null), 'whoAmI')).toMatchObject({ ok: false, code: grpc.status.UNAUTHENTICATED });
  });
});
