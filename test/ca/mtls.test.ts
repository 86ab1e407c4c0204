// Certificates from our CA on real gRPC mTLS (@grpc/grpc-js on 127.0.0.1):
// two nodes talk; a client certificate from another CA is refused; the server
// reads the caller's node id and role from the peer certificate
// (call.getAuthContext().sslPeerCertificate) and refuses a worker calling a
// manager-only method; a client pins the server's role by TLS server name.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TsswarmError } from '../../lib/errors.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Daemon } from '../../node/daemon.js';
import { StateDir } from '../../node/state.js';
import { MemoryCertificateProvider, channelCredentials, serverCredentials } from '../../lib/tls.js';
import { DaemonService, DispatcherService, NodeCAService } from '../../proto/gen/control.js';
import { derToPem } from '../../ca/asn1.js';
import {
  type CertAndKey,
  checkManagerCert,
  createCSR,
  createRootCA,
  generateNodeKey,
  makeJoinToken,
  type NodeRole,
  parseNodeCert,
  roleOU,
  signNodeCSR,
  verifyNodeCert,
} from '../../ca/index.js';
import { until } from '../lib/wait.js';

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
  const info = verifyNodeCert(root.certPem, derToPem(pc.raw, 'CERTIFICATE'), {
    now: Date.now(),
    clusterId: CLUSTER,
    revokedSerials: revoked,
  });
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
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  return `127.0.0.1:${port}`;
}

/** A strict server: the TLS handshake itself requires a client certificate signed by our CA. */
const strictServer = (id: Identity) =>
  serve(
    grpc.ServerCredentials.createSsl(
      Buffer.from(root.certPem),
      [{ cert_chain: Buffer.from(id.certPem), private_key: Buffer.from(id.keyPem) }],
      true,
    ),
  );

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
  const creds = grpc.credentials.createSsl(
    Buffer.from(opts.trust ?? root.certPem),
    id ? Buffer.from(id.keyPem) : null,
    id ? Buffer.from(id.certPem) : null,
  );
  // Nodes are dialled by IP; the name checked in the server's certificate is its role.
  const c = new ProbeClient(addr, creds, { 'grpc.ssl_target_name_override': roleOU[opts.serverRole ?? 'manager'] });
  clients.push(c);
  return c;
}

function call(
  c: Probe,
  name: 'whoAmI' | 'managerOnly',
): Promise<{ ok: true; value: Record<string, unknown> } | { ok: false; code: number; details: string }> {
  return new Promise((resolve) => {
    const fn = c[name] as unknown as (
      req: unknown,
      opts: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, v?: Record<string, unknown>) => void,
    ) => void;
    fn.call(c, {}, { deadline: Date.now() + 10_000 }, (err, value) =>
      resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true, value: value! }),
    );
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

  it("two nodes talk, and the server reads the caller's node id and role from its certificate", async () => {
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
    expect(await call(client(addr, manager2, { serverRole: 'worker' }), 'whoAmI')).toEqual({
      ok: true,
      value: { nodeId: 'm2', role: 'manager' },
    });
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

// ------------------------------------------------------------------ server pinning (lib/tls.ts + checkManagerCert)

describe('a node calling a manager pins the server: role manager, this cluster', () => {
  const me = node('w9', 'worker');
  const pinned = (addr: string, clusterId = CLUSTER, managerNodeIds: string[] = []): Probe => {
    const p = new MemoryCertificateProvider();
    p.set(root.certPem, me.certPem, me.keyPem);
    const c = new ProbeClient(
      addr,
      channelCredentials(p, (cert, host) =>
        checkManagerCert(cert.raw, { clusterId: () => clusterId, addr, managerNodeIds: () => managerNodeIds }, host),
      ),
    );
    clients.push(c);
    return c;
  };

  it("a worker certificate on a manager's address fails the handshake, naming the address and the reason", async () => {
    const addr = await lenientServer(node('w8', 'worker'));
    const r = await call(pinned(addr), 'whoAmI');
    expect(r).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    expect((r as { details: string }).details).toContain(
      `the server at ${addr} presented a worker certificate (node w8): it is not a manager of this cluster`,
    );
  });

  it('a manager certificate of another cluster (same CA) is refused', async () => {
    const addr = await lenientServer(node('m8', 'manager', root, 'cluster-b'));
    const r = await call(pinned(addr), 'whoAmI');
    expect((r as { details: string }).details).toContain('of cluster cluster-b, not of this cluster (cluster-a)');
  });

  it("a demoted manager's old manager certificate fails the handshake once the node knows the current managers", async () => {
    const addr = await lenientServer(node('d7', 'manager'));
    const r = await call(pinned(addr, CLUSTER, ['m1', 'm2', 'm3']), 'whoAmI');
    expect(r).toMatchObject({ ok: false, code: grpc.status.UNAVAILABLE });
    expect((r as { details: string }).details).toContain(
      `the server at ${addr} presented the manager certificate of node d7, which is not one of the cluster's managers (m1, m2, m3): it was demoted or removed`,
    );
    // The same server for a node that does not know the list yet (empty), and for one that lists it.
    expect(await call(pinned(addr, CLUSTER, []), 'whoAmI')).toMatchObject({ ok: true });
    expect(await call(pinned(addr, CLUSTER, ['m1', 'd7']), 'whoAmI')).toMatchObject({ ok: true });
  });

  it('a manager of this cluster is served; while joining (no cluster id yet) the role alone is checked', async () => {
    const addr = await lenientServer(node('m7', 'manager'));
    expect(await call(pinned(addr), 'whoAmI')).toEqual({ ok: true, value: { nodeId: 'w9', role: 'worker' } });
    expect(await call(pinned(addr, ''), 'whoAmI')).toEqual({ ok: true, value: { nodeId: 'w9', role: 'worker' } });
  });
});

// ------------------------------------------------------------------ the daemon's own calls to managers

describe("a daemon refuses a worker certificate on a manager's address", () => {
  const dirs: string[] = [];
  const daemons: Daemon[] = [];
  afterAll(async () => {
    for (const d of daemons) await d.stop().catch(() => undefined);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** A stand-in manager: the CA service and the dispatcher, counting what reaches them, under `id`'s certificate. */
  async function fakeManager(
    id: Identity,
    welcome?: { managerNodeIds: string[] },
  ): Promise<{ addr: string; calls: Record<string, number> }> {
    const calls: Record<string, number> = { getRootCA: 0, issueNodeCertificate: 0, session: 0 };
    const p = new MemoryCertificateProvider();
    p.set(root.certPem, id.certPem, id.keyPem);
    const server = new grpc.Server();
    server.addService(NodeCAService, {
      getRootCA: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => {
        calls.getRootCA!++;
        cb(null, { certPem: root.certPem });
      },
      issueNodeCertificate: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => {
        calls.issueNodeCertificate!++;
        cb({ code: grpc.status.UNAVAILABLE, details: 'stand-in manager' });
      },
    });
    server.addService(DispatcherService, {
      session: (s: grpc.ServerDuplexStream<unknown, unknown>) => {
        calls.session!++;
        if (welcome)
          s.write({
            welcome: {
              sessionId: 'tss-fake',
              heartbeatPeriodMs: 60_000,
              managerAddrs: [],
              desiredRole: 'worker',
              managerNodeIds: welcome.managerNodeIds,
            },
          });
        else s.emit('error', { code: grpc.status.UNAVAILABLE, details: 'stand-in manager' });
      },
    });
    servers.push(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', serverCredentials(p), (err, n) => (err ? reject(err) : resolve(n))),
    );
    return { addr: `127.0.0.1:${port}`, calls };
  }

  async function daemon(setup?: (stateDir: string) => void): Promise<{ d: Daemon; socket: string; logs: string[] }> {
    const dir = mkdtempSync(join(tmpdir(), 'tss-pin-'));
    dirs.push(dir);
    setup?.(dir);
    const logs: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });
    const socket = join(dir, 'tsswarm.sock');
    const d = new Daemon({
      stateDir: dir,
      listenAddr: '127.0.0.1:0',
      advertiseAddr: '127.0.0.1',
      socketPath: socket,
      logger,
      version: 'test',
    });
    daemons.push(d);
    await d.start();
    return { d, socket, logs };
  }

  const eventually = (cond: () => boolean, what: string): Promise<unknown> => until(what, cond, { timeoutMs: 20_000, everyMs: 20 });

  it('joining: the CA matches the token, but the certificate request never reaches a worker', async () => {
    const fake = await fakeManager(node('w20', 'worker'));
    const { socket } = await daemon();
    const c = new (grpc.makeGenericClientConstructor(DaemonService, 'Daemon'))(`unix://${socket}`, grpc.credentials.createInsecure());
    clients.push(c as Probe);
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      (c as unknown as { join(r: unknown, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void): void }).join(
        { token: makeJoinToken(root.certPem, 'worker'), remoteAddr: fake.addr, advertiseAddr: '127.0.0.1', listenAddr: '' },
        { deadline: Date.now() + 15_000 },
        (e) => resolve(e),
      ),
    );
    expect(err?.details).toContain(
      `the server at ${fake.addr} presented a worker certificate (node w20): it is not a manager of this cluster`,
    );
    expect(fake.calls).toMatchObject({ getRootCA: 1, issueNodeCertificate: 0 });
  });

  /** A worker of CLUSTER whose only known manager is `addr`, with a certificate already due for renewal. */
  const member = (addr: string, managerNodeIds?: string[]) => (dir: string) => {
    const key = generateNodeKey();
    const now = Date.now();
    const certPem = signNodeCSR(root, createCSR(key.privateKeyPem), {
      nodeId: 'tssw21',
      role: 'worker',
      clusterId: CLUSTER,
      now: now - 25_000,
      validityMs: 30_000,
      backdateMs: 0,
    });
    const st = new StateDir(dir);
    st.saveCerts({ caPem: root.certPem, certPem, keyPem: key.privateKeyPem });
    st.saveNode({
      nodeId: 'tssw21',
      clusterId: CLUSTER,
      role: 'worker',
      managerAddrs: [addr],
      managerNodeIds,
      listenAddr: '127.0.0.1:0',
      advertiseAddr: '127.0.0.1:4242',
    });
  };

  it('the session and the renewal never reach a worker posing as a manager', async () => {
    const fake = await fakeManager(node('w22', 'worker'));
    const { logs } = await daemon(member(fake.addr));
    const refused = (what: RegExp) => logs.some((l) => what.test(l) && l.includes(`presented a worker certificate (node w22)`));
    await eventually(
      () => refused(/session refused/) && refused(/certificate renewal failed/),
      'the session and the renewal to be refused',
    );
    expect(fake.calls).toMatchObject({ session: 0, issueNodeCertificate: 0 });
  });

  it("a demoted manager's certificate is refused by a daemon that knows the current managers", async () => {
    const fake = await fakeManager(node('d23', 'manager'));
    const { logs } = await daemon(member(fake.addr, ['m1', 'm2']));
    const refused = (what: RegExp) =>
      logs.some(
        (l) => what.test(l) && l.includes("the manager certificate of node d23, which is not one of the cluster's managers (m1, m2)"),
      );
    await eventually(
      () => refused(/session refused/) && refused(/certificate renewal failed/),
      'the session and the renewal to be refused',
    );
    expect(fake.calls).toMatchObject({ session: 0, issueNodeCertificate: 0 });
  });

  it("a daemon keeps the managers' node ids a session welcome lists, and pins to them", async () => {
    const fake = await fakeManager(node('m24', 'manager'), { managerNodeIds: ['m25', 'm24'] });
    await daemon(member(fake.addr));
    const dir = dirs[dirs.length - 1]!;
    await eventually(() => new StateDir(dir).loadNode()?.managerNodeIds?.join() === 'm24,m25', "the welcome's manager ids to be saved");
  });

  it("the same daemon reaches a real manager's certificate (the check above can fail)", async () => {
    const fake = await fakeManager(node('m22', 'manager'));
    await daemon(member(fake.addr));
    await eventually(
      () => fake.calls.session! > 0 && fake.calls.issueNodeCertificate! > 0,
      'the session and the renewal to reach the manager',
    );
  });
});
