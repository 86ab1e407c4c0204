// Services end to end on a sandbox of real daemons (3 managers, 2 workers)
// running real containers through runc and conmon from the busybox image the
// sandbox preloads on every host. One sixth host stays out until the global
// service test joins it. Heartbeats are 3 s (DOWN after 9 s): short, yet longer
// than a daemon restart, so the restart test sees live restore, not a DOWN node.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_PORT, defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';

import { TaskState } from '../../proto/gen/objects.js';
import { canRunSandbox, joinByCli, until, tsswarmOn } from './helpers.js';
import { have } from '../have.js';

const root = `/tmp/tss-e2es-${process.pid}`;
const haveRuntime = have('conmon') && have('runc');
const canRun = canRunSandbox && haveRuntime;
if (!canRun) console.log('services e2e skipped: needs root, nsenter, runc and conmon');

const sb = new Sandbox({
  root,
  prefix: `tss-s${process.pid % 1000}-`,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    // 5 s beats give a 15 s grace before DOWN: a restart (SIGTERM stop, tsx start, TLS session) on a
    // loaded 2-core CI box must fit inside it, or the restart tests see their tasks replaced.
    return { ...d, argv: [...d.argv, '--heartbeat-period', '5000'] };
  },
});

const { ts, ok } = tsswarmOn(sb, 60_000);

interface TaskJson {
  meta: { id: string };
  nodeId: string;
  slot: number;
  desiredState: number;
  serviceVersion: number;
  status: { state: number; err: string; message: string; pid: number; containerId: string; exitCode: number };
  spec: { container: { image: string; args: string[] } };
}

let M = ''; // a manager host that runs the CLI
const nodeIdOf = new Map<string, string>(); // host name → node id

async function tasks(service: string): Promise<TaskJson[]> {
  return JSON.parse(await ok(M, 'service', 'ps', '--format', 'json', service)) as TaskJson[];
}

const isRunning = (t: TaskJson): boolean => t.desiredState === TaskState.RUNNING && t.status.state === TaskState.RUNNING;

async function running(service: string): Promise<TaskJson[]> {
  return (await tasks(service)).filter(isRunning);
}

async function waitRunning(service: string, n: number, ms = 60_000): Promise<TaskJson[]> {
  return until(
    `${n} running tasks of ${service}`,
    async () => {
      const r = await running(service);
      const wanting = (await tasks(service)).filter((t) => t.desiredState === TaskState.RUNNING);
      return r.length === n && wanting.length === n ? r : false;
    },
    ms,
    300,
  );
}

const hostOf = (nodeId: string): string => [...nodeIdOf].find(([, id]) => id === nodeId)?.[0] ?? '?';

/** Containers runc knows on a host (its own runc root under the host's state dir); only running ones with `running`. */
function containersOn(host: string, running = false): string[] {
  const h = sb.hosts().find((x) => x.name === host)!;
  try {
    const out = execFileSync('runc', ['--root', `${h.stateDir}/runtime/runc`, 'list', '--format', 'json'], { encoding: 'utf8' });
    const list = (JSON.parse(out || '[]') ?? []) as { id: string; status: string }[];
    return list.filter((c) => !running || c.status === 'running').map((c) => c.id);
  } catch {
    return [];
  }
}

describe.skipIf(!canRun)('services on a sandbox: 3 managers, 2 workers', () => {
  let hosts: string[] = [];

  beforeAll(async () => {
    await sb.up({
      managers: 3,
      workers: 3,
      preloadImages: true,
      // The last worker stays out: the global service test joins it.
      bootstrap: (s) => joinByCli(s, 1),
    });
    hosts = sb.hosts().map((h) => h.name);
    M = hosts[0]!;
    await until(
      '5 READY nodes',
      async () => {
        const ns = JSON.parse(await ok(M, 'node', 'ls', '--format', 'json')) as {
          ID: string;
          Description?: { Hostname: string };
          Spec: { Name: string };
          Status: { State: string };
        }[];
        for (const n of ns) nodeIdOf.set(n.Spec.Name, n.ID);
        return ns.length === 5 && ns.every((n) => n.Status.State === 'ready');
      },
      60_000,
    );
  });

  afterAll(async () => {
    await sb.down();
    const left = execFileSync('sh', ['-c', `mount | grep -c ${root} || true`], { encoding: 'utf8' }).trim();
    expect(left).toBe('0');
  });

  it('service create spreads 3 replicas over 3 hosts and shows progress until converged', async () => {
    const r = await ts(
      M,
      'service',
      'create',
      '--name',
      'web',
      '--replicas',
      '3',
      '--restart-delay',
      '1s',
      SANDBOX_IMAGE,
      'sh',
      '-c',
      'echo hello from $(hostname); exec sleep 3600',
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/overall progress: 3 out of 3 tasks/);
    expect(r.out).toMatch(/verify: Service converged/);
    const t = await waitRunning('web', 3);
    expect(new Set(t.map((x) => x.nodeId)).size).toBe(3);
    expect(t.map((x) => x.slot).sort()).toEqual([1, 2, 3]);
    const ls = await ok(M, 'service', 'ls');
    expect(ls).toMatch(/web\s+replicated\s+3\/3/);
  });

  it('service logs shows what the containers wrote', async () => {
    const out = await until('hello lines in the logs', async () => {
      const o = await ok(M, 'service', 'logs', 'web');
      return (o.match(/hello from/g) ?? []).length >= 3 ? o : false;
    });
    expect(out).toMatch(/^web\.\d\.[a-z0-9]+@\S+\s+\| hello from /m);
  });

  it('service exec runs a command in a replica and returns its exit code', async () => {
    const r = await ts(M, 'service', 'exec', '--slot', '2', 'web', '--', 'sh', '-c', 'echo in-$(hostname); echo oops >&2; exit 3');
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/^in-/);
    expect(r.err).toMatch(/oops/);
  });

  it('scales up over more hosts and down by the highest slots', async () => {
    await ok(M, 'service', 'scale', 'web=5');
    const up = await waitRunning('web', 5);
    expect(new Set(up.map((x) => x.nodeId)).size).toBe(5);
    await ok(M, 'service', 'scale', 'web=2');
    const down = await waitRunning('web', 2);
    expect(down.map((x) => x.slot).sort()).toEqual([1, 2]);
  });

  it('a killed container is replaced in the same slot per the restart policy', async () => {
    const [victim] = await waitRunning('web', 2);
    const host = hostOf(victim!.nodeId);
    expect(victim!.status.pid).toBeGreaterThan(0);
    process.kill(victim!.status.pid, 'SIGKILL');
    const after = await until('a new task in the victim slot', async () => {
      const all = await tasks('web');
      const old = all.find((t) => t.meta.id === victim!.meta.id);
      const fresh = all.find((t) => t.slot === victim!.slot && t.meta.id !== victim!.meta.id && isRunning(t));
      return old && old.status.state === TaskState.FAILED && fresh ? { old, fresh } : false;
    });
    expect(after.old.status.err).toMatch(/non-zero exit \(137\)/);
    expect(host).not.toBe('?');
  });

  it('drain moves tasks off a node, and active takes new ones again', async () => {
    const before = await waitRunning('web', 2);
    const host = hostOf(before[0]!.nodeId);
    await ok(M, 'node', 'update', '--availability', 'drain', host);
    const after = await until('no running task on the drained node', async () => {
      const r = await waitRunning('web', 2);
      return r.every((t) => t.nodeId !== nodeIdOf.get(host)) ? r : false;
    });
    expect(after).toHaveLength(2);
    await until('the drained node runs no web container', async () => containersOn(host, true).every((c) => !c.includes('web.')));
    await ok(M, 'node', 'update', '--availability', 'active', host);
  });

  it('a rolling update whose new version fails rolls back', async () => {
    const r = await ts(
      M,
      'service',
      'update',
      '--image',
      'tsswarm/missing:1',
      '--update-failure-action',
      'rollback',
      '--update-monitor',
      '2s',
      'web',
    );
    expect(r.code).not.toBe(0);
    expect(r.out + r.err).toMatch(/roll(ed)? back/i);
    const svc = JSON.parse(await ok(M, 'service', 'inspect', 'web')) as
      | { UpdateStatus?: { State: string } }[]
      | { updateStatus?: { state: number } }[];
    expect(JSON.stringify(svc)).toMatch(/rollback_completed|ROLLBACK_COMPLETED|"state":6/i);
    const t = await waitRunning('web', 2);
    expect(t.every((x) => x.spec.container.image === SANDBOX_IMAGE)).toBe(true);
  });

  it('the agent restarts without killing its containers and re-adopts them', async () => {
    // A worker's agent: a manager restarting also loses its Raft seat for a while, and is marked DOWN sooner.
    await ok(M, 'service', 'scale', 'web=5');
    const t = await waitRunning('web', 5);
    const onWorker = t.find((x) => sb.hosts().find((h) => h.name === hostOf(x.nodeId))?.role === 'worker')!;
    expect(onWorker).toBeDefined();
    const host = hostOf(onWorker.nodeId);
    const pid = onWorker.status.pid;
    expect(await sb.stop(host)).toBe(true);
    expect(() => process.kill(pid, 0)).not.toThrow();
    await sb.start(host);
    await new Promise((r) => setTimeout(r, 2000));
    const again = await waitRunning('web', 5);
    const same = again.find((x) => x.meta.id === onWorker.meta.id);
    if (!same) {
      const mine = (await tasks('web')).find((x) => x.meta.id === onWorker.meta.id);
      console.log(
        `restart test: task ${onWorker.meta.id} on ${host} is now ${JSON.stringify({ desired: mine?.desiredState, status: mine?.status })}`,
      );
      console.log(await ok(M, 'node', 'ls'));
    }
    expect(same?.status.pid).toBe(pid);
    expect(() => process.kill(pid, 0)).not.toThrow();
    await ok(M, 'service', 'scale', 'web=2');
  });

  it('a stopped worker goes DOWN and its tasks run elsewhere', { timeout: 180_000 }, async () => {
    await ok(M, 'service', 'scale', 'web=5');
    const t = await waitRunning('web', 5);
    const workerHost = hosts
      .filter((h) => sb.hosts().find((x) => x.name === h)!.role === 'worker' && nodeIdOf.has(h))
      .find((h) => t.some((x) => x.nodeId === nodeIdOf.get(h)))!;
    expect(workerHost).toBeDefined();
    await sb.stop(workerHost, { kill: true });
    try {
      const moved = await until(
        '5 running tasks, none on the stopped worker',
        async () => {
          const r = await running('web');
          return r.length === 5 && r.every((x) => x.nodeId !== nodeIdOf.get(workerHost)) ? r : false;
        },
        60_000,
      );
      expect(moved).toHaveLength(5);
    } finally {
      await sb.start(workerHost);
    }
    // Back again, the worker stops the containers whose tasks moved away.
    await until(
      'the returned worker runs only what it is assigned',
      async () => {
        const mine = (await running('web')).filter((x) => x.nodeId === nodeIdOf.get(workerHost)).length;
        return containersOn(workerHost, true).filter((c) => c.includes('web.')).length <= mine || false;
      },
      60_000,
    );
  });

  it('a global service runs one task per node and follows a node that joins', { timeout: 180_000 }, async () => {
    await ok(M, 'service', 'create', '--detach', '--mode', 'global', '--name', 'agentd', SANDBOX_IMAGE, 'sleep', '3600');
    await until('one agentd task per node', async () => (await running('agentd')).length === 5, 60_000).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await ok(M, 'service', 'ps', 'agentd')}\n${await ok(M, 'node', 'ls')}`);
    });
    const last = hosts[hosts.length - 1]!;
    const wt = (await ok(M, 'join-token', '-q', 'worker')).trim();
    const first = sb.hosts()[0]!;
    await ok(last, 'join', '--token', wt, `${first.addr}:${DAEMON_PORT}`);
    const six = await until(
      'agentd on the new node too',
      async () => {
        const r = await running('agentd');
        return r.length === 6 ? r : false;
      },
      60_000,
    );
    expect(new Set(six.map((x) => x.nodeId)).size).toBe(6);
  });

  it('health checks run in the container: a passing one marks the task healthy, a failing one fails and replaces it', {
    timeout: 120_000,
  }, async () => {
    await ok(
      M,
      'service',
      'create',
      '--detach',
      '--name',
      'fine',
      '--health-cmd',
      'test -f /tmp/ok',
      '--health-interval',
      '500ms',
      SANDBOX_IMAGE,
      'sh',
      '-c',
      'touch /tmp/ok; exec sleep 3600',
    );
    await ok(
      M,
      'service',
      'create',
      '--detach',
      '--name',
      'sick',
      '--health-cmd',
      'false',
      '--health-interval',
      '500ms',
      '--health-retries',
      '2',
      '--restart-delay',
      '1s',
      SANDBOX_IMAGE,
      'sleep',
      '3600',
    );
    const healthy = await until(
      'fine is healthy',
      async () => (await running('fine')).find((t) => (t.status as { health?: string }).health === 'healthy'),
      60_000,
    );
    expect(healthy).toBeDefined();
    const failed = await until(
      'a sick task failed as unhealthy',
      async () => (await tasks('sick')).find((t) => t.status.state === TaskState.FAILED),
      60_000,
    );
    expect(failed.status.err).toMatch(/unhealthy/);
    await until(
      'sick replaced in its slot',
      async () => (await tasks('sick')).some((t) => t.meta.id !== failed.meta.id && t.slot === failed.slot),
      60_000,
    );
    await ok(M, 'service', 'rm', 'fine', 'sick');
  });

  it('nothing is left on any host after service rm', async () => {
    await ok(M, 'service', 'rm', 'web', 'agentd');
    await until('no containers on any host', async () => hosts.every((h) => containersOn(h).length === 0), 60_000);
    const mounts = execFileSync('sh', ['-c', `grep ' ${root}' /proc/mounts | grep -c overlay || true`], { encoding: 'utf8' }).trim();
    expect(mounts).toBe('0');
    await until('no tasks left', async () => (await tasks('web').catch(() => [])).length === 0);
  });
});
