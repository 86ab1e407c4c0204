// Dispatcher sessions over real gRPC on loopback with the product's message
// limit: a node whose assignments exceed one message still gets them all, and
// a node that stops reading is cut off at its queue's cap while a reading
// node carries on.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AgentSession } from '../../../agent/session.js';
import { localStore, type MemoryStore, MAX_TRANSACTION_BYTES } from '../../../manager/store/index.js';
import { MAX_MESSAGE_BYTES, grpcChannelOptions, grpcServerOptions } from '../../../lib/grpc.js';
import { type AgentMessage, type Assignments, ManagerMessage } from '../../../proto/gen/control.js';
import { Meta, Task, TaskState } from '../../../proto/gen/objects.js';
import { dispatcherHarness, log } from './harness.js';
import { until as waitUntil } from '../../lib/wait.js';

const { cleanup, dispatcher, serve, openSession } = dispatcherHarness({
  serverOptions: grpcServerOptions(),
  channelOptions: grpcChannelOptions(),
});

/** An agent session as the daemon runs it; every assignments message it applies is recorded. */
function agent(addr: string, nodeId: string): { got: Assignments[]; session: AgentSession } {
  const got: Assignments[] = [];
  const session = new AgentSession({
    nodeId,
    addr: '127.0.0.1',
    description: { hostname: nodeId } as never,
    credentials: () => grpc.credentials.createInsecure(),
    managers: () => [addr],
    logger: log,
    onAssignments: (m) => got.push(m.assignments!),
  });
  session.start();
  cleanup.push(() => session.stop());
  return { got, session };
}

const task = (id: string, nodeId: string, envBytes: number): Task =>
  Task.create({
    meta: Meta.create({ id }),
    nodeId,
    serviceId: 's1',
    slot: 1,
    desiredState: TaskState.RUNNING,
    status: { state: TaskState.ASSIGNED } as never,
    spec: { container: { image: 'busybox', env: [`PAYLOAD=${'p'.repeat(envBytes)}`] } } as never,
  });

/** Creates `n` tasks on `nodeId` in as many transactions as the store's entry cap needs. */
async function addTasks(store: MemoryStore, nodeId: string, prefix: string, n: number, envBytes: number): Promise<void> {
  const perTx = Math.floor((MAX_TRANSACTION_BYTES * 0.8) / (envBytes + 200));
  for (let i = 0; i < n; i += perTx) {
    await store.update((tx) => {
      for (let j = i; j < Math.min(n, i + perTx); j++) tx.tasks.create(task(`${prefix}${j}`, nodeId, envBytes));
    });
  }
}

const waitFor = (cond: () => boolean, what: string, timeoutMs = 60_000): Promise<unknown> =>
  waitUntil(what, cond, { timeoutMs, everyMs: 10 });

describe('dispatcher sessions', () => {
  it('a node whose full assignment set is larger than one gRPC message opens its session and gets every task', async () => {
    const store = localStore();
    await addTasks(store, 'n1', 't', 4000, 5000);
    const full = store.view((tx) => tx.tasks.by('node', 'n1'));
    // The set as one message would be refused by the agent's channel.
    expect(
      ManagerMessage.encode(ManagerMessage.create({ assignments: { full: true, tasks: full, removedTaskIds: [] } })).length,
    ).toBeGreaterThan(MAX_MESSAGE_BYTES);
    const d = dispatcher(store);
    const a = agent(await serve(d, 'n1'), 'n1');
    await waitFor(() => a.got.length > 0, 'the full set at the agent');
    expect(a.got).toHaveLength(1);
    expect(a.got[0]!.full).toBe(true);
    expect(a.got[0]!.tasks.map((t) => t.meta.id).sort()).toEqual(full.map((t) => t.meta.id).sort());
    // The session is alive and changes follow.
    await addTasks(store, 'n1', 'later', 1, 10);
    await waitFor(() => a.got.length === 2, 'the change after the full set');
    expect(a.got[1]).toMatchObject({ full: false, tasks: [expect.objectContaining({ meta: expect.objectContaining({ id: 'later0' }) })] });
    expect(a.session.connectedTo).not.toBe('');
  });

  it('disconnects a node that stops reading once its queue passes the cap; a reading node is unaffected', async () => {
    const store = localStore();
    const cap = 8 << 20;
    const d = dispatcher(store, { maxSessionQueueBytes: cap });
    const normal = agent(await serve(d, 'n-normal'), 'n-normal');
    await waitFor(() => normal.got.length === 1, 'the normal node’s (empty) full set');

    // A raw session that says hello and then never reads a message.
    const call = openSession(await serve(d, 'n-stalled'));
    let status: grpc.StatusObject | null = null;
    call.on('status', (s: grpc.StatusObject) => (status = s));
    call.on('error', () => undefined);
    call.write({ hello: { description: { hostname: 'n-stalled' }, addr: '127.0.0.1' } } as AgentMessage);
    await waitFor(() => d.hasSession('n-stalled'), 'the stalled node’s session');

    let peak = 0;
    let rounds = 0;
    while (status === null && rounds < 200) {
      rounds++;
      // ~1 MB of new tasks for each node per round.
      await addTasks(store, 'n-stalled', `s${rounds}-`, 180, 5000);
      await addTasks(store, 'n-normal', `n${rounds}-`, 2, 100);
      peak = Math.max(peak, d.sessionQueueBytes('n-stalled'));
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => status !== null, 'the stalled session to end');
    expect(status!.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(d.stalledDisconnects).toBe(1);
    expect(d.hasSession('n-stalled')).toBe(false);
    // Bounded: never more than the cap plus the one message that crossed it.
    expect(peak).toBeLessThanOrEqual(cap + (2 << 20));
    expect(rounds).toBeGreaterThan(3);

    // The reading node got every one of its tasks, on the same session.
    const mine = store.view((tx) => tx.tasks.by('node', 'n-normal')).map((t) => t.meta.id);
    await waitFor(() => normal.got.flatMap((a) => a.tasks).length === mine.length, 'every task at the normal node');
    expect(normal.got.flatMap((a) => a.tasks.map((t) => t.meta.id)).sort()).toEqual(mine.sort());
    expect(d.hasSession('n-normal')).toBe(true);
  });
});
