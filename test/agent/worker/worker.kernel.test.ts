// The worker applying the managers' orders to real runc containers: a full set
// replaces what the node runs, removals and shutdowns stop containers, and a
// restarted agent (a new Worker on the same runtime root) leaves nothing
// running that the managers no longer want. Runtime roots are /tmp/tss- dirs.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage } from '../../../deploy/images/busybox.js';
import { Runtime } from '../../../agent/runtime/index.js';
import { Worker } from '../../../agent/worker/worker.js';
import { containerIdOf } from '../../../agent/worker/task.js';
import type { AgentMessage } from '../../../proto/gen/control.js';
import { type ContainerSpec, Task, TaskState } from '../../../proto/gen/objects.js';
import { containerToDocker } from '../../../spec/docker/local.js';
import { have, isRoot } from '../../have.js';
import { until as waitUntil } from '../../lib/wait.js';

const log = pino({ level: 'silent' });
const canRun = isRoot && have('runc') && have('conmon') && existsSync('/bin/busybox');
if (!canRun) console.log('worker tests on runc skipped: need root, runc, conmon and busybox-static');
const NODE = 'tssnode1';
const until = (what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<unknown> =>
  waitUntil(what, cond, { timeoutMs: ms, everyMs: 50 });

let seq = 0;
/** A task of this node running `sleep`; a short stop grace, since sleep as PID 1 ignores SIGTERM. */
function task(desired: TaskState, observed: TaskState = TaskState.ASSIGNED, id = `tsswt${process.pid}x${++seq}`): Task {
  return Task.create({
    meta: { id, version: 1, createdAt: 0, updatedAt: 0 },
    serviceId: 'svc1',
    serviceName: 'tss-wt',
    slot: seq,
    nodeId: NODE,
    desiredState: desired,
    status: { state: observed, timestamp: Date.now(), message: '' } as Task['status'],
    spec: { container: { image: 'tsswarm/busybox:latest', command: ['sleep', '3600'], stopGracePeriodMs: 300 } } as Task['spec'],
  });
}

describe.skipIf(!canRun)('the worker on runc', () => {
  let dir = '';
  let rt: Runtime;
  const workers: Worker[] = [];
  const sent: AgentMessage[] = [];

  beforeAll(async () => {
    dir = mkdtempSync('/tmp/tss-worker-');
    await buildBusyboxImage({ outPath: join(dir, 'oci.tar'), format: 'oci', tag: 'tsswarm/busybox:latest' });
    rt = new Runtime({ root: join(dir, 'root'), logger: log });
    await rt.init();
    await rt.images.load(join(dir, 'oci.tar'));
  }, 120_000);

  afterEach(async () => {
    for (const w of workers.splice(0)) await w.close();
    for (const c of await rt.list()) await rt.remove(c.id);
    sent.length = 0;
  });

  afterAll(async () => {
    rt?.close();
    if (dir) {
      const mounts = readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .filter((l) => l.includes(dir));
      for (const m of mounts) execFileSync('umount', ['-l', m.split(' ')[1]!]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const worker = (): Worker => {
    const w = new Worker({ runtime: rt, nodeId: NODE, logger: log, send: (m) => (sent.push(m), true) });
    w.start();
    workers.push(w);
    return w;
  };
  const status = async (t: Task): Promise<string> => (await rt.inspect(containerIdOf(t)))?.status ?? 'gone';
  const reported = (t: Task): TaskState[] =>
    sent
      .flatMap((m) => m.taskStatus?.updates ?? [])
      .filter((u) => u.taskId === t.meta.id)
      .map((u) => u.status!.state);

  /** A worker that runs `t`, then is closed as a daemon stops (its containers stay: live restore). */
  async function runThenRestart(t: Task): Promise<void> {
    const w = worker();
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await until(`${t.meta.id} running`, async () => (await status(t)) === 'running');
    await w.close();
    workers.splice(workers.indexOf(w), 1);
  }

  it("a full set replaces the node's set: a running task left out of it is stopped and its container removed", async () => {
    const w = worker();
    const a = task(TaskState.RUNNING);
    const b = task(TaskState.RUNNING);
    w.assignments({ full: true, tasks: [a, b], removedTaskIds: [] });
    await until('both running', async () => (await status(a)) === 'running' && (await status(b)) === 'running');
    w.assignments({ full: true, tasks: [b], removedTaskIds: [] });
    await until(`${a.meta.id} removed`, async () => (await status(a)) === 'gone');
    expect(await status(b)).toBe('running');
    expect(w.runner(a.meta.id)).toBeUndefined();
  });

  it('an incremental desired SHUTDOWN stops the container and keeps it (stopped) until the task is removed', async () => {
    const w = worker();
    const a = task(TaskState.RUNNING);
    w.assignments({ full: true, tasks: [a], removedTaskIds: [] });
    await until('running', async () => (await status(a)) === 'running');
    w.assignments({ full: false, tasks: [{ ...a, desiredState: TaskState.SHUTDOWN }], removedTaskIds: [] });
    await until('stopped', async () => (await status(a)) === 'stopped');
    await until('SHUTDOWN reported', () => reported(a).includes(TaskState.SHUTDOWN));
    w.assignments({ full: false, tasks: [], removedTaskIds: [a.meta.id] });
    await until('removed', async () => (await status(a)) === 'gone');
  });

  it('a restarted agent removes the containers of tasks missing from its first full set (deleted while it was away)', async () => {
    const a = task(TaskState.RUNNING);
    await runThenRestart(a);
    expect(await status(a)).toBe('running');
    const w = worker();
    w.assignments({ full: true, tasks: [], removedTaskIds: [] });
    await until('removed', async () => (await status(a)) === 'gone');
  });

  it('a restarted agent stops the container of a task the managers shut down while it was away', async () => {
    const a = task(TaskState.RUNNING);
    await runThenRestart(a);
    const w = worker();
    w.assignments({
      full: true,
      tasks: [{ ...a, desiredState: TaskState.SHUTDOWN, status: { ...a.status, state: TaskState.RUNNING } }],
      removedTaskIds: [],
    });
    await until('stopped', async () => (await status(a)) === 'stopped');
    await until('SHUTDOWN reported', () => reported(a).includes(TaskState.SHUTDOWN));
  });

  it("a restarted agent stops a running container whose task the managers' copy says has ended", async () => {
    for (const ended of [TaskState.SHUTDOWN, TaskState.FAILED]) {
      const a = task(TaskState.RUNNING);
      await runThenRestart(a);
      const w = worker();
      // The previous agent reported the task ended (a stop that failed is still reported) yet its container runs.
      w.assignments({
        full: true,
        tasks: [{ ...a, desiredState: TaskState.SHUTDOWN, status: { ...a.status, state: ended } }],
        removedTaskIds: [],
      });
      await until(`the container of a task reported ${TaskState[ended]} stopped`, async () => (await status(a)) === 'stopped');
      await w.close();
      workers.splice(workers.indexOf(w), 1);
    }
  });

  /** Output of a command run in the task's container. */
  const inside = async (t: Task, cmd: string[]): Promise<string> => {
    const h = rt.exec(containerIdOf(t), { cmd });
    let out = '';
    h.stdout.on('data', (b: Buffer) => (out += b.toString()));
    await h.exit;
    return out;
  };
  const withContainer = (t: Task, c: Partial<ContainerSpec>): Task => ({
    ...t,
    spec: { ...t.spec!, container: { ...t.spec!.container!, ...c } as ContainerSpec },
  });

  it('--init gives the container tini as PID 1 and the command as its child; a spec with init off runs the command as PID 1', async () => {
    const w = worker();
    const on = withContainer(task(TaskState.RUNNING), { init: true });
    const off = withContainer(task(TaskState.RUNNING), { init: false });
    w.assignments({ full: true, tasks: [on, off], removedTaskIds: [] });
    await until('both running', async () => (await status(on)) === 'running' && (await status(off)) === 'running');
    expect((await inside(on, ['cat', '/proc/1/cmdline'])).split('\0').slice(0, 3)).toEqual(['/sbin/docker-init', '--', 'sleep']);
    // The command's parent is the init.
    expect(
      await inside(on, ['sh', '-c', 'for p in /proc/[0-9]*; do [ "$(head -c 5 $p/cmdline)" = sleep ] && cut -d" " -f4 $p/stat; done']),
    ).toBe('1\n');
    expect((await inside(off, ['cat', '/proc/1/cmdline'])).split('\0')[0]).toBe('sleep');
  });

  it('--container-label values are on the container, where GET /containers/json reads them, beside the Swarm labels', async () => {
    const w = worker();
    const t = withContainer(task(TaskState.RUNNING), { labels: { 'com.example.team': 'tss-a', tier: 'web' } });
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await until('running', async () => (await status(t)) === 'running');
    const c = (await rt.list()).find((x) => x.id === containerIdOf(t))!;
    expect(c.labels).toMatchObject({ 'com.example.team': 'tss-a', tier: 'web', 'tsswarm.task.id': t.meta.id });
    expect(containerToDocker(c).Labels).toMatchObject({
      'com.example.team': 'tss-a',
      tier: 'web',
      'com.docker.swarm.task.id': t.meta.id,
      'com.docker.swarm.service.name': 'tss-wt',
    });
    // and in the container's OCI config, as annotations
    const cfg = JSON.parse(readFileSync(join(dir, 'root', 'containers', containerIdOf(t), 'bundle', 'config.json'), 'utf8'));
    expect(cfg.annotations).toMatchObject({ 'com.example.team': 'tss-a', tier: 'web' });
  });

  it('a container with a health check keeps its task STARTING until its check passes in the container, then RUNNING and healthy', async () => {
    const w = worker();
    const t = withContainer(task(TaskState.RUNNING), {
      healthcheck: {
        test: ['CMD-SHELL', 'test -f /tmp/ready || { echo no >> /tmp/probes; exit 1; }'],
        intervalMs: 100,
        timeoutMs: 5000,
        retries: 1_000_000,
        startPeriodMs: 0,
        startIntervalMs: 0,
      },
    });
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await until('running', async () => (await status(t)) === 'running');
    await until('three failed probes', async () => Number((await inside(t, ['sh', '-c', 'cat /tmp/probes | wc -l'])).trim()) >= 3);
    await w.runner(t.meta.id)!.settled();
    expect(w.runner(t.meta.id)!.state).toBe(TaskState.STARTING);
    expect(reported(t)).not.toContain(TaskState.RUNNING);
    await inside(t, ['touch', '/tmp/ready']);
    await until('RUNNING reported', () => reported(t).includes(TaskState.RUNNING));
    const run = sent
      .flatMap((m) => m.taskStatus?.updates ?? [])
      .find((u) => u.taskId === t.meta.id && u.status?.state === TaskState.RUNNING);
    expect(run!.status).toMatchObject({ health: 'healthy' });
    expect(run!.status!.runningAt).toBeGreaterThan(0);
  });

  it("--health-interval without --health-cmd runs the image's check at the given interval", async () => {
    await buildBusyboxImage({
      outPath: join(dir, 'health.tar'),
      format: 'oci',
      tag: 'tss/health:1',
      // The image's own interval (an hour) would run no probe during the test.
      config: { Healthcheck: { Test: ['CMD-SHELL', 'echo probe >> /tmp/probes'], Interval: 3600e9, Timeout: 10e9, Retries: 3 } },
    });
    await rt.images.load(join(dir, 'health.tar'));
    const w = worker();
    const t = withContainer(task(TaskState.RUNNING), {
      image: 'tss/health:1',
      healthcheck: { test: [], intervalMs: 100, timeoutMs: 0, retries: 0, startPeriodMs: 0, startIntervalMs: 0 },
    });
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await until('running', async () => (await status(t)) === 'running');
    await until(
      "the image's probe run three times",
      async () => Number((await inside(t, ['sh', '-c', 'cat /tmp/probes 2>/dev/null | wc -l'])).trim()) >= 3,
    );
    await until('healthy reported', () =>
      sent.flatMap((m) => m.taskStatus?.updates ?? []).some((u) => u.taskId === t.meta.id && u.status?.health === 'healthy'),
    );
  });
});
