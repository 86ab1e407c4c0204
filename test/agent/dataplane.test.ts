// `network inspect --dataplane` on the agent: the pure diffs of FDB, neighbor
// and VIP entries (expected vs read back), and the report for real against a
// VXLAN device and nft/iptables tables in tss namespaces made by this file
// (per-process names, removed in afterAll).
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countDifferences, dataplaneReport, diffFdb, diffNeigh, diffVips, expectedVipRows, iptVipRows, ipvsVipRows, nftVipRows, type VipRow } from '../../agent/dataplane.js';
import { emptyIptState, emptyIpvsState, emptyNftState, planIpvs, ServiceLoadBalancer, type LbTable } from '../../agent/lb/index.js';
import type { NetworkAgent } from '../../agent/networking.js';
import { have, isRoot } from '../have.js';

const table = (backends: string[], port = 80, vip = '10.0.1.2'): LbTable => ({
  services: [{ id: 'web@n', vip, ports: [{ protocol: 'tcp', port }], backends: backends.map((ip) => ({ ip })) }],
  ingress: [],
});

describe('FDB diff', () => {
  it('reports a wanted MAC absent as missing, at another VTEP as wrong, and an unwanted one as stale', () => {
    const d = diffFdb(
      [
        { mac: '02:42:0a:00:01:03', dst: '192.168.1.2' },
        { mac: '02:42:0a:00:01:04', dst: '192.168.1.3' },
      ],
      [
        { mac: '02:42:0a:00:01:04', dst: '192.168.1.9' },
        { mac: '02:42:0a:00:01:09', dst: '192.168.1.2' },
      ],
    );
    expect(d).toEqual([
      { section: 'fdb', kind: 'missing', key: '02:42:0a:00:01:03', expected: 'dst 192.168.1.2' },
      { section: 'fdb', kind: 'wrong', key: '02:42:0a:00:01:04', expected: 'dst 192.168.1.3', actual: 'dst 192.168.1.9' },
      { section: 'fdb', kind: 'stale', key: '02:42:0a:00:01:09', actual: 'dst 192.168.1.2' },
    ]);
  });

  it('counts a MAC at its VTEP and at a second one as wrong, and marks flood entries as such', () => {
    const d = diffFdb(
      [{ mac: '02:42:0a:00:01:03', dst: '192.168.1.2' }],
      [
        { mac: '02:42:0a:00:01:03', dst: '192.168.1.2' },
        { mac: '02:42:0a:00:01:03', dst: '192.168.1.5' },
        { mac: '00:00:00:00:00:00', dst: '192.168.1.5' },
      ],
    );
    expect(d.map((x) => [x.kind, x.key])).toEqual([
      ['wrong', '02:42:0a:00:01:03'],
      ['stale', '00:00:00:00:00:00 (flood)'],
    ]);
  });

  it('finds nothing when the kernel holds exactly the expected entries, in any order', () => {
    const e = [
      { mac: '02:42:0a:00:01:03', dst: '192.168.1.2' },
      { mac: '02:42:0a:00:01:04', dst: '192.168.1.3' },
    ];
    expect(diffFdb(e, [...e].reverse())).toEqual([]);
  });
});

describe('neighbor diff', () => {
  it('wants each entry at its MAC and permanent; anything else on the device is stale', () => {
    const d = diffNeigh(
      [
        { ip: '10.0.1.3', mac: '02:42:0a:00:01:03', permanent: true },
        { ip: '10.0.1.4', mac: '02:42:0a:00:01:04', permanent: true },
        { ip: '10.0.1.5', mac: '02:42:0a:00:01:05', permanent: true },
      ],
      [
        { ip: '10.0.1.4', mac: '02:42:0a:00:01:04', permanent: false },
        { ip: '10.0.1.5', mac: '02:42:0a:00:01:05', permanent: true },
        { ip: '10.0.1.8', mac: '02:42:0a:00:01:08', permanent: true },
      ],
    );
    expect(d).toEqual([
      { section: 'neigh', kind: 'missing', key: '10.0.1.3', expected: 'lladdr 02:42:0a:00:01:03 permanent' },
      { section: 'neigh', kind: 'wrong', key: '10.0.1.4', expected: 'lladdr 02:42:0a:00:01:04 permanent', actual: 'lladdr 02:42:0a:00:01:04' },
      { section: 'neigh', kind: 'stale', key: '10.0.1.8', actual: 'lladdr 02:42:0a:00:01:08 permanent' },
    ]);
  });
});

describe('VIP diff', () => {
  it('expects one row per VIP port with its backends, leaving out a frontend with no backend', () => {
    const t = table(['10.0.1.5', '10.0.1.4']);
    t.services.push({ id: 'empty@n', vip: '10.0.1.9', ports: [{ protocol: 'udp', port: 53 }], backends: [] });
    expect(expectedVipRows(t)).toEqual([{ key: 'vip 10.0.1.2 tcp 80', frontend: 'tcp 10.0.1.2:80', backends: ['10.0.1.4:80', '10.0.1.5:80'] }]);
  });

  it('lists a backend once per slot: weight 2 shows twice', () => {
    const t: LbTable = { services: [{ id: 's', vip: '10.0.1.2', ports: [{ protocol: 'tcp', port: 80 }], backends: [{ ip: '10.0.1.4', weight: 2 }, { ip: '10.0.1.5' }] }], ingress: [] };
    expect(expectedVipRows(t)[0]!.backends).toEqual(['10.0.1.4:80', '10.0.1.4:80', '10.0.1.5:80']);
  });

  it('reports a missing frontend, a frontend with other backends as wrong, and an unknown one as stale', () => {
    const want = expectedVipRows({
      services: [
        { id: 'a', vip: '10.0.1.2', ports: [{ protocol: 'tcp', port: 80 }], backends: [{ ip: '10.0.1.4' }] },
        { id: 'b', vip: '10.0.1.3', ports: [{ protocol: 'tcp', port: 80 }], backends: [{ ip: '10.0.1.5' }, { ip: '10.0.1.6' }] },
      ],
      ingress: [],
    });
    const have: VipRow[] = [
      { key: 'vip 10.0.1.3 tcp 80', frontend: 'tcp 10.0.1.3:80', backends: ['10.0.1.5:80', '10.0.1.7:80'] },
      { key: 'vip 10.0.1.8 udp 53', frontend: 'udp 10.0.1.8:53', backends: ['10.0.1.9:53'] },
    ];
    expect(diffVips(want, have)).toEqual([
      { section: 'vip', kind: 'missing', key: 'tcp 10.0.1.2:80', expected: '10.0.1.4:80' },
      { section: 'vip', kind: 'wrong', key: 'tcp 10.0.1.3:80', expected: '10.0.1.5:80, 10.0.1.6:80', actual: '10.0.1.5:80, 10.0.1.7:80' },
      { section: 'vip', kind: 'stale', key: 'udp 10.0.1.8:53', actual: '10.0.1.9:53' },
    ]);
  });

  it('calls a frontend wrong when the kernel holds it badly even with the right backends, and reports a broken table', () => {
    const want = expectedVipRows(table(['10.0.1.4']));
    const have: VipRow[] = [{ ...want[0]!, problem: 'no dispatch element: unreachable' }];
    const d = diffVips(want, have, 'table ip tss-lb is not as the agent builds it');
    expect(d.map((x) => x.kind)).toEqual(['wrong', 'wrong']);
    expect(d[1]!.actual).toContain('unreachable');
  });

  it('reads nft state: slots become backends, an empty slot or a missing dispatch element is a problem', () => {
    const st = emptyNftState();
    st.table = 'ok';
    st.chains.add('tss-vip-2');
    st.frontends.set('vip 10.0.1.2 tcp 80', { fe: { kind: 'vip', vip: '10.0.1.2', proto: 'tcp', port: 80 }, chain: 'tss-vip-2', slots: ['10.0.1.5:80', '10.0.1.4:80'] });
    st.frontends.set('vip 10.0.1.3 tcp 80', { fe: { kind: 'vip', vip: '10.0.1.3', proto: 'tcp', port: 80 }, slots: ['10.0.1.6:80', undefined] });
    const rows = nftVipRows(st);
    expect(rows[0]).toEqual({ key: 'vip 10.0.1.2 tcp 80', frontend: 'tcp 10.0.1.2:80', backends: ['10.0.1.4:80', '10.0.1.5:80'] });
    expect(rows[1]!.problem).toBe('slot 1 empty; no dispatch element: unreachable');
  });

  it('reads iptables state: rules not as planned are a problem', () => {
    const st = emptyIptState();
    st.frontends.set('vip 10.0.1.2 tcp 80', { fe: { kind: 'vip', vip: '10.0.1.2', proto: 'tcp', port: 80 }, chain: 'TSS-SVC-X', slots: ['10.0.1.4:80'], rulesOk: false });
    expect(iptVipRows(st)[0]!.problem).toMatch(/not as planned/);
  });

  it('reads ipvs state: what IPVS holds matches the expected rows (a weight counts as slots), and a mark without its service is a problem', () => {
    const t: LbTable = {
      services: [
        { id: 'a', vip: '10.0.1.2', ports: [{ protocol: 'tcp', port: 80 }], backends: [{ ip: '10.0.1.4', weight: 2 }] },
        { id: 'b', vip: '10.0.1.3', ports: [], backends: [{ ip: '10.0.1.5' }, { ip: '10.0.1.6' }] },
      ],
      ingress: [{ protocol: 'udp', publishedPort: 5353, targetPort: 53, serviceId: 'a' }],
    };
    const st = planIpvs(t, emptyIpvsState()).next;
    expect(diffVips(expectedVipRows(t), ipvsVipRows(st))).toEqual([]);
    // The every-port VIP's IPVS service deleted by hand: its row is wrong, with the reason.
    const mark = st.marks.get('vip-any 10.0.1.3')!.mark;
    st.services.delete(`fwm ${mark}`);
    expect(diffVips(expectedVipRows(t), ipvsVipRows(st))).toEqual([
      { section: 'vip', kind: 'wrong', key: '10.0.1.3 (every tcp and udp port)', expected: '10.0.1.5, 10.0.1.6', actual: `(none) (mark ${mark} has no IPVS service)` },
    ]);
  });

  it('counts every difference of a report, a container it could not read included', () => {
    const n = countDifferences({
      deviceDifferences: [],
      fdb: { expected: [], actual: [], differences: diffFdb([{ mac: '02:42:0a:00:01:03', dst: '1.1.1.1' }], []) },
      neigh: { expected: [], actual: [], differences: [] },
      containers: [
        { taskId: 't', netns: '/proc/1/ns/net', backend: 'nft', expected: [], actual: [], differences: diffVips(expectedVipRows(table(['10.0.1.4'])), []) },
        { taskId: 'u', netns: '/proc/2/ns/net', backend: '', expected: [], actual: [], differences: [], error: 'gone' },
      ],
    });
    expect(n).toBe(3);
  });
});

// ---------------------------------------------------------------- for real

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
    expect(r.containers[0]!.differences).toEqual([{ section: 'vip', kind: 'wrong', key: 'tcp 10.0.1.2:80', expected: '10.0.9.3:80', actual: '10.0.9.3:80, 10.0.9.4:80' }]);
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
