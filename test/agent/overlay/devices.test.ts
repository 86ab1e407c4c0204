// The device planners line by line (pure: the kernel state is given as
// data): vxlan.ts (the network's namespace, bridge and VXLAN device), veth.ts
// (a container's veth) and egress.ts (egress bridge and NAT), plus names and
// MACs.
import { describe, expect, it } from 'vitest';
import {
  allocateEgressIp,
  egressInUse,
  egressNet,
  egressRuleset,
  macOf,
  overlayNetnsName,
  overlayVethName,
  parseLinks,
  planAttach,
  planDetach,
  planEgressBridge,
  planNetwork,
} from '../../../agent/overlay/index.js';
import type { EndpointDevices, LinkState, NetworkDevices } from '../../../agent/overlay/index.js';
import { defaultNameTag, ipOfVethName, vniOfNetnsName } from '../../../agent/overlay/names.js';

const link = (l: Partial<LinkState> & { name: string }): LinkState => ({
  ifindex: 1,
  kind: '',
  up: true,
  mtu: 1450,
  mac: '',
  addrs: [],
  ...l,
});

describe('names', () => {
  it('derives the MAC from the address and the veth name from the address in hex', () => {
    expect(macOf('10.0.1.35')).toBe('02:42:0a:00:01:23');
    expect(overlayVethName('10.0.1.35')).toBe('tssv0a000123');
    expect(ipOfVethName('tssv0a000123', 'overlay')).toBe('10.0.1.35');
    expect(ipOfVethName('tssg0a000123', 'overlay')).toBeUndefined();
    expect(overlayVethName('255.255.255.255').length).toBeLessThanOrEqual(15);
  });

  it('names a network namespace after the VNI and the host, and reads the VNI back only for that host', () => {
    expect(defaultNameTag('tss-h1')).toBe('h1');
    expect(defaultNameTag(undefined)).toBe('host');
    expect(overlayNetnsName(4097, 'h1')).toBe('tss-ov-4097-h1');
    expect(vniOfNetnsName('tss-ov-4097-h1', 'h1')).toBe(4097);
    expect(vniOfNetnsName('tss-ov-4097-h11', 'h1')).toBeUndefined();
    expect(vniOfNetnsName('tss-ov-x-h1', 'h1')).toBeUndefined();
  });
});

describe('planNetwork', () => {
  const d: NetworkDevices = {
    vni: 4097,
    gatewayAddr: '10.0.1.1/24',
    bridgeMac: '02:42:0a:00:01:01',
    vtep: '10.99.0.1',
    port: 4789,
    mtu: 1450,
    netns: 'tss-ov-4097-h1',
  };
  const vx = link({
    name: 'tssvx4097',
    kind: 'vxlan',
    master: 'tssbr4097',
    vxlan: { vni: 4097, local: '10.99.0.1', port: 4789, learning: false, proxy: true },
  });
  const br = link({ name: 'tssbr4097', kind: 'bridge', mac: '02:42:0a:00:01:01', addrs: ['10.0.1.1/24'] });

  it('creates the namespace, the VXLAN device in the host namespace, moves it, and builds the bridge', () => {
    const p = planNetwork(d, { netnsExists: false, hostLinks: [], overlayLinks: [] });
    expect(p.createNetns).toBe(true);
    expect(p.overlayPre).toEqual([]);
    expect(p.host).toEqual([
      'link add tssvx4097 mtu 1450 type vxlan id 4097 dstport 4789 local 10.99.0.1 nolearning proxy',
      'link set tssvx4097 netns tss-ov-4097-h1',
    ]);
    expect(p.overlay).toEqual([
      'link add tssbr4097 address 02:42:0a:00:01:01 mtu 1450 type bridge',
      'addr replace 10.0.1.1/24 dev tssbr4097',
      'link set tssvx4097 master tssbr4097',
      'link set tssvx4097 up',
      'link set tssbr4097 up',
    ]);
  });

  it('plans nothing when everything is in place', () => {
    const p = planNetwork(d, { netnsExists: true, hostLinks: [], overlayLinks: [vx, br] });
    expect(p).toEqual({ createNetns: false, overlayPre: [], host: [], overlay: [] });
  });

  it('recreates a VXLAN device with learning on or the wrong local address, and removes a half-made one from the host namespace', () => {
    const bad = link({ ...vx, vxlan: { vni: 4097, local: '10.99.0.7', port: 4789, learning: true, proxy: true } });
    const p = planNetwork(d, { netnsExists: true, hostLinks: [link({ name: 'tssvx4097', kind: 'vxlan' })], overlayLinks: [bad, br] });
    expect(p.overlayPre).toEqual(['link del tssvx4097']);
    expect(p.host).toEqual([
      'link del tssvx4097',
      'link add tssvx4097 mtu 1450 type vxlan id 4097 dstport 4789 local 10.99.0.1 nolearning proxy',
      'link set tssvx4097 netns tss-ov-4097-h1',
    ]);
    expect(p.overlay).toEqual(['link set tssvx4097 master tssbr4097', 'link set tssvx4097 up']);
  });

  it('repairs the bridge: MAC, MTU, a stray address, the gateway, up; and re-enslaves the VXLAN device', () => {
    const p = planNetwork(d, {
      netnsExists: true,
      hostLinks: [],
      overlayLinks: [
        { ...vx, master: undefined, up: false },
        { ...br, mac: '5e:00:00:00:00:01', mtu: 1500, up: false, addrs: ['10.0.9.1/24'] },
      ],
    });
    expect(p.overlay).toEqual([
      'link set tssbr4097 address 02:42:0a:00:01:01',
      'link set tssbr4097 mtu 1450',
      'addr del 10.0.9.1/24 dev tssbr4097',
      'addr replace 10.0.1.1/24 dev tssbr4097',
      'link set tssvx4097 master tssbr4097',
      'link set tssvx4097 up',
      'link set tssbr4097 up',
    ]);
  });
});

describe('planAttach', () => {
  const d: EndpointDevices = {
    hostIf: 'tssv0a000105',
    bridge: 'tssbr4097',
    ifName: 'eth0',
    ip: '10.0.1.5',
    prefixLen: 24,
    mac: '02:42:0a:00:01:05',
    mtu: 1450,
    containerNetns: '/proc/42/ns/net',
  };
  const lo = link({ name: 'lo', up: false, mtu: 65536 });

  it('creates the pair with the container end named, addressed and MAC-ed inside the container', () => {
    const p = planAttach(d, { containerLinks: [lo] });
    expect(p.bridgeNs).toEqual([
      'link add tssv0a000105 mtu 1450 type veth peer name eth0 mtu 1450 address 02:42:0a:00:01:05 netns /proc/42/ns/net',
      'link set tssv0a000105 master tssbr4097',
      'link set tssv0a000105 up',
    ]);
    expect(p.container).toEqual(['link set lo up', 'addr replace 10.0.1.5/24 dev eth0', 'link set eth0 up']);
  });

  it('plans nothing for an endpoint already in place, and repairs a lost address', () => {
    const host = link({ name: 'tssv0a000105', kind: 'veth', master: 'tssbr4097' });
    const eth = link({ name: 'eth0', kind: 'veth', mac: d.mac, addrs: ['10.0.1.5/24'] });
    expect(planAttach(d, { hostLink: host, containerLinks: [{ ...lo, up: true }, eth] })).toEqual({ bridgeNs: [], container: [] });
    expect(
      planAttach(d, { hostLink: host, containerLinks: [eth].map((e) => ({ ...e, addrs: ['10.0.1.99/24'], up: false })) }).container,
    ).toEqual(['addr del 10.0.1.99/24 dev eth0', 'addr replace 10.0.1.5/24 dev eth0', 'link set eth0 up']);
  });

  it('takes back a host end still joined to an earlier holder of the address', () => {
    const host = link({ name: 'tssv0a000105', kind: 'veth', master: 'tssbr4097' });
    expect(planAttach(d, { hostLink: host, containerLinks: [] }).bridgeNs.slice(0, 2)).toEqual([
      'link del tssv0a000105',
      expect.stringMatching(/^link add tssv0a000105 /),
    ]);
  });

  it('refuses an interface name already taken in the container', () => {
    expect(() => planAttach(d, { containerLinks: [link({ name: 'eth0', mac: '02:42:0a:00:02:09' })] })).toThrow(
      /ifName eth0 already exists .* next free ethN/,
    );
  });

  it('on the egress bridge isolates the port and sets the default route', () => {
    const e: EndpointDevices = {
      ...d,
      hostIf: 'tssgac1e0002',
      bridge: 'tss_gwbridge',
      ifName: 'eth1',
      ip: '172.30.0.2',
      prefixLen: 16,
      mac: macOf('172.30.0.2'),
      mtu: 1500,
      isolated: true,
      defaultVia: '172.30.0.1',
    };
    const p = planAttach(e, { containerLinks: [] });
    expect(p.bridgeNs).toEqual([
      'link add tssgac1e0002 mtu 1500 type veth peer name eth1 mtu 1500 address 02:42:ac:1e:00:02 netns /proc/42/ns/net',
      'link set tssgac1e0002 master tss_gwbridge',
      'link set tssgac1e0002 type bridge_slave isolated on',
      'link set tssgac1e0002 up',
    ]);
    expect(p.container).toEqual([
      'addr replace 172.30.0.2/16 dev eth1',
      'link set eth1 up',
      'route replace default via 172.30.0.1 dev eth1',
    ]);
  });

  it('detaches by deleting the host end, and does nothing when it is gone', () => {
    expect(planDetach('tssv0a000105', link({ name: 'tssv0a000105' }))).toEqual(['link del tssv0a000105']);
    expect(planDetach('tssv0a000105', undefined)).toEqual([]);
  });
});

describe('egress', () => {
  const net = egressNet('172.30.0.0/16');

  it('builds the bridge with the first address of the subnet and a fixed MAC', () => {
    expect(net.gateway).toBe('172.30.0.1');
    expect(planEgressBridge(net, 1500, undefined)).toEqual([
      'link add tss_gwbridge address 02:42:ac:1e:00:01 mtu 1500 type bridge',
      'addr replace 172.30.0.1/16 dev tss_gwbridge',
      'link set tss_gwbridge up',
    ]);
    const br = link({ name: 'tss_gwbridge', kind: 'bridge', mtu: 1500, mac: '02:42:ac:1e:00:01', addrs: ['172.30.0.1/16'] });
    expect(planEgressBridge(net, 1500, br)).toEqual([]);
    // A bridge that took a port's MAC gets the fixed one back.
    expect(planEgressBridge(net, 1500, { ...br, mac: 'c2:4c:86:7c:04:02' })).toEqual(['link set tss_gwbridge address 02:42:ac:1e:00:01']);
  });

  it('masquerades what leaves by another interface and drops routing between egress ports, in one replacing transaction', () => {
    const r = egressRuleset(net, { vxlanPort: 4789 });
    expect(r.split('\n').slice(0, 2)).toEqual(['add table ip tss_egress', 'delete table ip tss_egress']);
    expect(r).toContain('ip saddr 172.30.0.0/16 oifname != "tss_gwbridge" masquerade');
    expect(r).toContain('iifname "tss_gwbridge" oifname "tss_gwbridge" drop');
  });

  it('keeps containers off the VXLAN port, here and on other hosts, and off the node control-plane ports', () => {
    const lines = egressRuleset(net, { vxlanPort: 4790, hostTcpPorts: [2376, 4242, 2376] })
      .split('\n')
      .map((l) => l.trim());
    const input = lines.slice(lines.indexOf('chain input {'), lines.indexOf('chain forward {'));
    expect(input).toEqual([
      'chain input {',
      'type filter hook input priority 0; policy accept;',
      'iifname "tss_gwbridge" udp dport 4790 drop',
      'iifname "tss_gwbridge" tcp dport { 2376, 4242 } drop',
      '}',
    ]);
    const forward = lines.slice(lines.indexOf('chain forward {'));
    expect(forward).toContain('ip saddr 172.30.0.0/16 udp dport 4790 drop');
    // No control-plane port known: no empty set (nft refuses one).
    expect(egressRuleset(net, { vxlanPort: 4789 })).not.toContain('tcp dport');
    expect(() => egressRuleset(net, { vxlanPort: 0 })).toThrow(/port must be a port from 1 to 65535/);
  });

  it('hands out the lowest address no port holds, and says when the subnet is full', () => {
    const used = egressInUse(net, [link({ name: 'tssgac1e0002' }), link({ name: 'tssgac1e0004' }), link({ name: 'eth0' })]);
    expect([...used].sort()).toEqual(['172.30.0.1', '172.30.0.2', '172.30.0.4']);
    expect(allocateEgressIp(net, used)).toBe('172.30.0.3');
    const tiny = egressNet('172.30.0.0/30');
    expect(allocateEgressIp(tiny, new Set(['172.30.0.1']))).toBe('172.30.0.2');
    expect(() => allocateEgressIp(tiny, new Set(['172.30.0.1', '172.30.0.2']))).toThrow(/egressSubnet 172.30.0.0\/30 has no free address/);
  });

  it('refuses an egress subnet with host bits set', () => {
    expect(() => egressNet('172.30.0.5/16')).toThrow(/egressSubnet must be/);
  });
});

describe('parseLinks', () => {
  it('reads kind, master, addresses, port isolation and VXLAN settings', () => {
    const json = JSON.stringify([
      {
        ifindex: 2,
        ifname: 'tssbr4097',
        flags: ['BROADCAST', 'UP'],
        mtu: 1450,
        address: 'AA:BB:CC:DD:EE:FF',
        linkinfo: { info_kind: 'bridge' },
        addr_info: [
          { family: 'inet', local: '10.0.1.1', prefixlen: 24 },
          { family: 'inet6', local: 'fe80::1', prefixlen: 64 },
        ],
      },
      {
        ifindex: 3,
        ifname: 'tssvx4097',
        flags: ['BROADCAST'],
        mtu: 1450,
        master: 'tssbr4097',
        linkinfo: { info_kind: 'vxlan', info_data: { id: 4097, local: '10.99.0.1', port: 4789, learning: false, proxy: true } },
        addr_info: [],
      },
      {
        ifindex: 4,
        ifname: 'tssgac1e0002',
        flags: ['UP'],
        mtu: 1500,
        master: 'tss_gwbridge',
        linkinfo: { info_kind: 'veth', info_slave_data: { isolated: true } },
      },
    ]);
    const [br, vx, g] = parseLinks(json);
    expect(br).toMatchObject({ name: 'tssbr4097', kind: 'bridge', up: true, mac: 'aa:bb:cc:dd:ee:ff', addrs: ['10.0.1.1/24'] });
    expect(vx).toMatchObject({
      name: 'tssvx4097',
      up: false,
      master: 'tssbr4097',
      vxlan: { vni: 4097, local: '10.99.0.1', port: 4789, learning: false, proxy: true },
    });
    expect(g).toMatchObject({ isolated: true, addrs: [] });
  });
});
