// `network inspect --dataplane` on the agent: the pure diffs of FDB, neighbor
// and VIP entries (expected vs read back). The report read from real
// namespaces is in dataplane-report.kernel.test.ts.
import { describe, expect, it } from 'vitest';
import {
  countDifferences,
  diffFdb,
  diffNeigh,
  diffVips,
  expectedVipRows,
  iptVipRows,
  ipvsVipRows,
  nftVipRows,
  type VipRow,
} from '../../agent/dataplane-report.js';
import { emptyIptState, emptyIpvsState, emptyNftState, planIpvs, type LbTable } from '../../agent/lb/index.js';

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
      {
        section: 'neigh',
        kind: 'wrong',
        key: '10.0.1.4',
        expected: 'lladdr 02:42:0a:00:01:04 permanent',
        actual: 'lladdr 02:42:0a:00:01:04',
      },
      { section: 'neigh', kind: 'stale', key: '10.0.1.8', actual: 'lladdr 02:42:0a:00:01:08 permanent' },
    ]);
  });
});

describe('VIP diff', () => {
  it('expects one row per VIP port with its backends, leaving out a frontend with no backend', () => {
    const t = table(['10.0.1.5', '10.0.1.4']);
    t.services.push({ id: 'empty@n', vip: '10.0.1.9', ports: [{ protocol: 'udp', port: 53 }], backends: [] });
    expect(expectedVipRows(t)).toEqual([
      { key: 'vip 10.0.1.2 tcp 80', frontend: 'tcp 10.0.1.2:80', backends: ['10.0.1.4:80', '10.0.1.5:80'] },
    ]);
  });

  it('lists a backend once per slot: weight 2 shows twice', () => {
    const t: LbTable = {
      services: [
        { id: 's', vip: '10.0.1.2', ports: [{ protocol: 'tcp', port: 80 }], backends: [{ ip: '10.0.1.4', weight: 2 }, { ip: '10.0.1.5' }] },
      ],
      ingress: [],
    };
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
    st.frontends.set('vip 10.0.1.2 tcp 80', {
      fe: { kind: 'vip', vip: '10.0.1.2', proto: 'tcp', port: 80 },
      chain: 'tss-vip-2',
      slots: ['10.0.1.5:80', '10.0.1.4:80'],
    });
    st.frontends.set('vip 10.0.1.3 tcp 80', {
      fe: { kind: 'vip', vip: '10.0.1.3', proto: 'tcp', port: 80 },
      slots: ['10.0.1.6:80', undefined],
    });
    const rows = nftVipRows(st);
    expect(rows[0]).toEqual({ key: 'vip 10.0.1.2 tcp 80', frontend: 'tcp 10.0.1.2:80', backends: ['10.0.1.4:80', '10.0.1.5:80'] });
    expect(rows[1]!.problem).toBe('slot 1 empty; no dispatch element: unreachable');
  });

  it('reads iptables state: rules not as planned are a problem', () => {
    const st = emptyIptState();
    st.frontends.set('vip 10.0.1.2 tcp 80', {
      fe: { kind: 'vip', vip: '10.0.1.2', proto: 'tcp', port: 80 },
      chain: 'TSS-SVC-X',
      slots: ['10.0.1.4:80'],
      rulesOk: false,
    });
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
      {
        section: 'vip',
        kind: 'wrong',
        key: '10.0.1.3 (every tcp and udp port)',
        expected: '10.0.1.5, 10.0.1.6',
        actual: `(none) (mark ${mark} has no IPVS service)`,
      },
    ]);
  });

  it('counts every difference of a report, a container it could not read included', () => {
    const n = countDifferences({
      deviceDifferences: [],
      fdb: { expected: [], actual: [], differences: diffFdb([{ mac: '02:42:0a:00:01:03', dst: '1.1.1.1' }], []) },
      neigh: { expected: [], actual: [], differences: [] },
      containers: [
        {
          taskId: 't',
          netns: '/proc/1/ns/net',
          backend: 'nft',
          expected: [],
          actual: [],
          differences: diffVips(expectedVipRows(table(['10.0.1.4'])), []),
        },
        { taskId: 'u', netns: '/proc/2/ns/net', backend: '', expected: [], actual: [], differences: [], error: 'gone' },
      ],
    });
    expect(n).toBe(3);
  });
});
