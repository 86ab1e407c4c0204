// The FDB/neighbor planner (fdb.ts) line by line: desired entries from a peer table, the diff
// against the kernel's entries as `bridge`/`ip` batch lines, and the parsers
// of `bridge -json fdb show` and `ip -json neigh show`.
import { describe, expect, it } from 'vitest';
import { FLOOD_MAC, desiredPeerState, parseFdb, parseNeigh, planPeers } from '../../../agent/overlay/index.js';
import { programCounts } from '../../../agent/overlay/fdb.js';
import type { PeerState } from '../../../agent/overlay/index.js';

const LOCAL = '10.99.0.1';
const peer = (i: number, vtep = '10.99.0.2') => ({ ip: `10.0.1.${i}`, mac: `02:42:0a:00:01:${i.toString(16).padStart(2, '0')}`, vtep });
const empty: PeerState = { fdb: [], neigh: [] };

describe('desiredPeerState', () => {
  it('gives one FDB and one permanent neighbor entry per remote endpoint and skips endpoints on this host', () => {
    const d = desiredPeerState([peer(2), peer(3, LOCAL), peer(4, '10.99.0.3')], LOCAL);
    expect(d.fdb).toEqual([
      { mac: '02:42:0a:00:01:02', dst: '10.99.0.2' },
      { mac: '02:42:0a:00:01:04', dst: '10.99.0.3' },
    ]);
    expect(d.neigh).toEqual([
      { ip: '10.0.1.2', mac: '02:42:0a:00:01:02', permanent: true },
      { ip: '10.0.1.4', mac: '02:42:0a:00:01:04', permanent: true },
    ]);
  });

  it('adds one flood entry per remote host when flooding is on', () => {
    const d = desiredPeerState([peer(2), peer(5), peer(4, '10.99.0.3')], LOCAL, { flood: true });
    expect(d.fdb.filter((e) => e.mac === FLOOD_MAC)).toEqual([
      { mac: FLOOD_MAC, dst: '10.99.0.2' },
      { mac: FLOOD_MAC, dst: '10.99.0.3' },
    ]);
  });

  it('lower-cases MACs and accepts a peer listed twice identically', () => {
    const p = { ip: '10.0.1.9', mac: '02:42:0A:00:01:09', vtep: '10.99.0.2' };
    expect(desiredPeerState([p, p], LOCAL).fdb).toEqual([{ mac: '02:42:0a:00:01:09', dst: '10.99.0.2' }]);
  });

  it('refuses an IP with two MACs, a MAC at two hosts, and malformed fields, naming the field', () => {
    expect(() => desiredPeerState([peer(2), { ...peer(2), mac: '02:42:0a:00:01:ff' }], LOCAL)).toThrow(
      /peers\[1\]\.ip 10\.0\.1\.2 is given twice/,
    );
    expect(() => desiredPeerState([peer(2), { ...peer(2), ip: '10.0.1.77', vtep: '10.99.0.3' }], LOCAL)).toThrow(
      /peers\[1\]\.mac .* two VTEPs/,
    );
    expect(() => desiredPeerState([{ ...peer(2), mac: 'zz' }], LOCAL)).toThrow(/peers\[0\]\.mac must be a MAC address/);
    expect(() => desiredPeerState([{ ...peer(2), vtep: 'host2' }], LOCAL)).toThrow(/peers\[0\]\.vtep must be an IPv4 address/);
    expect(() => desiredPeerState([{ ...peer(2), mac: FLOOD_MAC }], LOCAL)).toThrow(/peers\[0\]\.mac must be a unicast MAC/);
  });
});

describe('planPeers', () => {
  const dev = 'tssvx4097';

  it('programs everything with replace lines on an empty device', () => {
    const p = planPeers(dev, desiredPeerState([peer(2), peer(3)], LOCAL), empty);
    expect(p.fdb).toEqual([
      'fdb replace 02:42:0a:00:01:02 dev tssvx4097 dst 10.99.0.2 self permanent',
      'fdb replace 02:42:0a:00:01:03 dev tssvx4097 dst 10.99.0.2 self permanent',
    ]);
    expect(p.neigh).toEqual([
      'neigh replace 10.0.1.2 lladdr 02:42:0a:00:01:02 dev tssvx4097 nud permanent',
      'neigh replace 10.0.1.3 lladdr 02:42:0a:00:01:03 dev tssvx4097 nud permanent',
    ]);
  });

  it('plans nothing when the kernel already holds exactly the desired entries', () => {
    const d = desiredPeerState([peer(2), peer(3)], LOCAL, { flood: true });
    expect(planPeers(dev, d, d)).toEqual({ fdb: [], neigh: [] });
  });

  it('deletes stale entries before adding missing ones', () => {
    const actual = desiredPeerState([peer(2), peer(9)], LOCAL);
    const p = planPeers(dev, desiredPeerState([peer(2), peer(3)], LOCAL), actual);
    expect(p.fdb).toEqual([
      'fdb del 02:42:0a:00:01:09 dev tssvx4097 dst 10.99.0.2 self',
      'fdb replace 02:42:0a:00:01:03 dev tssvx4097 dst 10.99.0.2 self permanent',
    ]);
    expect(p.neigh).toEqual([
      'neigh del 10.0.1.9 dev tssvx4097',
      'neigh replace 10.0.1.3 lladdr 02:42:0a:00:01:03 dev tssvx4097 nud permanent',
    ]);
    expect(programCounts(p)).toEqual({ added: 2, removed: 2 });
  });

  it('moves a MAC whose host changed with one replace (no gap) and deletes extra remotes', () => {
    const desired = desiredPeerState([peer(2, '10.99.0.3'), peer(4)], LOCAL);
    const actual: PeerState = {
      fdb: [
        { mac: '02:42:0a:00:01:02', dst: '10.99.0.2' },
        { mac: '02:42:0a:00:01:04', dst: '10.99.0.2' },
        { mac: '02:42:0a:00:01:04', dst: '10.99.0.7' },
      ],
      neigh: desired.neigh,
    };
    expect(planPeers(dev, desired, actual).fdb).toEqual([
      'fdb del 02:42:0a:00:01:04 dev tssvx4097 dst 10.99.0.7 self',
      'fdb replace 02:42:0a:00:01:02 dev tssvx4097 dst 10.99.0.3 self permanent',
    ]);
  });

  it('replaces a neighbor entry with the wrong MAC or not permanent', () => {
    const desired = desiredPeerState([peer(2), peer(3)], LOCAL);
    const actual: PeerState = {
      fdb: desired.fdb,
      neigh: [
        { ip: '10.0.1.2', mac: '02:42:0a:00:01:ff', permanent: true },
        { ip: '10.0.1.3', mac: '02:42:0a:00:01:03', permanent: false },
      ],
    };
    expect(planPeers(dev, desired, actual).neigh).toEqual([
      'neigh replace 10.0.1.2 lladdr 02:42:0a:00:01:02 dev tssvx4097 nud permanent',
      'neigh replace 10.0.1.3 lladdr 02:42:0a:00:01:03 dev tssvx4097 nud permanent',
    ]);
  });

  it('appends flood entries (never replace) and deletes the flood entry of a host that left', () => {
    const desired = desiredPeerState([peer(2), peer(4, '10.99.0.3')], LOCAL, { flood: true });
    const actual: PeerState = {
      fdb: [...desired.fdb.filter((e) => e.mac !== FLOOD_MAC), { mac: FLOOD_MAC, dst: '10.99.0.2' }, { mac: FLOOD_MAC, dst: '10.99.0.9' }],
      neigh: desired.neigh,
    };
    expect(planPeers(dev, desired, actual).fdb).toEqual([
      'fdb del 00:00:00:00:00:00 dev tssvx4097 dst 10.99.0.9 self',
      'fdb append 00:00:00:00:00:00 dev tssvx4097 dst 10.99.0.3 self permanent',
    ]);
  });

  it('removes every entry when the table becomes empty', () => {
    const actual = desiredPeerState([peer(2)], LOCAL, { flood: true });
    expect(planPeers(dev, empty, actual)).toEqual({
      fdb: ['fdb del 02:42:0a:00:01:02 dev tssvx4097 dst 10.99.0.2 self', 'fdb del 00:00:00:00:00:00 dev tssvx4097 dst 10.99.0.2 self'],
      neigh: ['neigh del 10.0.1.2 dev tssvx4097'],
    });
  });
});

describe('parsers', () => {
  it('keeps only the VXLAN device own (self) entries with a destination', () => {
    const json = JSON.stringify([
      { mac: 'ba:2c:ae:51:b0:b8', flags: [], master: 'tssbr4097', state: 'permanent' },
      { mac: '5e:11:22:33:44:55', flags: [], master: 'tssbr4097' },
      { mac: '00:00:00:00:00:00', dst: '10.99.0.2', linkNetNsId: 0, flags: ['self'], state: 'permanent' },
      { mac: '02:42:0A:00:00:03', dst: '10.99.0.2', linkNetNsId: 0, flags: ['self'], state: 'permanent' },
    ]);
    expect(parseFdb(json)).toEqual([
      { mac: '00:00:00:00:00:00', dst: '10.99.0.2' },
      { mac: '02:42:0a:00:00:03', dst: '10.99.0.2' },
    ]);
    expect(parseFdb('')).toEqual([]);
  });

  it('reads IPv4 neighbor entries and whether they are permanent', () => {
    const json = JSON.stringify([
      { dst: '10.0.0.3', lladdr: '02:42:0a:00:00:03', state: ['PERMANENT'] },
      { dst: '10.0.0.4', lladdr: '02:42:0a:00:00:04', state: ['REACHABLE'] },
      { dst: 'fe80::1', lladdr: '02:42:0a:00:00:05', state: ['PERMANENT'] },
    ]);
    expect(parseNeigh(json)).toEqual([
      { ip: '10.0.0.3', mac: '02:42:0a:00:00:03', permanent: true },
      { ip: '10.0.0.4', mac: '02:42:0a:00:00:04', permanent: false },
    ]);
  });
});
