// Five managers and a worker on a sandbox, with 30 s node certificates: every
// node renews its certificate before it expires and stays READY, and the
// cluster survives the loss of its leader.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_PORT, defaultDaemonCommand, Sandbox } from '../../deploy/sandbox/index.js';
import { canRunSandbox, until as poll, tsswarmOn } from './helpers.js';

const canRun = canRunSandbox;

const sb = new Sandbox({
  root: `/tmp/tss-e2e5-${process.pid}`,
  prefix: `tss-f${process.pid % 1000}-`,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    return { ...d, argv: [...d.argv, '--heartbeat-period', '1000'] };
  },
});

const { ok } = tsswarmOn(sb, 30_000);

interface NodeJson {
  Spec: { Name: string };
  Status: { State: string };
  ManagerStatus?: { Leader: boolean; Reachability: string };
  Certificate?: { Serial: string; Expiry: string };
}

const nodes = async (host: string): Promise<NodeJson[]> => JSON.parse(await ok(host, 'node', 'ls', '--format', 'json')) as NodeJson[];

const until = <T>(what: string, f: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> => poll(what, f, ms, 500);

describe.skipIf(!canRun)('five managers with short-lived certificates', () => {
  let names: string[] = [];
  beforeAll(async () => {
    await sb.up({
      managers: 5,
      workers: 1,
      bootstrap: async (s) => {
        const [first, ...rest] = s.hosts();
        await ok(first!.name, 'init', '--advertise-addr', first!.addr, '--cert-expiry', '30s');
        const mt = (await ok(first!.name, 'join-token', '-q', 'manager')).trim();
        const wt = (await ok(first!.name, 'join-token', '-q', 'worker')).trim();
        for (const h of rest) await ok(h.name, 'join', '--token', h.role === 'manager' ? mt : wt, `${first!.addr}:${DAEMON_PORT}`);
      },
    });
    names = sb.hosts().map((h) => h.name);
  }, 120_000);
  afterAll(() => sb.down(), 60_000);

  it('all six nodes are READY and the five managers reachable', async () => {
    await until('6 READY, 5 reachable managers', async () => {
      const ns = await nodes(names[0]!);
      return (
        ns.length === 6 &&
        ns.every((n) => n.Status.State === 'ready') &&
        ns.filter((n) => n.ManagerStatus?.Reachability === 'reachable').length === 5
      );
    });
  }, 90_000);

  it('every node renews its certificate before it expires and stays READY', async () => {
    const before = new Map((await nodes(names[0]!)).map((n) => [n.Spec.Name, n.Certificate?.Serial]));
    await until(
      'every certificate renewed',
      async () => {
        const ns = await nodes(names[0]!);
        return ns.every((n) => n.Certificate?.Serial && n.Certificate.Serial !== before.get(n.Spec.Name));
      },
      60_000,
    );
    const ns = await nodes(names[0]!);
    expect(ns.every((n) => n.Status.State === 'ready')).toBe(true);
    for (const n of ns) expect(Date.parse(n.Certificate!.Expiry)).toBeGreaterThan(Date.now());
  }, 90_000);

  it('losing the leader leaves four managers that elect a new one and take writes', async () => {
    const leader = (await nodes(names[0]!)).find((n) => n.ManagerStatus?.Leader)!.Spec.Name;
    await sb.stop(leader, { kill: true });
    const survivor = names.slice(0, 5).find((n) => n !== leader)!;
    await until('a write through a survivor', async () => {
      await ok(survivor, 'node', 'update', '--label-add', 'five=1', names[5]!);
      return true;
    });
    const after = await nodes(survivor);
    expect(after.find((n) => n.ManagerStatus?.Leader)!.Spec.Name).not.toBe(leader);
  }, 90_000);
});
