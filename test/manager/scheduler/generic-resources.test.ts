// Generic resources in the scheduler: a task reserving `gpu=2` goes only to a
// node whose advertised gpus, minus those its tasks reserve, cover it.
import { describe, expect, it } from 'vitest';
import { schedule } from '../../../manager/scheduler/index.js';
import { type GenericResource, Meta, Node, NodeAvailability, NodeRole, NodeState, Task, TaskState } from '../../../proto/gen/objects.js';

const node = (i: number, generic: GenericResource[]): Node =>
  Node.create({
    meta: Meta.create({ id: `n${i}` }),
    spec: { name: `h${i}`, role: NodeRole.WORKER, availability: NodeAvailability.ACTIVE, labels: {} },
    status: { state: NodeState.READY, message: '', addr: '' },
    description: {
      hostname: `h${i}`,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCpus: 4e9, memoryBytes: 4 * 2 ** 30, pids: 0, generic },
      engineVersion: '',
    },
  } as Partial<Node>);

let seq = 0;
const task = (generic: GenericResource[], o: { nodeId?: string; state?: TaskState; service?: string } = {}): Task =>
  Task.create({
    meta: Meta.create({ id: `t${++seq}` }),
    serviceId: o.service ?? 'svc',
    slot: seq,
    nodeId: o.nodeId ?? '',
    desiredState: TaskState.RUNNING,
    status: { state: o.state ?? TaskState.PENDING },
    serviceVersion: 1,
    spec: { resources: { reservations: { nanoCpus: 0, memoryBytes: 0, pids: 0, generic } } },
  } as unknown as Partial<Task>);

const gpu = (value: number): GenericResource[] => [{ kind: 'gpu', value }];

describe('generic resources', () => {
  it('a task goes only to a node advertising enough of the kind', () => {
    const nodes = [node(1, []), node(2, gpu(1)), node(3, gpu(4))];
    const t = task(gpu(2));
    expect(schedule(nodes, [], [t]).assignments.get(t.meta.id)).toBe('n3');
  });

  it('counts the reservations of the tasks already on a node, and of those placed in the same pass', () => {
    const nodes = [node(1, gpu(4)), node(2, gpu(2))];
    const placed = [task(gpu(3), { nodeId: 'n1', state: TaskState.RUNNING, service: 'other' })];
    const ts = [task(gpu(2)), task(gpu(2))];
    const r = schedule(nodes, placed, ts);
    // n1 has 1 left: the first goes to n2, the second finds no node.
    expect(r.assignments.get(ts[0]!.meta.id)).toBe('n2');
    expect(r.assignments.has(ts[1]!.meta.id)).toBe(false);
    expect(r.unschedulable.get(ts[1]!.meta.id)).toBe('no suitable node (2 nodes: insufficient generic resources gpu (h1, h2))');
  });

  it('a task that stopped holding its node gives its resources back', () => {
    const nodes = [node(1, gpu(2))];
    const gone = task(gpu(2), { nodeId: 'n1', state: TaskState.FAILED });
    const t = task(gpu(2));
    expect(schedule(nodes, [gone], [t]).assignments.get(t.meta.id)).toBe('n1');
  });

  it('names every kind that is short; a task needing none ignores them', () => {
    const nodes = [node(1, [{ kind: 'gpu', value: 1 }])];
    const t = task([
      { kind: 'gpu', value: 2 },
      { kind: 'fpga', value: 1 },
    ]);
    expect(schedule(nodes, [], [t]).unschedulable.get(t.meta.id)).toBe(
      'no suitable node (1 node: insufficient generic resources gpu, fpga (h1))',
    );
    const plain = task([]);
    expect(schedule(nodes, [], [plain]).assignments.get(plain.meta.id)).toBe('n1');
  });
});
