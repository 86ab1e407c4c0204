// Node operations (`node update | demote | rm`) through the Control API
// handlers of one real in-process manager (Raft, store, orchestrators) on
// loopback without TLS: version checks, label bounds, the demote and remove
// refusals with their messages, `rm --force`, and what a drain does to tasks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manager } from '../../manager/manager.js';
import type { ControlHandlers, UpdateNodeRequest } from '../../proto/gen/control.js';
import {
  ContainerSpec,
  Meta,
  Node,
  NodeAvailability,
  NodeDescription,
  NodeRole,
  NodeSpec,
  NodeState,
  Placement,
  ServiceSpec,
  TaskSpec,
  TaskState,
} from '../../proto/gen/objects.js';
import { until } from '../lib/wait.js';
import { type LoneManager, startLoneManager } from './lone-manager.js';

const clusterId = 'tssnodeopscluster00000000';
let lone: LoneManager;
let m: Manager;
let api: ControlHandlers;

const wait = <T>(what: string, fn: () => T): Promise<NonNullable<T>> => until(what, fn, { timeoutMs: 8_000, everyMs: 20 });

beforeAll(async () => {
  lone = await startLoneManager('tssm1', clusterId);
  m = lone.manager;
  api = m.controlHandlers();
}, 30_000);

afterAll(() => lone?.close());

/** Adds a node to the store as if it had joined: a worker unless `role` says otherwise. */
async function addNode(id: string, o: { role?: NodeRole; state?: NodeState } = {}): Promise<Node> {
  const role = o.role ?? NodeRole.WORKER;
  const n = Node.create({
    meta: Meta.create({ id, createdAt: Date.now(), updatedAt: Date.now() }),
    spec: NodeSpec.create({ name: id, role, availability: NodeAvailability.ACTIVE, labels: {} }),
    role,
    status: { state: o.state ?? NodeState.READY, addr: '127.0.0.1', message: '' },
    description: NodeDescription.create({
      hostname: id,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCpus: 4e9, memoryBytes: 8 * 2 ** 30, pids: 0, generic: [] },
    }),
  });
  await m.store.update((tx) => tx.nodes.create(n));
  // The allocator gives every new node its ingress address in a write of its own; tests that
  // read a version and write with it wait for that first.
  const ingress = (): string | undefined => m.store.view((tx) => tx.networks.list().find((x) => x.spec?.ingress))?.meta?.id;
  return wait(`${id} given its ingress address`, () => {
    const cur = stored(id)!;
    const ing = ingress();
    return !ing || cur.attachments.some((a) => a.networkId === ing && a.addresses.length > 0) ? cur : undefined;
  });
}

const stored = (id: string): Node | undefined => m.store.view((tx) => tx.nodes.get(id));
const update = (req: Partial<UpdateNodeRequest> & { ref: string }) =>
  api.updateNode({ version: 0, availability: '', role: '', labelAdd: {}, labelRm: [], ...req });

/** The error a call ends with (the test fails if it does not fail). */
async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string; field?: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string; field?: string };
  }
  throw new Error('the call was expected to be refused, and it succeeded');
}

describe('node update', () => {
  it('refuses an update made from a stale read, naming both versions, and changes nothing', async () => {
    const n = await addNode('tssw-stale');
    const v = n.meta.version;
    await update({ ref: 'tssw-stale', version: v, labelAdd: { zone: 'a' } });
    const now = stored('tssw-stale')!.meta.version;
    expect(now).toBeGreaterThan(v);
    const e = await refusal(update({ ref: 'tssw-stale', version: v, labelAdd: { zone: 'b' } }));
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toBe(
      `update out of sequence: node tssw-stale changed since it was read (version ${v}, now ${now}): read it again and retry`,
    );
    expect(stored('tssw-stale')!.spec.labels).toEqual({ zone: 'a' });
    // The current version goes through.
    await update({ ref: 'tssw-stale', version: now, labelAdd: { zone: 'b' } });
    expect(stored('tssw-stale')!.spec.labels).toEqual({ zone: 'b' });
  });

  it('an update without a version is applied again when another write lands between its read and its write', async () => {
    await addNode('tssw-race');
    const cur = stored('tssw-race')!;
    // Proposed first, applied after `update` has read the node: its write then meets a newer version.
    const other = m.store.update((tx) => tx.nodes.update(Node.create({ ...cur, status: { ...cur.status, message: 'raced' } })));
    const mine = update({ ref: 'tssw-race', labelAdd: { zone: 'a' } });
    await Promise.all([other, mine]);
    const n = stored('tssw-race')!;
    expect(n.spec.labels).toEqual({ zone: 'a' });
    expect(n.status.message).toBe('raced');
  });

  it('adds and removes labels, and refuses to remove a label the node does not have, naming --label-rm', async () => {
    await addNode('tssw-labels');
    const r = await update({ ref: 'tssw-labels', labelAdd: { zone: 'a', disk: 'ssd' } });
    expect(r.node.spec.labels).toEqual({ zone: 'a', disk: 'ssd' });
    await update({ ref: 'tssw-labels', labelRm: ['disk'] });
    expect(stored('tssw-labels')!.spec.labels).toEqual({ zone: 'a' });
    const e = await refusal(update({ ref: 'tssw-labels', labelRm: ['nope'] }));
    expect(e).toMatchObject({ code: 'USAGE', field: '--label-rm', message: '--label-rm nope: node tssw-labels has no label "nope"' });
    expect(stored('tssw-labels')!.spec.labels).toEqual({ zone: 'a' });
  });

  it("bounds the labels as a service's: count, key and value length, empty key; each refusal names the field and --label-add", async () => {
    await addNode('tssw-bounds');
    const many = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, 'v']));
    const cases: [Record<string, string>, RegExp][] = [
      [many, /^spec\.labels has 257 entries: at most 256 are allowed \(--label-add\)$/],
      [{ ['k'.repeat(1025)]: 'v' }, /^spec\.labels has a key of 1025 characters: at most 1024 are allowed \(--label-add\)$/],
      [{ big: 'v'.repeat(4097) }, /^spec\.labels\.big is 4097 characters long: at most 4096 are allowed \(--label-add\)$/],
      [{ '': 'v' }, /^spec\.labels has an empty key: write --label-add KEY=VALUE$/],
    ];
    const before = stored('tssw-bounds')!.meta.version;
    for (const [labelAdd, msg] of cases) {
      const e = await refusal(update({ ref: 'tssw-bounds', labelAdd }));
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.message).toMatch(msg);
    }
    expect(stored('tssw-bounds')!.meta.version).toBe(before);
    // At the bounds, it is taken.
    const full = Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`k${i}`, i === 0 ? 'v'.repeat(4096) : 'v']));
    await update({ ref: 'tssw-bounds', labelAdd: full });
    expect(Object.keys(stored('tssw-bounds')!.spec.labels)).toHaveLength(256);
  });

  it('refuses an availability or role it does not know, naming the flag and the values it takes', async () => {
    await addNode('tssw-flags');
    expect(await refusal(update({ ref: 'tssw-flags', availability: 'off' }))).toMatchObject({
      code: 'USAGE',
      field: '--availability',
      message: '--availability must be one of active, pause, drain (got "off")',
    });
    expect(await refusal(update({ ref: 'tssw-flags', role: 'boss' }))).toMatchObject({
      code: 'USAGE',
      field: '--role',
      message: '--role must be worker or manager (got "boss")',
    });
    expect(stored('tssw-flags')!.spec.availability).toBe(NodeAvailability.ACTIVE);
  });

  it('refuses to demote the last manager, saying to promote another node first', async () => {
    const e = await refusal(update({ ref: 'tssm1', role: 'worker' }));
    expect(e).toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: 'cannot demote tssm1: it is the last manager. Promote another node first',
    });
    expect(stored('tssm1')!.spec.role).toBe(NodeRole.MANAGER);
    expect(m.consensus.status().config.voters).toHaveLength(1);
  });

  it('refuses a node it cannot find', async () => {
    expect((await refusal(update({ ref: 'tss-no-such-node', labelAdd: { a: 'b' } }))).code).toBe('NOT_FOUND');
  });

  it('drain: the node is marked DRAIN and the managers shut down the tasks it runs, placing none there again', async () => {
    await addNode('tssw-drain');
    const spec = ServiceSpec.create({
      name: 'tss-drainweb',
      task: TaskSpec.create({
        container: ContainerSpec.create({ image: 'busybox' }),
        placement: Placement.create({ constraints: ['node.hostname==tssw-drain'] }),
      }),
      replicated: { replicas: 1 },
    });
    const svc = await api.createService({ spec });
    const sid = svc.service.meta.id;
    const tasks = () => m.store.view((tx) => tx.tasks.list()).filter((t) => t.serviceId === sid);
    const first = await wait('the task assigned to tssw-drain', () =>
      tasks().find((t) => t.nodeId === 'tssw-drain' && t.status.state >= TaskState.ASSIGNED),
    );
    expect(first.desiredState).toBe(TaskState.RUNNING);
    const r = await update({ ref: 'tssw-drain', availability: 'drain' });
    expect(r.node.spec.availability).toBe(NodeAvailability.DRAIN);
    await wait('the task shut down', () => tasks().find((t) => t.meta.id === first.meta.id)!.desiredState >= TaskState.SHUTDOWN);
    // Its replacement has nowhere to go: no other node passes the constraint, and a drained node takes no task.
    const next = await wait('a replacement task', () =>
      tasks().find((t) => t.meta.id !== first.meta.id && t.desiredState === TaskState.RUNNING),
    );
    expect(next.status.state).toBe(TaskState.PENDING);
    expect(next.nodeId).toBe('');
    expect(tasks().filter((t) => t.desiredState <= TaskState.RUNNING && t.nodeId === 'tssw-drain')).toEqual([]);
    await api.removeService({ ref: sid });
  });
});

describe('node rm', () => {
  it('refuses to remove a manager, saying to demote it first', async () => {
    await addNode('tssm-other', { role: NodeRole.MANAGER, state: NodeState.DOWN });
    for (const ref of ['tssm1', 'tssm-other']) {
      for (const force of [false, true]) {
        const e = await refusal(api.removeNode({ ref, force }));
        expect(e).toMatchObject({
          code: 'FAILED_PRECONDITION',
          message: `node ${ref} is a manager: demote it first (\`tsswarm node demote ${ref}\`), then remove it`,
        });
      }
      expect(stored(ref)).toBeDefined();
    }
  });

  it('refuses a node still in the Raft group even when its role says worker', async () => {
    await addNode('tssw-member', { state: NodeState.DOWN });
    await m.consensus.addLearner({ raftId: 'tsslearner0001', nodeId: 'tssw-member', addr: '127.0.0.1:1' });
    await wait('the learner in the configuration', () => m.consensus.memberNodeId('tsslearner0001') === 'tssw-member');
    const e = await refusal(api.removeNode({ ref: 'tssw-member', force: true }));
    expect(e).toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: expect.stringMatching(/^node tssw-member is a manager: demote it first/),
    });
  });

  it('refuses a live node without --force, saying how; --force removes it and revokes its certificates', async () => {
    await addNode('tssw-live');
    const e = await refusal(api.removeNode({ ref: 'tssw-live', force: false }));
    expect(e).toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: "node tssw-live is not down and can't be removed; stop it (or make it leave) first, or use --force",
    });
    expect(stored('tssw-live')).toBeDefined();
    await api.removeNode({ ref: 'tssw-live', force: true });
    expect(stored('tssw-live')).toBeUndefined();
    expect(m.cluster()!.spec.nodeRevocations.map((r) => r.nodeId)).toContain('tssw-live');
    expect((await api.listNodes({})).nodes.map((n) => n.meta.id)).not.toContain('tssw-live');
  });

  it('removes a DOWN node without --force', async () => {
    await addNode('tssw-down', { state: NodeState.DOWN });
    await api.removeNode({ ref: 'tssw-down', force: false });
    expect(stored('tssw-down')).toBeUndefined();
  });
});

describe('node transfer-leader', () => {
  it('naming the leader itself moves nothing and says so', async () => {
    const r = await api.transferLeader({ ref: 'tssm1' });
    expect(r).toMatchObject({ nodeId: 'tssm1', unchanged: true });
    expect(r.term).toBe(m.consensus.status().term);
    expect(m.consensus.isLeader).toBe(true);
  });

  it('a worker, or no other manager to take over, is refused with the reason', async () => {
    await addNode('tssw-lead');
    expect(await refusal(api.transferLeader({ ref: 'tssw-lead' }))).toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: expect.stringMatching(/cannot hand leadership to tssw-lead: it is not a voting manager/),
    });
    expect(await refusal(api.transferLeader({ ref: '' }))).toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: expect.stringMatching(/no other manager is reachable to take over leadership/),
    });
    expect(await refusal(api.transferLeader({ ref: 'tss-nobody' }))).toMatchObject({ code: 'NOT_FOUND' });
    expect(m.consensus.isLeader).toBe(true);
  });
});
