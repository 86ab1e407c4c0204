// agent/lb against the real kernel, with real traffic: a client namespace
// holding a bridge, three backend namespaces on it running busybox nc, and
// the VIP (and an ingress port on the client's own address) programmed in the
// client namespace by each backend in turn. Each backend also answers TCP 8080
// and UDP 5353 (a node dgram server), for the every-port VIP (`ports: []`).
// Everything is named tss-* and removed when the file ends, pass or fail.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  detectLbBackends,
  emptyTable,
  IptablesDriver,
  NftDriver,
  ServiceLoadBalancer,
  type LbDriver,
  type LbService,
  type LbTable,
} from '../../../agent/lb/index.js';
import { isRoot, needs } from '../../have.js';
import { until } from '../../lib/wait.js';

const exec = promisify(execFile);
const sfx = `${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const client = `tss-lbc-${sfx}`;
const backends = [1, 2, 3].map((i) => ({ ns: `tss-lbb${i}-${sfx}`, ip: `10.77.0.1${i}`, name: `b${i}` }));
const VIP = '10.96.0.10';
/** The every-port VIP (a service with ports: []). */
const VIP_ANY = '10.96.0.20';
const UDP_PORT = 5353;
const NODE = '10.77.0.1';
const busybox = '/bin/busybox';

const blocker = !isRoot ? 'needs root' : !existsSync(busybox) ? `${busybox} is missing (Debian busybox-static)` : undefined;
const detection = blocker ? undefined : await detectLbBackends();
const ipvsBlocker = blocker ?? (detection!.ipvs.ok ? undefined : detection!.ipvs.reason);
if (ipvsBlocker) console.log(`IPVS kernel test skipped: ${ipvsBlocker}`);
/** This kernel may lack IPVS (no ip_vs module): the one skip `.ci/run` accepts here as root. */
const ipvsMissing = blocker ? '' : needs('ipvs');

const ip = (...args: string[]) => exec('ip', args);
const inNs = (ns: string, cmd: string, ...args: string[]) => exec('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args]);
const servers: ChildProcess[] = [];

const table = (names: string[], extra: Partial<LbTable> = {}): LbTable => ({
  services: [
    {
      id: 'web',
      vip: VIP,
      ports: [{ protocol: 'tcp', port: 80 }],
      backends: backends.filter((b) => names.includes(b.name)).map((b) => ({ ip: b.ip })),
    },
  ],
  ingress: [{ protocol: 'tcp', publishedPort: 8080, targetPort: 80, serviceId: 'web' }],
  ...extra,
});

/** One TCP connection from the client namespace; the name the backend answered with, or '' on failure. */
async function hit(addr: string, port: number): Promise<string> {
  try {
    const r = await exec('nsenter', [`--net=/run/netns/${client}`, busybox, 'nc', '-w', '2', addr, String(port)], { timeout: 5000 });
    return r.stdout.trim();
  } catch {
    return '';
  }
}

/**
 * hit(), once more after a failure: on a loaded machine one connection can
 * miss nc's 2 s (the backend forks `echo` per connection), and that must not
 * read as a wrong answer. Two failures in a row still count as '' (a removed
 * backend still answers, so retrying cannot hide traffic sent to it).
 */
async function hitOrRetry(addr: string, port: number): Promise<string> {
  return (await hit(addr, port)) || hit(addr, port);
}

/** Connects `n` times (stopping early once `until` names are all seen); returns the names seen. */
async function spread(addr: string, port: number, n: number, until?: string[], probe = hitOrRetry): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const who = await probe(addr, port);
    seen.set(who, (seen.get(who) ?? 0) + 1);
    if (until && until.every((u) => seen.has(u))) break;
  }
  return seen;
}

/** Answers each UDP datagram on UDP_PORT with `<name>-udp` (busybox nc has no -u). */
const udpServer = `const s = require('node:dgram').createSocket('udp4');
s.on('message', (m, r) => s.send(process.argv[1] + '-udp', r.port, r.address));
s.bind(${UDP_PORT});`;

/** How long a UDP client waits for the answer: the backends are node processes a loaded machine may schedule late. */
const UDP_WAIT_MS = 3000;

/** Sends `n` datagrams from the client namespace, each from a new socket (so a new conntrack entry); the names that answered ('' for none). */
async function udpSpread(addr: string, n: number): Promise<Map<string, number>> {
  const script = `const dgram = require('node:dgram');
(async () => {
  const seen = {};
  for (let i = 0; i < ${n}; i++) {
    const s = dgram.createSocket('udp4');
    const who = await new Promise((res) => {
      const t = setTimeout(() => res(''), ${UDP_WAIT_MS});
      s.on('message', (m) => { clearTimeout(t); res(m.toString()); });
      s.on('error', () => { clearTimeout(t); res(''); });
      s.send('x', ${UDP_PORT}, ${JSON.stringify(addr)});
    });
    s.close();
    seen[who] = (seen[who] || 0) + 1;
  }
  process.stdout.write(JSON.stringify(seen));
})();`;
  try {
    const r = await exec('nsenter', [`--net=/run/netns/${client}`, process.execPath, '-e', script], {
      timeout: 10_000 + n * (UDP_WAIT_MS + 500),
    });
    return new Map(Object.entries(JSON.parse(r.stdout) as Record<string, number>));
  } catch {
    return new Map([['', n]]);
  }
}

/** One UDP datagram to addr from a fixed source port (one conntrack flow); the backend's answer, or ''. */
async function udpFrom(srcPort: number, addr: string): Promise<string> {
  const script = `const s = require('node:dgram').createSocket('udp4');
s.bind(${srcPort}, () => {
  const t = setTimeout(() => { process.stdout.write(''); s.close(); }, ${UDP_WAIT_MS});
  s.on('message', (m) => { clearTimeout(t); process.stdout.write(m.toString()); s.close(); });
  s.send('x', ${UDP_PORT}, ${JSON.stringify(addr)});
});`;
  try {
    return (await exec('nsenter', [`--net=/run/netns/${client}`, process.execPath, '-e', script], { timeout: 10_000 + UDP_WAIT_MS }))
      .stdout;
  } catch {
    return '';
  }
}

async function cleanup(): Promise<void> {
  for (const p of servers) p.kill('SIGKILL');
  for (const ns of [client, ...backends.map((b) => b.ns)]) await ip('netns', 'del', ns).catch(() => undefined);
}

beforeAll(async () => {
  if (blocker) return;
  try {
    await ip('netns', 'add', client);
    await ip('-n', client, 'link', 'set', 'lo', 'up');
    await ip('-n', client, 'link', 'add', 'tsslbbr', 'type', 'bridge');
    await ip('-n', client, 'addr', 'add', `${NODE}/24`, 'dev', 'tsslbbr');
    await ip('-n', client, 'link', 'set', 'tsslbbr', 'up');
    // The VIP needs a route for the client's socket to send at all; DNAT then re-routes.
    await ip('-n', client, 'route', 'add', '10.96.0.0/16', 'dev', 'tsslbbr');
    for (const [i, b] of backends.entries()) {
      await ip('netns', 'add', b.ns);
      await ip('-n', client, 'link', 'add', `tsslbv${i}`, 'type', 'veth', 'peer', 'name', 'tsslbe0', 'netns', b.ns);
      await ip('-n', client, 'link', 'set', `tsslbv${i}`, 'master', 'tsslbbr', 'up');
      await ip('-n', b.ns, 'addr', 'add', `${b.ip}/24`, 'dev', 'tsslbe0');
      await ip('-n', b.ns, 'link', 'set', 'tsslbe0', 'up');
      await ip('-n', b.ns, 'link', 'set', 'lo', 'up');
      const p = spawn('nsenter', [`--net=/run/netns/${b.ns}`, busybox, 'nc', '-ll', '-p', '80', '-e', 'echo', b.name], { stdio: 'ignore' });
      servers.push(p);
      servers.push(
        spawn('nsenter', [`--net=/run/netns/${b.ns}`, busybox, 'nc', '-ll', '-p', '8080', '-e', 'echo', `${b.name}-8080`], {
          stdio: 'ignore',
        }),
      );
      servers.push(spawn('nsenter', [`--net=/run/netns/${b.ns}`, process.execPath, '-e', udpServer, b.name], { stdio: 'ignore' }));
    }
    // Wait until each backend answers directly.
    for (const b of backends) {
      const every = { timeoutMs: 5_000, everyMs: 100 };
      await until(`${b.name} answering TCP 80 directly`, async () => (await hit(b.ip, 80)) === b.name, every);
      await until(`${b.name} answering TCP 8080 directly`, async () => (await hit(b.ip, 8080)) === `${b.name}-8080`, every);
      await until(`${b.name} answering UDP ${UDP_PORT} directly`, async () => (await udpSpread(b.ip, 1)).has(`${b.name}-udp`), every);
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
});

afterAll(cleanup);

const all = ['b1', 'b2', 'b3'];

/** The nft and iptables drivers, each tested against the same traffic. */
const drivers = [
  {
    name: 'nft (libnftables in process)',
    make: (): LbDriver<unknown> => new NftDriver({ netns: client, via: 'libnftables' }) as LbDriver<unknown>,
  },
  { name: 'nft (nft -f process)', make: (): LbDriver<unknown> => new NftDriver({ netns: client, via: 'process' }) as LbDriver<unknown> },
  { name: 'iptables', make: (): LbDriver<unknown> => new IptablesDriver({ netns: client }) as LbDriver<unknown> },
];

/** Why a driver's tests cannot run here, if they cannot. */
function skipFor(name: string): string | undefined {
  if (blocker) return blocker;
  const a = detection![name.startsWith('nft') ? 'nft' : 'iptables'];
  return a.ok ? undefined : a.reason;
}

describe.each(drivers)('$name in a tss namespace', ({ name, make }) => {
  const skip = skipFor(name);
  let lb: ServiceLoadBalancer;
  beforeAll(() => {
    if (!skip) lb = new ServiceLoadBalancer(make());
  });
  afterAll(async () => {
    if (skip) return;
    await lb.teardown().catch(() => undefined);
    await lb.close();
  });

  it.skipIf(!!skip)(`connections to the VIP and to the ingress port reach every backend${skip ? ` (skipped: ${skip})` : ''}`, async () => {
    const r = await lb.update(table(all));
    expect(r.readBack).toBe(true);
    expect(r.ops).toBeGreaterThan(0);
    expect([...(await spread(VIP, 80, 60, all)).keys()].sort()).toEqual(all);
    expect([...(await spread(NODE, 8080, 60, all)).keys()].sort()).toEqual(all);
  });

  it.skipIf(!!skip)('the kernel state read back matches what was programmed (a reconcile changes nothing)', async () => {
    expect((await lb.reconcile(table(all))).ops).toBe(0);
  });

  it.skipIf(!!skip)('a removed backend gets no new connections, and the others still do', async () => {
    const r = await lb.upsertService(table(['b1', 'b3']).services[0]!);
    expect(r.ops).toBeGreaterThan(0);
    expect(r.readBack).toBe(false);
    const seen = await spread(VIP, 80, 30);
    expect(seen.has('b2')).toBe(false);
    expect(seen.has('')).toBe(false);
    expect([...seen.keys()].sort()).toEqual(['b1', 'b3']);
  });

  it.skipIf(!!skip)('a restarted agent repairs an entry deleted by hand and removes a stale one it owns', async () => {
    if (name.startsWith('nft')) {
      await inNs(client, 'nft', 'delete', 'element', 'ip', 'tss-lb', 'tss-vip-slots', `{ ${VIP} . tcp . 80 . 1 }`);
      await inNs(client, 'nft', 'add', 'element', 'ip', 'tss-lb', 'tss-vips', '{ 10.96.0.99 . tcp . 80 : goto tss-vip-2 }');
      await inNs(
        client,
        'nft',
        'add',
        'element',
        'ip',
        'tss-lb',
        'tss-vip-slots',
        '{ 10.96.0.99 . tcp . 80 . 0 : 10.77.0.12 . 80, 10.96.0.99 . tcp . 80 . 1 : 10.77.0.12 . 80 }',
      );
    } else {
      const saved = (await inNs(client, 'iptables-save', '-t', 'nat')).stdout;
      const chain = /-A TSS-SERVICES -d 10\.96\.0\.10\/32 .* -j (TSS-SVC-\S+)/.exec(saved)![1]!;
      await inNs(client, 'iptables', '-t', 'nat', '-D', chain, '2');
      await inNs(client, 'iptables', '-t', 'nat', '-N', 'TSS-SVC-STALE');
      await inNs(client, 'iptables', '-t', 'nat', '-A', 'TSS-SVC-STALE', '-p', 'tcp', '-j', 'DNAT', '--to-destination', '10.77.0.12:80');
      await inNs(
        client,
        'iptables',
        '-t',
        'nat',
        '-A',
        'TSS-SERVICES',
        '-d',
        '10.96.0.99/32',
        '-p',
        'tcp',
        '-m',
        'tcp',
        '--dport',
        '80',
        '-j',
        'TSS-SVC-STALE',
      );
    }
    await lb.close();
    lb = new ServiceLoadBalancer(make());
    const r = await lb.reconcile(table(['b1', 'b3']));
    expect(r.ops).toBeGreaterThan(0);
    expect((await lb.reconcile(table(['b1', 'b3']))).ops).toBe(0);
    // Every probe must fail here: a retry would only double the wait.
    expect((await spread('10.96.0.99', 80, 3, undefined, hit)).get('')).toBe(3);
    expect([...(await spread(VIP, 80, 60, ['b1', 'b3'])).keys()].sort()).toEqual(['b1', 'b3']);
  });

  it.skipIf(!!skip)('a change after someone else altered the kernel falls back to reading it back', async () => {
    if (name.startsWith('nft')) await inNs(client, 'nft', 'delete', 'element', 'ip', 'tss-lb', 'tss-vips', `{ ${VIP} . tcp . 80 }`);
    else await inNs(client, 'iptables', '-t', 'nat', '-F', 'TSS-SERVICES');
    const r = await lb.upsertService(table(all).services[0]!);
    // nft refuses the delete of the missing element, so the update itself re-reads the kernel;
    // iptables' rewrite of one chain succeeds blind, and the next reconcile restores the rest.
    if (name.startsWith('nft')) expect(r.readBack).toBe(true);
    else expect((await lb.reconcile(table(all))).ops).toBeGreaterThan(0);
    expect([...(await spread(VIP, 80, 60, all)).keys()].sort()).toEqual(all);
  });

  it.skipIf(!!skip)('teardown removes everything it created', async () => {
    await lb.removeService('web');
    expect(lb.desired()).toEqual(emptyTable());
    expect(await hit(NODE, 8080)).toBe('');
    await lb.teardown();
    if (name.startsWith('nft')) expect((await inNs(client, 'nft', 'list', 'tables')).stdout).not.toContain('tss-lb');
    else expect((await inNs(client, 'iptables-save', '-t', 'nat')).stdout).not.toContain('TSS-');
    expect(await hit(VIP, 80)).toBe('');
  });
});

describe('ipvs in a tss namespace', () => {
  it.skipIf(!!ipvsBlocker)(
    `connections to the VIP reach every backend and a removed one gets none${ipvsBlocker ? ` (skipped: ${ipvsBlocker})${ipvsMissing}` : ''}`,
    async () => {
      const lb = await ServiceLoadBalancer.open({ netns: client, lbBackend: 'ipvs' });
      try {
        const noIngress = { ingress: [] };
        await lb.update(table(all, noIngress));
        expect([...(await spread(VIP, 80, 60, all)).keys()].sort()).toEqual(all);
        await lb.update(table(['b1', 'b3'], noIngress));
        expect((await spread(VIP, 80, 30)).has('b2')).toBe(false);
        expect((await lb.reconcile(table(['b1', 'b3'], noIngress))).ops).toBe(0);
        await lb.teardown();
        expect((await inNs(client, 'ipvsadm', '-S', '-n')).stdout.trim()).toBe('');
      } finally {
        await lb.teardown().catch(() => undefined);
        await lb.close();
      }
    },
  );

  it.skipIf(!!ipvsBlocker)(
    `firewall-mark services: every port of a VIP and a published ingress port reach every backend${ipvsBlocker ? ` (skipped: ${ipvsBlocker})${ipvsMissing}` : ''}`,
    async () => {
      // Local clients: IPVS schedules them at LOCAL_OUT, after the mangle-priority mark; the VIP needs no local address.
      const lb = await ServiceLoadBalancer.open({ netns: client, lbBackend: 'ipvs' });
      const anySvc: LbService = { id: 'web-any', vip: VIP_ANY, ports: [], backends: backends.map((b) => ({ ip: b.ip })) };
      try {
        await lb.update({ services: [anySvc, ...table(all).services], ingress: table(all).ingress });
        const with8080 = all.map((n) => `${n}-8080`);
        expect([...(await spread(VIP_ANY, 8080, 60, with8080)).keys()].sort()).toEqual(with8080);
        expect([...(await udpSpread(VIP_ANY, 30)).keys()].sort()).toEqual(all.map((n) => `${n}-udp`));
        expect([...(await spread(NODE, 8080, 60, all)).keys()].sort()).toEqual(all);
        expect((await lb.reconcile()).ops).toBe(0);
        await lb.teardown();
        expect((await inNs(client, 'ipvsadm', '-S', '-n')).stdout.trim()).toBe('');
        expect((await inNs(client, 'nft', 'list', 'tables')).stdout).not.toContain('tss-lbmark');
      } finally {
        await lb.teardown().catch(() => undefined);
        await lb.close();
      }
    },
  );
});

describe.each(drivers)('$name: a VIP forwarding every port (ports: [])', ({ name, make }) => {
  const skip = skipFor(name);
  const nft = name.startsWith('nft');
  const anySvc = (names: string[]): LbService => ({
    id: 'web-any',
    vip: VIP_ANY,
    ports: [],
    backends: backends.filter((b) => names.includes(b.name)).map((b) => ({ ip: b.ip })),
  });
  const suffixed = (names: string[], sfx: string) => names.map((n) => `${n}${sfx}`);
  let lb: ServiceLoadBalancer;
  beforeAll(() => {
    if (!skip) lb = new ServiceLoadBalancer(make());
  });
  afterAll(async () => {
    if (skip) return;
    await lb.teardown().catch(() => undefined);
    await lb.close();
  });

  it.skipIf(!!skip)(
    `TCP to VIP:80 and VIP:8080 and UDP to VIP:${UDP_PORT} reach the same port on every backend${skip ? ` (skipped: ${skip})` : ''}`,
    async () => {
      const r = await lb.upsertService(anySvc(all));
      expect(r.readBack).toBe(true);
      expect([...(await spread(VIP_ANY, 80, 60, all)).keys()].sort()).toEqual(all);
      expect([...(await spread(VIP_ANY, 8080, 60, suffixed(all, '-8080'))).keys()].sort()).toEqual(suffixed(all, '-8080'));
      expect([...(await udpSpread(VIP_ANY, 30)).keys()].sort()).toEqual(suffixed(all, '-udp'));
      // A port no backend listens on is forwarded too (and refused there), not answered by anyone else.
      expect(await hit(VIP_ANY, 81)).toBe('');
    },
  );

  it.skipIf(!!skip)('the every-port VIP read back from the kernel matches what was programmed (a reconcile changes nothing)', async () => {
    expect((await lb.reconcile({ services: [anySvc(all)], ingress: [] })).ops).toBe(0);
  });

  it.skipIf(!!skip)('a removed backend gets no new connections on any port, and the others still do', async () => {
    const r = await lb.upsertService(anySvc(['b1', 'b3']));
    expect(r).toMatchObject({ readBack: false });
    expect(r.ops).toBeGreaterThan(0);
    const tcp80 = await spread(VIP_ANY, 80, 30);
    const tcp8080 = await spread(VIP_ANY, 8080, 30);
    const udp = await udpSpread(VIP_ANY, 20);
    expect([...tcp80.keys()].sort()).toEqual(['b1', 'b3']);
    expect([...tcp8080.keys()].sort()).toEqual(['b1-8080', 'b3-8080']);
    expect([...udp.keys()].sort()).toEqual(['b1-udp', 'b3-udp']);
  });

  it.skipIf(!!skip)('a restarted agent repairs an every-port entry deleted by hand', async () => {
    if (nft) {
      await inNs(client, 'nft', 'delete', 'element', 'ip', 'tss-lb', 'tss-any-slots', `{ ${VIP_ANY} . 1 }`);
    } else {
      const saved = (await inNs(client, 'iptables-save', '-t', 'nat')).stdout;
      const chain = new RegExp(`-A TSS-SERVICES -d ${VIP_ANY.replace(/\./g, '\\.')}/32 -p udp -j (TSS-ANY-\\S+)`).exec(saved)![1]!;
      await inNs(client, 'iptables', '-t', 'nat', '-D', 'TSS-SERVICES', '-d', `${VIP_ANY}/32`, '-p', 'udp', '-j', chain);
      await inNs(client, 'iptables', '-t', 'nat', '-D', chain, '1');
    }
    await lb.close();
    lb = new ServiceLoadBalancer(make());
    const desired = { services: [anySvc(['b1', 'b3'])], ingress: [] };
    expect((await lb.reconcile(desired)).ops).toBeGreaterThan(0);
    expect((await lb.reconcile(desired)).ops).toBe(0);
    expect([...(await spread(VIP_ANY, 8080, 60, ['b1-8080', 'b3-8080'])).keys()].sort()).toEqual(['b1-8080', 'b3-8080']);
    expect([...(await udpSpread(VIP_ANY, 30)).keys()].sort()).toEqual(['b1-udp', 'b3-udp']);
  });

  it.skipIf(!!skip)(
    'a UDP flow to a backend that is taken away is cleared, so its next datagram goes to a backend still there',
    async () => {
      const src = 40_000 + (process.pid % 2000);
      const first = await udpFrom(src, VIP_ANY);
      expect(['b1-udp', 'b3-udp']).toContain(first);
      const gone = first.replace(/-udp$/, '');
      // The same flow keeps its backend while nothing changes...
      expect(await udpFrom(src, VIP_ANY)).toBe(first);
      // ...and leaves it once that backend is removed (without clearing, conntrack would keep sending there).
      await lb.upsertService(anySvc(['b1', 'b2', 'b3'].filter((n) => n !== gone)));
      const next = await udpFrom(src, VIP_ANY);
      expect(next).not.toBe(first);
      expect(next).toMatch(/^b[123]-udp$/);
    },
  );

  it.skipIf(!!skip)('removing the service stops its VIP, and teardown removes everything it created', async () => {
    const r = await lb.removeService('web-any');
    expect(r.readBack).toBe(false);
    expect(await hit(VIP_ANY, 80)).toBe('');
    expect((await udpSpread(VIP_ANY, 1)).get('')).toBe(1);
    await lb.teardown();
    if (nft) expect((await inNs(client, 'nft', 'list', 'tables')).stdout).not.toContain('tss-lb');
    else expect((await inNs(client, 'iptables-save', '-t', 'nat')).stdout).not.toContain('TSS-');
  });
});
