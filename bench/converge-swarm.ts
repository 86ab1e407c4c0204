// The Swarm side of the converge benchmark: a 3-node Docker Swarm 20.10
// (Debian docker.io), one dockerd per network namespace tssdk-h1..3, 1 manager
// and 2 workers, all three available for tasks (bench/swarm-peer.ts, the
// set-up the failover benchmark uses too). The busybox image tsswarm runs
// (deploy/images/busybox.ts, docker-save format) is loaded into every dockerd.
// For each R: `docker service create --detach --replicas R ... sleep 3600`,
// timed from the start of that call until the manager's Engine API lists R
// tasks of the service in state running (polled every POLL_MS, one GET
// /tasks over the unix socket, no CLI process spawned); then `service rm` and
// wait until no container of it is left on any node. The cluster is always
// torn down, pass or fail.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildBusyboxImage } from '../deploy/images/busybox.js';
import type { Report } from './report.js';
import { dk, dockerGet, firstLine, parseNodes, swarmDown, swarmPreflight, swarmUp, teardownOnSignal } from './swarm-peer.js';

const IMAGE = 'tsswarm/busybox:latest';
const POLL_MS = 100;
const CONVERGE_CAP_S = 300;
const REMOVE_CAP_S = 300;
const NODES = 3;

const log = (l: string): void => void process.stderr.write(`converge: swarm: ${l}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const q = (filters: Record<string, string[]>): string => encodeURIComponent(JSON.stringify(filters));

interface EngineTask {
  NodeID?: string;
  DesiredState?: string;
  Status?: { State?: string; Err?: string };
}

/** Tasks of `name` whose desired state is running, as the manager (h1) lists them. */
const runningTasks = (name: string): Promise<EngineTask[]> =>
  dockerGet<EngineTask[]>(1, `/tasks?filters=${q({ service: [name], 'desired-state': ['running'] })}`);

/** Containers of service `name` (any state) over all nodes. */
async function containersOf(name: string): Promise<number> {
  let n = 0;
  for (let k = 1; k <= NODES; k++)
    n += (await dockerGet<unknown[]>(k, `/containers/json?all=1&filters=${q({ label: [`com.docker.swarm.service.name=${name}`] })}`))
      .length;
  return n;
}

export async function swarmConverge(report: Report, rs: number[]): Promise<void> {
  const missing = (why: string): void => {
    for (const r of rs) if (!report.figures.some((f) => f.system === 'swarm' && f.case === `r${r}`)) report.error('swarm', `r${r}`, why);
  };
  const why = swarmPreflight(log);
  if (why) return missing(why);
  const work = `/tmp/tss-bench-conv-swarm-${process.pid}`;
  const untrap = teardownOnSignal(log);
  const started = performance.now();
  try {
    mkdirSync(work, { recursive: true });
    const tar = join(work, 'busybox.tar');
    await buildBusyboxImage({ outPath: tar, format: 'docker', tag: IMAGE });

    log(`starting ${NODES} dockerds (1 manager, ${NODES - 1} workers) in namespaces tssdk-h1..${NODES}`);
    swarmUp(NODES, 1);
    for (let k = 1; k <= NODES; k++) {
      const r = await dk(k, ['load', '-i', tar], 120);
      if (r.code !== 0) throw new Error(`docker load on tssdk-h${k} failed: ${firstLine(r, 120)}`);
      const id = await dk(k, ['image', 'inspect', '--format', '{{.Id}}', IMAGE], 10);
      if (id.code !== 0) throw new Error(`${IMAGE} is not on tssdk-h${k} after docker load: ${firstLine(id, 10)}`);
      log(`tssdk-h${k}: loaded ${IMAGE} (${id.out.trim().slice(0, 19)})`);
    }
    // All three nodes Ready and Active (the manager takes tasks too).
    const readyBy = performance.now() + 60_000;
    const hostOf = new Map<string, string>();
    for (;;) {
      const r = await dk(1, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.Availability}}'], 10);
      const nodes = parseNodes(r.out);
      if (nodes.length === NODES && nodes.every((n) => n.rest === 'Ready Active')) {
        for (const n of await dockerGet<{ ID: string; Description?: { Hostname?: string } }[]>(1, '/nodes'))
          hostOf.set(n.ID, (n.Description?.Hostname ?? '?').replace(/^tssdk-/, ''));
        break;
      }
      if (performance.now() > readyBy)
        throw new Error(`the ${NODES} nodes were not Ready/Active within 60 s: ${r.out.trim().replace(/\n/g, ' | ') || firstLine(r, 10)}`);
      await sleep(200);
    }
    log(`cluster ready after ${((performance.now() - started) / 1000).toFixed(1)} s`);

    for (const r of rs) {
      const name = `tssbench-r${r}`;
      const t0 = performance.now();
      const c = await dk(
        1,
        ['service', 'create', '--detach', '--no-resolve-image', '--name', name, '--replicas', String(r), IMAGE, 'sleep', '3600'],
        60,
      );
      if (c.code !== 0) {
        report.error('swarm', `r${r}`, `service create failed: ${firstLine(c, 60)}`);
        continue;
      }
      let tasks: EngineTask[] = [];
      let running = 0;
      let lastErr = '';
      for (;;) {
        try {
          tasks = await runningTasks(name);
          running = tasks.filter((t) => t.Status?.State === 'running').length;
        } catch (e) {
          lastErr = (e as Error).message;
        }
        if (running >= r || performance.now() - t0 > CONVERGE_CAP_S * 1000) break;
        await sleep(POLL_MS);
      }
      const s = (performance.now() - t0) / 1000;
      const spread = new Map<string, number>();
      for (const t of tasks)
        if (t.Status?.State === 'running')
          spread.set(hostOf.get(t.NodeID ?? '') ?? '?', (spread.get(hostOf.get(t.NodeID ?? '') ?? '?') ?? 0) + 1);
      const spreadText = [...spread]
        .sort()
        .map(([h, n]) => `${h}:${n}`)
        .join(' ');
      if (running >= r) {
        report.add('swarm', `r${r}`, 'seconds', s, 's');
        log(`r${r}: ${s.toFixed(2)} s (${spreadText})`);
      } else {
        const errs = [...new Set(tasks.map((t) => t.Status?.Err).filter(Boolean))].slice(0, 2).join('; ');
        report.error(
          'swarm',
          `r${r}`,
          `${running}/${r} running after ${CONVERGE_CAP_S} s${errs ? ` (${errs})` : ''}${lastErr ? ` (last poll: ${lastErr})` : ''}`,
        );
      }

      // Remove, and wait until its containers are gone before the next case
      // (busybox sleep as PID 1 ignores SIGTERM: each takes the 10 s stop grace).
      const t1 = performance.now();
      const rm = await dk(1, ['service', 'rm', name], 60);
      if (rm.code !== 0) throw new Error(`service rm ${name} failed: ${firstLine(rm, 60)}`);
      for (;;) {
        const left = await containersOf(name).catch(() => -1);
        if (left === 0) break;
        if (performance.now() - t1 > REMOVE_CAP_S * 1000)
          throw new Error(`${left} containers of ${name} still there ${REMOVE_CAP_S} s after service rm`);
        await sleep(250);
      }
      log(`r${r}: removed in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    }
  } catch (e) {
    log(`failed: ${(e as Error).message}`);
    missing((e as Error).message.split('\n')[0]!.slice(0, 300));
  } finally {
    log('tearing down');
    swarmDown(log);
    untrap();
    rmSync(work, { recursive: true, force: true });
    log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
}
