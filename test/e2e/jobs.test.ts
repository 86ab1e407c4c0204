// Jobs end to end on real daemons (1 manager, 1 worker): a replicated job of
// 4 completions, 2 at a time, created with tsswarm's CLI, which waits for it
// to complete; `service ls` shows it as docker does; the tasks' run times
// show that never more than 2 ran at once; `service update --force` runs it
// again (a new iteration); a global job runs once per node; and the real
// docker CLI creates a replicated job and waits for it with its own job
// progress display.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { type Task, TaskState } from '../../proto/gen/objects.js';
import { have } from '../have.js';
import { canRunSandbox, dockerOn, joinByCli, tsswarmOn, until } from './helpers.js';

const haveDocker = have('docker');

const sb = new Sandbox({ root: `/tmp/tss-e2ejobs-${process.pid}`, prefix: `tss-j${process.pid % 1000}-` });
const { ts, ok } = tsswarmOn(sb, 120_000);
const { docker } = dockerOn(sb, 120_000);

/** Every task of a service, every field (`service ps --format json`). */
async function tasksOf(host: string, service: string): Promise<Task[]> {
  return JSON.parse(await ok(host, 'service', 'ps', '--format', 'json', service)) as Task[];
}

/** The REPLICAS cell of a service in `service ls` (tsswarm's or docker's table). */
function replicasCell(table: string, name: string): string | undefined {
  const line = table.split('\n').find((l) => l.split(/\s{2,}/)[1] === name);
  return line?.split(/\s{2,}/)[3];
}

/** The most tasks that ran at the same time, from their start and end times. */
function mostAtOnce(tasks: Task[]): number {
  const spans = tasks.map((t) => [Number(t.status.startedAt), Number(t.status.timestamp)] as const);
  return Math.max(...spans.map(([s]) => spans.filter(([a, b]) => a <= s && s < b).length));
}

describe.skipIf(!canRunSandbox)('jobs', () => {
  let m = '';
  beforeAll(async () => {
    await sb.up({ managers: 1, workers: 1, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    m = sb.hosts()[0]!.name;
  }, 180_000);
  afterAll(async () => {
    await sb.down();
  }, 60_000);

  it('a replicated job of 4 completions, 2 at a time, completes; ls shows 4/4 completed; --force runs it again', async () => {
    const r = await ts(
      m,
      'service',
      'create',
      '--name',
      'batch',
      '--mode',
      'replicated-job',
      '--replicas',
      '4',
      '--max-concurrent',
      '2',
      SANDBOX_IMAGE,
      'sh',
      '-c',
      'sleep 2',
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/job progress: 4 out of 4 complete/);
    expect(r.out).toMatch(/job complete/);
    expect(replicasCell(await ok(m, 'service', 'ls'), 'batch')).toBe('0/0 (4/4 completed)');
    const first = await tasksOf(m, 'batch');
    expect(first).toHaveLength(4);
    expect(first.every((t) => t.status.state === TaskState.COMPLETE && t.jobIteration === 1)).toBe(true);
    expect(first.map((t) => Number(t.slot)).sort()).toEqual([0, 1, 2, 3]);
    expect(mostAtOnce(first)).toBe(2);
    // Both nodes took part: the scheduler spread the job's tasks.
    expect(new Set(first.map((t) => t.nodeId)).size).toBe(2);

    const again = await ts(m, 'service', 'update', '--force', 'batch');
    expect(again.code, again.err).toBe(0);
    const all = await tasksOf(m, 'batch');
    const second = all.filter((t) => t.jobIteration === 2);
    expect(second).toHaveLength(4);
    expect(second.every((t) => t.status.state === TaskState.COMPLETE)).toBe(true);
    expect(all.filter((t) => t.jobIteration === 1 && t.status.state === TaskState.COMPLETE)).toHaveLength(4);
    expect(replicasCell(await ok(m, 'service', 'ls'), 'batch')).toBe('0/0 (4/4 completed)');
    await ok(m, 'service', 'rm', 'batch');
  }, 180_000);

  it('a global job runs once on every node and is not run again', async () => {
    const r = await ts(m, 'service', 'create', '--name', 'setup', '--mode', 'global-job', SANDBOX_IMAGE, 'true');
    expect(r.code, r.err).toBe(0);
    const tasks = await until('both nodes completed the job', async () => {
      const t = await tasksOf(m, 'setup');
      return t.length === 2 && t.every((x) => x.status.state === TaskState.COMPLETE) && t;
    });
    expect(new Set(tasks.map((t) => t.nodeId)).size).toBe(2);
    expect(replicasCell(await ok(m, 'service', 'ls'), 'setup')).toBe('0/0 (2/2 completed)');
    await ok(m, 'service', 'rm', 'setup');
  }, 120_000);

  it.skipIf(!haveDocker)(
    'the docker CLI creates a replicated job and waits for it to complete',
    async () => {
      const r = await docker(
        m,
        'service',
        'create',
        '--name',
        'djob',
        '--mode',
        'replicated-job',
        '--replicas',
        '3',
        '--max-concurrent',
        '2',
        '--no-resolve-image',
        SANDBOX_IMAGE,
        'true',
      );
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/job complete/);
      expect(replicasCell(await ok(m, 'service', 'ls'), 'djob')).toBe('0/0 (3/3 completed)');
      const d = await docker(m, 'service', 'ls', '--filter', 'name=djob');
      expect(d.code, d.err).toBe(0);
      expect(d.out).toMatch(/replicated job\s+0\/0 \(3\/3 completed\)/);
      const ps = await docker(m, 'service', 'ps', '--format', '{{.DesiredState}} {{.CurrentState}}', 'djob');
      expect(
        ps.out
          .trim()
          .split('\n')
          .map((l) => l.split(' ')[0]),
      ).toEqual(['Complete', 'Complete', 'Complete']);
      await ok(m, 'service', 'rm', 'djob');
    },
    120_000,
  );
});
