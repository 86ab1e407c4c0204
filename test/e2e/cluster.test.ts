// End to end on a sandbox of real daemons in network namespaces: 3 managers,
// 2 workers, and one host left out of the cluster to try bad tokens with.
// Faults are real: SIGKILL of a daemon, a host cut off the underlay.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_PORT, defaultDaemonCommand, Sandbox } from '../../deploy/sandbox/index.js';
import { canRunSandbox, until as poll, tsswarmOn } from './helpers.js';

const root = `/tmp/tss-e2e-${process.pid}`;
const canRun = canRunSandbox;

const sb = new Sandbox({
  root,
  prefix: `tss-e${process.pid % 1000}-`,
  // A 1 s heartbeat (grace 3 s) keeps the DOWN checks short; everything else is default.
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    return { ...d, argv: [...d.argv, '--heartbeat-period', '1000'] };
  },
});

const { ts, ok } = tsswarmOn(sb, 30_000);

interface NodeJson {
  ID: string;
  Version: number;
  Spec: { Name: string; Role: string; Availability: string; Labels: Record<string, string> };
  Status: { State: string };
  ManagerStatus?: { Leader: boolean; Reachability: string };
}

async function nodes(host: string): Promise<NodeJson[]> {
  return JSON.parse(await ok(host, 'node', 'ls', '--format', 'json')) as NodeJson[];
}

const until = poll;
const byName = (ns: NodeJson[], name: string): NodeJson | undefined => ns.find((n) => n.Spec.Name === name);
const acked: string[] = [];

async function label(host: string, target: string, key: string): Promise<void> {
  await ok(host, 'node', 'update', '--label-add', `${key}=1`, target);
  acked.push(key);
}

describe.skipIf(!canRun)('cluster on a sandbox: 3 managers, 2 workers', () => {
  let names: string[] = [];
  let mgrToken = '';
  let workerToken = '';

  beforeAll(async () => {
    await sb.up({
      managers: 3,
      workers: 3,
      bootstrap: async (s) => {
        const hs = s.hosts();
        await ok(hs[0]!.name, 'init', '--advertise-addr', hs[0]!.addr);
        mgrToken = (await ok(hs[0]!.name, 'join-token', '-q', 'manager')).trim();
        workerToken = (await ok(hs[0]!.name, 'join-token', '-q', 'worker')).trim();
        // The last worker stays out: it is where bad tokens are tried.
        for (const h of hs.slice(1, -1))
          await ok(h.name, 'join', '--token', h.role === 'manager' ? mgrToken : workerToken, `${hs[0]!.addr}:${DAEMON_PORT}`);
      },
    });
    names = sb.hosts().map((h) => h.name);
  }, 120_000);

  afterAll(async () => {
    await sb.down();
  }, 60_000);

  it('every joined node becomes READY and the three managers have one leader', async () => {
    let seen: NodeJson[] = [];
    const ns = await until(
      '5 nodes READY with 3 managers',
      async () => {
        const ns = await nodes(names[0]!);
        seen = ns;
        return ns.length === 5 && ns.every((n) => n.Status.State === 'ready') && ns.filter((n) => n.ManagerStatus).length === 3 && ns;
      },
      90_000,
    ).catch((e: Error) => {
      throw new Error(
        `${e.message}; last seen: ${JSON.stringify(seen.map((n) => [n.Spec.Name, n.Status.State, n.ManagerStatus?.Reachability ?? '-']))}`,
      );
    });
    expect(ns.filter((n) => n.ManagerStatus?.Leader)).toHaveLength(1);
    expect(
      ns
        .filter((n) => n.Spec.Role === 'worker')
        .map((n) => n.Spec.Name)
        .sort(),
    ).toEqual([names[3], names[4]]);
  }, 120_000);

  it('a worker cannot list nodes', async () => {
    const r = await ts(names[3]!, 'node', 'ls');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/not a swarm manager/);
  }, 30_000);

  it('a wrong token and a token pinning another CA are refused, and the node stays out', async () => {
    const outsider = names[5]!;
    const addr = `${sb.host(names[0]!).addr}:${DAEMON_PORT}`;
    const wrongSecret = workerToken.replace(/-([0-9a-z]+)$/, (_m, s: string) => `-${s.split('').reverse().join('')}`);
    const r1 = await ts(outsider, 'join', '--token', wrongSecret, addr);
    expect(r1.code).toBe(1);
    expect(r1.err).toMatch(/invalid join token/i);
    const parts = workerToken.split('-');
    parts[2] = parts[2]!.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    const r2 = await ts(outsider, 'join', '--token', parts.join('-'), addr);
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/CA/);
    expect((await nodes(names[0]!)).length).toBe(5);
  }, 60_000);

  it('drain, promote and demote work', async () => {
    await ok(names[1]!, 'node', 'update', '--availability', 'drain', names[4]!);
    expect(byName(await nodes(names[2]!), names[4]!)!.Spec.Availability).toBe('drain');
    await ok(names[0]!, 'node', 'promote', names[3]!);
    await until(
      `${names[3]} a reachable manager`,
      async () => byName(await nodes(names[0]!), names[3]!)?.ManagerStatus?.Reachability === 'reachable',
    );
    await until(`${names[3]} can list nodes`, async () => (await ts(names[3]!, 'node', 'ls')).code === 0);
    await ok(names[0]!, 'node', 'demote', names[3]!);
    await until(`${names[3]} a worker again`, async () => {
      const n = byName(await nodes(names[0]!), names[3]!);
      return n && !n.ManagerStatus && (await ts(names[3]!, 'node', 'ls')).code === 1;
    });
    await label(names[0]!, names[3]!, 'after-demote');
  }, 90_000);

  it('a stopped worker goes DOWN and comes back READY', async () => {
    await sb.stop(names[4]!);
    await until(`${names[4]} DOWN`, async () => byName(await nodes(names[0]!), names[4]!)?.Status.State === 'down');
    await sb.start(names[4]!);
    await until(`${names[4]} READY`, async () => byName(await nodes(names[0]!), names[4]!)?.Status.State === 'ready');
  }, 90_000);

  it('a manager cut off from the others cannot write; the majority can', async () => {
    const ns = await nodes(names[0]!);
    const leader = ns.find((n) => n.ManagerStatus?.Leader)!.Spec.Name;
    const follower = names.slice(0, 3).find((n) => n !== leader)!;
    const other = names.slice(0, 3).find((n) => n !== leader && n !== follower)!;
    await sb.cut(follower);
    try {
      const t0 = Date.now();
      const r = await ts(follower, 'node', 'update', '--label-add', 'cut=1', names[3]!);
      expect(r.code).toBe(1);
      expect(Date.now() - t0).toBeLessThan(25_000);
      await label(other, names[3]!, 'during-cut');
    } finally {
      await sb.heal(follower);
    }
    await until(`${follower} back`, async () => (await ts(follower, 'node', 'ls')).code === 0);
  }, 90_000);

  it('after SIGKILL of the leader a new one is elected, the CLI keeps working through another manager, and the old leader rejoins', async () => {
    const ns = await nodes(names[0]!);
    const leader = ns.find((n) => n.ManagerStatus?.Leader)!.Spec.Name;
    const survivor = names.slice(0, 3).find((n) => n !== leader)!;
    await sb.stop(leader, { kill: true });
    await until('a write through a surviving manager', async () => {
      await label(survivor, names[3]!, 'after-failover');
      return true;
    });
    const after = await nodes(survivor);
    const newLeader = after.find((n) => n.ManagerStatus?.Leader)!.Spec.Name;
    expect(newLeader).not.toBe(leader);
    await until(`${leader} DOWN`, async () => byName(await nodes(survivor), leader)?.Status.State === 'down');
    await sb.start(leader);
    await until(`${leader} back, READY and reachable`, async () => {
      const n = byName(await nodes(survivor), leader);
      return n?.Status.State === 'ready' && n.ManagerStatus?.Reachability === 'reachable';
    });
    // It rejoined with its state: it serves the labels written while it was down.
    await until('the restarted manager has every write', async () => {
      const labels = byName(await nodes(leader), names[3]!)!.Spec.Labels;
      return acked.every((k) => k in labels);
    });
  }, 120_000);

  it('nothing acknowledged was lost, as seen from every manager', async () => {
    for (const m of names.slice(0, 3)) {
      const labels = byName(await nodes(m), names[3]!)!.Spec.Labels;
      for (const k of acked) expect(labels, `${m} has ${k}`).toHaveProperty(k);
    }
  }, 60_000);

  it("node rm revokes: the removed node's certificate is refused from then on", async () => {
    const victim = names[4]!;
    await sb.stop(victim);
    await until(`${victim} DOWN`, async () => byName(await nodes(names[0]!), victim)?.Status.State === 'down');
    const refused = await ts(names[0]!, 'node', 'rm', names[3]!);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/not down/);
    await ok(names[0]!, 'node', 'rm', victim);
    await sb.start(victim);
    // Its daemon comes back with its old certificate: every session is refused, and it stays out.
    await until(`${victim} refused for its revoked certificate`, async () => {
      const r = await sb.execCapture(victim, ['sh', '-c', `grep -c revoked ${sb.host(victim).logFile} || true`]);
      return Number(r.stdout.trim()) > 0;
    });
    expect(byName(await nodes(names[0]!), victim)).toBeUndefined();
  }, 90_000);

  it('with two of three managers gone, writes are refused saying quorum is lost; init --force-new-cluster on the survivor recovers with its state', async () => {
    const [keep, ...gone] = names.slice(0, 3) as [string, string, string];
    for (const g of gone) await sb.stop(g, { kill: true });
    const r = await until('a write refused for lost quorum', async () => {
      const r = await ts(keep, 'node', 'update', '--label-add', 'noquorum=1', names[3]!);
      return r.code !== 0 && /quorum/i.test(r.err) && r;
    });
    expect(r.err).toMatch(/force-new-cluster/);
    // Still readable, marked as possibly stale.
    const read = await ts(keep, 'node', 'ls');
    expect(read.code).toBe(0);
    await ok(keep, 'init', '--force-new-cluster');
    await until('a write on the recovered cluster', async () => {
      await label(keep, names[3]!, 'after-force');
      return true;
    });
    const labels = byName(await nodes(keep), names[3]!)!.Spec.Labels;
    for (const k of acked) expect(labels).toHaveProperty(k);
    const info = JSON.parse(await ok(keep, 'info', '--format', 'json')) as { managers: unknown[] };
    expect(info.managers).toHaveLength(1);
  }, 120_000);
});
