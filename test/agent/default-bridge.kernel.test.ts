// The default bridge of a task with no network, for real in tss namespaces:
// the agent gives its container one egress interface on the host's
// tss_gwbridge with a default route, and the host masquerades what leaves, so
// a TCP server "outside" (a namespace routed from the host namespace only,
// with no route back to the egress subnet) answers it and sees the host's
// address. It cannot send to the VXLAN port (of its host, at the gateway, or
// of another host) nor open the node's control-plane port. A task on `none`
// gets nothing but lo and cannot connect. Every
// namespace, process and file here carries this file's tss prefix and is
// removed in afterAll, pass or fail.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkAgent } from '../../agent/network-agent.js';
import { readLinks } from '../../agent/overlay/kernel.js';
import { silentLogger } from '../../lib/log.js';
import { Meta, type NetworkAttachmentConfig, Task, TaskSpec } from '../../proto/gen/objects.js';
import { have, isRoot } from '../have.js';
import { until as waitUntil } from '../lib/wait.js';

const canRun = isRoot && have('ip', ['-V']) && have('bridge', ['-V']) && have('nft') && have('nsenter');
if (!canRun) console.log('default-bridge kernel tests skipped: need root, iproute2, nftables and util-linux');

const ID = `db${process.pid}`;
const HOST = `tss-${ID}-h`;
/** Outside the node: routed from HOST, knows nothing of the egress subnet. */
const OUT = `tss-${ID}-o`;
const CTR = `tss-${ID}-c`;
const NONE = `tss-${ID}-n`;
const HOST_IP = '192.168.83.1';
const OUT_IP = '192.168.83.2';
const PORT = 7707;
/** The node's gRPC port, as the daemon passes it (hostTcpPorts). */
const CONTROL_PORT = 7708;
/** A UDP port anyone may use, sent to after the VXLAN one: its arrival says the VXLAN datagram had its chance. */
const OPEN_UDP = 4788;
const VXLAN = 4789;
const RESOLV = `/tmp/tss-${ID}-resolv.conf`;
const made: string[] = [];
const procs: ChildProcess[] = [];

const sh = (argv: string[]): string => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
const ipIn = (ns: string, ...args: string[]): string => sh(['ip', '-n', ns, ...args]);

const until = <T>(what: string, fn: () => T | undefined | false, ms = 5000): Promise<T> =>
  waitUntil(what, fn, { timeoutMs: ms, everyMs: 10 }) as Promise<T>;

/** A process inside namespace `ns`, kept for cleanup. */
function spawnIn(ns: string, argv: string[]): ChildProcess {
  const p = spawn('nsenter', [`--net=${ns.includes('/') ? ns : `/run/netns/${ns}`}`, '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  return p;
}

/** A sleeping process in `ns`: the stand-in for a container's init. */
async function sleeperIn(ns: string): Promise<number> {
  const p = spawnIn(ns, ['sleep', '600']);
  const want = statSync(`/run/netns/${ns}`).ino;
  await until(`a process inside ${ns}`, () => {
    try {
      return statSync(`/proc/${p.pid}/ns/net`).ino === want;
    } catch {
      return false;
    }
  });
  return p.pid!;
}

/** Connects from namespace `ns` to the outside server: what it answered (the source address it saw), or the error code. */
function connectFrom(ns: string, addr = OUT_IP, port = PORT): Promise<string> {
  const code = `const s=require('net').connect(${port},'${addr}');let d='';s.setTimeout(3000,()=>{console.log('TIMEOUT');process.exit(0)});s.on('data',x=>d+=x);s.on('end',()=>{console.log(d);process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)});`;
  const p = spawnIn(ns, [process.execPath, '-e', code]);
  let out = '';
  p.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  return new Promise((resolve) => p.on('close', () => resolve(out.trim())));
}

/** A UDP listener in `ns` on the VXLAN port and OPEN_UDP; resolves, once OPEN_UDP got a datagram, with the ports that got one. */
function udpListener(ns: string): { ready: Promise<void>; heard: Promise<number[]> } {
  const code = `const d=require('dgram');const got=[];let n=0;for(const p of [${VXLAN},${OPEN_UDP}]){const s=d.createSocket('udp4');s.on('message',()=>{got.push(p);if(p===${OPEN_UDP})setImmediate(()=>setImmediate(()=>{console.log('heard '+got.join(','));process.exit(0)}))});s.bind(p,'0.0.0.0',()=>{if(++n===2)console.log('listening')})}`;
  const p = spawnIn(ns, [process.execPath, '-e', code]);
  let out = '';
  p.stdout!.setEncoding('utf8');
  const ready = new Promise<void>((resolve) => p.stdout!.on('data', (d: string) => (out += d).includes('listening') && resolve()));
  const heard = new Promise<number[]>((resolve) =>
    p.on('close', () => resolve((/heard (.*)/.exec(out)?.[1] ?? '').split(',').filter(Boolean).map(Number))),
  );
  return { ready, heard };
}

/** From `ns`: one datagram to addr's VXLAN port, then one to OPEN_UDP. */
function sendUdpFrom(ns: string, addr: string): Promise<void> {
  const code = `const s=require('dgram').createSocket('udp4');s.send('x',${VXLAN},'${addr}',()=>s.send('y',${OPEN_UDP},'${addr}',()=>s.close()))`;
  const p = spawnIn(ns, [process.execPath, '-e', code]);
  return new Promise((resolve) => p.on('close', () => resolve()));
}

const task = (id: string, networks: NetworkAttachmentConfig[]): Task =>
  Task.create({
    meta: Meta.create({ id }),
    serviceId: 'svc',
    serviceName: 'ping',
    slot: 1,
    nodeId: 'node-1',
    spec: TaskSpec.create({ networks }),
  });

describe.skipIf(!canRun)('the default bridge of a task with no network, and none', () => {
  let agent: NetworkAgent;

  beforeAll(async () => {
    for (const n of [HOST, OUT, CTR, NONE]) {
      sh(['ip', 'netns', 'add', n]);
      made.push(n);
      ipIn(n, 'link', 'set', 'lo', 'up');
    }
    // The node's uplink: HOST 192.168.83.1 <-> OUT 192.168.83.2. OUT has no route to 172.30.0.0/16.
    ipIn(HOST, 'link', 'add', 'tssup0', 'type', 'veth', 'peer', 'name', 'tssup1', 'netns', OUT);
    ipIn(HOST, 'addr', 'add', `${HOST_IP}/24`, 'dev', 'tssup0');
    ipIn(HOST, 'link', 'set', 'tssup0', 'up');
    ipIn(OUT, 'addr', 'add', `${OUT_IP}/24`, 'dev', 'tssup1');
    ipIn(OUT, 'link', 'set', 'tssup1', 'up');
    // The server answers each connection with the address it came from, then closes.
    const server = spawnIn(OUT, [
      process.execPath,
      '-e',
      `require('net').createServer(s=>s.end(s.remoteAddress.replace(/^::ffff:/,''))).listen(${PORT},'${OUT_IP}',()=>console.log('listening'))`,
    ]);
    let said = '';
    server.stdout!.setEncoding('utf8').on('data', (d: string) => (said += d));
    await until('the outside server to listen', () => said.includes('listening'));
    writeFileSync(RESOLV, 'nameserver 127.0.0.53\nnameserver 10.1.2.3\nsearch corp.example\n');
    agent = new NetworkAgent({
      nodeId: 'node-1',
      vtep: HOST_IP,
      logger: silentLogger(),
      hostNetns: HOST,
      nameTag: ID,
      hostResolvConf: RESOLV,
      hostTcpPorts: [CONTROL_PORT],
    });
  });

  afterAll(async () => {
    await agent?.close().catch(() => undefined);
    for (const p of procs) {
      try {
        if (p.exitCode === null && p.signalCode === null && p.pid) process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const left = readdirSync('/run/netns').filter((x) => x.includes(ID) && !made.includes(x));
    for (const n of [...left, ...made.reverse()]) {
      try {
        sh(['ip', 'netns', 'del', n]);
      } catch {
        // already gone
      }
    }
    rmSync(RESOLV, { force: true });
  });

  it('reaches a server outside its host through NAT, with a default route and the host resolvers a container can use', async () => {
    const t = task('t-bridge', []);
    expect(agent.uses(t)).toBe(true);
    expect(agent.behindVip(t)).toBe(false);
    // The host's loopback resolver answers only in the host's namespace: left out, as Docker's bridge does.
    expect(agent.resolvConf(t)?.split('\n').slice(1)).toEqual(['nameserver 10.1.2.3', 'search corp.example', '']);
    const pid = await sleeperIn(CTR);
    // Before: loopback only, nothing reachable.
    expect(await connectFrom(CTR)).toBe('ENETUNREACH');
    await agent.attach(t, pid);
    const links = (await readLinks(`/proc/${pid}/ns/net`))!;
    expect(links.map((l) => l.name).sort()).toEqual(['eth0', 'lo']);
    expect(links.find((l) => l.name === 'eth0')!.addrs[0]).toMatch(/^172\.30\.\d+\.\d+\/16$/);
    expect(ipIn(CTR, 'route', 'show', 'default')).toMatch(/^default via 172\.30\.0\.1 dev eth0/);
    // The server saw the host's own address: the egress NAT, since OUT has no route back to 172.30.0.0/16.
    expect(await connectFrom(CTR)).toBe(HOST_IP);
    // Leaving the bridge takes its port away.
    await agent.detach(t);
    const host = (await readLinks(HOST))!;
    expect(host.filter((l) => l.master === 'tss_gwbridge')).toEqual([]);
    expect(await connectFrom(CTR)).toBe('ENETUNREACH');
  });

  it('cannot send to the VXLAN port of its host or of another, nor open the control-plane port, yet still gets out', async () => {
    const t = task('t-guard', []);
    const pid = await sleeperIn(CTR);
    await agent.attach(t, pid);
    try {
      // The host's VXLAN socket listens on every host address, the gateway's too.
      const here = udpListener(HOST);
      await here.ready;
      await sendUdpFrom(CTR, '172.30.0.1');
      expect(await here.heard).toEqual([OPEN_UDP]);
      // Another node's VXLAN port, through the masquerade.
      const there = udpListener(OUT);
      await there.ready;
      await sendUdpFrom(CTR, OUT_IP);
      expect(await there.heard).toEqual([OPEN_UDP]);
      // The node's gRPC port answers the host, not the task.
      const control = spawnIn(HOST, [
        process.execPath,
        '-e',
        `require('net').createServer(s=>s.end('control')).listen(${CONTROL_PORT},'0.0.0.0',()=>console.log('listening'))`,
      ]);
      let said = '';
      control.stdout!.setEncoding('utf8').on('data', (d: string) => (said += d));
      await until('the control-plane stand-in to listen', () => said.includes('listening'));
      expect(await connectFrom(HOST, HOST_IP, CONTROL_PORT)).toBe('control');
      expect(await connectFrom(CTR, '172.30.0.1', CONTROL_PORT)).toBe('TIMEOUT');
      expect(await connectFrom(CTR, HOST_IP, CONTROL_PORT)).toBe('TIMEOUT');
      // The way out is untouched.
      expect(await connectFrom(CTR)).toBe(HOST_IP);
    } finally {
      await agent.detach(t);
    }
  });

  it('a task on none gets nothing but lo, and its connect fails', async () => {
    const t = task('t-none', [{ target: 'none', aliases: [] }]);
    expect(agent.uses(t)).toBe(false);
    const pid = await sleeperIn(NONE);
    // The worker never calls attach for it; an attach anyway (an adopted container) changes nothing.
    expect(await agent.attach(t, pid)).toEqual([]);
    const links = (await readLinks(`/proc/${pid}/ns/net`))!;
    expect(links.map((l) => l.name)).toEqual(['lo']);
    expect(await connectFrom(NONE)).toBe('ENETUNREACH');
    // Meanwhile the host still reaches the server: it is the task, not the server, that is cut off.
    const fromHost = await connectFrom(HOST);
    expect(fromHost).toBe(HOST_IP);
  });
});
