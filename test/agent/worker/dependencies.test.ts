// The worker's side of secrets and configs (fake runtime): what the managers
// send is held in memory and handed to the runtime as the task's files, with
// their targets, owners and modes; a task whose secret has not arrived does
// not start (it waits, then is rejected naming it); nothing of a value is
// ever logged. The same on real runc is in files.kernel.test.ts.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Dependencies, MissingDependencyError } from '../../../agent/worker/dependencies.js';
import { containerIdOf } from '../../../agent/worker/task.js';
import { Worker } from '../../../agent/worker/worker.js';
import type { AgentMessage, AssignedDependencies } from '../../../proto/gen/control.js';
import { Config, Meta, Secret, Task, TaskState, type TaskStatus } from '../../../proto/gen/objects.js';
import { until } from '../../lib/wait.js';
import { FakeRuntime } from './fake-runtime.js';

const MARK = 'tss-worker-marker-5be07a';
const NODE = 'tssnode1';
const secret = (id: string, name: string): Secret =>
  Secret.create({ meta: Meta.create({ id }), spec: { name, labels: {}, data: new Uint8Array(Buffer.from(`${MARK}-${id}`)) } });
const config = (id: string, name: string): Config =>
  Config.create({ meta: Meta.create({ id }), spec: { name, labels: {}, data: new Uint8Array(Buffer.from(`conf-${id}`)) } });
const deps = (d: Partial<AssignedDependencies>): AssignedDependencies => ({
  secrets: [],
  configs: [],
  removedSecretIds: [],
  removedConfigIds: [],
  ...d,
});

let seq = 0;
function task(
  o: {
    secrets?: { id: string; name: string; target?: string; uid?: string; gid?: string; mode?: number }[];
    configs?: { id: string; name: string; target: string }[];
  } = {},
): Task {
  const id = `tssdep${++seq}`;
  return Task.create({
    meta: { id, version: 1, createdAt: 0, updatedAt: 0 },
    serviceId: 'svc1',
    serviceName: 'web',
    slot: seq,
    nodeId: NODE,
    desiredState: TaskState.RUNNING,
    status: { state: TaskState.ASSIGNED, timestamp: 0, message: '' } as TaskStatus,
    spec: {
      container: {
        image: 'tss/busybox:latest',
        command: ['sleep', '3600'],
        secrets: (o.secrets ?? []).map((s) => ({
          secretId: s.id,
          secretName: s.name,
          target: { name: s.target ?? s.name, uid: s.uid ?? '0', gid: s.gid ?? '0', mode: s.mode ?? 0o444 },
        })),
        configs: (o.configs ?? []).map((c) => ({
          configId: c.id,
          configName: c.name,
          target: { name: c.target, uid: '0', gid: '0', mode: 0o444 },
        })),
      },
    } as unknown as Task['spec'],
  });
}

function capture(): { logger: pino.Logger; text: () => string } {
  const lines: string[] = [];
  const logger = pino(
    { level: 'trace' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  return { logger, text: () => lines.join('') };
}

const workers: Worker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.close();
});

function setup(dependencyWaitMs = 5_000) {
  const rt = new FakeRuntime();
  const sent: AgentMessage[] = [];
  const log = capture();
  const w = new Worker({ runtime: rt.asRuntime(), nodeId: NODE, logger: log.logger, send: (m) => (sent.push(m), true), dependencyWaitMs });
  w.start();
  workers.push(w);
  const last = (t: Task): TaskStatus | undefined =>
    sent
      .flatMap((m) => m.taskStatus?.updates ?? [])
      .filter((u) => u.taskId === t.meta.id)
      .map((u) => u.status!)
      .at(-1);
  const reported = (t: Task, state: TaskState): Promise<TaskStatus> =>
    until(
      `${t.meta.id} reported ${TaskState[state]} (last: ${TaskState[last(t)?.state ?? 0]})`,
      () => (last(t)?.state === state ? last(t) : undefined),
      {
        timeoutMs: 5_000,
        everyMs: 5,
      },
    );
  return { rt, w, log, last, reported };
}

describe("the worker's secrets and configs (fake runtime)", () => {
  it('hands the runtime the files of the task: secrets under /run/secrets (or absolute), configs at their target, with owner and mode', async () => {
    const { rt, w, reported } = setup();
    const t = task({
      secrets: [
        { id: 's1', name: 'db_pw' },
        { id: 's1', name: 'db_pw', target: '/etc/pw', uid: '33', gid: '34', mode: 0o400 },
      ],
      configs: [{ id: 'c1', name: 'app.conf', target: '/etc/app.conf' }],
    });
    w.assignments({
      full: true,
      tasks: [t],
      removedTaskIds: [],
      dependencies: deps({ secrets: [secret('s1', 'db_pw')], configs: [config('c1', 'app.conf')] }),
    });
    await reported(t, TaskState.RUNNING);
    const files = rt.config(containerIdOf(t))!.files!;
    expect(files.map((f) => [f.target, f.uid, f.gid, f.mode.toString(8), Buffer.from(f.data).toString()])).toEqual([
      ['/run/secrets/db_pw', 0, 0, '444', `${MARK}-s1`],
      ['/etc/pw', 33, 34, '400', `${MARK}-s1`],
      ['/etc/app.conf', 0, 0, '444', 'conf-c1'],
    ]);
  });

  it('refuses to start a task whose secret has not arrived: it waits at PREPARING without a container, and starts once the secret comes', async () => {
    const { rt, w, last, reported } = setup();
    const t = task({ secrets: [{ id: 's9', name: 'late' }] });
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await until('the task says what it waits for', () => last(t)?.message.startsWith('waiting for') || undefined, {
      timeoutMs: 5_000,
      everyMs: 5,
    });
    expect(last(t)).toMatchObject({ state: TaskState.PREPARING, message: 'waiting for secret late (s9)' });
    await new Promise((r) => setTimeout(r, 50));
    expect(rt.calls.filter((c) => c.startsWith('create'))).toEqual([]);
    w.assignments({ full: false, tasks: [], removedTaskIds: [], dependencies: deps({ secrets: [secret('s9', 'late')] }) });
    await reported(t, TaskState.RUNNING);
    expect(rt.config(containerIdOf(t))!.files!.map((f) => f.target)).toEqual(['/run/secrets/late']);
  });

  it('rejects a task whose secret never arrives, naming it, and never creates its container', async () => {
    const { rt, w, reported } = setup(200);
    const t = task({ secrets: [{ id: 's1', name: 'db_pw' }], configs: [{ id: 'c7', name: 'gone.conf', target: '/etc/gone.conf' }] });
    w.assignments({ full: true, tasks: [t], removedTaskIds: [], dependencies: deps({ secrets: [secret('s1', 'db_pw')] }) });
    const st = await reported(t, TaskState.REJECTED);
    expect(st.err).toMatch(/^config gone.conf \(c7\) has not reached this node within 0.2 s, and the task does not start without it/);
    expect(rt.status(containerIdOf(t))).toBe('gone');
    expect(rt.calls.filter((c) => c.startsWith('create'))).toEqual([]);
  });

  it('a full set replaces what the node holds; changes add and remove; a removed secret is not handed to a new task', async () => {
    const { w, rt, last } = setup(100);
    w.assignments({ full: true, tasks: [], removedTaskIds: [], dependencies: deps({ secrets: [secret('s1', 'a'), secret('s2', 'b')] }) });
    w.assignments({
      full: false,
      tasks: [],
      removedTaskIds: [],
      dependencies: deps({ removedSecretIds: ['s1'], configs: [config('c1', 'c')] }),
    });
    await until('applied', () => (w.dependencies.held().configs.length ? true : undefined), { timeoutMs: 2_000, everyMs: 5 });
    expect(w.dependencies.held()).toEqual({ secrets: ['s2'], configs: ['c1'] });
    const t = task({ secrets: [{ id: 's1', name: 'a' }] });
    w.assignments({ full: true, tasks: [t], removedTaskIds: [] });
    await until('rejected', () => (last(t)?.state === TaskState.REJECTED ? true : undefined), { timeoutMs: 2_000, everyMs: 5 });
    expect(w.dependencies.held()).toEqual({ secrets: [], configs: [] });
    expect(rt.calls.filter((c) => c.startsWith('create'))).toEqual([]);
  });

  it('a malformed reference (a non-numeric uid) rejects the task saying which', () => {
    const d = new Dependencies();
    d.apply(true, deps({ secrets: [secret('s1', 'db_pw')] }));
    expect(() => d.files(task({ secrets: [{ id: 's1', name: 'db_pw', uid: 'www' }] }))).toThrow(
      /secrets\[0\] \(db_pw\) uid "www" is not a numeric id/,
    );
    expect(() => d.files(task({ secrets: [{ id: 's2', name: 'x' }] }))).toThrow(MissingDependencyError);
  });

  it('no value appears in anything the worker logs, waiting, rejecting or running', async () => {
    const { w, log, reported } = setup(100);
    const ok = task({ secrets: [{ id: 's1', name: 'db_pw' }] });
    const missing = task({ secrets: [{ id: 's2', name: 'other' }] });
    w.assignments({ full: true, tasks: [ok, missing], removedTaskIds: [], dependencies: deps({ secrets: [secret('s1', 'db_pw')] }) });
    await reported(ok, TaskState.RUNNING);
    await reported(missing, TaskState.REJECTED);
    expect(log.text()).toMatch(/waits for a secret or config/);
    expect(log.text()).not.toContain(MARK);
  });
});
