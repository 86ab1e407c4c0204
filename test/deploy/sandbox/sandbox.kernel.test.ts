// deploy/sandbox against the real kernel: a 2-manager + 1-worker sandbox of
// network namespaces running the stand-in daemon. Names carry a random test
// prefix (tss-t<rand>-) so a real sandbox on the machine is never touched.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox } from '../../../deploy/sandbox/index.js';
import { connect, fakeDaemonCommand, forceCleanup, kernelBlocker, leftovers, testNames } from './helpers.js';

const blocker = kernelBlocker();

const ipJson = <T>(...args: string[]): T => JSON.parse(execFileSync('ip', ['-j', ...args], { encoding: 'utf8' })) as T;
/** Running, not a zombie waiting for this test process to reap it. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}
type Link = {
  ifname: string;
  flags: string[];
  master?: string;
  operstate: string;
  mtu: number;
  addr_info?: { local: string; prefixlen: number }[];
};

describe.skipIf(blocker !== '')(`sandbox on the real kernel${blocker ? ` (skipped: ${blocker})` : ''}`, () => {
  const names = testNames('main');
  const { prefix, root } = names;
  const ns = (s: string): string => `${prefix}${s}`;
  // Host 3 ignores SIGTERM, so stop must fall back to SIGKILL.
  const options = { root, prefix, daemonCommand: fakeDaemonCommand([3]), stopTimeoutMs: 4000, readyTimeoutMs: 15_000 };
  const sb = new Sandbox(options);
  let rootLinksBefore: string[] = [];

  beforeAll(async () => {
    rootLinksBefore = ipJson<Link[]>('link', 'show').map((l) => l.ifname);
    await sb.up({ managers: 2, workers: 1 });
  });

  afterAll(async () => {
    try {
      await sb.down();
    } finally {
      forceCleanup(names);
    }
  });

  it('up makes the underlay namespace and one namespace per host, each with eth0 at 10.77.0.(10+N)/24 on the underlay bridge', () => {
    const all = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    for (const n of ['ul', 'h1', 'h2', 'h3']) expect(all).toContain(ns(n));
    const ul = ipJson<Link[]>('-n', ns('ul'), 'link', 'show');
    const bridge = ul.find((l) => l.ifname === 'tss-ulbr');
    expect(bridge).toMatchObject({ mtu: 1500, flags: expect.arrayContaining(['UP']) });
    for (const i of [1, 2, 3]) {
      expect(ul.find((l) => l.ifname === `tss-ulh${i}`)).toMatchObject({
        master: 'tss-ulbr',
        mtu: 1500,
        flags: expect.arrayContaining(['UP']),
      });
      const eth0 = ipJson<Link[]>('-n', ns(`h${i}`), 'addr', 'show', 'eth0')[0]!;
      expect(eth0.operstate).toBe('UP');
      expect(eth0.addr_info?.filter((a) => a.local.includes('.'))).toEqual([
        expect.objectContaining({ local: `10.77.0.${10 + i}`, prefixlen: 24 }),
      ]);
      const lo = ipJson<Link[]>('-n', ns(`h${i}`), 'link', 'show', 'lo')[0]!;
      expect(lo.operstate).toBe('UNKNOWN'); // loopback is up: UNKNOWN is its "up"
    }
    expect(sb.hosts().map((h) => [h.name, h.role, h.addr])).toEqual([
      [ns('h1'), 'manager', '10.77.0.11'],
      [ns('h2'), 'manager', '10.77.0.12'],
      [ns('h3'), 'worker', '10.77.0.13'],
    ]);
  });

  it('up adds no link to the root namespace', () => {
    const now = ipJson<Link[]>('link', 'show').map((l) => l.ifname);
    expect(now.filter((l) => !rootLinksBefore.includes(l))).toEqual([]);
    expect(now.filter((l) => l.startsWith('tss-ul') || l === 'tss-ulbr')).toEqual([]);
  });

  it('hosts reach each other over the underlay: h1 connects to h3 and gets its name, and back', async () => {
    expect(await connect(sb, 'h1', 'h3')).toBe(ns('h3'));
    expect(await connect(sb, 'h3', 'h1')).toBe(ns('h1'));
    expect(await connect(sb, '2', ns('h1'))).toBe(ns('h1'));
  });

  it('each daemon runs in its host namespace, with TSSWARM_HOST naming its socket and output in its log', () => {
    for (const h of sb.state().hosts) {
      const pid = h.daemon.pid!;
      const nsOf = (p: string): string => `${statSync(p).dev}:${statSync(p).ino}`;
      expect(nsOf(`/proc/${pid}/ns/net`)).toBe(nsOf(h.netnsPath));
      expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain(`TSSWARM_HOST=unix://${h.socketPath}`);
      expect(statSync(h.socketPath).isSocket()).toBe(true);
      expect(readFileSync(h.logFile, 'utf8')).toContain(`${h.name} listening on ${h.addr}:4242`);
      // Its own session: a group signal reaches the daemon and nothing of ours.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      expect(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])).toBe(pid);
    }
  });

  it('state.json records hosts, addresses and pids', () => {
    const state = JSON.parse(readFileSync(`${root}/state.json`, 'utf8')) as {
      prefix: string;
      hosts: { name: string; addr: string; daemon: { pid: number } }[];
    };
    expect(state.prefix).toBe(prefix);
    expect(state.hosts.map((h) => [h.name, h.addr, typeof h.daemon.pid])).toEqual([
      [ns('h1'), '10.77.0.11', 'number'],
      [ns('h2'), '10.77.0.12', 'number'],
      [ns('h3'), '10.77.0.13', 'number'],
    ]);
  });

  it('ls lists every host with role, address, running daemon pid and a connected network', async () => {
    const hosts = await sb.ls();
    expect(hosts.map((h) => ({ name: h.name, role: h.role, addr: h.addr, running: h.running, cut: h.cut, present: h.present }))).toEqual([
      { name: ns('h1'), role: 'manager', addr: '10.77.0.11', running: true, cut: false, present: true },
      { name: ns('h2'), role: 'manager', addr: '10.77.0.12', running: true, cut: false, present: true },
      { name: ns('h3'), role: 'worker', addr: '10.77.0.13', running: true, cut: false, present: true },
    ]);
    expect(hosts.map((h) => h.pid)).toEqual(sb.state().hosts.map((h) => h.daemon.pid));
  });

  it('hosts are named as h2, the full namespace name or 2; an unknown name lists the hosts', () => {
    expect(sb.host('h2').name).toBe(ns('h2'));
    expect(sb.host(ns('h2')).name).toBe(ns('h2'));
    expect(sb.host('2').name).toBe(ns('h2'));
    expect(() => sb.host('h9')).toThrow(`no sandbox host "h9": the sandbox has ${ns('h1')}, ${ns('h2')}, ${ns('h3')}`);
  });

  it('exec runs a command inside the host namespace with TSSWARM_HOST set and tsswarm on PATH', async () => {
    const h2 = sb.host('h2');
    const r = await sb.execCapture(
      'h2',
      ['sh', '-c', 'echo "$TSSWARM_HOST"; command -v tsswarm; ip -br -4 addr show eth0; echo "$EXTRA"'],
      { env: { EXTRA: 'x1' } },
    );
    expect(r.code).toBe(0);
    const [host, shim, addr, extra] = r.stdout.trim().split('\n');
    expect(host).toBe(`unix://${h2.socketPath}`);
    expect(shim).toBe(`${root}/bin/tsswarm`);
    expect(addr).toMatch(/^eth0@\S+\s+UP\s+10\.77\.0\.12\/24/);
    expect(extra).toBe('x1');
    expect((await sb.execCapture('h2', ['sh', '-c', 'exit 7'])).code).toBe(7);
    expect(await sb.exec('h2', ['true'])).toBe(0);
  });

  it('stop terminates the daemon; start brings it back with a new pid, the same state dir and its socket', async () => {
    const before = sb.state().hosts[1]!.daemon.pid!;
    expect(await sb.stop('h2')).toBe(true);
    expect((await sb.ls())[1]).toMatchObject({ running: false, pid: before });
    expect(alive(before)).toBe(false);
    expect(await connect(sb, 'h1', 'h2')).toMatch(/^unreachable: ECONNREFUSED/);
    expect(await sb.stop('h2')).toBe(false); // already stopped

    expect(await sb.start('h2')).toBe(true);
    const after = (await sb.ls())[1]!;
    expect(after).toMatchObject({ running: true });
    expect(after.pid).not.toBe(before);
    expect(statSync(after.socketPath).isSocket()).toBe(true);
    expect(await connect(sb, 'h1', 'h2')).toBe(ns('h2'));
    expect(await sb.start('h2')).toBe(false); // already running
  });

  it('stop kills a daemon that ignores SIGTERM after the grace period, and stop --kill kills at once', async () => {
    const t0 = Date.now();
    expect(await sb.stop('h3')).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3900);
    expect((await sb.ls())[2]!.running).toBe(false);
    expect(readFileSync(sb.host('h3').logFile, 'utf8')).toContain('ignoring SIGTERM');
    await sb.start('h3');

    const t1 = Date.now();
    expect(await sb.stop('h3', { kill: true })).toBe(true);
    // Far below the 4 s grace even on a loaded machine: the kill path does not wait for it.
    expect(Date.now() - t1).toBeLessThan(3900);
    await sb.start('h3');
    expect(await connect(sb, 'h1', 'h3')).toBe(ns('h3'));
  });

  it('cut makes h3 unreachable from h1 and h1 from h3; heal restores both', async () => {
    expect(await sb.cut('h3')).toBe(true);
    expect(await sb.cut('h3')).toBe(false);
    expect((await sb.ls()).map((h) => h.cut)).toEqual([false, false, true]);
    expect(await connect(sb, 'h1', 'h3', 1000)).toBe('unreachable: timeout');
    expect(await connect(sb, 'h3', 'h1', 1000)).toBe('unreachable: timeout');
    expect(await connect(sb, 'h1', 'h2')).toBe(ns('h2')); // the others still talk
    // The host itself still sees eth0 up, as behind a failed switch.
    expect(ipJson<Link[]>('-n', ns('h3'), 'link', 'show', 'eth0')[0]!.operstate).toBe('UP');

    expect(await sb.heal('h3')).toBe(true);
    expect(await sb.heal('h3')).toBe(false);
    expect((await sb.ls()).map((h) => h.cut)).toEqual([false, false, false]);
    expect(await connect(sb, 'h1', 'h3')).toBe(ns('h3'));
    expect(await connect(sb, 'h3', 'h1')).toBe(ns('h1'));
  });

  it('up on an existing sandbox fails, telling the user to run sandbox down first, and leaves it running', async () => {
    const again = new Sandbox(options);
    await expect(again.up({ managers: 1, workers: 0 })).rejects.toThrow(
      new RegExp(
        `a sandbox already exists \\(${root}/state.json; namespaces ${ns('h1')}.*\\): run \`TSSWARM_SANDBOX_DIR=${root} tsswarm sandbox down\` first`,
      ),
    );
    expect((await sb.ls()).every((h) => h.running)).toBe(true);
    expect(await connect(sb, 'h1', 'h3')).toBe(ns('h3'));
  });

  it('down stops every daemon, deletes every namespace and removes the directory; a second down finds nothing', async () => {
    const pids = sb.state().hosts.map((h) => h.daemon.pid!);
    const r = await sb.down();
    expect(r.existed).toBe(true);
    expect([...r.namespaces].sort()).toEqual([ns('h1'), ns('h2'), ns('h3'), ns('ul')]);
    expect(r.processes).toBeGreaterThanOrEqual(3);
    expect(leftovers(names)).toEqual({ namespaces: [], processes: [], rootExists: false });
    expect(pids.filter(alive)).toEqual([]);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(prefix);
    expect(await sb.down()).toEqual({ existed: false, namespaces: [], processes: 0 });
    expect(await sb.ls()).toEqual([]);
  });
});
