// `swarm update` on a lone manager: UpdateCluster is a versioned write of the
// cluster object, checked as the CLI checks it, and the running manager
// applies it without a restart: the dispatcher tells agents the new heartbeat
// period in its next ack, the orchestrator reaps to the new history limit,
// Raft snapshots at the new interval, new certificates get the new validity.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentSession, type SessionOptions } from '../../../agent/session.js';
import { createCSR, generateNodeKey, parseNodeCert } from '../../../ca/index.js';
import type { TsswarmError } from '../../../lib/errors.js';
import type { Orchestration } from '../../../manager/orchestrator/index.js';
import type { AgentMessage, ManagerMessage, UpdateClusterRequest } from '../../../proto/gen/control.js';
import { Meta, RestartCondition, type ServiceSpec, Task, TaskState } from '../../../proto/gen/objects.js';
import { clusterSettings } from '../../../spec/cluster.js';
import { DataKeys, kekFromUnlockKey, newUnlockKey, realVfs } from '../../../manager/raft/storage/index.js';
import { until } from '../../lib/wait.js';
import { dispatcherHarness, log } from '../dispatcher/harness.js';
import { type LoneManager, startLoneManager } from '../lone-manager.js';

const { serve, openSession } = dispatcherHarness();

let lone: LoneManager;
beforeAll(async () => {
  lone = await startLoneManager('m1', 'c-settings');
}, 30_000);
afterAll(() => lone?.close());

const handlers = () => lone.manager.controlHandlers();
const version = () => Number(lone.manager.cluster()!.meta.version);
const none = { taskHistoryLimit: 0, dispatcherHeartbeatMs: 0, certExpiryMs: 0, snapshotInterval: 0, autolock: false };
const update = (set: string[], s: Partial<UpdateClusterRequest['settings'] & object>, v = version()) =>
  handlers().updateCluster({ version: v, set, settings: { ...none, ...s } });

async function refused(p: Promise<unknown>): Promise<TsswarmError> {
  try {
    await p;
  } catch (e) {
    return e as TsswarmError;
  }
  throw new Error('expected a refusal');
}

describe('UpdateCluster on a lone manager', () => {
  it('a new cluster holds the defaults, the heartbeat seeded by the daemon (60s here), and info shows them', async () => {
    expect(clusterSettings(lone.manager.cluster()!.spec)).toEqual({
      taskHistoryLimit: 5,
      dispatcherHeartbeatMs: 60_000,
      certExpiryMs: 90 * 24 * 3_600_000,
      snapshotInterval: 10_000,
      autolock: false,
    });
    const info = lone.manager.clusterApi.info({ state: 'active' });
    expect(info.clusterSettings).toEqual(clusterSettings(lone.manager.cluster()!.spec));
    expect(info.clusterVersion).toBe(version());
  });

  it('refuses a stale version, bad values naming the flag, and an empty change; nothing is written', async () => {
    const before = lone.manager.cluster();
    const stale = await refused(update(['task-history-limit'], { taskHistoryLimit: 2 }, version() - 1));
    expect(stale.code).toBe('CONFLICT');
    expect(stale.message).toContain('the cluster changed since it was read');
    expect((await refused(update(['dispatcher-heartbeat'], { dispatcherHeartbeatMs: 10 }))).message).toBe(
      '--dispatcher-heartbeat must be a duration from 100ms to 24h, e.g. 5s (the default) (got "10ms")',
    );
    expect((await refused(update(['cert-expiry'], { certExpiryMs: 60_000 }))).message).toContain('at least 1h');
    expect((await refused(update(['snapshot-interval'], { snapshotInterval: 0 }))).message).toContain('--snapshot-interval must be');
    expect((await refused(update([], {}))).message).toContain('nothing to update');
    expect((await refused(update(['name'], {}))).message).toContain('set must be settings among task-history-limit');
    expect(lone.manager.cluster()).toEqual(before);
  });

  it('the dispatcher tells a connected agent the new heartbeat period in its next ack, without a restart', async () => {
    const stream = openSession(await serve(lone.manager.dispatcher, 'm1'));
    const got: ManagerMessage[] = [];
    stream.on('data', (m: ManagerMessage) => got.push(m));
    // Cancelled at the end of the test (the harness's cleanup).
    stream.on('error', () => undefined);
    stream.write({ hello: { description: { hostname: 'm1' }, addr: '127.0.0.1:4242' } } as AgentMessage);
    const welcome = await until('the welcome', () => got.find((m) => m.welcome)?.welcome);
    expect(welcome.heartbeatPeriodMs).toBe(60_000);

    const r = await update(['dispatcher-heartbeat'], { dispatcherHeartbeatMs: 2000 });
    expect(r.settings!.dispatcherHeartbeatMs).toBe(2000);
    expect(r.version).toBe(version());
    await until('the dispatcher to use the new period', () => lone.manager.dispatcher.heartbeatPeriodMs === 2000);
    stream.write({ heartbeat: {} } as AgentMessage);
    const ack = await until('a heartbeat ack', () => got.find((m) => m.heartbeatAck)?.heartbeatAck);
    expect(ack.heartbeatPeriodMs).toBe(2000);
  });

  it("a changed period reaches a real agent session's heartbeat timer through its next ack (swarm update --dispatcher-heartbeat)", async () => {
    await update(['dispatcher-heartbeat'], { dispatcherHeartbeatMs: 300 });
    await until('the dispatcher to use 300ms', () => lone.manager.dispatcher.heartbeatPeriodMs === 300);
    const addr = await serve(lone.manager.dispatcher, 'm1');
    const s = new AgentSession({
      nodeId: 'm1',
      addr: '127.0.0.1',
      description: { hostname: 'm1' } as SessionOptions['description'],
      credentials: () => grpc.credentials.createInsecure(),
      managers: () => [addr],
      logger: log,
    });
    try {
      s.start();
      await until('the welcome to arm the heartbeat at 300ms', () => s.armedPeriodMs === 300);
      await update(['dispatcher-heartbeat'], { dispatcherHeartbeatMs: 200 });
      // No restart, no new session: the agent's next beat is answered with the new period.
      await until('the agent to beat every 200ms', () => s.armedPeriodMs === 200);
      expect(s.connectedTo).toBe(addr);
    } finally {
      s.stop();
      await update(['dispatcher-heartbeat'], { dispatcherHeartbeatMs: 60_000 });
    }
  });

  it('the orchestrator reaps to the new task history limit at once; 0 keeps none, -1 keeps all', async () => {
    const m = lone.manager;
    const spec = {
      name: 'web',
      labels: {},
      task: {
        container: { image: 'busybox', command: [], args: ['sleep', '1d'], env: [], mounts: [] },
        restart: { condition: RestartCondition.ANY, delayMs: 0, maxAttempts: 0, windowMs: 0 },
      },
      replicated: { replicas: 1 },
    } as unknown as ServiceSpec;
    await m.services.createService({ spec });
    const current = await until('the service to have its task', () =>
      m.store.view((tx) => tx.tasks.list().find((t) => t.serviceName === 'web' && t.desiredState === TaskState.RUNNING)),
    );
    const oldTasks = async (n: number, from: number) =>
      m.store.update((tx) => {
        for (let i = 0; i < n; i++)
          tx.tasks.create(
            Task.create({
              ...current,
              meta: Meta.create({ id: `old-${from + i}`, createdAt: 1000 + from + i }),
              desiredState: TaskState.SHUTDOWN,
              status: { ...current.status, state: TaskState.FAILED },
            }),
          );
      });
    const old = () =>
      m.store.view((tx) =>
        tx.tasks
          .list()
          .filter((t) => t.meta.id.startsWith('old-'))
          .map((t) => t.meta.id),
      );
    const orch = () => (m as unknown as { orchestration: Orchestration }).orchestration;
    /** Runs `write`, then waits until the orchestrator has passed over it (no fixed sleep). */
    const passedAfter = async (write: () => Promise<unknown>) => {
      const passes = orch().orchestrator.passes;
      await write();
      await until('an orchestration pass after the write', () => orch().orchestrator.passes > passes);
      await orch().idle();
    };
    // The default keeps 5: all 4 stay.
    await passedAfter(() => oldTasks(4, 0));
    expect(old()).toHaveLength(4);
    await update(['task-history-limit'], { taskHistoryLimit: 1 });
    await until('history cut to the newest old task', () => JSON.stringify(old()) === JSON.stringify(['old-3']));
    await update(['task-history-limit'], { taskHistoryLimit: 0 });
    await until('no history kept', () => old().length === 0);
    await update(['task-history-limit'], { taskHistoryLimit: -1 });
    expect(m.cluster()!.spec.orchestration).toEqual({ taskHistoryRetentionLimit: -1 });
    await passedAfter(() => oldTasks(7, 10));
    expect(old()).toHaveLength(7);
  });

  it('raft takes the snapshot interval, and new certificates the cert expiry', async () => {
    const m = lone.manager;
    await update(['snapshot-interval', 'cert-expiry'], { snapshotInterval: 123, certExpiryMs: 2 * 3_600_000 });
    expect(clusterSettings(m.cluster()!.spec)).toMatchObject({ snapshotInterval: 123, certExpiryMs: 7_200_000 });
    await until('raft to snapshot every 123 entries', () => m.consensus.node.snapshotEntries === 123);
    const key = generateNodeKey();
    const issued = await (m as unknown as { issueCertificate(req: object, caller: null): Promise<{ certPem: string }> }).issueCertificate(
      {
        token: m.cluster()!.spec.workerToken,
        csrPem: createCSR(key.privateKeyPem, { nodeId: 'w' }),
        addr: '127.0.0.1:4243',
        hostname: 'w1',
        nodeId: '',
      },
      null,
    );
    const cert = parseNodeCert(issued.certPem);
    // Backdated by a tenth of the validity (at most 1h) for clock skew; both ends rounded to seconds.
    const span = cert.notAfter.getTime() - cert.notBefore.getTime();
    expect(Math.abs(span - (2 * 3_600_000 + 720_000))).toBeLessThanOrEqual(1000);
  });
});

describe('a cluster made with autolock (init --autolock)', () => {
  it('starts with the key in the cluster object, and its manager locks its Raft keys with it', async () => {
    const key = newUnlockKey();
    const locked = await startLoneManager('m2', 'c-autolock', { unlockKey: key });
    try {
      expect(clusterSettings(locked.manager.cluster()!.spec).autolock).toBe(true);
      expect(await locked.manager.controlHandlers().getUnlockKey({})).toEqual({ unlockKey: key });
      await until('the raft keys locked', async () => (await DataKeys.sourceOf(realVfs, locked.raftDir)) === 'unlock-key', {
        timeoutMs: 10_000,
        everyMs: 20,
      });
      expect((await DataKeys.load(realVfs, locked.raftDir, kekFromUnlockKey(key))).kekId).toBe(kekFromUnlockKey(key).id);
    } finally {
      await locked.close();
    }
  });
});
