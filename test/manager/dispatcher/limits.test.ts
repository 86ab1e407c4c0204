// Bounds on what a node sends in its session (manager/dispatcher/limits.ts):
// a hello's description and the task status reports, each built hostile here.
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { boundHello, boundStatusUpdates, NODE_LIMITS } from '../../../manager/dispatcher/limits.js';
import { localStore } from '../../../manager/store/index.js';
import type { AgentHello, AgentMessage, TaskStatusUpdate } from '../../../proto/gen/control.js';
import { Meta, type PortConfig, Task, TaskState, TaskStatus } from '../../../proto/gen/objects.js';
import { dispatcherHarness, firstReply, stubLiveness } from './harness.js';

/** A logger whose records the test can read. */
function capture(): { log: pino.Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), records };
}

const hello = (
  o: {
    hostname?: string;
    os?: string;
    architecture?: string;
    engineVersion?: string;
    nanoCpus?: number;
    memoryBytes?: number;
    pids?: number;
    engineLabels?: Record<string, string>;
  } = {},
): AgentHello => ({
  addr: '10.0.0.1:4242',
  description: {
    hostname: o.hostname ?? 'tss-node-1',
    platform: { os: o.os ?? 'linux', architecture: o.architecture ?? 'x86_64' },
    resources: { nanoCpus: o.nanoCpus ?? 4e9, memoryBytes: o.memoryBytes ?? 8 * 2 ** 30, pids: o.pids ?? 0, generic: [] },
    engineVersion: o.engineVersion ?? '0.1.0',
    engineLabels: o.engineLabels ?? {},
  },
});

const port = (o: Partial<PortConfig> = {}): PortConfig => ({
  name: '',
  protocol: 0,
  targetPort: 80,
  publishedPort: 8080,
  publishMode: 1,
  ...o,
});
const update = (taskId: string, o: Partial<TaskStatus> = {}): TaskStatusUpdate => ({
  taskId,
  status: TaskStatus.create({ state: TaskState.RUNNING, containerId: `tss-web.1.${taskId}`, ...o }),
});

describe('boundHello', () => {
  it('passes an ordinary hello unchanged and logs nothing', () => {
    const { log, records } = capture();
    const h = hello();
    const before = JSON.stringify(h);
    expect(boundHello('n1', h, log)).toBeUndefined();
    expect(JSON.stringify(h)).toBe(before);
    expect(records).toEqual([]);
  });

  it('refuses a hostname longer than 253 characters, or holding anything but letters, digits, ".", "_" and "-" ("/" above all), naming the field', () => {
    for (const hostname of [
      'h'.repeat(NODE_LIMITS.hostnameLength + 1),
      'evil host',
      'a\nb',
      'nœud',
      'a/b',
      '../../x',
      '..',
      '-x',
      'a:b',
      'a{b}',
      'a*',
    ]) {
      const { log, records } = capture();
      const err = boundHello('n1', hello({ hostname }), log);
      expect(err?.code, hostname).toBe('INVALID_ARGUMENT');
      expect(err?.message).toMatch(/^hello\.description\.hostname .*hostnamectl set-hostname/);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ level: 40, node: 'n1' });
    }
    expect(boundHello('n1', hello({ hostname: 'h'.repeat(NODE_LIMITS.hostnameLength) }), capture().log)).toBeUndefined();
    expect(boundHello('n1', hello({ hostname: 'Node_1.example-x' }), capture().log)).toBeUndefined();
  });

  it('cuts platform and engine version and clamps resources, with one warning naming the node and the fields', () => {
    const { log, records } = capture();
    const h = hello({
      os: 'l'.repeat(100_000),
      architecture: 'a'.repeat(65),
      engineVersion: 'v'.repeat(1000),
      nanoCpus: 1e20,
      memoryBytes: -5,
      pids: 0.5,
    });
    expect(boundHello('n7', h, log)).toBeUndefined();
    const d = h.description!;
    expect(d.platform!.os).toHaveLength(NODE_LIMITS.platformLength);
    expect(d.platform!.architecture).toHaveLength(NODE_LIMITS.platformLength);
    expect(d.engineVersion).toHaveLength(NODE_LIMITS.engineVersionLength);
    expect(d.resources).toEqual({ nanoCpus: NODE_LIMITS.nanoCpus, memoryBytes: 0, pids: 0, generic: [] });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ level: 40, node: 'n7' });
    expect((records[0]!.fields as string[]).join(' ')).toMatch(
      /platform\.os \(100000 characters, kept 64\).*engineVersion.*resources\.nanoCpus.*resources\.memoryBytes.*resources\.pids/,
    );
    // The log line carries lengths, not the 100,000 characters.
    expect(JSON.stringify(records[0]).length).toBeLessThan(1000);
  });
});

describe('engine labels in a hello', () => {
  it('keeps at most 64 engine labels with bounded keys and values, dropping the rest with one warning', () => {
    const { log, records } = capture();
    const labels: Record<string, string> = { zone: 'east', ['k'.repeat(129)]: 'x', big: 'v'.repeat(1025) };
    for (let i = 0; i < 70; i++) labels[`l${i}`] = String(i);
    const h = hello({ engineLabels: labels });
    expect(boundHello('n7', h, log)).toBeUndefined();
    const kept = h.description!.engineLabels;
    expect(Object.keys(kept)).toHaveLength(NODE_LIMITS.engineLabels);
    expect(kept.zone).toBe('east');
    expect(kept.big).toBeUndefined();
    const fields = (records[0]!.fields as string[]).join(' ');
    expect(fields).toMatch(/engineLabels \(7 dropped: at most 64\)/);
    expect(fields).toMatch(/engineLabels \(2 dropped: keys ≤ 128, values ≤ 1024 characters\)/);
  });

  it('drops a label whose key is outside the daemon’s character set or whose value holds control characters, with a warning naming the node', () => {
    const { log, records } = capture();
    const labels: Record<string, string> = {
      zone: 'east',
      'com.example/rack-1_a': 'r1=x',
      'a=b': 'x',
      '.hidden': 'x',
      'tab\tkey': 'x',
      ké: 'x',
      '': 'x',
      bell: 'ring\u0007',
      newline: 'one\ntwo',
      c1: 'x\u009by',
      del: 'x\u007f',
    };
    const h = hello({ engineLabels: labels });
    expect(boundHello('n7', h, log)).toBeUndefined();
    expect(h.description!.engineLabels).toEqual({ zone: 'east', 'com.example/rack-1_a': 'r1=x' });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ level: 40, node: 'n7' });
    const fields = (records[0]!.fields as string[]).join(' ');
    expect(fields).toMatch(/engineLabels \(5 dropped: a key of letters, digits/);
    expect(fields).toMatch(/engineLabels \(4 dropped: a value with control characters\)/);
  });
});

describe('boundStatusUpdates', () => {
  it('keeps ordinary reports as they are, and reports without a status', () => {
    const { log, records } = capture();
    const ups = [update('t1', { message: 'started', health: 'healthy', portStatus: [port()] }), { taskId: 't2', status: null }];
    expect(boundStatusUpdates('n1', ups, log)).toEqual(ups);
    expect(records).toEqual([]);
  });

  it('drops reports with a malformed task or container id and keeps the others', () => {
    const { log, records } = capture();
    const out = boundStatusUpdates(
      'n1',
      [
        update('x'.repeat(65)),
        update('../../etc'),
        update(''),
        update('ok1'),
        update('t3', { containerId: 'c'.repeat(NODE_LIMITS.containerIdLength + 1) }),
        update('t4', { containerId: 'a b' }),
      ],
      log,
    );
    expect(out.map((u) => u.taskId)).toEqual(['ok1']);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ level: 40, node: 'n1', dropped: 5 });
  });

  it('cuts the message and error text to their limits and clears an unknown health value', () => {
    const { log, records } = capture();
    const [u] = boundStatusUpdates(
      'n2',
      [update('t1', { message: 'm'.repeat(1_000_000), err: 'e'.repeat(5000), health: 'x'.repeat(100) })],
      log,
    );
    expect(u!.status!.message).toHaveLength(NODE_LIMITS.statusMessageLength);
    expect(u!.status!.err).toHaveLength(NODE_LIMITS.statusErrLength);
    expect(u!.status!.health).toBe('');
    expect(u!.status!.state).toBe(TaskState.RUNNING);
    expect(records[0]).toMatchObject({ node: 'n2', cut: 3 });
    expect(JSON.stringify(records[0]).length).toBeLessThan(2000);
  });

  it('drops invalid port entries and keeps at most 1000', () => {
    const { log } = capture();
    const ports = [
      port({ targetPort: 70000 }),
      port({ publishedPort: -1 }),
      port({ name: 'n'.repeat(65) }),
      ...Array.from({ length: 1500 }, (_, i) => port({ publishedPort: 1 + i })),
    ];
    const [u] = boundStatusUpdates('n1', [update('t1', { portStatus: ports })], log);
    expect(u!.status!.portStatus).toHaveLength(NODE_LIMITS.portStatus);
    expect(u!.status!.portStatus[0]!.publishedPort).toBe(1);
  });

  it('takes at most 20,000 reports from one batch', () => {
    const { log, records } = capture();
    const ups = Array.from({ length: NODE_LIMITS.updatesPerBatch + 5 }, (_, i) => ({ taskId: `t${i}`, status: null }));
    expect(boundStatusUpdates('n1', ups, log)).toHaveLength(NODE_LIMITS.updatesPerBatch);
    expect(records[0]).toMatchObject({ node: 'n1', dropped: 1 });
    expect((records[0]!.examples as string[])[0]).toMatch(/5 reports past the first 20000/);
  });
});

describe('the dispatcher applies the bounds to a real session', () => {
  const { dispatcher, serve, openSession } = dispatcherHarness();

  async function setup() {
    const ready: string[] = [];
    const store = localStore();
    await store.update((tx) =>
      tx.tasks.create(
        Task.create({
          meta: Meta.create({ id: 'tsstask1' }),
          nodeId: 'node-1',
          desiredState: TaskState.RUNNING,
          status: TaskStatus.create({ state: TaskState.ASSIGNED }),
        }),
      ),
    );
    const d = dispatcher(store, { liveness: stubLiveness(ready) });
    const stream = openSession(await serve(d, 'node-1'));
    const first = firstReply(stream);
    return { store, ready, stream, first };
  }

  it('refuses a hello whose hostname holds "/" (templates would make it a path), naming the field, and leaves the node unmarked', async () => {
    const { ready, stream, first } = await setup();
    stream.write({ hello: { description: { hostname: '../../tss-etc' }, addr: '10.0.0.1:4242' } } as AgentMessage);
    const r = await first;
    expect(r.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(r.error?.details).toMatch(
      /^hello\.description\.hostname holds "\.\.\/\.\.\/tss-etc", which has characters other than letters, digits, "\.", "_" and "-"/,
    );
    expect(ready).toEqual([]);
  });

  it('refuses a hello with a 1000-character hostname, naming the field, and leaves the node unmarked', async () => {
    const { ready, stream, first } = await setup();
    stream.write({ hello: { description: { hostname: 'h'.repeat(1000) }, addr: '10.0.0.1:4242' } } as AgentMessage);
    const r = await first;
    expect(r.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(r.error?.details).toMatch(/^hello\.description\.hostname is 1000 characters long: at most 253/);
    expect(ready).toEqual([]);
  });

  it('stores a 1 MB status message cut to its limit', async () => {
    const { store, stream, first } = await setup();
    stream.write({ hello: { description: { hostname: 'tss-n1' }, addr: '10.0.0.1:4242' } } as AgentMessage);
    expect((await first).message?.welcome).toBeTruthy();
    stream.write({ taskStatus: { updates: [update('tsstask1', { message: 'm'.repeat(1 << 20) })] } } as AgentMessage);
    await vi.waitFor(() => expect(store.view((tx) => tx.tasks.get('tsstask1')!.status.state)).toBe(TaskState.RUNNING), {
      timeout: 10_000,
    });
    expect(store.view((tx) => tx.tasks.get('tsstask1')!.status.message)).toHaveLength(NODE_LIMITS.statusMessageLength);
  });
});
