// Issue 18's effects seen from inside real containers (1 manager, 1 worker
// started with `--label tss.disk=ssd`): an `engine.labels.*` constraint places
// the task on the labelled node, which `node inspect` and Docker's
// Description.Engine.Labels show; hostname and env templates are expanded per
// task; an anonymous volume (`--mount type=volume,target=/x`) is one per task,
// filled from the image, listed by `docker volume ls` on its node with its
// task's label while the task lives, and removed with it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import type { Task } from '../../proto/gen/objects.js';
import { have } from '../have.js';
import { canRunSandbox, dockerOn, joinByCli, tsswarmOn, until } from './helpers.js';

const haveDocker = have('docker');
if (!haveDocker) console.warn('workload-effects e2e: the docker CLI is not installed; its checks (volume ls, Engine.Labels) are skipped');

const sb = new Sandbox({
  root: `/tmp/tss-e2ewl-${process.pid}`,
  prefix: `tss-w${process.pid % 1000}-`,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    return h.role === 'worker' ? { ...d, argv: [...d.argv, '--label', 'tss.disk=ssd'] } : d;
  },
});
const { ts, ok } = tsswarmOn(sb, 120_000);
const { docker } = dockerOn(sb, 120_000);

describe.skipIf(!canRunSandbox)('workload effects inside running containers', () => {
  let m = '';
  let w = '';
  let workerId = '';
  let workerHost = '';
  beforeAll(async () => {
    await sb.up({ managers: 1, workers: 1, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    m = sb.hosts().find((h) => h.role === 'manager')!.name;
    w = sb.hosts().find((h) => h.role === 'worker')!.name;
    const id = (await ok(m, 'node', 'ls', '--filter', 'role=worker', '-q')).trim();
    const self = JSON.parse(await ok(m, 'node', 'inspect', id))[0] as { ID: string; Description: { hostname: string } };
    workerId = self.ID;
    workerHost = self.Description.hostname;
  }, 180_000);
  afterAll(async () => {
    await sb.down();
  }, 60_000);

  const tasksOf = async (svc: string): Promise<Task[]> => JSON.parse(await ok(m, 'service', 'ps', '--format', 'json', svc)) as Task[];
  const running = async (svc: string): Promise<Task[]> => (await tasksOf(svc)).filter((t) => t.status?.state === 7);
  const exec = async (svc: string, script: string): Promise<string> => {
    const r = await ts(m, 'service', 'exec', svc, '--', 'sh', '-c', script);
    expect(r.code, r.err).toBe(0);
    return r.out.trim();
  };

  it('--constraint engine.labels.tss.disk==ssd places the task on the node whose daemon has that --label; node inspect shows it', async () => {
    const inspect = JSON.parse(await ok(m, 'node', 'inspect', workerId))[0] as { Description: { engineLabels: Record<string, string> } };
    expect(inspect.Description.engineLabels).toEqual({ 'tss.disk': 'ssd' });
    expect(await ok(m, 'node', 'inspect', '--pretty', workerId)).toMatch(/Engine Labels:\n - tss\.disk=ssd/);
    if (haveDocker) {
      const d = await docker(m, 'node', 'inspect', '--format', '{{json .Description.Engine.Labels}}', workerId);
      expect(d.out.trim(), d.err).toBe('{"tss.disk":"ssd"}');
      const ls = await docker(m, 'node', 'ls', '--filter', 'label=tss.disk=ssd', '--format', '{{.ID}}');
      expect(ls.out.trim(), ls.err).toBe(workerId);
    }
    await ok(
      m,
      'service',
      'create',
      '-d',
      '--name',
      'tss-onssd',
      '--replicas',
      '2',
      '--constraint',
      'engine.labels.tss.disk==ssd',
      SANDBOX_IMAGE,
      'sleep',
      '1d',
    );
    const ts2 = await until(
      'both tasks running',
      async () => {
        const r = await running('tss-onssd');
        return r.length === 2 ? r : undefined;
      },
      90_000,
    );
    expect(ts2.map((t) => t.nodeId)).toEqual([workerId, workerId]);
    // A label no daemon has: the task stays pending, saying why.
    await ok(
      m,
      'service',
      'create',
      '-d',
      '--name',
      'tss-onhdd',
      '--constraint',
      'engine.labels.tss.disk==hdd',
      SANDBOX_IMAGE,
      'sleep',
      '1d',
    );
    await until(
      'the constraint named in the pending task',
      async () => (await tasksOf('tss-onhdd')).some((t) => /engine\.labels\.tss\.disk==hdd/.test(t.status?.err || t.status?.message || '')),
      60_000,
    );
    await ok(m, 'service', 'rm', 'tss-onssd', 'tss-onhdd');
  }, 240_000);

  it('hostname and env templates are expanded per task, as seen inside the container', async () => {
    await ok(
      m,
      'service',
      'create',
      '-d',
      '--name',
      'tss-tmpl',
      '--constraint',
      'node.role==worker',
      '--hostname',
      '{{.Node.Hostname}}-{{.Task.Slot}}-{{.Service.Name}}',
      '--env',
      'TASK={{.Task.Name}}',
      '--env',
      'NODE={{.Node.ID}}',
      SANDBOX_IMAGE,
      'sleep',
      '1d',
    );
    const [t] = await until(
      'the task running',
      async () => {
        const r = await running('tss-tmpl');
        return r.length === 1 ? r : undefined;
      },
      90_000,
    );
    const inside = await exec('tss-tmpl', 'echo "$(hostname) $TASK $NODE"');
    expect(inside).toBe(`${workerHost}-1-tss-tmpl tss-tmpl.1.${t!.meta.id} ${workerId}`);
    await ok(m, 'service', 'rm', 'tss-tmpl');
  }, 180_000);

  it('container flags reach the container: workdir, user, entrypoint, env, limits, read-only, capabilities, no-new-privileges, labels, args on update', async () => {
    await ok(
      m,
      'service',
      'create',
      '-d',
      '--name',
      'tss-opts',
      '--workdir',
      '/tmp',
      '--user',
      '1234:2345',
      '--entrypoint',
      'sh',
      '-e',
      'TSS_A=1',
      '--limit-memory',
      '96M',
      '--limit-pids',
      '77',
      '--limit-cpu',
      '0.5',
      '--reserve-cpu',
      '0.1',
      '--reserve-memory',
      '8M',
      '--read-only',
      '--cap-drop',
      'ALL',
      '--cap-add',
      'CHOWN',
      '--security-opt',
      'no-new-privileges',
      '--label',
      'tss.svc=yes',
      '--stop-grace-period',
      '3s',
      SANDBOX_IMAGE,
      '-c',
      // ": " last, so that sh stays PID 1 (it would exec a last simple command).
      'sleep 1d; :',
    );
    await until('the task running', async () => ((await running('tss-opts')).length === 1 ? true : undefined), 90_000);
    const script = [
      'pwd',
      'id -u; id -g',
      'echo $TSS_A',
      "tr '\\0' ' ' < /proc/1/cmdline; echo",
      // cgroup v2, else v1 (quota then period).
      'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us',
      'touch /rootfile 2>/dev/null && echo writable || echo read-only',
      'grep -E "^(CapBnd|NoNewPrivs):" /proc/self/status',
    ].join('; ');
    const lines = (await exec('tss-opts', script)).split('\n').map((x) => x.trim());
    expect(lines.slice(0, 5)).toEqual(['/tmp', '1234', '2345', '1', 'sh -c sleep 1d; :']);
    expect(lines).toContain(String(96 * 2 ** 20));
    expect(lines).toContain('77');
    expect(lines.join(' ')).toMatch(/\b50000 100000\b/);
    expect(lines).toContain('read-only');
    // CHOWN alone is bit 0.
    expect(lines).toContain('CapBnd:\t0000000000000001');
    expect(lines).toContain('NoNewPrivs:\t1');
    const inspect = JSON.parse(await ok(m, 'service', 'inspect', 'tss-opts'))[0];
    expect(inspect.spec.labels).toEqual({ 'tss.svc': 'yes' });
    expect(Number(inspect.spec.task.container.stopGracePeriodMs)).toBe(3000);
    expect((await ok(m, 'service', 'ls', '--filter', 'label=tss.svc=yes', '--format', '{{.Name}}')).trim()).toBe('tss-opts');
    // --args on update replaces the command's arguments: the new task runs them.
    await ok(m, 'service', 'update', '-d', '--args', "-c 'echo tss-args-ok; sleep 1d; :'", 'tss-opts');
    await until(
      'the new arguments in PID 1',
      async () => {
        const r = await ts(m, 'service', 'exec', 'tss-opts', '--', 'sh', '-c', "tr '\\0' ' ' < /proc/1/cmdline");
        return r.code === 0 && r.out.trim() === 'sh -c echo tss-args-ok; sleep 1d; :';
      },
      90_000,
    );
    await ok(m, 'service', 'rm', 'tss-opts');
  }, 180_000);

  it('an anonymous volume is one per task, filled from the image, listed on its node with its task, and removed with the task', async () => {
    // /etc of the sandbox image has files: the new volume starts with them, as Docker copies image content in.
    await ok(
      m,
      'service',
      'create',
      '-d',
      '--name',
      'tss-anon',
      '--replicas',
      '2',
      '--constraint',
      'node.role==worker',
      '--mount',
      'type=volume,target=/etc',
      '--mount',
      'type=volume,target=/scratch,volume-nocopy',
      SANDBOX_IMAGE,
      'sh',
      '-c',
      'echo "$HOSTNAME" > /scratch/me; sleep 1d',
    );
    const tasks = await until(
      'both tasks running',
      async () => {
        const r = await running('tss-anon');
        return r.length === 2 ? r : undefined;
      },
      90_000,
    );
    const out = await exec('tss-anon', 'test -s /etc/passwd && echo filled; cat /scratch/me; grep -c " /scratch " /proc/mounts');
    expect(out.split('\n')).toEqual(['filled', expect.stringMatching(/\w+/), '1']);
    if (haveDocker) {
      const vols = async (): Promise<string[]> => {
        const r = await docker(w, 'volume', 'ls', '--filter', 'name=', '--format', '{{.Name}} {{.Label "com.docker.swarm.task.id"}}');
        expect(r.code, r.err).toBe(0);
        return r.out
          .trim()
          .split('\n')
          .filter((l) => /^[0-9a-f]{64} /.test(l));
      };
      const listed = await vols();
      // Two volumes per task, each named by 64 hex digits and labelled with its task.
      expect(listed).toHaveLength(4);
      expect(new Set(listed.map((l) => l.split(' ')[1]))).toEqual(new Set(tasks.map((t) => t.meta.id)));
      await ok(m, 'service', 'rm', 'tss-anon');
      await until('the volumes gone with their tasks', async () => (await vols()).length === 0, 90_000);
    } else {
      await ok(m, 'service', 'rm', 'tss-anon');
    }
  }, 240_000);
});
