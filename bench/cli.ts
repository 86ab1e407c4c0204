// `npm run bench -- cli` and `npm run bench -- memory`, on the same two
// clusters, one after the other: a tsswarm sandbox of 3 managers and 2 workers
// and a Docker Swarm 20.10 peer of 3 managers and 2 workers (one dockerd per
// namespace), each running a 5-replica busybox service.
// - cli: wall time of whole command runs (process start to exit) from this
//   machine's root namespace over the manager's unix socket: `tsswarm version`,
//   `tsswarm node ls`, `tsswarm service ls` against `docker --version` (the
//   client alone: `docker version` asks the daemon), `docker node ls`,
//   `docker service ls`; then the same docker CLI (`info`, `node ls`, `service
//   ls | ps | inspect`) against each: dockerd, and tsswarm's Engine API on the
//   manager's docker socket. Median and p90 of RUNS runs after WARM warm-up runs.
// - memory: RSS of every daemon once the service runs and the cluster has been
//   idle for IDLE_S seconds: tsswarm's daemon per role against dockerd's.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { bootstrapCluster } from '../deploy/sandbox/bootstrap.js';
import { Sandbox, SANDBOX_IMAGE, tsswarmBin } from '../deploy/sandbox/index.js';
import { buildBusyboxImage } from '../deploy/images/busybox.js';
import { TaskState } from '../proto/gen/objects.js';
import { sleep, until } from '../test/lib/wait.js';
import { percentile, Report } from './report.js';
import {
  dk,
  dockerSock,
  firstLine,
  nodeDockerdPid,
  parseNodes,
  swarmDown,
  swarmPreflight,
  swarmUp,
  teardownOnSignal,
} from './swarm-peer.js';

// This machine's environment sets NODE_EXTRA_CA_CERTS (for its package proxy), and Node 20 reads
// and parses that whole CA bundle at every process start: about 45 ms and 2 MB more for any Node
// program. A host's shell and the systemd unit (deploy/) do not set it, so the daemons and the CLI
// run here without it; `node ls` is measured once more with it, to show what it costs.
const EXTRA_CA = process.env.NODE_EXTRA_CA_CERTS;
delete process.env.NODE_EXTRA_CA_CERTS;

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const WARM = 3;
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 30);
const REPLICAS = 5;
const log = (l: string): void => void process.stderr.write(`cli: ${l}\n`);

/** Wall time of one run of argv, in ms; throws with its stderr when it fails. */
function timed(argv: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000, env });
  const ms = performance.now() - t0;
  if (r.status !== 0)
    throw new Error(`${argv.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout).trim().split('\n')[0]}`);
  return ms;
}

function measure(report: Report, system: string, c: string, argv: string[], env?: NodeJS.ProcessEnv): void {
  for (let i = 0; i < WARM; i++) timed(argv, env);
  const ms = Array.from({ length: RUNS }, () => timed(argv, env)).sort((a, b) => a - b);
  report.add(system, c, 'p50_ms', percentile(ms, 0.5), 'ms');
  report.add(system, c, 'p90_ms', percentile(ms, 0.9), 'ms');
  log(`${system} ${c}: median ${percentile(ms, 0.5).toFixed(0)} ms, p90 ${percentile(ms, 0.9).toFixed(0)} ms over ${RUNS} runs`);
}

/** The unmodified docker CLI's commands, against dockerd (swarm) or tsswarm's Engine API (tsswarm). */
function dockerCases(report: Report, system: string, docker: (...args: string[]) => string[]): void {
  measure(report, system, 'docker_info', docker('info'));
  measure(report, system, 'docker_node_ls', docker('node', 'ls'));
  measure(report, system, 'docker_service_ls', docker('service', 'ls'));
  measure(report, system, 'docker_service_ps', docker('service', 'ps', 'tssbench'));
  measure(report, system, 'docker_service_inspect', docker('service', 'inspect', 'tssbench'));
}

/** Resident memory of a process, MB (VmRSS). */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** Polls `f` every 250 ms for up to `ms` (test/lib/wait.ts's until). */
const waitFor = <T>(what: string, ms: number, f: () => T | Promise<T>): Promise<NonNullable<T>> =>
  until(what, f, { timeoutMs: ms, everyMs: 250 });

interface Which {
  cli: boolean;
  memory: boolean;
}

async function tsswarmSide(report: Report, which: Which): Promise<void> {
  const sb = new Sandbox({ root: `/tmp/tss-bench-cli-${process.pid}`, prefix: `tss-bl${process.pid % 1000}-` });
  try {
    log('tsswarm: sandbox of 3 managers and 2 workers');
    await sb.up({ managers: 3, workers: 2, preloadImages: true, bootstrap: (s) => bootstrapCluster(s) });
    const mgr = sb.hosts()[0]!;
    const ts = (...args: string[]): string[] => [process.execPath, tsswarmBin, '-H', `unix://${mgr.socketPath}`, ...args];
    const json = (args: string[]): unknown => JSON.parse(spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' }).stdout || 'null');
    await waitFor('5 nodes ready', 90_000, () => {
      const ns = json(ts('node', 'ls', '--format', 'json')) as Array<{ Status: { State: string } }> | null;
      return ns?.length === 5 && ns.every((n) => n.Status.State === 'ready');
    });
    timed(ts('service', 'create', '--detach', '--name', 'tssbench', '--replicas', String(REPLICAS), SANDBOX_IMAGE, 'sleep', '3600'));
    await waitFor(`${REPLICAS} tasks running`, 120_000, () => {
      const t = json(ts('service', 'ps', '--format', 'json', 'tssbench')) as Array<{
        desiredState: number;
        status: { state: number };
      }> | null;
      return t?.filter((x) => x.status.state === TaskState.RUNNING && x.desiredState === TaskState.RUNNING).length === REPLICAS;
    });
    if (which.cli) {
      measure(report, 'tsswarm', 'version', ts('version'));
      measure(report, 'tsswarm', 'node_ls', ts('node', 'ls'));
      measure(report, 'tsswarm', 'service_ls', ts('service', 'ls'));
      if (EXTRA_CA) measure(report, 'tsswarm', 'node_ls_extra_ca', ts('node', 'ls'), { ...process.env, NODE_EXTRA_CA_CERTS: EXTRA_CA });
      // The same docker CLI against each: tsswarm's Engine API on the manager's docker socket.
      const docker = (...args: string[]): string[] => ['docker', '-H', `unix://${mgr.dockerSocketPath}`, ...args];
      dockerCases(report, 'tsswarm', docker);
    }
    if (which.memory) {
      log(`tsswarm: idle ${IDLE_S} s before reading RSS`);
      await sleep(IDLE_S * 1000);
      for (const role of ['manager', 'worker'] as const) {
        const rss = (await sb.ls())
          .filter((h) => h.role === role && h.pid)
          .map((h) => rssMb(h.pid!))
          .sort((a, b) => a - b);
        report.add('tsswarm', role, 'rss_mb_max', rss.at(-1)!, 'MB');
        report.add('tsswarm', role, 'rss_mb_median', percentile(rss, 0.5), 'MB');
        log(`tsswarm ${role}s: RSS ${rss.map((x) => x.toFixed(0)).join(', ')} MB`);
      }
    }
  } catch (e) {
    log(`tsswarm failed: ${(e as Error).message}`);
    report.error('tsswarm', 'all', (e as Error).message.split('\n')[0]!.slice(0, 300));
  } finally {
    await sb.down().catch((e: unknown) => log(`sandbox down failed: ${(e as Error).message}`));
  }
}

async function swarmSide(report: Report, which: Which): Promise<void> {
  const why = swarmPreflight(log);
  if (why) {
    report.error('swarm', 'all', why);
    return;
  }
  const untrap = teardownOnSignal(log);
  const work = `/tmp/tss-bench-cli-swarm-${process.pid}`;
  try {
    mkdirSync(work, { recursive: true });
    const tar = join(work, 'busybox.tar');
    const IMAGE = 'bb:latest';
    await buildBusyboxImage({ outPath: tar, format: 'docker', tag: IMAGE });
    log('swarm: 3 managers and 2 workers (tssdk-h1..5)');
    swarmUp(5, 3);
    for (let k = 1; k <= 5; k++) {
      const r = await dk(k, ['load', '-i', tar], 120);
      if (r.code !== 0) throw new Error(`docker load on tssdk-h${k} failed: ${firstLine(r, 120)}`);
    }
    await waitFor('5 swarm nodes ready', 90_000, async () => {
      const r = await dk(1, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.Availability}}'], 10);
      const nodes = parseNodes(r.out);
      return nodes.length === 5 && nodes.every((n) => n.rest === 'Ready Active');
    });
    const c = await dk(
      1,
      ['service', 'create', '--detach', '--no-resolve-image', '--name', 'tssbench', '--replicas', String(REPLICAS), IMAGE, 'sleep', '3600'],
      60,
    );
    if (c.code !== 0) throw new Error(`service create failed: ${firstLine(c, 60)}`);
    await waitFor(`${REPLICAS} swarm tasks running`, 120_000, async () => {
      const r = await dk(1, ['service', 'ps', '--filter', 'desired-state=running', '--format', '{{.CurrentState}}', 'tssbench'], 10);
      return r.out.split('\n').filter((l) => l.startsWith('Running')).length === REPLICAS;
    });
    const docker = (...args: string[]): string[] => ['docker', '-H', `unix://${dockerSock(1)}`, ...args];
    if (which.cli) {
      measure(report, 'swarm', 'version', ['docker', '--version']);
      measure(report, 'swarm', 'node_ls', docker('node', 'ls'));
      measure(report, 'swarm', 'service_ls', docker('service', 'ls'));
      dockerCases(report, 'swarm', docker);
    }
    if (which.memory) {
      log(`swarm: idle ${IDLE_S} s before reading RSS`);
      await sleep(IDLE_S * 1000);
      for (const [role, ks] of [
        ['manager', [1, 2, 3]],
        ['worker', [4, 5]],
      ] as const) {
        const rss = ks.map((k) => rssMb(nodeDockerdPid(k))).sort((a, b) => a - b);
        report.add('swarm', role, 'rss_mb_max', rss.at(-1)!, 'MB');
        report.add('swarm', role, 'rss_mb_median', percentile(rss, 0.5), 'MB');
        log(`dockerd ${role}s: RSS ${rss.map((x) => x.toFixed(0)).join(', ')} MB`);
      }
    }
  } catch (e) {
    log(`swarm failed: ${(e as Error).message}`);
    report.error('swarm', 'all', (e as Error).message.split('\n')[0]!.slice(0, 300));
  } finally {
    swarmDown(log);
    untrap();
    rmSync(work, { recursive: true, force: true });
  }
}

async function run(name: 'cli' | 'memory'): Promise<void> {
  const report = new Report(name);
  const which = { cli: name === 'cli', memory: name === 'memory' };
  await tsswarmSide(report, which);
  await swarmSide(report, which);
  report.table();
}

export const main = (): Promise<void> => run('cli');
export const memoryMain = (): Promise<void> => run('memory');
