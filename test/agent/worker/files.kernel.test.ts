// Secrets and configs in real runc containers, delivered as the managers send
// them (Assignments.dependencies): the container reads each at its target
// (/run/secrets/<name>, or absolute) with the reference's owner and mode, on
// a tmpfs, read-only; on the node the values sit only in that tmpfs under the
// container's directory (nodev, nosuid, noexec, read-only), which goes when
// the task ends; no byte of a value lands in any file under the runtime's
// root, nor in any log line. Runtime roots are /tmp/tss- dirs, container ids
// tss-, and everything is removed after each test, pass or fail.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { filesHolding } from '../../files-holding.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage } from '../../../deploy/images/busybox.js';
import { FILES_DIR } from '../../../agent/runtime/files.js';
import { Runtime } from '../../../agent/runtime/index.js';
import { containerIdOf } from '../../../agent/worker/task.js';
import { Worker } from '../../../agent/worker/worker.js';
import type { AgentMessage } from '../../../proto/gen/control.js';
import { Config, Meta, Secret, Task, TaskState } from '../../../proto/gen/objects.js';
import { have, isRoot } from '../../have.js';
import { until as waitUntil } from '../../lib/wait.js';

const canRun = isRoot && have('runc') && have('conmon') && existsSync('/bin/busybox');
if (!canRun) console.log('secrets on runc skipped: need root, runc, conmon and busybox-static');
const NODE = 'tssnode1';
const until = (what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<unknown> =>
  waitUntil(what, cond, { timeoutMs: ms, everyMs: 50 });

// Random per run, so that no earlier run's leftovers can match.
const SECRET = `tss-secret-${process.pid}-${Math.random().toString(36).slice(2)}`;
const CONFIG = `tss-config-${process.pid}-${Math.random().toString(36).slice(2)}`;

const lines: string[] = [];
const log = pino(
  { level: 'trace' },
  new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  }),
);

const hostMount = (path: string): string | undefined =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[1] === path);

describe.skipIf(!canRun)('secrets and configs in runc containers', () => {
  let dir = '';
  let rt: Runtime;
  const workers: Worker[] = [];
  const sent: AgentMessage[] = [];

  beforeAll(async () => {
    dir = mkdtempSync('/tmp/tss-files-');
    await buildBusyboxImage({ outPath: join(dir, 'oci.tar'), format: 'oci', tag: 'tsswarm/busybox:latest' });
    rt = new Runtime({ root: join(dir, 'root'), logger: log });
    await rt.init();
    await rt.images.load(join(dir, 'oci.tar'));
    rmSync(join(dir, 'oci.tar'), { force: true });
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
      for (const m of mounts.reverse()) execFileSync('umount', ['-l', m.split(' ')[1]!]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const worker = (): Worker => {
    const w = new Worker({ runtime: rt, nodeId: NODE, logger: log, send: (m) => (sent.push(m), true), dependencyWaitMs: 1_000 });
    w.start();
    workers.push(w);
    return w;
  };
  const reported = (t: Task): { state: TaskState; err: string }[] =>
    sent
      .flatMap((m) => m.taskStatus?.updates ?? [])
      .filter((u) => u.taskId === t.meta.id)
      .map((u) => ({ state: u.status!.state, err: u.status!.err }));
  const run = async (id: string, cmd: string[]): Promise<{ code: number; out: string }> => {
    const h = rt.exec(id, { cmd });
    let out = '';
    h.stdout.on('data', (b: Buffer) => (out += b.toString()));
    h.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const code = await h.exit;
    return { code, out: out.trim() };
  };

  const secret = Secret.create({
    meta: Meta.create({ id: 'tsssec1' }),
    spec: { name: 'db_pw', labels: {}, data: new Uint8Array(Buffer.from(SECRET)) },
  });
  const config = Config.create({
    meta: Meta.create({ id: 'tsscfg1' }),
    spec: { name: 'app.conf', labels: {}, data: new Uint8Array(Buffer.from(CONFIG)) },
  });
  let seq = 0;
  function task(o: { readOnly?: boolean; secretId?: string } = {}): Task {
    return Task.create({
      meta: { id: `tssft${process.pid}x${++seq}`, version: 1, createdAt: 0, updatedAt: 0 },
      serviceId: 'svc1',
      serviceName: 'tss-ft',
      slot: seq,
      nodeId: NODE,
      desiredState: TaskState.RUNNING,
      status: { state: TaskState.ASSIGNED, timestamp: Date.now(), message: '' } as Task['status'],
      spec: {
        container: {
          image: 'tsswarm/busybox:latest',
          command: ['sleep', '3600'],
          stopGracePeriodMs: 300,
          readOnly: !!o.readOnly,
          secrets: [
            { secretId: o.secretId ?? 'tsssec1', secretName: 'db_pw', target: { name: 'db_pw', uid: '33', gid: '34', mode: 0o400 } },
            { secretId: o.secretId ?? 'tsssec1', secretName: 'db_pw', target: { name: '/etc/tss/pw', uid: '0', gid: '0', mode: 0o444 } },
          ],
          configs: [{ configId: 'tsscfg1', configName: 'app.conf', target: { name: '/etc/app.conf', uid: '0', gid: '0', mode: 0o444 } }],
        },
      } as unknown as Task['spec'],
    });
  }
  const deps = { secrets: [secret], configs: [config], removedSecretIds: [], removedConfigIds: [] };

  it('the container reads its secrets and config at their targets, owned and moded as asked, on a read-only tmpfs; they go when the task ends; nothing on disk, nothing logged', async () => {
    const w = worker();
    const t = task();
    const id = containerIdOf(t);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [], dependencies: deps });
    await until('running', async () => (await rt.inspect(id))?.status === 'running');

    expect(await run(id, ['cat', '/run/secrets/db_pw'])).toEqual({ code: 0, out: SECRET });
    expect(await run(id, ['stat', '-c', '%a %u %g', '/run/secrets/db_pw'])).toEqual({ code: 0, out: '400 33 34' });
    expect(await run(id, ['stat', '-c', '%a %u %g', '/etc/tss/pw'])).toEqual({ code: 0, out: '444 0 0' });
    expect(await run(id, ['cat', '/etc/app.conf'])).toEqual({ code: 0, out: CONFIG });
    expect(await run(id, ['stat', '-c', '%a %u %g', '/etc/app.conf'])).toEqual({ code: 0, out: '444 0 0' });
    // On tmpfs, read-only, in the container's own mount table.
    for (const target of ['/run/secrets/db_pw', '/etc/tss/pw', '/etc/app.conf']) {
      const m = (await run(id, ['grep', ` ${target} `, '/proc/mounts'])).out.split(' ');
      expect(m[2], `${target} in /proc/mounts`).toBe('tmpfs');
      expect(m[3]!.split(','), `${target} options`).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
    }
    const write = await run(id, ['sh', '-c', 'echo x > /run/secrets/db_pw']);
    expect(write.code).not.toBe(0);
    expect(write.out).toMatch(/Read-only file system/);
    expect((await run(id, ['sh', '-c', 'echo x >> /etc/app.conf'])).code).not.toBe(0);

    // On the node: the container's tmpfs, read-only and safe; nothing of either value elsewhere under the root.
    const cdir = join(dir, 'root', 'containers', id);
    const m = hostMount(join(cdir, FILES_DIR))?.split(' ');
    expect(m?.[2]).toBe('tmpfs');
    expect((m?.[3] ?? '').split(',')).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
    expect(statSync(join(cdir, FILES_DIR)).mode & 0o777).toBe(0o700);
    expect(filesHolding(dir, Buffer.from(SECRET))).toEqual([]);
    expect(filesHolding(dir, Buffer.from(CONFIG))).toEqual([]);

    // The task ends: its tmpfs goes with it, though the stopped container stays until the task is removed.
    w.assignments({ full: false, tasks: [{ ...t, desiredState: TaskState.SHUTDOWN }], removedTaskIds: [] });
    await until('SHUTDOWN reported', () => reported(t).some((r) => r.state === TaskState.SHUTDOWN));
    expect((await rt.inspect(id))?.status).toBe('stopped');
    expect(hostMount(join(cdir, FILES_DIR))).toBeUndefined();
    expect(existsSync(join(cdir, FILES_DIR))).toBe(false);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(join(cdir, FILES_DIR));
    expect(filesHolding(dir, Buffer.from(SECRET))).toEqual([]);
    w.assignments({ full: false, tasks: [], removedTaskIds: [t.meta.id] });
    await until('removed', async () => (await rt.inspect(id)) === undefined);
    expect(existsSync(cdir)).toBe(false);
    expect(lines.join('')).not.toContain(SECRET);
    expect(lines.join('')).not.toContain(CONFIG);
  }, 60_000);

  it('a container that exits by itself loses its tmpfs at once; with a read-only rootfs the files are there too', async () => {
    const w = worker();
    const t = task({ readOnly: true });
    t.spec!.container!.command = ['sh', '-c', 'cat /run/secrets/db_pw; echo; cat /etc/app.conf; echo'];
    const id = containerIdOf(t);
    w.assignments({ full: true, tasks: [t], removedTaskIds: [], dependencies: deps });
    await until('COMPLETE reported', () => reported(t).some((r) => r.state === TaskState.COMPLETE));
    const out: string[] = [];
    for await (const l of rt.logs(id)) out.push(l.line.toString().trim());
    // What the container printed is its own business; the runtime wrote nothing of it elsewhere.
    expect(out).toEqual([SECRET, CONFIG]);
    const cdir = join(dir, 'root', 'containers', id);
    await until('the tmpfs gone', () => hostMount(join(cdir, FILES_DIR)) === undefined);
    expect(existsSync(join(cdir, FILES_DIR))).toBe(false);
  }, 60_000);

  it('a task whose secret has not reached the node never gets a container: it is rejected naming the secret', async () => {
    const w = worker();
    const t = task({ secretId: 'tssmissing' });
    w.assignments({ full: true, tasks: [t], removedTaskIds: [], dependencies: deps });
    await until('REJECTED', () => reported(t).some((r) => r.state === TaskState.REJECTED));
    expect(reported(t).at(-1)!.err).toMatch(/^secret db_pw \(tssmissing\) has not reached this node within 1 s/);
    expect(await rt.inspect(containerIdOf(t))).toBeUndefined();
    expect(existsSync(join(dir, 'root', 'containers', containerIdOf(t)))).toBe(false);
  }, 30_000);

  it('a create that fails after the files are mounted leaves no tmpfs behind', async () => {
    await expect(
      rt.create({
        id: `tss-ffail${process.pid}`,
        image: 'tsswarm/busybox:latest',
        command: ['true'],
        // A file over a directory of the image: runc refuses it.
        files: [{ target: '/etc', data: new Uint8Array(Buffer.from(SECRET)), uid: 0, gid: 0, mode: 0o444 }],
      }),
    ).rejects.toThrow();
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(`tss-ffail${process.pid}`);
    expect(existsSync(join(dir, 'root', 'containers', `tss-ffail${process.pid}`))).toBe(false);
  }, 30_000);
});
