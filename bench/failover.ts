// The failover benchmark: on a 3-manager cluster, SIGKILL the leader's daemon
// and measure (1) seconds until a cluster write succeeds again through a
// surviving manager and (2) seconds until `node ls` there shows the old
// leader DOWN. tsswarm runs in a sandbox (network-namespace hosts); Docker
// Swarm 20.10 runs the same way (bench/failover-swarm.ts), in the same run.
// Both are polled every 100–200 ms with each attempt bounded, because Swarm's
// commands hang while there is no leader.
import { controlApi, closeClients, setHost } from '../cli/client.js';
import { bootstrapCluster } from '../deploy/sandbox/bootstrap.js';
import { Sandbox } from '../deploy/sandbox/index.js';
import { NodeState } from '../proto/gen/objects.js';
import { daemonApi } from '../cli/client.js';
import { Report } from './report.js';

const CAP_S = 120;

async function tsswarmFailover(report: Report): Promise<void> {
  const root = `/tmp/tss-bench-failover-${process.pid}`;
  const sb = new Sandbox({ root, prefix: 'tss-bf-', progress: (l) => process.stderr.write(`tsswarm: ${l}\n`) });
  try {
    await sb.up({ managers: 3, workers: 0, bootstrap: (s) => bootstrapCluster(s, (l) => process.stderr.write(`tsswarm: ${l}\n`)) });
    const hosts = sb.hosts();
    const on = (h: (typeof hosts)[number]): void => setHost(`unix://${h.socketPath}`);
    // Wait until all three are voters and READY.
    on(hosts[0]!);
    const t0wait = Date.now();
    for (;;) {
      const info = await daemonApi('info');
      const nodes = (await controlApi('listNodes')).nodes;
      if (info.managers.filter((m) => m.voter).length === 3 && nodes.every((n) => n.status?.state === NodeState.READY)) break;
      if (Date.now() - t0wait > 60_000) throw new Error('the 3 managers did not become ready within 60 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    const info = await daemonApi('info');
    const leaderHost = hosts.find((h) => info.leaderAddr.startsWith(`${h.addr}:`))!;
    const survivor = hosts.find((h) => h !== leaderHost)!;
    const leaderNode = info.leaderNodeId;
    process.stderr.write(`tsswarm: killing the leader's daemon on ${leaderHost.name}\n`);
    await sb.stop(leaderHost.name, { kill: true });
    const t0 = performance.now();
    on(survivor);
    let write: number | undefined;
    let down: number | undefined;
    let i = 0;
    while ((write === undefined || down === undefined) && performance.now() - t0 < CAP_S * 1000) {
      if (write === undefined) {
        try {
          const node = (await controlApi('getNode', { ref: survivor.name }, 1000)).node;
          await controlApi(
            'updateNode',
            {
              ref: node.meta.id,
              version: node.meta.version,
              labelAdd: { tssbench: String(i++) },
              labelRm: [],
              availability: '',
              role: '',
            },
            1000,
          );
          write = (performance.now() - t0) / 1000;
          process.stderr.write(`tsswarm: a write succeeded after ${write.toFixed(2)} s\n`);
        } catch {
          // no leader yet
        }
      }
      if (down === undefined) {
        try {
          const nodes = (await controlApi('listNodes', {}, 1000)).nodes;
          if (nodes.find((n) => n.meta.id === leaderNode)?.status?.state === NodeState.DOWN) {
            down = (performance.now() - t0) / 1000;
            process.stderr.write(`tsswarm: the old leader shows DOWN after ${down.toFixed(2)} s\n`);
          }
        } catch {
          // not answering yet
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (write === undefined || down === undefined)
      throw new Error(`not recovered within ${CAP_S} s (write ${write ?? 'never'}, down ${down ?? 'never'})`);
    report.add('tsswarm', 'm3', 'write_recovery_s', Number(write.toFixed(2)), 's');
    report.add('tsswarm', 'm3', 'leader_down_seen_s', Number(down.toFixed(2)), 's');
  } catch (e) {
    report.error('tsswarm', 'm3', (e as Error).message);
  } finally {
    closeClients();
    await sb.down();
  }
}

export async function main(): Promise<void> {
  const report = new Report('failover');
  process.stderr.write("failover: 3 managers, SIGKILL of the leader's daemon; default settings\n");
  await tsswarmFailover(report);
  if (process.env.BENCH_SYSTEMS?.split(',').includes('swarm') ?? true) {
    const { swarmFailover } = await import('./failover-swarm.js');
    await swarmFailover(report);
  }
  report.table();
  const get = (s: string, m: string): number | undefined => report.figures.find((f) => f.system === s && f.metric === m)?.value;
  for (const m of ['write_recovery_s', 'leader_down_seen_s']) {
    const t = get('tsswarm', m);
    const s = get('swarm', m);
    if (t !== undefined && s !== undefined)
      process.stderr.write(`target: ${m} ≤ swarm/5: ${t} s vs ${s} s (limit ${(s / 5).toFixed(2)}) ${t <= s / 5 ? 'MET' : 'NOT MET'}\n`);
  }
}
