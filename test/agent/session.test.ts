// The agent's session with the managers over real gRPC on 127.0.0.1, with the
// retry timers on a fake clock: backoff growth and its cap, failover past a
// manager that is down, a follower's NOT_LEADER redirect, and status reports
// queued by the worker while no session was open reaching the next manager.
import * as grpc from '@grpc/grpc-js';
import { createServer } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentSession, type SessionOptions } from '../../agent/session.js';
import { containerIdOf } from '../../agent/worker/task.js';
import { Worker } from '../../agent/worker/worker.js';
import { Dispatcher } from '../../manager/dispatcher/dispatcher.js';
import { localStore } from '../../manager/store/index.js';
import { type AgentMessage, DispatcherService, ManagerMessage } from '../../proto/gen/control.js';
import { Task, TaskState, type TaskStatus } from '../../proto/gen/objects.js';
import { FakeClock } from '../lib/clock.js';
import { until } from '../lib/wait.js';
import { stubLiveness } from '../manager/dispatcher/harness.js';
import { FakeRuntime } from './worker/fake-runtime.js';

const log = pino({ level: 'silent' });
const wait = <T>(what: string, fn: () => T): Promise<NonNullable<T>> => until(what, fn, { timeoutMs: 8_000, everyMs: 5 });

/** A fake clock that also remembers the delay of every timer set on it. */
class RetryClock extends FakeClock {
  readonly delays: number[] = [];
  override setTimeout(fn: () => void, ms: number): unknown {
    this.delays.push(ms);
    return super.setTimeout(fn, ms);
  }
  /** Waits for the next retry to be scheduled, fires it, and returns its delay. */
  async nextRetry(): Promise<number> {
    await wait('a retry to be scheduled', () => this.pending === 1);
    const d = this.delays.at(-1)!;
    this.advance(d);
    return d;
  }
}

const cleanup: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function listen(server: grpc.Server): Promise<string> {
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  return `127.0.0.1:${port}`;
}

/** A loopback address where nothing listens (a manager that is down). */
async function deadAddr(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return `127.0.0.1:${port}`;
}

/** A real dispatcher on loopback: the leader, or a follower that names `leaderAddr` ('' when it knows no leader). */
async function manager(o: { follower?: boolean; leaderAddr?: string } = {}): Promise<{ addr: string; d: Dispatcher }> {
  const liveness = { ...stubLiveness(), isLeader: () => !o.follower, leaderAddr: () => o.leaderAddr ?? '' };
  const d = new Dispatcher({ heartbeatPeriodMs: 60_000, graceMultiplier: 3, logger: log, liveness, store: localStore() });
  const server = new grpc.Server();
  server.addService(DispatcherService, { session: (s: grpc.ServerDuplexStream<AgentMessage, ManagerMessage>) => d.session(s, 'tssn1') });
  const addr = await listen(server);
  cleanup.push(
    () => d.close(),
    () => void server.forceShutdown(),
  );
  return { addr, d };
}

/** A manager that welcomes every session and records what the agent sends; `down()` kills it. */
async function recordingManager(): Promise<{
  addr: string;
  got: AgentMessage[];
  sessions: number;
  down: () => void;
  send: (m: ManagerMessage) => void;
}> {
  const server = new grpc.Server();
  const r = {
    addr: '',
    got: [] as AgentMessage[],
    sessions: 0,
    down: () => server.forceShutdown(),
    send: (_m: ManagerMessage): void => undefined,
  };
  server.addService(DispatcherService, {
    session: (call: grpc.ServerDuplexStream<AgentMessage, ManagerMessage>) => {
      call.on('error', () => undefined);
      call.on('data', (m: AgentMessage) => {
        r.got.push(m);
        if (!m.hello) return;
        r.sessions++;
        r.send = (x) => void call.write(x);
        call.write(
          ManagerMessage.create({
            welcome: {
              sessionId: `s${r.sessions}`,
              heartbeatPeriodMs: 60_000,
              managerAddrs: [],
              desiredRole: 'worker',
              managerNodeIds: [],
              trustDigest: '',
              signingRootDigest: '',
            },
          }),
        );
      });
    },
  });
  r.addr = await listen(server);
  cleanup.push(() => void server.forceShutdown());
  return r;
}

function session(managers: () => string[], clock: FakeClock, extra: Partial<SessionOptions> = {}): AgentSession {
  const s = new AgentSession({
    nodeId: 'tssn1',
    addr: '127.0.0.1',
    description: { hostname: 'tssn1' } as SessionOptions['description'],
    credentials: () => grpc.credentials.createInsecure(),
    managers,
    logger: log,
    timers: clock,
    ...extra,
  });
  cleanup.push(() => s.stop());
  return s;
}

describe('the agent session', () => {
  it('with no manager known, retries back off from 100 ms, doubling up to a 2 s cap; stop() cancels the pending retry', async () => {
    const clock = new RetryClock();
    const s = session(() => [], clock);
    s.start();
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) delays.push(await clock.nextRetry());
    expect(delays).toEqual([100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    await wait('the next retry', () => clock.pending === 1);
    s.stop();
    expect(clock.pending).toBe(0);
    expect(s.connectedTo).toBe('');
  });

  it('fails over past a manager that is down to the next one it knows, and the dispatcher there holds its session', async () => {
    const clock = new RetryClock();
    const dead = await deadAddr();
    const up = await manager();
    const opened: string[] = [];
    const s = session(() => [dead, up.addr], clock, { onOpen: () => opened.push(s.connectedTo) });
    s.start();
    expect(await clock.nextRetry()).toBe(100);
    await wait('the session with the live manager', () => s.connectedTo === up.addr);
    expect(up.d.hasSession('tssn1')).toBe(true);
    expect(opened).toEqual([up.addr]);
    expect(s.send({ heartbeat: {} } as AgentMessage)).toBe(true);
  });

  it("a follower's NOT_LEADER answer sends the session straight to the leader it names, with no backoff, even when the leader is not in the list", async () => {
    const clock = new RetryClock();
    const leader = await manager();
    const follower = await manager({ follower: true, leaderAddr: leader.addr });
    const s = session(() => [follower.addr], clock);
    s.start();
    expect(await clock.nextRetry()).toBe(0);
    await wait('the session with the leader', () => s.connectedTo === leader.addr);
    expect(leader.d.hasSession('tssn1')).toBe(true);
    expect(follower.d.hasSession('tssn1')).toBe(false);
    expect(clock.delays).toEqual([0]);
  });

  it('when its manager loses the leadership, the session moves to the new leader it names at once', async () => {
    const clock = new RetryClock();
    const next = await manager();
    const roles: { follower?: boolean; leaderAddr?: string } = {};
    const old = await manager(roles);
    const s = session(() => [old.addr], clock);
    s.start();
    await wait('the session with the old leader', () => s.connectedTo === old.addr);
    roles.follower = true;
    roles.leaderAddr = next.addr;
    old.d.lostLeadership();
    expect(await clock.nextRetry()).toBe(0);
    await wait('the session with the new leader', () => s.connectedTo === next.addr);
    expect(next.d.hasSession('tssn1')).toBe(true);
    expect(old.d.hasSession('tssn1')).toBe(false);
  });

  it('a follower with no leader to name is retried with the normal backoff', async () => {
    const clock = new RetryClock();
    const follower = await manager({ follower: true });
    const s = session(() => [follower.addr], clock);
    s.start();
    expect([await clock.nextRetry(), await clock.nextRetry(), await clock.nextRetry()]).toEqual([100, 200, 400]);
    expect(s.connectedTo).toBe('');
  });

  it('a welcome resets the backoff: a session lost after failures is retried after 100 ms again', async () => {
    const clock = new RetryClock();
    const m = await recordingManager();
    let known: string[] = [];
    const s = session(() => known, clock);
    s.start();
    expect([await clock.nextRetry(), await clock.nextRetry(), await clock.nextRetry()]).toEqual([100, 200, 400]);
    known = [m.addr];
    expect(await clock.nextRetry()).toBe(800);
    await wait('the session', () => s.connectedTo === m.addr);
    m.down();
    await wait('the session lost', () => s.connectedTo === '');
    expect(await clock.nextRetry()).toBe(100);
  });

  it('status reports made while no session is open are sent to the next manager once its session opens', async () => {
    const clock = new RetryClock();
    const a = await recordingManager();
    const b = await recordingManager();
    const rt = new FakeRuntime();
    let s!: AgentSession;
    const worker = new Worker({ runtime: rt.asRuntime(), nodeId: 'tssn1', logger: log, send: (m) => s.send(m) });
    worker.start();
    cleanup.push(() => worker.close());
    // Wired as the daemon wires them (node/daemon.ts).
    s = session(() => [a.addr, b.addr], clock, {
      onAssignments: (m) => worker.assignments(m.assignments!),
      onOpen: () => worker.sessionOpened(),
    });
    s.start();
    await wait('the session with a', () => s.connectedTo === a.addr);

    const t = Task.create({
      meta: { id: 'tsssess1', version: 1, createdAt: 0, updatedAt: 0 },
      serviceId: 'svc1',
      serviceName: 'web',
      slot: 1,
      nodeId: 'tssn1',
      desiredState: TaskState.RUNNING,
      status: { state: TaskState.ASSIGNED } as TaskStatus,
      spec: { container: { image: 'tss/busybox:latest' } } as Task['spec'],
    });
    a.send(ManagerMessage.create({ assignments: { full: true, tasks: [t], removedTaskIds: [] } }));
    const states = (m: { got: AgentMessage[] }): TaskState[] =>
      m.got
        .flatMap((x) => x.taskStatus?.updates ?? [])
        .filter((u) => u.taskId === t.meta.id)
        .map((u) => u.status!.state);
    await wait('RUNNING at a', () => states(a).includes(TaskState.RUNNING));

    a.down();
    await wait('the session lost', () => s.connectedTo === '');
    rt.exit(containerIdOf(t), 7);
    await wait('the task failed at the agent', () => worker.runner(t.meta.id)?.state === TaskState.FAILED);
    expect(states(a)).not.toContain(TaskState.FAILED);
    expect(states(b)).toEqual([]);

    expect(await clock.nextRetry()).toBe(100);
    await wait('the session with b', () => s.connectedTo === b.addr);
    await wait('the FAILED report at b', () => states(b).includes(TaskState.FAILED));
    const report = b.got.flatMap((x) => x.taskStatus?.updates ?? []).find((u) => u.taskId === t.meta.id)!;
    expect(report.status).toMatchObject({ state: TaskState.FAILED, exitCode: 7, err: 'task: non-zero exit (7)' });
    // The hello comes first on the new session, the reports after it.
    expect(b.got[0]!.hello).toBeTruthy();
  });
});
