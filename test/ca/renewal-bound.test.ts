// Renewals on a real one-manager cluster (Raft, store, CA, mTLS on 127.0.0.1)
// with short certificates, so the rate limit is half a second: a node renewing
// again and again keeps one revocation entry, and the cluster object does not
// grow with its renewals (issue 13 follow-up: revocation that stays bounded).
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/log.js';
import { MemoryCertificateProvider, channelCredentials, serverCredentials } from '../../lib/tls.js';
import { createCSR, createRootCA, generateNodeKey, parseNodeCert, signNodeCSR } from '../../ca/index.js';
import { newRaftId } from '../../manager/consensus/index.js';
import { Manager } from '../../manager/manager.js';
import { IssueNodeCertificateRequest, IssueNodeCertificateResponse, NodeCAService } from '../../proto/gen/control.js';
import {
  ClusterSpec,
  Meta,
  Node,
  NodeAvailability,
  NodeCertificate,
  NodeDescription,
  NodeRole,
  NodeSpec,
  NodeState,
} from '../../proto/gen/objects.js';
import { until as waitUntil } from '../lib/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'tss-renewal-bound-'));
const clusterId = 'tssrenewalbound00000000000';
const ca = createRootCA({ now: Date.now() });
const VALIDITY_MS = 3000; // the rate limit is a sixth of it

interface Identity {
  certPem: string;
  keyPem: string;
}

/** A certificate of `nodeId` issued 50 of its 60 s ago: due for renewal, and one the managers may not have on record. */
function due(nodeId: string): Identity {
  const key = generateNodeKey();
  return {
    certPem: signNodeCSR(ca, createCSR(key.privateKeyPem), {
      nodeId,
      role: 'worker',
      clusterId,
      now: Date.now() - 50_000,
      validityMs: 60_000,
      backdateMs: 0,
    }),
    keyPem: key.privateKeyPem,
  };
}

const self = (() => {
  const key = generateNodeKey();
  return {
    certPem: signNodeCSR(ca, createCSR(key.privateKeyPem), { nodeId: 'tssm1', role: 'manager', clusterId, now: Date.now() }),
    keyPem: key.privateKeyPem,
  };
})();

let manager: Manager;
let server: grpc.Server;
let addr = '';
const clients: grpc.Client[] = [];

const waitFor = <T>(f: () => T | undefined | null | false, what: string, ms = 20_000): Promise<T> =>
  waitUntil(what, f, { timeoutMs: ms, everyMs: 20 }) as Promise<T>;

type Outcome = { code: number; details: string; res?: IssueNodeCertificateResponse };

function renew(id: Identity, nodeId: string): Promise<Outcome> {
  const p = new MemoryCertificateProvider();
  p.set(ca.certPem, id.certPem, id.keyPem);
  const c = new grpc.Client(addr, channelCredentials(p), { 'grpc.use_local_subchannel_pool': 1 });
  clients.push(c);
  const req = IssueNodeCertificateRequest.create({
    token: '',
    csrPem: createCSR(generateNodeKey().privateKeyPem),
    hostname: nodeId,
    addr: '127.0.0.1',
    nodeId,
  });
  const d = NodeCAService.issueNodeCertificate;
  return new Promise((resolve) =>
    c.makeUnaryRequest(
      d.path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(IssueNodeCertificateRequest.encode(req)),
      new grpc.Metadata(),
      { deadline: Date.now() + 5000 },
      (e, v) =>
        resolve(
          e ? { code: e.code, details: e.details } : { code: grpc.status.OK, details: '', res: IssueNodeCertificateResponse.decode(v!) },
        ),
    ),
  );
}

/** Renews, again while the rate limit refuses it (it lifts within a sixth of the validity). */
async function renewPastTheLimit(id: Identity, nodeId: string): Promise<Outcome> {
  const end = Date.now() + 10_000;
  for (;;) {
    const r = await renew(id, nodeId);
    if (r.code !== grpc.status.RESOURCE_EXHAUSTED || Date.now() > end) return r;
    await new Promise((res) => setTimeout(res, 50));
  }
}

beforeAll(async () => {
  const p = new MemoryCertificateProvider();
  p.set(ca.certPem, self.certPem, self.keyPem);
  server = new grpc.Server();
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', serverCredentials(p), (e, n) => (e ? rej(e) : res(n))),
  );
  addr = `127.0.0.1:${port}`;
  const info = parseNodeCert(self.certPem);
  manager = await Manager.start({
    raftDir: join(dir, 'raft'),
    nodeId: 'tssm1',
    raftId: newRaftId(),
    clusterId,
    advertiseAddr: addr,
    server,
    credentials: { server: serverCredentials(p), client: channelCredentials(p) },
    logger: silentLogger(),
    bootstrap: {
      clusterId,
      caCertPem: ca.certPem,
      caKeyPem: ca.keyPem,
      hostname: 'tssm1',
      certSerial: info.serial,
      certExpiryMs: info.notAfter.getTime(),
      nodeCertValidityMs: VALIDITY_MS,
    },
    heartbeatPeriodMs: 60_000,
    version: 'test',
    caCertPem: () => ca.certPem,
  });
  await waitFor(
    () => manager.consensus.isLeader && manager.cluster() && manager.store.view((tx) => tx.nodes.get('tssm1')),
    'the manager to lead and create the cluster',
  );
  const first = due('tssw1');
  const c = parseNodeCert(first.certPem);
  await manager.store.update((tx) =>
    tx.nodes.create(
      Node.create({
        meta: Meta.create({ id: 'tssw1' }),
        spec: NodeSpec.create({ name: 'tssw1', role: NodeRole.WORKER, availability: NodeAvailability.ACTIVE }),
        status: { state: NodeState.DOWN, addr: '127.0.0.1', message: '' },
        description: NodeDescription.create({ hostname: 'tssw1' }),
        certificate: NodeCertificate.create({ serial: c.serial, expiryMs: c.notAfter.getTime(), role: NodeRole.WORKER }),
      }),
    ),
  );
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await manager?.close();
  server?.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

describe('renewals keep the cluster object bounded', () => {
  it('a node renewing five times keeps one revocation entry, and the cluster object stops growing after the first', async () => {
    const sizes: number[] = [];
    let last = '';
    for (let i = 0; i < 5; i++) {
      const r = await renewPastTheLimit(due('tssw1'), 'tssw1');
      expect(r.code, r.details).toBe(grpc.status.OK);
      last = parseNodeCert(r.res!.certPem).serial;
      const spec = manager.cluster()!.spec;
      expect(spec.nodeRevocations.filter((e) => e.nodeId === 'tssw1')).toHaveLength(1);
      expect(spec.revokedCertificates).toEqual([]);
      sizes.push(ClusterSpec.encode(spec).length);
    }
    expect(Math.max(...sizes) - sizes[0]!).toBeLessThanOrEqual(8); // varints and serial lengths only
    expect(manager.cluster()!.spec.nodeRevocations.find((e) => e.nodeId === 'tssw1')!.currentSerial).toBe(last);
    expect(manager.store.view((tx) => tx.nodes.get('tssw1'))!.certificate!.serial).toBe(last);
  }, 60_000);
});
