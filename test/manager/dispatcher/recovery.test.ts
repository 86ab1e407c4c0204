// The dispatcher's writers recover from a lost write: a node's state write
// that fails or never answers frees the node's write slot and is written
// again, and the task status writer keeps a failed batch and goes on writing.
import { afterEach, describe, expect, it } from 'vitest';
import { Dispatcher, type NodeLiveness, writeNodeState } from '../../../manager/dispatcher/dispatcher.js';
import { StatusWriter } from '../../../manager/dispatcher/status.js';
import { MemoryStore, type Proposer } from '../../../manager/store/index.js';
import { Meta, Node, NodeSpec, NodeState, Task, TaskState, type TaskStatus } from '../../../proto/gen/objects.js';
import { log } from './harness.js';
import { until as waitUntil } from '../../lib/wait.js';

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0).reverse()) f();
});

const waitFor = (cond: () => boolean, what: string, timeoutMs = 10_000): Promise<unknown> =>
  waitUntil(what, cond, { timeoutMs, everyMs: 5 });

/**
 * A store whose proposer applies at once, except: the calls in `hang` never
 * answer, those in `lose` reject as Raft does for an entry it lost, and before
 * the calls in `race` another writer's update of the same objects lands first.
 */
function store(
  o: { hang?: number[]; lose?: number[]; race?: number[]; raceWith?: (s: MemoryStore) => Promise<void>; proposeTimeoutMs?: number } = {},
): { s: MemoryStore; calls: () => number } {
  let calls = 0;
  let index = 0;
  let racing = false;
  const p: Proposer = {
    propose: async (d) => {
      const call = racing ? 0 : ++calls;
      if (o.hang?.includes(call)) return new Promise<number>(() => undefined);
      if (o.lose?.includes(call))
        throw Object.assign(new Error("raft proposal dropped: its entry was replaced by a later leader's entry"), {
          code: 'PROPOSAL_DROPPED',
        });
      if (o.race?.includes(call)) {
        racing = true;
        await o.raceWith!(s);
        racing = false;
      }
      s.apply(d, ++index);
      return index;
    },
  };
  const s: MemoryStore = new MemoryStore(p, { proposeTimeoutMs: o.proposeTimeoutMs ?? 30_000 });
  return { s, calls: () => calls };
}

const liveness = (setState: NodeLiveness['setState']): NodeLiveness => ({
  setState,
  nodeIds: () => [],
  desiredRole: () => 'worker',
  managerAddrs: () => [],
  leaderAddr: () => '',
  isLeader: () => true,
  silentManagers: () => [],
});

function dispatcher(setState: NodeLiveness['setState'], o: { stateWriteTimeoutMs?: number } = {}): Dispatcher {
  const d = new Dispatcher({
    heartbeatPeriodMs: 60_000,
    graceMultiplier: 3,
    logger: log,
    liveness: liveness(setState),
    stateWriteRetryMs: 10,
    ...o,
  });
  cleanup.push(() => d.close());
  return d;
}

/** What a hello or a missed heartbeat asks of the dispatcher. */
const request = (d: Dispatcher, nodeId: string, state: 'ready' | 'down'): void =>
  (d as unknown as { request: (n: string, s: 'ready' | 'down', i: { message: string }) => void }).request(nodeId, state, {
    message: state === 'down' ? 'heartbeat failure' : '',
  });

const stateOf = (s: MemoryStore, id: string): NodeState | undefined => s.view((tx) => tx.nodes.get(id)?.status?.state);

async function withNode(s: MemoryStore, id: string): Promise<void> {
  await s.update((tx) => tx.nodes.create(Node.create({ meta: Meta.create({ id }), spec: NodeSpec.create({ name: id }) })));
}

describe('node-state writes', () => {
  it('a write that never answers gives up its node at the bound, and the node is still marked READY, then DOWN', async () => {
    const written: string[] = [];
    let calls = 0;
    const d = dispatcher(
      async (id, state) => {
        if (++calls === 1) return new Promise<void>(() => undefined);
        written.push(`${id}:${state}`);
      },
      { stateWriteTimeoutMs: 50 },
    );
    request(d, 'n1', 'ready');
    await waitFor(() => written.length === 1, 'the READY written again');
    expect(written).toEqual(['n1:ready']);
    await waitFor(() => d.stateWritesInFlight === 0, 'the write slot freed');
    request(d, 'n1', 'down');
    await waitFor(() => written.length === 2, 'the DOWN written');
    expect(written).toEqual(['n1:ready', 'n1:down']);
  });

  it("with the store: a READY whose proposal was lost is written again, and the node's next DOWN goes through", async () => {
    const { s } = store({ lose: [2] });
    await withNode(s, 'n1');
    const d = dispatcher((id, state, info) => writeNodeState(s, id, state, info, { isLeader: () => true }));
    request(d, 'n1', 'ready');
    await waitFor(() => stateOf(s, 'n1') === NodeState.READY, 'n1 READY');
    await waitFor(() => d.stateWritesInFlight === 0, 'the write slot freed');
    request(d, 'n1', 'down');
    await waitFor(() => stateOf(s, 'n1') === NodeState.DOWN, 'n1 DOWN');
  });

  it("with the store: a READY whose proposal never answers settles at the store's bound and is written again", async () => {
    const { s } = store({ hang: [2], proposeTimeoutMs: 50 });
    await withNode(s, 'n1');
    const d = dispatcher((id, state, info) => writeNodeState(s, id, state, info, { isLeader: () => true }));
    request(d, 'n1', 'ready');
    await waitFor(() => stateOf(s, 'n1') === NodeState.READY, 'n1 READY');
    await waitFor(() => d.stateWritesInFlight === 0, 'the write slot freed');
  });

  it('a write that conflicts on every try fails, so that the dispatcher keeps the evidence, instead of returning as if written', async () => {
    // Another writer (a label update) lands before each of the three tries.
    const bump = async (x: MemoryStore): Promise<void> => {
      await x.update((tx) => {
        const n = tx.nodes.get('n1')!;
        tx.nodes.update(Node.create({ ...n, spec: { ...n.spec, labels: { v: String(Math.random()) } } }));
      });
    };
    const { s } = store({ race: [2, 3, 4], raceWith: bump });
    await withNode(s, 'n1');
    await expect(writeNodeState(s, 'n1', 'ready', { message: '' }, { isLeader: () => true })).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(stateOf(s, 'n1')).not.toBe(NodeState.READY);
    await writeNodeState(s, 'n1', 'ready', { message: '' }, { isLeader: () => true });
    expect(stateOf(s, 'n1')).toBe(NodeState.READY);
  });
});

describe('the task status writer', () => {
  const running = (): TaskStatus => ({ state: TaskState.RUNNING, message: 'started' }) as TaskStatus;
  const stateOfTask = (s: MemoryStore, id: string): TaskState | undefined => s.view((tx) => tx.tasks.get(id)?.status?.state);

  async function withTasks(s: MemoryStore, ...ids: string[]): Promise<void> {
    await s.update((tx) => {
      for (const id of ids)
        tx.tasks.create(
          Task.create({
            meta: Meta.create({ id }),
            nodeId: 'n1',
            serviceId: 's1',
            slot: 1,
            desiredState: TaskState.RUNNING,
            status: { state: TaskState.ASSIGNED } as never,
          }),
        );
    });
  }

  function writer(s: MemoryStore, o: { writeTimeoutMs?: number } = {}): StatusWriter {
    const w = new StatusWriter(s, log, { retryMs: 10, ...o });
    cleanup.push(() => w.close());
    return w;
  }

  it('a batch whose proposal was lost is kept and written, and later reports are still written', async () => {
    const { s } = store({ lose: [2] });
    await withTasks(s, 't1', 't2');
    const w = writer(s);
    w.push('n1', [{ taskId: 't1', status: running() }]);
    await waitFor(() => stateOfTask(s, 't1') === TaskState.RUNNING, 't1 RUNNING');
    expect(w.failed).toBe(1);
    w.push('n1', [{ taskId: 't2', status: running() }]);
    await waitFor(() => stateOfTask(s, 't2') === TaskState.RUNNING, 't2 RUNNING');
  });

  it('a batch whose proposal never answers does not wedge the chain: it is written again, and so are later reports', async () => {
    // The store's own bound is far away: the writer's bound frees the chain.
    const { s } = store({ hang: [2] });
    await withTasks(s, 't1', 't2');
    const w = writer(s, { writeTimeoutMs: 50 });
    w.push('n1', [{ taskId: 't1', status: running() }]);
    await waitFor(() => stateOfTask(s, 't1') === TaskState.RUNNING, 't1 RUNNING');
    w.push('n1', [{ taskId: 't2', status: running() }]);
    await waitFor(() => stateOfTask(s, 't2') === TaskState.RUNNING, 't2 RUNNING');
  });

  it('a batch that conflicts on every try is kept for the next one, not dropped', async () => {
    const bump = async (x: MemoryStore): Promise<void> => {
      await x.update((tx) => {
        const t = tx.tasks.get('t1')!;
        tx.tasks.update(Task.create({ ...t, desiredState: TaskState.RUNNING, slot: t.slot }));
      });
    };
    const { s } = store({ race: [2, 3, 4, 5, 6], raceWith: bump });
    await withTasks(s, 't1');
    const w = writer(s);
    w.push('n1', [{ taskId: 't1', status: running() }]);
    await waitFor(() => stateOfTask(s, 't1') === TaskState.RUNNING, 't1 RUNNING');
    expect(w.failed).toBe(1);
  });
});
