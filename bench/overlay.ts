// The overlay benchmark: TCP throughput (iperf3, one stream) and ping RTT
// between two containers on different hosts, over
//   tsswarm    the agent's overlay (agent/overlay: per-network namespace,
//              bridge + VXLAN, veth into the container, static FDB/neighbors),
//   vxlan-raw  the same kernel path built by hand, nothing else: in each host
//              namespace a bridge + a VXLAN device with static FDB entries and
//              a container namespace on a veth (static neighbor entries),
//   underlay   the two host namespaces directly on the underlay,
//   swarm      Docker Swarm 20.10's overlay between two containers on two
//              nodes (bench/swarm-peer.ts: one dockerd per namespace).
// Hosts are network namespaces joined by veth to a bridge in an underlay
// namespace (MTU 1500), as in the sandbox. Containers here are plain
// namespaces (iperf3 and ping run inside them with nsenter); for Swarm they
// are real containers, measured from inside their namespaces the same way.
// Env: BENCH_SECS (iperf3 seconds, default 5), BENCH_REPS (default 3; the
// systems are interleaved and the median is reported), BENCH_SYSTEMS
// (comma list, default all four).
import { execFile, execFileSync, spawn } from 'node:child_process';
import { OverlayPlane, macOf } from '../agent/overlay/index.js';
import { Report } from './report.js';
import { dk, firstLine, swarmDown, swarmPreflight, swarmUp, teardownOnSignal } from './swarm-peer.js';

const CASE = 'tcp';
const SECS = Number(process.env.BENCH_SECS ?? 5);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const PING_N = 20;
const SYSTEMS = (process.env.BENCH_SYSTEMS ?? 'tsswarm,vxlan-raw,underlay,swarm').split(',').map((s) => s.trim());

const log = (l: string): void => void process.stderr.write(`overlay: ${l}\n`);
const ID = `bo${process.pid}`;
const UL = `tss-${ID}-ul`;
const HOSTS = [`tss-${ID}-h1`, `tss-${ID}-h2`];
const VTEP = ['10.77.0.1', '10.77.0.2'];
const made: string[] = [];

/** A namespace reference as nsenter wants it. */
type Ns = string;
const nsPath = (ns: Ns): string => (ns.includes('/') ? ns : `/run/netns/${ns}`);
const sh = (argv: string[]): string => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const ipIn = (ns: string, line: string): string => sh(['ip', '-n', ns, ...line.split(' ')]);
function netns(name: string): string {
  sh(['ip', 'netns', 'add', name]);
  made.push(name);
  ipIn(name, 'link set lo up');
  return name;
}

function runIn(ns: Ns, argv: string[], timeoutMs: number): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      'nsenter',
      [`--net=${nsPath(ns)}`, '--', ...argv],
      { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 },
      (e, out, err) => {
        resolve({ code: e ? (typeof (e as { code?: unknown }).code === 'number' ? (e as { code: number }).code : 1) : 0, out, err });
      },
    );
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One iperf3 run from `client` to a one-off server in `server` at `ip`; Mbit/s received. */
async function iperf(client: Ns, server: Ns, ip: string): Promise<number> {
  const port = String(5201 + Math.floor(Math.random() * 500));
  const srv = spawn('nsenter', [`--net=${nsPath(server)}`, '--', 'iperf3', '-s', '-1', '-p', port], { stdio: 'ignore' });
  try {
    let last = '';
    for (let attempt = 0; attempt < 30; attempt++) {
      const r = await runIn(client, ['iperf3', '-c', ip, '-p', port, '-t', String(SECS), '-J'], (SECS + 20) * 1000);
      if (r.code === 0) {
        const j = JSON.parse(r.out) as { end?: { sum_received?: { bits_per_second?: number } } };
        const bps = j.end?.sum_received?.bits_per_second;
        if (bps) return bps / 1e6;
      }
      last = (() => {
        try {
          return (JSON.parse(r.out) as { error?: string }).error ?? r.err.trim();
        } catch {
          return r.err.trim() || r.out.trim().slice(0, 200);
        }
      })();
      if (!/connect|refused|busy/i.test(last)) break;
      await sleep(100);
    }
    throw new Error(`iperf3 to ${ip} failed: ${last}`);
  } finally {
    srv.kill('SIGKILL');
  }
}

/** Average RTT (ms) of PING_N pings 0.2 s apart. */
async function pingAvg(client: Ns, ip: string): Promise<number> {
  const r = await runIn(client, ['busybox', 'ping', '-q', '-c', String(PING_N), '-i', '0.2', '-W', '2', ip], 30_000);
  const m = /min\/avg\/max = [\d.]+\/([\d.]+)\//.exec(r.out);
  if (!m) throw new Error(`ping ${ip} failed: ${(r.out + r.err).trim().split('\n').slice(-2).join(' ')}`);
  return Number(m[1]);
}

interface Path {
  system: string;
  client: Ns;
  server: Ns;
  ip: string;
}

/** The two hosts on the underlay, plus the tsswarm and hand-built VXLAN paths between containers on them. */
async function buildTestbed(): Promise<Path[]> {
  netns(UL);
  ipIn(UL, 'link add tssulbr type bridge');
  ipIn(UL, 'link set tssulbr up');
  HOSTS.forEach((h, i) => {
    netns(h);
    ipIn(UL, `link add tssul${i + 1} type veth peer name eth0 netns ${h}`);
    ipIn(UL, `link set tssul${i + 1} master tssulbr up`);
    ipIn(h, `addr add ${VTEP[i]}/24 dev eth0`);
    ipIn(h, 'link set eth0 up');
  });
  const paths: Path[] = [{ system: 'underlay', client: HOSTS[0]!, server: HOSTS[1]!, ip: VTEP[1]! }];

  // tsswarm: the agent's module, one plane per host.
  const net = { id: 'bench', vni: 4097, subnet: '10.78.1.0/24', gateway: '10.78.1.1' };
  const ts = ['10.78.1.11', '10.78.1.12'];
  const tc = HOSTS.map((_, i) => netns(`tss-${ID}-t${i + 1}`));
  for (let i = 0; i < 2; i++) {
    const plane = new OverlayPlane({ hostNetns: HOSTS[i]!, vtep: VTEP[i]!, underlayMtu: 1500 });
    await plane.ensureNetwork(net);
    await plane.attach({ networkId: net.id, containerNetns: tc[i]!, ifName: 'eth0', address: `${ts[i]}/24` });
    await plane.setPeers(
      net.id,
      ts.map((ip, k) => ({ ip, mac: macOf(ip), vtep: VTEP[k]! })),
    );
  }
  paths.push({ system: 'tsswarm', client: tc[0]!, server: tc[1]!, ip: ts[1]! });

  // vxlan-raw: bridge + VXLAN + static FDB in each host namespace, a container on a veth.
  const raw = ['10.79.1.11', '10.79.1.12'];
  const rc = HOSTS.map((_, i) => netns(`tss-${ID}-r${i + 1}`));
  HOSTS.forEach((h, i) => {
    const o = 1 - i;
    for (const line of [
      `link add tssrawbr mtu 1450 type bridge`,
      `link add tssrawvx mtu 1450 type vxlan id 5001 dstport 4789 local ${VTEP[i]} nolearning`,
      `link set tssrawvx master tssrawbr up`,
      `link set tssrawbr up`,
      `link add tssrawv mtu 1450 type veth peer name eth0 mtu 1450 address ${macOf(raw[i]!)} netns ${rc[i]}`,
      `link set tssrawv master tssrawbr up`,
    ])
      ipIn(h, line);
    sh(['bridge', '-n', h, 'fdb', 'replace', macOf(raw[o]!), 'dev', 'tssrawvx', 'dst', VTEP[o]!, 'self', 'permanent']);
    ipIn(rc[i]!, `addr add ${raw[i]}/24 dev eth0`);
    ipIn(rc[i]!, 'link set eth0 up');
    ipIn(rc[i]!, `neigh replace ${raw[o]} lladdr ${macOf(raw[o]!)} dev eth0 nud permanent`);
  });
  paths.push({ system: 'vxlan-raw', client: rc[0]!, server: rc[1]!, ip: raw[1]! });
  return paths;
}

function teardownTestbed(): void {
  // The per-network namespaces of the tsswarm path first (named after our host namespaces).
  const overlay = sh(['ip', 'netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith('tss-ov-') && (n.endsWith(`-${ID}-h1`) || n.endsWith(`-${ID}-h2`)));
  for (const n of [...overlay, ...made.reverse()]) {
    try {
      sh(['ip', 'netns', 'del', n]);
    } catch {
      // already gone
    }
  }
  made.length = 0;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
};

async function measure(report: Report, paths: Path[]): Promise<void> {
  const mbit = new Map<string, number[]>();
  const rtt = new Map<string, number[]>();
  const failed = new Map<string, string>();
  for (let rep = 0; rep < REPS; rep++) {
    for (const p of paths) {
      if (failed.has(p.system)) continue;
      try {
        const m = await iperf(p.client, p.server, p.ip);
        const r = await pingAvg(p.client, p.ip);
        mbit.set(p.system, [...(mbit.get(p.system) ?? []), m]);
        rtt.set(p.system, [...(rtt.get(p.system) ?? []), r]);
        log(`${p.system} run ${rep + 1}/${REPS}: ${m.toFixed(0)} Mbit/s, rtt ${r.toFixed(3)} ms`);
      } catch (e) {
        failed.set(p.system, (e as Error).message.slice(0, 300));
      }
    }
  }
  // Runs of two systems back to back see about the same load: their ratio per run is steadier than the ratio of medians.
  const ts = mbit.get('tsswarm');
  const raw = mbit.get('vxlan-raw');
  if (ts && raw && ts.length === raw.length) {
    const ratios = ts.map((v, i) => (100 * v) / raw[i]!);
    log(`tsswarm / vxlan-raw per run: ${ratios.map((r) => `${r.toFixed(0)}%`).join(' ')} (median ${median(ratios).toFixed(1)}%)`);
  }
  for (const p of paths) {
    const why = failed.get(p.system);
    if (why) report.error(p.system, CASE, why);
    else {
      report.add(p.system, CASE, 'mbit_per_s', median(mbit.get(p.system)!), 'Mbit/s');
      report.add(p.system, CASE, 'rtt_ms', median(rtt.get(p.system)!), 'ms');
    }
  }
}

interface Inspect {
  State?: { Pid?: number };
  NetworkSettings?: { Networks?: Record<string, { IPAddress?: string }> };
}

/** Docker Swarm: an attachable overlay network, one container on h1 and one on h2, measured from inside their namespaces. */
async function swarm(report: Report): Promise<void> {
  const why = swarmPreflight(log);
  if (why) return report.error('swarm', CASE, why);
  const untrap = teardownOnSignal(log);
  try {
    log('starting 3 dockerds (1 manager, 2 workers) in namespaces tssdk-h1..3');
    swarmUp(3, 1);
    const c = await dk(1, ['network', 'create', '-d', 'overlay', '--attachable', 'tssbench-ovl'], 60);
    if (c.code !== 0) throw new Error(`network create failed: ${firstLine(c, 60)}`);
    const paths: Path[] = [];
    const ips: string[] = [];
    const nss: string[] = [];
    for (const k of [1, 2]) {
      const r = await dk(k, ['run', '-d', '--name', `tssbench-c${k}`, '--network', 'tssbench-ovl', 'bb:latest', 'sleep', '3600'], 120);
      if (r.code !== 0) throw new Error(`docker run on tssdk-h${k} failed: ${firstLine(r, 120)}`);
      const i = await dk(k, ['inspect', `tssbench-c${k}`], 20);
      const info = (JSON.parse(i.out) as Inspect[])[0];
      const pid = info?.State?.Pid;
      const ip = info?.NetworkSettings?.Networks?.['tssbench-ovl']?.IPAddress;
      if (!pid || !ip) throw new Error(`no pid or overlay address for the container on tssdk-h${k}`);
      nss.push(`/proc/${pid}/ns/net`);
      ips.push(ip);
    }
    const mtu = (await runIn(nss[0]!, ['cat', '/sys/class/net/eth0/mtu'], 5000)).out.trim();
    log(`swarm containers: ${ips.join(' → ')} (eth0 MTU ${mtu || '?'})`);
    paths.push({ system: 'swarm', client: nss[0]!, server: nss[1]!, ip: ips[1]! });
    await measure(report, paths);
  } catch (e) {
    log(`failed: ${(e as Error).message}`);
    if (!report.figures.some((f) => f.system === 'swarm')) report.error('swarm', CASE, (e as Error).message.split('\n')[0]!.slice(0, 300));
  } finally {
    log('tearing down the swarm');
    swarmDown(log);
    untrap();
  }
}

export async function main(): Promise<void> {
  const report = new Report('overlay');
  if (process.getuid?.() !== 0) {
    for (const s of SYSTEMS) report.error(s, CASE, 'needs root (network namespaces)');
    report.table();
    return;
  }
  for (const bin of ['iperf3', 'busybox']) {
    try {
      execFileSync(bin, bin === 'busybox' ? ['true'] : ['--version'], { stdio: 'ignore' });
    } catch {
      for (const s of SYSTEMS) report.error(s, CASE, `${bin} is missing: apt-get install ${bin === 'busybox' ? 'busybox-static' : bin}`);
      report.table();
      return;
    }
  }
  const onSignal = (): void => {
    teardownTestbed();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const local = SYSTEMS.filter((s) => s !== 'swarm');
    if (local.length) {
      try {
        const paths = (await buildTestbed()).filter((p) => local.includes(p.system));
        log(`testbed up; ${REPS} interleaved runs of ${SECS} s iperf3 + ${PING_N} pings per system`);
        await measure(
          report,
          paths.sort((a, b) => local.indexOf(a.system) - local.indexOf(b.system)),
        );
      } catch (e) {
        for (const s of local) if (!report.figures.some((f) => f.system === s)) report.error(s, CASE, (e as Error).message.slice(0, 300));
      } finally {
        teardownTestbed();
      }
    }
    if (SYSTEMS.includes('swarm')) await swarm(report);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const get = (s: string, m: string): number | undefined => report.figures.find((f) => f.system === s && f.metric === m)?.value;
  const ts = get('tsswarm', 'mbit_per_s');
  const raw = get('vxlan-raw', 'mbit_per_s');
  const sw = get('swarm', 'mbit_per_s');
  if (ts && raw) log(`tsswarm / vxlan-raw throughput: ${((100 * ts) / raw).toFixed(1)}% (target ≥ 95%)`);
  if (ts && sw) log(`tsswarm / swarm throughput: ${((100 * ts) / sw).toFixed(1)}% (target ≥ 100%)`);
  report.table();
}
