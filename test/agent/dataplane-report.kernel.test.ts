// `network inspect --dataplane` for real: the report read against a VXLAN
// device and nft/iptables tables in tss namespaces made by this file
// (per-process names, removed in afterAll). The pure diffs are in
// dataplane-report.test.ts.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataplaneReport } from '../../agent/dataplane-report.js';
import { ServiceLoadBalancer, type LbTable } from '../../agent/lb/index.js';
import type { NetworkAgent } from '../../agent/network-agent.js';
import { have, isRoot } from '../have.js';

const table = (backends: string[], port = 80, vip = '10.0.1.2'): LbTable => ({
  services: [{ id: 'web@n', vip, ports: [{ protocol: 'tcp', port }], backends: backends.map((ip) => ({ ip })) }],
  ingress: [],
});

const canRun = isRoot && have('ip', ['-V']) && have('bridge', ['-V']) && have('nft') && have('nsenter');
if (!canRun) console.log('dataplane kernel tests skipped: need root, iproute2, nftables and nsenter');

const ID = `dp${process.pid}`;
const OV = `tss-${ID}-ov`;
const CT = `tss-${ID}-c`;
const VNI = 4000 + (process.pid % 1000);
const DEV = `tssvx${VNI}`;
const sh = (...argv: string[]): string => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
const peers = [
  { ip: '10.0.9.3', mac: '02:42:0a:00:09:03', vtep: '192.168.88.2' },
  { ip: '10.0.9.4', mac: '02:42:0a:00:09:04', vtep: '192.168.88.3' },
];

function fakeAgent(lb: LbTable): Pick<NetworkAgent, 'expected'> {
  return {
    expected: (id: string) =>
      id === 'net'
        ? { network: {} as never, netns: OV, vni: VNI, peers, containers: [{ taskId: 'task1', netns: `/run/netns/${CT}`, table: lb }] }
        : undefined,
  };
}

describe.skipIf(!canRun)('the report read from real namespaces', () => {
  beforeAll(async () => {
    for (const ns of [OV, CT]) sh('ip', 'netns', 'add', ns);
    sh('ip', '-n', OV, 'link', 'add', DEV, 'type', 'vxlan', 'id', String(VNI), 'dstport', '4789', 'nolearning', 'proxy');
    sh('ip', '-n', OV, 'link', 'set', DEV, 'up');
    for (const p of peers) {
      sh('nsenter', `--net=/run/netns/${OV}`, 'bridge', 'fdb', 'replace', p.mac, 'dev', DEV, 'dst', p.vtep, 'self', 'permanent');
      sh('ip', '-n', OV, 'neigh', 'replace', p.ip, 'lladdr', p.mac, 'dev', DEV, 'nud', 'permanent');
    }
    const lb = await ServiceLoadBalancer.open({ netns: CT, lbBackend: 'nft' });
    await lb.update(table(['10.0.9.3', '10.0.9.4']));
    await lb.close();
  });

  afterAll(() => {
    for (const ns of [OV, CT]) {
      try {
        sh('ip', 'netns', 'del', ns);
      } catch {
        /* already gone */
      }
    }
  });

  it('is in sync when the kernel holds what is expected', async () => {
    const r = await dataplaneReport(fakeAgent(table(['10.0.9.3', '10.0.9.4'])), 'net', { nodeId: 'n1', lbBackend: 'nft' });
    expect(r.errors).toEqual([]);
    expect(r.fdb.actual).toHaveLength(2);
    expect(r.neigh.actual).toHaveLength(2);
    expect(r.containers[0]!.actual).toEqual(r.containers[0]!.expected);
    expect(r.differences).toBe(0);
  });

  it('reports an FDB entry deleted by hand as missing, a foreign neighbor entry as stale and other VIP backends as wrong', async () => {
    sh('nsenter', `--net=/run/netns/${OV}`, 'bridge', 'fdb', 'del', peers[0]!.mac, 'dev', DEV, 'self');
    sh('ip', '-n', OV, 'neigh', 'replace', '10.0.9.77', 'lladdr', '02:42:0a:00:09:4d', 'dev', DEV, 'nud', 'permanent');
    const r = await dataplaneReport(fakeAgent(table(['10.0.9.3'])), 'net', { nodeId: 'n1' });
    expect(r.fdb.differences).toEqual([{ section: 'fdb', kind: 'missing', key: peers[0]!.mac, expected: `dst ${peers[0]!.vtep}` }]);
    expect(r.neigh.differences.map((d) => [d.kind, d.key])).toEqual([['stale', '10.0.9.77']]);
    expect(r.containers[0]!.backend).toBe('nft');
    expect(r.containers[0]!.differences).toEqual([
      { section: 'vip', kind: 'wrong', key: 'tcp 10.0.1.2:80', expected: '10.0.9.3:80', actual: '10.0.9.3:80, 10.0.9.4:80' },
    ]);
    expect(r.differences).toBe(3);
  });

  it('reads the iptables backend when that is the one in use, and reports a missing table as missing frontends', async () => {
    const r = await dataplaneReport(fakeAgent(table(['10.0.9.3'])), 'net', { nodeId: 'n1', lbBackend: 'iptables' });
    expect(r.containers[0]!.backend).toBe('iptables');
    expect(r.containers[0]!.error).toBeUndefined();
    expect(r.containers[0]!.differences.map((d) => d.kind)).toEqual(['missing']);
  });

  it('reports a missing namespace as a device difference and every expected entry as missing', async () => {
    const r = await dataplaneReport(
      { expected: () => ({ network: {} as never, netns: `tss-${ID}-nope`, vni: VNI, peers, containers: [] }) },
      'net',
      { nodeId: 'n1' },
    );
    expect(r.deviceDifferences.map((d) => d.kind)).toEqual(['missing']);
    expect(r.fdb.differences.map((d) => d.kind)).toEqual(['missing', 'missing']);
    expect(r.differences).toBe(5);
  });

  it('says a network this node does not hold is not held, with nothing to compare', async () => {
    const r = await dataplaneReport(fakeAgent(table([])), 'other', { nodeId: 'n1' });
    expect(r.held).toBe(false);
    expect(r.differences).toBe(0);
  });
});
