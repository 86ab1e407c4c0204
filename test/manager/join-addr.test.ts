// The address a node gives when it joins (IssueNodeCertificate.addr) is
// checked by a real one-manager cluster (Raft, store, CA): a host name or an
// IPv6 address is refused naming the field, with no node stored; an IPv4
// address with its port is stored as the node's address.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/log.js';
import { createCSR, createRootCA, generateNodeKey, parseNodeCert, signNodeCSR } from '../../ca/index.js';
import { newRaftId } from '../../manager/consensus/index.js';
import { Manager } from '../../manager/manager.js';
import type { IssueNodeCertificateRequest, IssueNodeCertificateResponse } from '../../proto/gen/control.js';
import { until as waitUntil } from '../lib/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'tss-join-addr-'));
const clusterId = 'tssjoinaddrcluster0000000';
let manager: Manager;
let server: grpc.Server;

type Issue = (req: IssueNodeCertificateRequest, caller: null) => Promise<IssueNodeCertificateResponse>;
const issue = (req: IssueNodeCertificateRequest): Promise<IssueNodeCertificateResponse> =>
  (manager as unknown as { issueCertificate: Issue }).issueCertificate.call(manager, req, null);
const joinReq = (addr: string): IssueNodeCertificateRequest => ({
  token: manager.clusterApi.joinTokens().worker,
  csrPem: createCSR(generateNodeKey().privateKeyPem),
  hostname: 'tss-joiner',
  addr,
  nodeId: '',
});

const waitFor = (fn: () => unknown, what: string): Promise<unknown> => waitUntil(what, fn, { timeoutMs: 20_000, everyMs: 20 });

beforeAll(async () => {
  const now = Date.now();
  const ca = createRootCA({ commonName: 'tss-join-addr-ca', now });
  const key = generateNodeKey();
  const cert = signNodeCSR(ca, createCSR(key.privateKeyPem, { nodeId: 'tssm1' }), { nodeId: 'tssm1', role: 'manager', clusterId, now });
  const info = parseNodeCert(cert);
  server = new grpc.Server();
  manager = await Manager.start({
    raftDir: join(dir, 'raft'),
    nodeId: 'tssm1',
    raftId: newRaftId(),
    clusterId,
    advertiseAddr: '127.0.0.1:1',
    server,
    credentials: { server: grpc.ServerCredentials.createInsecure(), client: grpc.credentials.createInsecure() },
    logger: silentLogger(),
    bootstrap: {
      clusterId,
      caCertPem: ca.certPem,
      caKeyPem: ca.keyPem,
      hostname: 'tssm1',
      certSerial: info.serial,
      certExpiryMs: info.notAfter.getTime(),
      nodeCertValidityMs: 0,
    },
    heartbeatPeriodMs: 60_000,
    version: 'test',
    caCertPem: () => ca.certPem,
  });
  await waitFor(() => manager.consensus.isLeader && manager.cluster(), 'the manager to lead and create the cluster');
}, 60_000);

afterAll(async () => {
  await manager?.close();
  server?.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

describe('the address given at join', () => {
  it.each([
    ['evil.example.com:4242', /host name is not an address/],
    ['[fd00::1]:4242', /IPv6/],
    ['', /empty/],
    ['0.0.0.0:4242', /unspecified/],
  ])('refuses %j naming the field, storing no node', async (addr, why) => {
    const before = manager.store.view((tx) => tx.nodes.count());
    const e = await issue(joinReq(addr)).then(
      () => undefined,
      (err: unknown) => err as { code: string; message: string },
    );
    expect(e?.code).toBe('INVALID_ARGUMENT');
    expect(e?.message).toMatch(/^addr \(the joining node's --advertise-addr\) must be an IPv4 address/);
    expect(e?.message).toMatch(why);
    expect(manager.store.view((tx) => tx.nodes.count())).toBe(before);
  });

  it("stores an IPv4 address with its port as the new node's address", async () => {
    const r = await issue(joinReq('10.9.9.9:4242'));
    expect(manager.store.view((tx) => tx.nodes.get(r.nodeId))?.status?.addr).toBe('10.9.9.9:4242');
  });
});
