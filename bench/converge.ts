// `npm run bench -- converge [--counts 10,30,60,100] [--systems tsswarm,swarm,runc-loop]`: seconds from `service
// create --replicas R` until R tasks are RUNNING, on three hosts, in this order:
// - tsswarm: a sandbox of 1 manager and 2 workers (network namespaces, real
//   daemons, runc + conmon containers from the preloaded busybox image); the
//   request goes to the manager's Control API and the tasks are polled there;
// - swarm: Docker Swarm 20.10, one dockerd per namespace, 1 manager and 2
//   workers, the same busybox image loaded into every dockerd
//   (bench/converge-swarm.ts);
// - runc-loop: R plain `runc run -d` in a row, sharing one read-only rootfs
//   unpacked from the same image (bench/converge-runc.ts).
// All three run `sleep 3600`. Figures: case rR, metric seconds. A side that
// cannot run prints BENCH.md's error line for each case; the others still run.
import { readFileSync } from 'node:fs';
import { closeClients, controlApi, setHost } from '../cli/client.js';
import { bootstrapCluster } from '../deploy/sandbox/bootstrap.js';
import { Sandbox, SANDBOX_IMAGE } from '../deploy/sandbox/index.js';
import { ContainerSpec, NodeState, ServiceSpec, TaskSpec, TaskState } from '../proto/gen/objects.js';
import { runcLoop } from './converge-runc.js';
import { swarmConverge } from './converge-swarm.js';
import { Report } from './report.js';

const log = (l: string): void => void process.stderr.write(`converge: ${l}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const POLL_MS = 50;

/** Share of CPU time idle over the next `ms` (all CPUs, from /proc/stat). */
async function idlePercent(ms: number): Promise<number> {
  const read = (): [number, number] => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    return [f.reduce((a, b) => a + b, 0), f[3]! + f[4]!];
  };
  const [t0, i0] = read();
  await sleep(ms);
  const [t1, i1] = read();
  return t1 > t0 ? (100 * (i1 - i0)) / (t1 - t0) : 100;
}

function counts(): number[] {
  const i = process.argv.indexOf('--counts');
  const raw = i >= 0 ? (process.argv[i + 1] ?? '') : '10,30,60,100';
  return raw
    .split(',')
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

// ------------------------------------------------------------------ tsswarm

async function tsswarmConverge(report: Report, rs: number[]): Promise<void> {
  const root = `/tmp/tss-bench-conv-${process.pid}`;
  const sb = new Sandbox({ root, prefix: `tss-bc${process.pid % 1000}-` });
  try {
    log('tsswarm: sandbox of 1 manager and 2 workers');
    await sb.up({ managers: 1, workers: 2, bootstrap: (s) => bootstrapCluster(s) });
    const mgr = sb.hosts()[0]!;
    setHost(`unix://${mgr.socketPath}`);
    let last = '';
    for (let i = 0; ; i++) {
      const r = await controlApi('listNodes').catch((e: Error) => ((last = e.message), null));
      if (r) last = r.nodes.map((n) => `${n.spec?.name}:${n.status?.state}`).join(' ');
      if (r && r.nodes.length === 3 && r.nodes.every((n) => n.status?.state === NodeState.READY)) break;
      if (i > 600) throw new Error(`the sandbox nodes did not all become READY within 60 s (${last})`);
      await sleep(100);
    }
    for (const r of rs) {
      const name = `tssbench-r${r}`;
      const t0 = performance.now();
      await controlApi('createService', {
        spec: ServiceSpec.create({
          name,
          task: TaskSpec.create({ container: ContainerSpec.create({ image: SANDBOX_IMAGE, args: ['sleep', '3600'] }) }),
          replicated: { replicas: r },
        }),
      });
      for (;;) {
        const l = await controlApi('listTasks', { services: [name], nodes: [], desiredRunning: true });
        if (process.env.TSS_TRACE) {
          const h = new Map<number, number>();
          for (const t of l.tasks) h.set(t.status?.state ?? 0, (h.get(t.status?.state ?? 0) ?? 0) + 1);
          log(`${((performance.now() - t0) / 1000).toFixed(2)} s: ${[...h].map(([k, v]) => `${TaskState[k]}=${v}`).join(' ')}`);
        }
        if (l.tasks.filter((t) => t.status?.state === TaskState.RUNNING).length >= r) break;
        if (performance.now() - t0 > 300_000) throw new Error(`${r} replicas not running after 300 s`);
        await sleep(POLL_MS);
      }
      const s = (performance.now() - t0) / 1000;
      report.add('tsswarm', `r${r}`, 'seconds', s, 's');
      log(`tsswarm r${r}: ${s.toFixed(2)} s`);
      await controlApi('removeService', { ref: name });
      for (let i = 0; ; i++) {
        const l = await controlApi('listTasks', { services: [], nodes: [], desiredRunning: false });
        if (l.tasks.length === 0) break;
        if (i > 1200) throw new Error('tasks of the removed service did not go within 60 s');
        await sleep(POLL_MS);
      }
    }
  } finally {
    closeClients();
    await sb.down().catch((e: Error) => log(`sandbox down failed: ${e.message}`));
  }
}

/** `--systems tsswarm,runc-loop` runs a subset (default: all three). */
function systems(): Set<string> {
  const i = process.argv.indexOf('--systems');
  return new Set((i >= 0 ? (process.argv[i + 1] ?? '') : 'tsswarm,swarm,runc-loop').split(','));
}

export async function main(): Promise<void> {
  const report = new Report('converge');
  const rs = counts();
  const only = systems();
  // Each side should have the machine to itself: the CPU idle share over the
  // second before it starts is logged, so a run that shared the machine shows.
  const load = async (side: string): Promise<void> =>
    log(`${side}: CPU ${(await idlePercent(1000)).toFixed(0)}% idle in the second before the start`);
  if (only.has('tsswarm')) {
    await load('tsswarm');
    try {
      await tsswarmConverge(report, rs);
    } catch (e) {
      for (const r of rs)
        if (!report.figures.some((f) => f.system === 'tsswarm' && f.case === `r${r}`))
          report.error('tsswarm', `r${r}`, (e as Error).message.split('\n')[0]!);
    }
  }
  if (only.has('swarm')) {
    await load('swarm');
    await swarmConverge(report, rs);
  }
  if (only.has('runc-loop')) {
    await load('runc-loop');
    await runcLoop(report, rs);
  }
  report.table();
  const fig = (sys: string, r: number): number | undefined =>
    report.figures.find((f) => f.system === sys && f.case === `r${r}` && f.metric === 'seconds')?.value;
  process.stderr.write('\n   R   tsswarm     swarm  runc-loop  swarm/tsswarm  tsswarm/runc-loop\n');
  for (const r of rs) {
    const [t, s, l] = [fig('tsswarm', r), fig('swarm', r), fig('runc-loop', r)];
    const f = (x?: number): string => (x === undefined ? '-' : x.toFixed(2));
    process.stderr.write(
      `${String(r).padStart(4)}  ${f(t).padStart(8)}  ${f(s).padStart(8)}  ${f(l).padStart(9)}  ${t && s ? (s / t).toFixed(1).padStart(13) : '-'.padStart(13)}  ${t && l ? (t / l).toFixed(1).padStart(17) : '-'.padStart(17)}\n`,
    );
  }
}
