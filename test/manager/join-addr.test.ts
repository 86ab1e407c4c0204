// The address a node gives when it joins (IssueNodeCertificate.addr) is
// checked by a real one-manager cluster (Raft, store, CA): a host name or an
// IPv6 address is refused naming the field, with no node stored; an IPv4
// address with its port is stored as the node's address.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCSR, generateNodeKey } from '../../ca/index.js';
import type { Manager } from '../../manager/manager.js';
import type { IssueNodeCertificateRequest, IssueNodeCertificateResponse } from '../../proto/gen/control.js';
import { type LoneManager, startLoneManager } from './lone-manager.js';

const clusterId = 'tssjoinaddrcluster0000000';
let manager: Manager;

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

let lone: LoneManager;

beforeAll(async () => {
  lone = await startLoneManager('tssm1', clusterId);
  manager = lone.manager;
}, 60_000);

afterAll(() => lone?.close());

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
