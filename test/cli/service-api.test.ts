// The service CLI against ServiceApi over a real gRPC server on a unix socket
// (no cluster): create/ls/inspect/update/scale/rollback/rm round-trip through
// the generated codecs, and logs/exec use the streaming calls as the daemon serves them.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceCommand } from '../../cli/service.js';
import { serverStream, unary } from '../../lib/grpc.js';
import { silentLogger } from '../../lib/log.js';
import { ServiceApi } from '../../manager/controlapi/index.js';
import { localStore } from '../../manager/store/index.js';
import { ControlService, type ExecOutput, type ExecRequest, type LogChunk, type ServiceLogsRequest } from '../../proto/gen/control.js';
import { Meta, Node, NodeDescription, NodeSpec, TaskState, UpdateState } from '../../proto/gen/objects.js';
import { runCommand } from './run-command.js';

const dir = mkdtempSync(join(tmpdir(), 'tss-svc-'));
const sock = join(dir, 'tsswarm.sock');
const store = localStore();
const api = new ServiceApi({ store, logger: silentLogger() });
const server = new grpc.Server();
let execReq: ExecRequest | null = null;

beforeAll(async () => {
  await store.update((tx) =>
    tx.nodes.create(
      Node.create({
        meta: Meta.create({ id: 'node1aaaaaaaaaaa' }),
        spec: NodeSpec.create({ name: 'h1' }),
        description: NodeDescription.create({ hostname: 'host1' }),
      }),
    ),
  );
  const u = <Req, Res>(fn: (r: Req) => Promise<Res>) => unary<Req, Res>((r) => fn(r));
  server.addService(ControlService, {
    createService: u((r: Parameters<ServiceApi['createService']>[0]) => api.createService(r)),
    getService: u((r: Parameters<ServiceApi['getService']>[0]) => api.getService(r)),
    listServices: u((r: Parameters<ServiceApi['listServices']>[0]) => api.listServices(r)),
    updateService: u((r: Parameters<ServiceApi['updateService']>[0]) => api.updateService(r)),
    removeService: u((r: Parameters<ServiceApi['removeService']>[0]) => api.removeService(r)),
    listTasks: u((r: Parameters<ServiceApi['listTasks']>[0]) => api.listTasks(r)),
    getTask: u((r: Parameters<ServiceApi['getTask']>[0]) => api.getTask(r)),
    listNodes: u(async () => ({ nodes: store.view((tx) => tx.nodes.list()), stale: false })),
    serviceLogs: serverStream(async (req: ServiceLogsRequest, write: (c: LogChunk) => void) => {
      write({
        taskId: 'task1aaaaaaaaaaaaaaaaaaaa',
        nodeId: 'node1aaaaaaaaaaa',
        slot: 1,
        stream: 'stdout',
        data: Buffer.from(`hello ${req.ref}\n`),
        time: 0,
        serviceName: 'web',
        serviceId: 'svc1',
      });
      write({
        taskId: 'task1aaaaaaaaaaaaaaaaaaaa',
        nodeId: 'node1aaaaaaaaaaa',
        slot: 1,
        stream: 'stderr',
        data: Buffer.from('oops\n'),
        time: 0,
        serviceName: 'web',
        serviceId: 'svc1',
      });
    }),
    exec: serverStream(async (req: ExecRequest, write: (o: ExecOutput) => void) => {
      execReq = req;
      const o = (p: Partial<ExecOutput>): ExecOutput => ({
        stdout: new Uint8Array(),
        stderr: new Uint8Array(),
        exitCode: 0,
        taskId: '',
        exited: false,
        ...p,
      });
      write(o({ taskId: 'task1' }));
      write(o({ stdout: Buffer.from('out\n') }));
      write(o({ stderr: Buffer.from('err\n') }));
      write(o({ exited: true, exitCode: 3 }));
    }),
  });
  await new Promise<void>((res, rej) =>
    server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
  );
});

afterAll(async () => {
  await new Promise<void>((res) => server.tryShutdown(() => res()));
  rmSync(dir, { recursive: true, force: true });
});

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return runCommand({ service: serviceCommand }, `unix://${sock}`, argv);
}

describe('service CLI over the Control API', () => {
  it('create -d stores the spec the flags describe and prints the id', async () => {
    const r = await run(
      'service',
      'create',
      '-d',
      '--name',
      'web',
      '--replicas',
      '2',
      '--mount',
      'type=tmpfs,dst=/cache',
      '-e',
      'A=1',
      'busybox',
      'sleep',
      '1d',
    );
    // As the docker CLI: no registry answers for busybox here, so it warns and keeps the tag.
    expect(r.err).toMatch(
      /^image busybox could not be accessed on a registry to record\nits digest \(.*\)\. Each node will access busybox independently,/,
    );
    expect(r.code).toBe(0);
    const svc = store.view((tx) => tx.services.byName('web'))!;
    expect(r.out).toBe(`${svc.meta.id}\n`);
    expect(svc.spec.replicated).toEqual({ replicas: 2 });
    expect(svc.spec.task.container.args).toEqual(['sleep', '1d']);
    expect(svc.spec.task.container.env).toEqual(['A=1']);
    expect(svc.spec.task.restart!.delayMs).toBe(5000);
  });

  it('a refused spec gives the API message and stores nothing', async () => {
    const r = await run('service', 'create', '-d', '--name', 'bad name', 'busybox');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^tsswarm: spec.name "bad name" is not valid/);
    expect(store.view((tx) => tx.services.count())).toBe(1);
  });

  it('ls, inspect, update, scale, rollback', async () => {
    expect((await run('service', 'ls')).out).toMatch(
      /^ID\s+NAME\s+MODE\s+REPLICAS\s+IMAGE\n[0-9a-z]{12}\s+web\s+replicated\s+0\/2\s+busybox\n$/,
    );
    const inspected = JSON.parse((await run('service', 'inspect', 'web')).out) as { spec: { task: { restart: { condition: string } } } }[];
    expect(inspected[0]!.spec.task.restart.condition).toBe('ANY');
    const up = await run('service', 'update', '-d', '--image', 'busybox:1.36', '--env-add', 'B=2', 'web');
    expect(up).toMatchObject({ code: 0, out: 'web\n' });
    let svc = store.view((tx) => tx.services.byName('web'))!;
    expect(svc.spec.task.container.image).toBe('busybox:1.36');
    expect(svc.spec.task.container.env).toEqual(['A=1', 'B=2']);
    expect(svc.updateStatus!.state).toBe(UpdateState.UPDATING);
    expect((await run('service', 'scale', '-d', 'web=4')).out).toBe('web scaled to 4\n');
    expect(store.view((tx) => tx.services.byName('web'))!.spec.replicated!.replicas).toBe(4);
    expect((await run('service', 'rollback', '-d', 'web')).out).toBe('web\n');
    svc = store.view((tx) => tx.services.byName('web'))!;
    expect(svc.spec.replicated!.replicas).toBe(2);
    expect(svc.spec.task.container.image).toBe('busybox:1.36');
    const bad = await run('service', 'update', '-d', '--mode', 'global', 'web');
    expect(bad.err).toMatch(/spec\.mode: service web is replicated and cannot become global/);
  });

  it('logs prints prefixed lines on stdout and stderr', async () => {
    const r = await run('service', 'logs', 'web');
    expect(r.code).toBe(0);
    expect(r.out).toBe('web.1.task1aaaaaaa@host1    | hello web\n');
    expect(r.err).toBe('web.1.task1aaaaaaa@host1    | oops\n');
  });

  it('logs --tail takes N up to the wire’s 2^32-1; larger is refused, never wrapped to "all"', async () => {
    expect((await run('service', 'logs', '--tail', '4294967295', 'web')).code).toBe(0);
    const big = await run('service', 'logs', '--tail', '4294967296', 'web');
    expect(big.code).not.toBe(0);
    expect(big.err).toMatch(/--tail.*from 0 to 4294967295/);
  });

  it("exec streams output and exits with the command's code", async () => {
    const r = await run('service', 'exec', '--slot', '1', '-u', 'root', 'web', '--', 'sh', '-c', 'exit 3');
    expect(r).toEqual({ code: 3, out: 'out\n', err: 'err\n' });
    expect(execReq).toMatchObject({ ref: 'web', slot: 1, cmd: ['sh', '-c', 'exit 3'], user: 'root' });
  });

  it('ps lists tasks by slot with node hostnames', async () => {
    const svc = store.view((tx) => tx.services.byName('web'))!;
    await store.update((tx) =>
      tx.tasks.create({
        meta: Meta.create({ id: 'taskaaaaaaaaaaaaaaaaaaaaa' }),
        serviceId: svc.meta.id,
        slot: 1,
        nodeId: 'node1aaaaaaaaaaa',
        desiredState: TaskState.RUNNING,
        status: {
          state: TaskState.RUNNING,
          timestamp: Date.now(),
          message: '',
          err: '',
          exitCode: 0,
          containerId: '',
          health: '',
          pid: 0,
          startedAt: 0,
          runningAt: 0,
          portStatus: [],
        },
        spec: svc.spec.task,
        serviceVersion: 1,
        networks: [],
        serviceName: 'web',
        restartAttempt: 0,
        jobIteration: 0,
        hostPorts: [],
        serviceLabels: {},
      }),
    );
    const r = await run('service', 'ps', 'web');
    expect(r.out).toMatch(
      /^ID\s+NAME\s+IMAGE\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR\s+PORTS\ntaskaaaaaaaa\s+web\.1\s+busybox:1\.36\s+host1\s+Running\s+Running (less than a second|\d seconds?) ago\n$/,
    );
    expect((await run('service', 'ps', '-q', 'web')).out).toBe('taskaaaaaaaa\n');
    const js = JSON.parse((await run('service', 'ps', '--format', 'json', 'web')).out) as {
      slot: number;
      desiredState: number;
      status: { state: number; err: string; pid: number };
      spec: { container: { image: string } };
    }[];
    expect(js).toMatchObject([
      {
        slot: 1,
        desiredState: TaskState.RUNNING,
        status: { state: TaskState.RUNNING, err: '', pid: 0 },
        spec: { container: { image: 'busybox:1.36' } },
      },
    ]);
  });

  it('create without -d follows the tasks until the service converges', async () => {
    // A stand-in orchestrator: makes each slot's task, which then runs.
    const sub = store.subscribe(
      (e) => {
        if (e.kind !== 'create' || e.table !== 'services' || e.object.spec.name !== 'conv') return;
        const svc = e.object;
        setTimeout(() => {
          void store.update((tx) => {
            for (let slot = 1; slot <= svc.spec.replicated!.replicas; slot++) {
              tx.tasks.create({
                meta: Meta.create({ id: `conv${slot}aaaaaaaaaaaaaaaaaaaa` }),
                serviceId: svc.meta.id,
                slot,
                nodeId: 'node1aaaaaaaaaaa',
                desiredState: TaskState.RUNNING,
                status: {
                  state: TaskState.RUNNING,
                  timestamp: Date.now(),
                  message: '',
                  err: '',
                  exitCode: 0,
                  containerId: '',
                  health: '',
                  pid: 0,
                  startedAt: 0,
                  runningAt: 0,
                  portStatus: [],
                },
                spec: svc.spec.task,
                serviceVersion: svc.meta.version,
                networks: [],
                serviceName: 'conv',
                restartAttempt: 0,
                jobIteration: 0,
                hostPorts: [],
                serviceLabels: {},
              });
            }
          });
        }, 50);
      },
      { tables: ['services'], commits: 'none' },
    );
    try {
      const r = await run('service', 'create', '--no-resolve-image', '--name', 'conv', '--replicas', '2', 'busybox');
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const lines = r.out.trim().split('\n');
      expect(lines[0]).toMatch(/^[0-9a-z]{25}$/);
      expect(lines).toContain('overall progress: 2 out of 2 tasks');
      expect(lines.at(-1)).toBe('verify: Service converged');
    } finally {
      sub.close();
    }
  });

  it('create without -d fails with the scheduler explanation when no node fits', async () => {
    const sub = store.subscribe(
      (e) => {
        if (e.kind !== 'create' || e.table !== 'services' || e.object.spec.name !== 'nofit') return;
        const svc = e.object;
        setTimeout(() => {
          void store.update((tx) =>
            tx.tasks.create({
              meta: Meta.create({ id: 'nofitaaaaaaaaaaaaaaaaaaaa' }),
              serviceId: svc.meta.id,
              slot: 1,
              nodeId: '',
              desiredState: TaskState.RUNNING,
              status: {
                state: TaskState.PENDING,
                timestamp: Date.now(),
                message: '',
                err: 'no suitable node (scheduling constraints not satisfied on 1 node)',
                exitCode: 0,
                containerId: '',
                health: '',
                pid: 0,
                startedAt: 0,
                runningAt: 0,
                portStatus: [],
              },
              spec: svc.spec.task,
              serviceVersion: svc.meta.version,
              networks: [],
              serviceName: 'nofit',
              restartAttempt: 0,
              jobIteration: 0,
              hostPorts: [],
              serviceLabels: {},
            }),
          );
        }, 20);
      },
      { tables: ['services'], commits: 'none' },
    );
    try {
      const r = await run('service', 'create', '--no-resolve-image', '--name', 'nofit', '--constraint', 'node.labels.disk==ssd', 'busybox');
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/1\/1: pending .* no suitable node \(scheduling constraints not satisfied on 1 node\)\n$/);
      expect(r.err).toBe(
        'tsswarm: no suitable node (scheduling constraints not satisfied on 1 node)\nthe service was created; fix the constraints with `tsswarm service update` or remove it\n',
      );
      expect(store.view((tx) => tx.services.byName('nofit'))).toBeDefined();
    } finally {
      sub.close();
    }
    await run('service', 'rm', 'conv', 'nofit');
  });

  it('rm removes several services and reports the ones it could not', async () => {
    const r = await run('service', 'rm', 'web', 'nope');
    expect(r.code).toBe(1);
    expect(r.out).toBe('web\n');
    expect(r.err).toMatch(/service nope not found/);
    expect(store.view((tx) => tx.services.count())).toBe(0);
  });
});
