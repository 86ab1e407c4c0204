// The embedded DNS for real: namespaces made by the test (tss-dns-*, removed
// when the file ends), servers at 127.0.0.11:53 inside them, queried by
// busybox nslookup and a small client run with nsenter; unknown names go to a
// fake upstream on 127.0.0.1 of the test's own namespace (never the internet).
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerDnsServer, EmbeddedDns, type ServiceRecord } from '../../../agent/dns/index.js';
import { createLogger } from '../../../lib/log.js';
import { nativeAvailable } from '../../../native/libc.js';
import { startFakeUpstream, type FakeUpstream } from './fixtures/fake-upstream.js';
import { isRoot } from '../../have.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../..', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/query.ts', import.meta.url));
const native = nativeAvailable();
const blocker = !native.ok
  ? native.reason
  : !isRoot
    ? 'creating a network namespace needs root'
    : !existsSync('/bin/busybox')
      ? '/bin/busybox (Debian package busybox-static) is missing'
      : '';

const log = createLogger({ level: 'silent' });
const suffix = `${process.pid}-${randomBytes(2).toString('hex')}`;
const nsA = `tss-dns-${suffix}-a`;
const nsB = `tss-dns-${suffix}-b`;
const pathOf = (ns: string): string => `/run/netns/${ns}`;

/** The addresses busybox nslookup prints for `name` asked at 127.0.0.11 inside `ns` (after the server lines). */
async function nslookup(ns: string, name: string): Promise<{ addresses: string[]; output: string; ok: boolean }> {
  const r = await run('nsenter', [`--net=${pathOf(ns)}`, '/bin/busybox', 'nslookup', name, '127.0.0.11'], { timeout: 20_000 }).then(
    (x) => ({ ...x, ok: true }),
    (e: { stdout: string; stderr: string }) => ({ stdout: e.stdout, stderr: e.stderr, ok: false }),
  );
  const addresses = [...r.stdout.matchAll(/^Address: (\S+)$/gm)].map((m) => m[1]!);
  return { addresses, output: r.stdout, ok: r.ok };
}

/** One question from a client inside `ns`, over udp or tcp. */
async function ask(ns: string, transport: 'udp' | 'tcp', name: string): Promise<{ rcode: number; tc: boolean; addresses: string[] }> {
  const { stdout } = await run('nsenter', [`--net=${pathOf(ns)}`, process.execPath, '--import', 'tsx', fixture, transport, name], {
    cwd: repo,
    timeout: 30_000,
  });
  return JSON.parse(stdout) as { rcode: number; tc: boolean; addresses: string[] };
}

const listening = (ns: string): string => execFileSync('nsenter', [`--net=${pathOf(ns)}`, 'ss', '-Htuln'], { encoding: 'utf8' });

/** How many socket descriptors this process holds. */
const openSockets = (): number =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return statSync(`/proc/self/fd/${fd}`).isSocket();
    } catch {
      return false;
    }
  }).length;

const web = (vip: string, taskIps: string[]): ServiceRecord => ({ name: 'web', endpointMode: 'vip', vip, taskIps });

describe.skipIf(blocker !== '')(`embedded DNS in network namespaces${blocker ? ` (skipped: ${blocker})` : ''}`, () => {
  let up: FakeUpstream;
  let dns: EmbeddedDns;
  let socketsBefore = 0;

  beforeAll(async () => {
    socketsBefore = openSockets();
    for (const ns of [nsA, nsB]) execFileSync('ip', ['netns', 'add', ns]);
    up = await startFakeUpstream();
    dns = new EmbeddedDns({ log, upstreams: [{ address: '127.0.0.1', port: up.port }], forwardTimeoutMs: 2000 });
    dns.table.setNetwork('front', [
      web('10.0.1.2', ['10.0.1.10', '10.0.1.11', '10.0.1.12']),
      { name: 'cache', endpointMode: 'dnsrr', taskIps: ['10.0.1.20', '10.0.1.21'] },
    ]);
    dns.table.setNetwork('back', [web('10.0.2.2', ['10.0.2.10'])]);
  });

  afterAll(async () => {
    await dns?.close();
    await up?.close();
    for (const ns of [nsA, nsB]) if (existsSync(pathOf(ns))) execFileSync('ip', ['netns', 'del', ns]);
  });

  it('attach opens 127.0.0.11:53 (UDP and TCP) inside the namespace, brings lo up, and leaves this thread where it was', async () => {
    const home = statSync('/proc/thread-self/ns/net').ino;
    await dns.attach(pathOf(nsA), { hostname: 'app-1', endpoints: [{ network: 'front', ip: '10.0.1.30' }] });
    await dns.attach(pathOf(nsB), { hostname: 'app-2', endpoints: [{ network: 'back', ip: '10.0.2.30' }] });
    expect(statSync('/proc/thread-self/ns/net').ino).toBe(home);
    const sockets = listening(nsA);
    expect(sockets).toMatch(/^udp .*127\.0\.0\.11:53 /m);
    expect(sockets).toMatch(/^tcp .*LISTEN.*127\.0\.0\.11:53 /m);
    expect(execFileSync('ip', ['-n', nsA, '-o', 'link', 'show', 'lo'], { encoding: 'utf8' })).toContain(',UP');
    expect(execFileSync('ss', ['-Htuln'], { encoding: 'utf8' })).not.toMatch(/127\.0\.0\.11:53 /);
    expect(dns.attached().sort()).toEqual([pathOf(nsA), pathOf(nsB)].sort());
  });

  it('nslookup of a service name inside the container answers its VIP on the container network', async () => {
    expect((await nslookup(nsA, 'web')).addresses).toEqual(['10.0.1.2']);
    expect((await nslookup(nsB, 'web')).addresses).toEqual(['10.0.2.2']);
  });

  it('tasks.<service> answers every task IP, and the own hostname answers the container address', async () => {
    expect((await nslookup(nsA, 'tasks.web')).addresses.sort()).toEqual(['10.0.1.10', '10.0.1.11', '10.0.1.12']);
    expect((await nslookup(nsA, 'TASKS.WEB.')).addresses.sort()).toEqual(['10.0.1.10', '10.0.1.11', '10.0.1.12']);
    expect((await nslookup(nsB, 'app-2')).addresses).toEqual(['10.0.2.30']);
    expect((await nslookup(nsA, 'cache')).addresses.sort()).toEqual(['10.0.1.20', '10.0.1.21']);
  });

  it('an unknown name is forwarded to the upstream and its answer (or NXDOMAIN) reaches the container', async () => {
    up.asked.length = 0;
    const found = await nslookup(nsA, 'example.test');
    expect(found.addresses).toEqual(['192.0.2.1']);
    const missing = await nslookup(nsA, 'nope.test');
    expect(missing.ok).toBe(false);
    expect(missing.output).toContain("can't find nope.test: NXDOMAIN");
    expect(up.asked.filter((a) => a.type === 1).map((a) => a.name)).toEqual(['example.test', 'nope.test']);
    // names the table owns were never forwarded, AAAA included
    expect(up.asked.some((a) => a.name.toLowerCase().includes('web'))).toBe(false);
  });

  it('a table update shows on the next query', async () => {
    dns.table.setNetwork('front', [web('10.0.1.3', ['10.0.1.10', '10.0.1.13'])]);
    expect((await nslookup(nsA, 'web')).addresses).toEqual(['10.0.1.3']);
    expect((await nslookup(nsA, 'tasks.web')).addresses.sort()).toEqual(['10.0.1.10', '10.0.1.13']);
    expect((await nslookup(nsA, 'cache')).ok).toBe(false);
  });

  it('over UDP a large answer comes truncated, and over TCP whole', async () => {
    const many = Array.from({ length: 60 }, (_, i) => `10.0.1.${100 + i}`);
    dns.table.setNetwork('front', [web('10.0.1.3', many)]);
    const udp = await ask(nsA, 'udp', 'tasks.web');
    expect(udp.tc).toBe(true);
    expect(udp.addresses.length).toBeLessThan(60);
    const tcp = await ask(nsA, 'tcp', 'tasks.web');
    expect(tcp.tc).toBe(false);
    expect(tcp.addresses.sort()).toEqual([...many].sort());
  });

  it('a TCP client asking a name the upstream truncates gets the full answer (fetched over TCP)', async () => {
    const r = await ask(nsA, 'tcp', 'big.test');
    expect(r.tc).toBe(false);
    expect(r.addresses).toHaveLength(100);
  });

  it('detach frees the socket: nothing listens at 127.0.0.11 any more and a new server binds there again', async () => {
    await dns.detach(pathOf(nsB));
    expect(listening(nsB)).not.toMatch(/127\.0\.0\.11:53/);
    const again = await ContainerDnsServer.open({
      netnsPath: pathOf(nsB),
      key: pathOf(nsB),
      table: dns.table,
      forwarder: { forward: async () => undefined },
      log,
    });
    try {
      dns.table.setContainer(pathOf(nsB), { hostname: 'app-2', endpoints: [{ network: 'back', ip: '10.0.2.30' }] });
      expect((await nslookup(nsB, 'web')).addresses).toEqual(['10.0.2.2']);
    } finally {
      await again.close();
    }
    expect(listening(nsB)).not.toMatch(/127\.0\.0\.11:53/);
  });

  it('in redirect mode :53 answers through an nft DNAT, the container can bind 0.0.0.0:53 itself, and close removes the table', async () => {
    const server = await ContainerDnsServer.open({
      netnsPath: pathOf(nsB),
      key: pathOf(nsB),
      table: dns.table,
      forwarder: { forward: async () => undefined },
      log,
      redirect: true,
    });
    const tables = (): string => execFileSync('nsenter', [`--net=${pathOf(nsB)}`, 'nft', 'list', 'tables'], { encoding: 'utf8' });
    try {
      const { udp, tcp } = server.ports();
      expect(udp).not.toBe(53);
      expect(tcp).not.toBe(53);
      expect(tables()).toContain('table ip tss-dns');
      expect((await nslookup(nsB, 'web')).addresses).toEqual(['10.0.2.2']);
      expect((await ask(nsB, 'tcp', 'web')).addresses).toEqual(['10.0.2.2']);
      // A DNS server of the container's own binds the wildcard port 53 (UDP and TCP).
      const bindAll = `const d=require('dgram').createSocket('udp4');d.bind(53,'0.0.0.0',()=>{const s=require('net').createServer().listen(53,'0.0.0.0',()=>{console.log('bound');d.close();s.close()})})`;
      const { stdout } = await run('nsenter', [`--net=${pathOf(nsB)}`, process.execPath, '-e', bindAll], { timeout: 20_000 });
      expect(stdout.trim()).toBe('bound');
    } finally {
      await server.close();
    }
    expect(tables()).not.toContain('tss-dns');
  });

  it('after close and namespace removal no descriptor of ours is left', async () => {
    await dns.close();
    expect(dns.attached()).toEqual([]);
    expect(listening(nsA)).not.toMatch(/127\.0\.0\.11:53/);
    await up.close();
    for (const ns of [nsA, nsB]) execFileSync('ip', ['netns', 'del', ns]);
    expect(existsSync(pathOf(nsA))).toBe(false);
    // Every socket this file opened is closed (a socket would keep its namespace alive unseen).
    expect(openSockets()).toBeLessThanOrEqual(socketsBefore);
  });
});
