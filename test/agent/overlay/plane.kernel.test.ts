// The overlay (OverlayPlane) for real, in tss namespaces: an underlay namespace
// with a bridge, two "host" namespaces with eth0 on it, and plain container
// namespaces attached on each host through OverlayPlane. Every namespace this
// file makes carries a per-process name and is removed in afterAll.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OverlayPlane, macOf, type NetworkSpec, type Peer } from '../../../agent/overlay/index.js';
import { readFdb, readLinks, readNeigh } from '../../../agent/overlay/kernel.js';
import { have, isRoot } from '../../have.js';

const canRun = isRoot && have('ip', ['-V']) && have('bridge', ['-V']) && have('nft') && have('busybox', ['true']);
if (!canRun) console.log('overlay kernel tests skipped: need root, iproute2, nftables and busybox-static');

const ID = `nt${process.pid}`;
const UL = `tss-${ID}-ul`;
const H = [`tss-${ID}-h1`, `tss-${ID}-h2`];
const VTEP = ['192.168.77.1', '192.168.77.2'];
const made: string[] = [];

const sh = (argv: string[], input?: string): string =>
  execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
const inNs = (ns: string, argv: string[]): string[] => ['nsenter', `--net=/run/netns/${ns}`, '--', ...argv];
const ipIn = (ns: string, ...args: string[]): string => sh(['ip', '-n', ns, ...args]);
function netns(name: string): string {
  sh(['ip', 'netns', 'add', name]);
  made.push(name);
  ipIn(name, 'link', 'set', 'lo', 'up');
  return name;
}
/** Exit code of a ping of `count` packets from namespace `ns`. */
function ping(ns: string, ip: string, count = 2): number {
  try {
    sh(inNs(ns, ['busybox', 'ping', '-c', String(count), '-W', '2', '-w', '4', ip]));
    return 0;
  } catch (e) {
    return (e as { status?: number }).status ?? 1;
  }
}
const tssObjects = (ns: string): string[] =>
  JSON.parse(ipIn(ns, '-json', 'link', 'show') || '[]')
    .map((l: { ifname: string }) => l.ifname)
    .filter((n: string) => n.startsWith('tss'));
const ourOverlayNetns = (): string[] => readdirSync('/run/netns').filter((n) => n.startsWith('tss-ov-') && n.includes(ID));
/** IP counters of a namespace (/proc/net/snmp as seen from inside). */
function ipCounters(ns: string): Record<string, number> {
  const lines = sh(inNs(ns, ['cat', '/proc/net/snmp']))
    .split('\n')
    .filter((l) => l.startsWith('Ip:'));
  const [k, v] = [lines[0]!.split(/\s+/).slice(1), lines[1]!.split(/\s+/).slice(1)];
  return Object.fromEntries(k.map((name, i) => [name, Number(v[i])]));
}

const netA: NetworkSpec = { id: 'net-a', vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1' };
const netB: NetworkSpec = { id: 'net-b', vni: 4098, subnet: '10.0.2.0/24', gateway: '10.0.2.1' };

describe.skipIf(!canRun)('the overlay (OverlayPlane) in namespaces', () => {
  const planes: OverlayPlane[] = [];
  const procs: ChildProcess[] = [];
  let tmp = '';
  // Containers: aK on network A at host K; b1, b2 on network B.
  const C = { a1: `tss-${ID}-a1`, a2: `tss-${ID}-a2`, b1: `tss-${ID}-b1`, b2: `tss-${ID}-b2` };
  const peersA: Peer[] = [
    { ip: '10.0.1.11', mac: macOf('10.0.1.11'), vtep: VTEP[0]! },
    { ip: '10.0.1.12', mac: macOf('10.0.1.12'), vtep: VTEP[1]! },
  ];
  const peersB: Peer[] = [
    { ip: '10.0.2.21', mac: macOf('10.0.2.21'), vtep: VTEP[0]! },
    { ip: '10.0.2.22', mac: macOf('10.0.2.22'), vtep: VTEP[1]! },
  ];

  beforeAll(async () => {
    tmp = mkdtempSync('/tmp/tss-overlay-test-');
    netns(UL);
    ipIn(UL, 'link', 'add', 'tssulbr', 'type', 'bridge');
    ipIn(UL, 'link', 'set', 'tssulbr', 'up');
    H.forEach((h, i) => {
      netns(h);
      ipIn(UL, 'link', 'add', `tssul${i + 1}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h);
      ipIn(UL, 'link', 'set', `tssul${i + 1}`, 'master', 'tssulbr', 'up');
      ipIn(h, 'addr', 'add', `${VTEP[i]}/24`, 'dev', 'eth0');
      ipIn(h, 'link', 'set', 'eth0', 'up');
      planes.push(new OverlayPlane({ hostNetns: h, vtep: VTEP[i]!, underlayMtu: 1500 }));
    });
    for (const c of Object.values(C)) netns(c);
    const [p1, p2] = planes as [OverlayPlane, OverlayPlane];
    await Promise.all([p1.ensureNetwork(netA), p2.ensureNetwork(netA), p1.ensureNetwork(netB), p2.ensureNetwork(netB)]);
    await p1.attach({ networkId: 'net-a', containerNetns: C.a1, ifName: 'eth0', address: '10.0.1.11/24' });
    await p2.attach({ networkId: 'net-a', containerNetns: `/run/netns/${C.a2}`, ifName: 'eth0', address: '10.0.1.12/24' });
    await p1.attach({ networkId: 'net-b', containerNetns: C.b1, ifName: 'eth0', address: '10.0.2.21/24' });
    await p2.attach({ networkId: 'net-b', containerNetns: C.b2, ifName: 'eth0', address: '10.0.2.22/24' });
    for (const p of planes) {
      await p.setPeers('net-a', peersA);
      await p.setPeers('net-b', peersB);
    }
  });

  afterAll(() => {
    for (const p of procs) {
      try {
        if (p.exitCode === null && p.signalCode === null && p.pid) process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // Overlay namespaces first (tests remove them; this is the pass-or-fail net), then ours.
    for (const n of [...ourOverlayNetns(), ...made.reverse()]) {
      try {
        sh(['ip', 'netns', 'del', n]);
      } catch {
        // already gone
      }
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('gives each network a namespace holding its bridge and a VXLAN device with the VNI, port 4789, no learning and MTU 1450', async () => {
    const ns = planes[0]!.netnsOf(4097);
    expect(ns).toBe(`tss-ov-4097-${ID}-h1`);
    const links = (await readLinks(ns))!;
    const vx = links.find((l) => l.name === 'tssvx4097')!;
    expect(vx.vxlan).toEqual({ vni: 4097, local: VTEP[0], port: 4789, learning: false, proxy: true });
    expect(vx.master).toBe('tssbr4097');
    expect(vx.mtu).toBe(1450);
    expect(links.find((l) => l.name === 'tssbr4097')?.addrs).toEqual(['10.0.1.1/24']);
    // Nothing of the network stays in the host namespace.
    expect(tssObjects(H[0]!)).toEqual([]);
    const eth0 = (await readLinks(C.a1))!.find((l) => l.name === 'eth0')!;
    expect(eth0).toMatchObject({ mac: '02:42:0a:00:01:0b', mtu: 1450, addrs: ['10.0.1.11/24'], up: true });
  });

  it('carries ping between containers on different hosts over the overlay', () => {
    expect(ping(C.a1, '10.0.1.12')).toBe(0);
    expect(ping(C.b2, '10.0.2.21')).toBe(0);
  });

  it('moves 10 MB intact across hosts in full-size packets without fragmenting the underlay', async () => {
    const dir = join(tmp, 'www');
    sh(['mkdir', '-p', dir]);
    const blob = randomBytes(10 << 20);
    writeFileSync(join(dir, 'blob'), blob);
    const want = sh(['sha256sum', join(dir, 'blob')]).split(' ')[0];
    const httpd = spawn('nsenter', [`--net=/run/netns/${C.a2}`, '--', 'busybox', 'httpd', '-f', '-p', '8080', '-h', dir], {
      stdio: 'ignore',
    });
    procs.push(httpd);
    const before = [ipCounters(H[0]!), ipCounters(H[1]!)];
    let got = '';
    for (let i = 0; i < 20 && !got; i++) {
      try {
        got = sh(inNs(C.a1, ['sh', '-c', 'timeout 20 busybox wget -q -O - http://10.0.1.12:8080/blob | sha256sum'])).split(' ')[0]!;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    httpd.kill('SIGKILL');
    expect(got).toBe(want);
    const after = [ipCounters(H[0]!), ipCounters(H[1]!)];
    // An overlay MTU too large for the underlay would show as fragments made and reassembled.
    expect(after[1]!.FragCreates! - before[1]!.FragCreates!).toBe(0);
    expect(after[0]!.ReasmReqds! - before[0]!.ReasmReqds!).toBe(0);
  });

  it('keeps networks apart: a container reaches neither another network nor its egress address', async () => {
    const p1 = planes[0]!;
    expect(ping(C.a1, '10.0.2.21', 1)).not.toBe(0);
    expect(ping(C.a1, '10.0.2.22', 1)).not.toBe(0);
    const ea = await p1.attachEgress({ containerNetns: C.a1, ifName: 'eth1' });
    const eb = await p1.attachEgress({ containerNetns: C.b1, ifName: 'eth1' });
    expect(ea.ip).not.toBe(eb.ip);
    expect((await readLinks(H[0]))!.filter((l) => l.name.startsWith('tssg')).map((l) => l.isolated)).toEqual([true, true]);
    expect(ping(C.a1, eb.ip, 1)).not.toBe(0);
    expect(ping(C.a1, '10.0.2.21', 1)).not.toBe(0);
    // The overlay still works beside the egress interface.
    expect(ping(C.a1, '10.0.1.12', 1)).toBe(0);
    await p1.detachEgress(C.b1);
  });

  it('lets a container out through the egress bridge, NATed to the host address', async () => {
    const p1 = planes[0]!;
    const e = await p1.attachEgress({ containerNetns: C.a1, ifName: 'eth1' });
    // Attaching again keeps the address.
    expect((await p1.attachEgress({ containerNetns: C.a1, ifName: 'eth1' })).ip).toBe(e.ip);
    // Host 2 has no route to the egress subnet: replies come back only if the source was rewritten.
    expect(ping(C.a1, VTEP[1]!)).toBe(0);
    const route = JSON.parse(sh(inNs(C.a1, ['ip', '-json', 'route', 'show', 'default'])))[0];
    expect(route).toMatchObject({ gateway: '172.30.0.1', dev: 'eth1' });
    await p1.detachEgress(C.a1);
    expect(ping(C.a1, VTEP[1]!, 1)).not.toBe(0);
  });

  it('repairs deleted FDB and neighbor entries and removes stale ones on a re-run reconcile', async () => {
    const p1 = planes[0]!;
    const ns = p1.netnsOf(4097);
    const nsExec = (tool: string, ...args: string[]): string => sh(inNs(ns, [tool, ...args]));
    nsExec('bridge', 'fdb', 'del', macOf('10.0.1.12'), 'dev', 'tssvx4097', 'dst', VTEP[1]!, 'self');
    nsExec('ip', 'neigh', 'del', '10.0.1.12', 'dev', 'tssvx4097');
    nsExec('bridge', 'fdb', 'replace', '02:42:0a:00:01:63', 'dev', 'tssvx4097', 'dst', '192.168.77.9', 'self', 'permanent');
    nsExec('ip', 'neigh', 'replace', '10.0.1.99', 'lladdr', '02:42:0a:00:01:63', 'dev', 'tssvx4097', 'nud', 'permanent');
    expect(ping(C.a1, '10.0.1.12', 1)).not.toBe(0);

    const r = (await p1.reconcile()).get('net-a')!;
    expect(r).toMatchObject({ added: 2, removed: 2 });
    expect(await readFdb(ns, 'tssvx4097')).toEqual([{ mac: macOf('10.0.1.12'), dst: VTEP[1] }]);
    expect(await readNeigh(ns, 'tssvx4097')).toEqual([{ ip: '10.0.1.12', mac: macOf('10.0.1.12'), permanent: true }]);
    expect(ping(C.a1, '10.0.1.12')).toBe(0);

    // A restarted agent (a new plane, no memory) gets there from the kernel alone, and a second run changes nothing.
    nsExec('bridge', 'fdb', 'del', macOf('10.0.1.12'), 'dev', 'tssvx4097', 'dst', VTEP[1]!, 'self');
    const fresh = new OverlayPlane({ hostNetns: H[0], vtep: VTEP[0]!, underlayMtu: 1500 });
    await fresh.ensureNetwork(netA);
    expect(await fresh.setPeers('net-a', peersA)).toMatchObject({ added: 1, removed: 0 });
    expect(await fresh.setPeers('net-a', peersA)).toEqual({ fdbLines: 0, neighLines: 0, added: 0, removed: 0 });
    expect(ping(C.a1, '10.0.1.12', 1)).toBe(0);
  });

  it('repairs a network whose VXLAN device was deleted', async () => {
    const p2 = planes[1]!;
    sh(inNs(p2.netnsOf(4098), ['ip', 'link', 'del', 'tssvx4098']));
    expect(ping(C.b1, '10.0.2.22', 1)).not.toBe(0);
    await p2.reconcile();
    expect(ping(C.b1, '10.0.2.22')).toBe(0);
  });

  it('rebuilds a network whose namespace was deleted, its endpoints included', async () => {
    const p2 = planes[1]!;
    sh(['ip', 'netns', 'del', p2.netnsOf(4097)]);
    expect(ping(C.a1, '10.0.1.12', 1)).not.toBe(0);
    await p2.reconcile();
    expect((await readLinks(C.a2))!.find((l) => l.name === 'eth0')).toMatchObject({ mac: macOf('10.0.1.12'), addrs: ['10.0.1.12/24'] });
    expect(ping(C.a1, '10.0.1.12')).toBe(0);
  });

  it('programs 10,000 peers in one batch each way, and removes them again', async () => {
    const big: NetworkSpec = { id: 'net-big', vni: 4099, subnet: '10.8.0.0/16', gateway: '10.8.0.1' };
    const p1 = planes[0]!;
    await p1.ensureNetwork(big);
    const peers: Peer[] = Array.from({ length: 10_000 }, (_, i) => {
      const ip = `10.8.${1 + (i >> 8)}.${i & 255}`;
      return { ip, mac: macOf(ip), vtep: `192.168.${78 + (i % 50)}.${1 + (i % 200)}` };
    });
    const t0 = performance.now();
    const r = await p1.setPeers('net-big', peers);
    const ms = performance.now() - t0;
    expect(r).toMatchObject({ fdbLines: 10_000, neighLines: 10_000, added: 20_000, removed: 0 });
    const ns = p1.netnsOf(4099);
    expect((await readFdb(ns, 'tssvx4099')).length).toBe(10_000);
    expect((await readNeigh(ns, 'tssvx4099')).length).toBe(10_000);
    const t1 = performance.now();
    const again = await p1.setPeers('net-big', peers);
    const msNoop = performance.now() - t1;
    expect(again.added + again.removed).toBe(0);
    const t2 = performance.now();
    expect(await p1.setPeers('net-big', peers.slice(0, 5_000))).toMatchObject({ removed: 10_000, added: 0 });
    const msHalf = performance.now() - t2;
    console.log(
      `setPeers 10,000 peers: ${ms.toFixed(0)} ms from empty (read, apply, read back); ${msNoop.toFixed(0)} ms when nothing changed; ${msHalf.toFixed(0)} ms to drop 5,000`,
    );
    await p1.removeNetwork('net-big');
    expect(existsSync(`/run/netns/${ns}`)).toBe(false);
  });

  it('prunes the namespaces of networks a restarted agent was not asked for', async () => {
    const fresh = new OverlayPlane({ hostNetns: H[0], vtep: VTEP[0]!, underlayMtu: 1500 });
    await fresh.ensureNetwork(netB);
    expect(await fresh.prune()).toEqual([planes[0]!.netnsOf(4097)]);
    expect(ourOverlayNetns().sort()).toEqual([planes[1]!.netnsOf(4097), planes[1]!.netnsOf(4098), planes[0]!.netnsOf(4098)].sort());
    expect(ping(C.b1, '10.0.2.22')).toBe(0);
  });

  it('detach and removeNetwork leave nothing tss-prefixed behind', async () => {
    const [_p1, p2] = planes as [OverlayPlane, OverlayPlane];
    expect(await p2.endpoints('net-b')).toEqual(['10.0.2.22']);
    await p2.detach('net-b', '10.0.2.22');
    // The container's end of the pair goes with the host's, but a loaded kernel may still list it for a moment.
    await expect.poll(async () => (await readLinks(C.b2))!.map((l) => l.name), { timeout: 10_000 }).toEqual(['lo']);
    expect(await p2.endpoints('net-b')).toEqual([]);
    expect(await p2.endpoints('net-a')).toEqual(['10.0.1.12']);
    await p2.detach('net-b', '10.0.2.22'); // again: nothing to do
    for (const p of planes) {
      await p.removeNetwork('net-a');
      await p.removeNetwork('net-b');
      await p.removeEgress();
    }
    expect(ourOverlayNetns()).toEqual([]);
    for (const h of H) {
      expect(tssObjects(h)).toEqual([]);
      expect(sh(inNs(h, ['nft', 'list', 'tables']))).not.toContain('tss');
    }
    for (const c of Object.values(C))
      await expect.poll(async () => (await readLinks(c))!.map((l) => l.name), { timeout: 10_000 }).toEqual(['lo']);
  });
});
