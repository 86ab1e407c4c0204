// The scheduler's pure core: filters, explanations, spread, preferences, speed; and constraint parsing.
import { describe, expect, it } from 'vitest';
import { explainUnschedulable, matchConstraint, parseConstraint, schedule } from '../../../manager/scheduler/index.js';
import { Meta, Node, NodeAvailability, NodeRole, NodeState, Task, TaskState } from '../../../proto/gen/objects.js';

interface NodeOpts {
  labels?: Record<string, string>;
  state?: NodeState;
  availability?: NodeAvailability;
  role?: NodeRole;
  os?: string;
  arch?: string;
  cpus?: number;
  memMiB?: number;
  engineLabels?: Record<string, string>;
}

const node = (i: number, o: NodeOpts = {}): Node =>
  Node.create({
    meta: Meta.create({ id: `n${i}` }),
    spec: {
      name: `h${i}`,
      role: o.role ?? NodeRole.WORKER,
      availability: o.availability ?? NodeAvailability.ACTIVE,
      labels: o.labels ?? {},
    },
    status: { state: o.state ?? NodeState.READY, message: '', addr: '' },
    description: {
      hostname: `h${i}`,
      platform: { os: o.os ?? 'linux', architecture: o.arch ?? 'x86_64' },
      resources: { nanoCpus: (o.cpus ?? 4) * 1e9, memoryBytes: (o.memMiB ?? 4096) * 2 ** 20, pids: 0 },
      engineVersion: '',
      engineLabels: o.engineLabels ?? {},
    },
  } as Partial<Node>);

let seq = 0;
interface TaskOpts {
  service?: string;
  constraints?: string[];
  preferences?: string[];
  maxReplicas?: number;
  platforms?: Array<{ os: string; architecture: string }>;
  cpus?: number;
  memMiB?: number;
  nodeId?: string;
  state?: TaskState;
  /** Ports published in host mode (tcp). */
  hostPorts?: number[];
}
const task = (o: TaskOpts = {}): Task =>
  Task.create({
    meta: Meta.create({ id: `t${++seq}` }),
    serviceId: o.service ?? 'svc',
    slot: seq,
    nodeId: o.nodeId ?? '',
    desiredState: TaskState.RUNNING,
    status: { state: o.state ?? TaskState.PENDING },
    serviceVersion: 1,
    hostPorts: (o.hostPorts ?? []).map((p) => ({ name: '', protocol: 0, targetPort: 80, publishedPort: p, publishMode: 1 })),
    spec: {
      placement: {
        constraints: o.constraints ?? [],
        preferences: (o.preferences ?? []).map((spread) => ({ spread })),
        maxReplicas: o.maxReplicas ?? 0,
        platforms: o.platforms ?? [],
      },
      resources: { reservations: { nanoCpus: (o.cpus ?? 0) * 1e9, memoryBytes: (o.memMiB ?? 0) * 2 ** 20 } },
    },
  } as unknown as Partial<Task>);
const placedOn = (nodeId: string, o: TaskOpts = {}): Task => task({ ...o, nodeId, state: TaskState.RUNNING });
const tasks = (n: number, o: TaskOpts = {}): Task[] => Array.from({ length: n }, () => task(o));
const where = (r: ReturnType<typeof schedule>, ts: Task[]): string[] => ts.map((t) => r.assignments.get(t.meta.id) ?? '-');

describe('scheduler filters', () => {
  it('keeps tasks publishing the same host-mode port off one node, and says so when no node is left', () => {
    const nodes = [node(1), node(2), node(3)];
    const ts = tasks(3, { service: 'edge', hostPorts: [9090] });
    const r = schedule(nodes, [placedOn('n1', { service: 'other', hostPorts: [9090] })], ts);
    expect(where(r, ts).slice(0, 2).sort()).toEqual(['n2', 'n3']);
    expect(where(r, ts)[2]).toBe('-');
    expect(r.unschedulable.get(ts[2]!.meta.id)).toBe(
      'no suitable node (3 nodes: host-mode port tcp/9090 already published on the node (h1, h2, h3))',
    );
    // Another port, or none, fits anywhere.
    const free = tasks(2, { service: 'edge2', hostPorts: [9091] });
    expect(where(schedule(nodes, [placedOn('n1', { hostPorts: [9090] })], free), free)).not.toContain('-');
  });

  it('skips nodes that are not READY or not ACTIVE', () => {
    const nodes = [
      node(1, { state: NodeState.DOWN }),
      node(2, { availability: NodeAvailability.DRAIN }),
      node(3, { availability: NodeAvailability.PAUSE }),
      node(4),
    ];
    const ts = tasks(3);
    expect(where(schedule(nodes, [], ts), ts)).toEqual(['n4', 'n4', 'n4']);
  });

  it("places a task by engine.labels (the daemon's --label), values compared exactly; a node without the label never equals", () => {
    const nodes = [node(1, { engineLabels: { disk: 'ssd' } }), node(2, { engineLabels: { disk: 'SSD', constructor: 'x' } }), node(3)];
    const one = (c: string): string => {
      const t = task({ constraints: [c] });
      const r = schedule(nodes, [], [t]);
      return r.assignments.get(t.meta.id) ?? r.unschedulable.get(t.meta.id)!;
    };
    expect(one('engine.labels.disk==ssd')).toBe('n1');
    expect(one('engine.labels.disk==SSD')).toBe('n2');
    expect(one('engine.labels.toString==x')).toMatch(/constraint/);
    const t = task({ constraints: ['engine.labels.disk!=ssd', 'engine.labels.disk!=SSD'] });
    expect(schedule(nodes, [], [t]).assignments.get(t.meta.id)).toBe('n3');
  });

  it('honours == and != constraints on id, hostname, role, os, arch and labels', () => {
    const nodes = [
      node(1, { role: NodeRole.MANAGER, labels: { zone: 'east' } }),
      node(2, { labels: { zone: 'west' }, arch: 'aarch64' }),
      node(3, { os: 'windows' }),
    ];
    const one = (c: string): string => {
      const t = task({ constraints: [c] });
      const r = schedule(nodes, [], [t]);
      return r.assignments.get(t.meta.id) ?? r.unschedulable.get(t.meta.id)!;
    };
    expect(one('node.id==n2')).toBe('n2');
    expect(one('node.hostname==H3')).toBe('n3');
    expect(one('node.role==manager')).toBe('n1');
    expect(one('node.platform.os==windows')).toBe('n3');
    expect(one('node.platform.arch==aarch64')).toBe('n2');
    expect(one('node.labels.zone==west')).toBe('n2');
    expect(one('node.labels.zone!=east')).not.toBe('n1');
    expect(one('node.labels.zone==north')).toBe(
      'no suitable node (3 nodes: constraint node.labels.zone==north not satisfied (h1, h2, h3))',
    );
  });

  it('counts reservations of the tasks already on a node', () => {
    const nodes = [node(1, { cpus: 2 }), node(2, { cpus: 2 })];
    const placed = [placedOn('n1', { cpus: 1.5, service: 'other' })];
    const ts = tasks(3, { cpus: 1 });
    const r = schedule(nodes, placed, ts);
    expect(where(r, ts).sort()).toEqual(['-', 'n2', 'n2']);
    expect(r.unschedulable.get(ts.find((t) => !r.assignments.has(t.meta.id))!.meta.id)).toBe(
      'no suitable node (2 nodes: insufficient resources (needs 1 CPU) (h1, h2))',
    );
  });

  it('ignores the reservations of tasks that ended', () => {
    const nodes = [node(1, { memMiB: 1024 })];
    const ended = Task.create({ ...placedOn('n1', { memMiB: 1024 }), status: { state: TaskState.FAILED } } as Partial<Task>);
    const ts = tasks(1, { memMiB: 1024 });
    expect(where(schedule(nodes, [ended], ts), ts)).toEqual(['n1']);
  });

  it('matches the platforms a task supports', () => {
    const nodes = [node(1, { arch: 'aarch64' }), node(2)];
    const ts = tasks(2, { platforms: [{ os: 'linux', architecture: 'x86_64' }] });
    expect(where(schedule(nodes, [], ts), ts)).toEqual(['n2', 'n2']);
    // The docker CLI pins Go's names (from the registry): amd64 is x86_64, arm64 is aarch64, as SwarmKit compares them.
    const go = tasks(2, { platforms: [{ os: 'linux', architecture: 'arm64' }] });
    expect(where(schedule(nodes, [], go), go)).toEqual(['n1', 'n1']);
    const amd = tasks(1, { platforms: [{ os: 'Linux', architecture: 'amd64' }] });
    expect(where(schedule(nodes, [], amd), amd)).toEqual(['n2']);
    const none = tasks(1, { platforms: [{ os: 'linux', architecture: 's390x' }] });
    expect(where(schedule(nodes, [], none), none)).toEqual(['-']);
  });

  it('places at most maxReplicas tasks of a service per node', () => {
    const nodes = [node(1), node(2)];
    const ts = tasks(5, { maxReplicas: 2 });
    const r = schedule(nodes, [], ts);
    expect(where(r, ts).filter((n) => n === 'n1')).toHaveLength(2);
    expect(where(r, ts).filter((n) => n === 'n2')).toHaveLength(2);
    expect(r.unschedulable.size).toBe(1);
    expect([...r.unschedulable.values()][0]).toBe('no suitable node (2 nodes: max replicas per node (2) reached (h1, h2))');
  });

  it('places a global task only on its own node', () => {
    const nodes = [node(1), node(2)];
    const t = task({ nodeId: 'n2' });
    expect(schedule(nodes, [], [t]).assignments.get(t.meta.id)).toBe('n2');
    const lost = task({ nodeId: 'n9' });
    expect(schedule(nodes, [], [lost]).unschedulable.get(lost.meta.id)).toBe(
      'no suitable node (2 nodes: not the node of this global task (h1, h2))',
    );
  });
});

describe('scheduler explanations', () => {
  it('names each filter with its node count, hostnames when 5 or fewer, in filter order', () => {
    const nodes = [
      node(1, { state: NodeState.DOWN }),
      node(2, { availability: NodeAvailability.DRAIN }),
      node(3),
      node(4),
      node(5),
      node(6, { labels: { zone: 'east' }, cpus: 1 }),
    ];
    const t = task({ constraints: ['node.labels.zone==east'], cpus: 2 });
    expect(schedule(nodes, [], [t]).unschedulable.get(t.meta.id)).toBe(
      'no suitable node (2 nodes not available for new tasks (h1, h2); 3 nodes: constraint node.labels.zone==east not satisfied (h3, h4, h5); 1 node: insufficient resources (needs 2 CPU) (h6))',
    );
  });

  it('gives counts only when more than 5 nodes are excluded for a reason', () => {
    expect(explainUnschedulable(new Map([['constraint node.role==manager not satisfied', ['a', 'b', 'c', 'd', 'e', 'f']]]))).toBe(
      'no suitable node (6 nodes: constraint node.role==manager not satisfied)',
    );
    expect(explainUnschedulable(new Map())).toBe('no suitable node (no nodes in the cluster)');
  });
});

describe('scheduler ranking', () => {
  it('spreads 3 replicas over 3 nodes, one each', () => {
    const ts = tasks(3);
    expect(where(schedule([node(1), node(2), node(3)], [], ts), ts).sort()).toEqual(['n1', 'n2', 'n3']);
  });

  it('prefers the nodes with fewest tasks of the service, then fewest tasks overall', () => {
    const placed = [placedOn('n1'), placedOn('n2', { service: 'other' }), placedOn('n2', { service: 'other' })];
    const ts = tasks(2);
    expect(where(schedule([node(1), node(2), node(3)], placed, ts), ts)).toEqual(['n3', 'n2']);
  });

  it('accepts the placed tasks grouped by node', () => {
    const placed = new Map([['n1', [placedOn('n1')]]]);
    const ts = tasks(1);
    expect(where(schedule([node(1), node(2)], placed, ts), ts)).toEqual(['n2']);
  });

  it('spread=node.labels.zone balances over zones first, whatever their node counts', () => {
    const nodes = [
      node(1, { labels: { zone: 'a' } }),
      node(2, { labels: { zone: 'b' } }),
      node(3, { labels: { zone: 'b' } }),
      node(4, { labels: { zone: 'b' } }),
    ];
    const ts = tasks(6, { preferences: ['spread=node.labels.zone'] });
    const r = where(schedule(nodes, [], ts), ts);
    expect(r.filter((n) => n === 'n1')).toHaveLength(3);
    expect(r.filter((n) => n !== 'n1')).toHaveLength(3);
  });

  it('nested preferences form a tree: zone first, then rack within the zone', () => {
    const l = (zone: string, rack: string) => ({ labels: { zone, rack } });
    const nodes = [node(1, l('a', 'r1')), node(2, l('a', 'r2')), node(3, l('a', 'r2')), node(4, l('b', 'r1'))];
    const ts = tasks(4, { preferences: ['spread=node.labels.zone', 'spread=node.labels.rack'] });
    const r = where(schedule(nodes, [], ts), ts);
    expect(r.filter((n) => n === 'n4')).toHaveLength(2);
    expect(r.filter((n) => n === 'n1')).toHaveLength(1);
    expect(r.filter((n) => n === 'n2' || n === 'n3')).toHaveLength(1);
  });

  // Speed is the schedule benchmark's business (tests never assert on wall-clock time); this checks the result at that size.
  it('places 10,000 tasks on 1,000 nodes evenly in one pass', () => {
    const nodes = Array.from({ length: 1000 }, (_, i) => node(i));
    const ts = tasks(10_000, { service: 'big' });
    const r = schedule(nodes, [], ts);
    expect(r.assignments.size).toBe(10_000);
    const perNode = new Map<string, number>();
    for (const n of r.assignments.values()) perNode.set(n, (perNode.get(n) ?? 0) + 1);
    expect(Math.max(...perNode.values())).toBe(10);
    expect(Math.min(...perNode.values())).toBe(10);
  });
});

describe('parseConstraint', () => {
  it('parses keys, operators and values', () => {
    expect(parseConstraint('node.labels.Zone == east')).toEqual({ key: 'node.labels.Zone', op: '==', value: 'east' });
    expect(parseConstraint('NODE.ROLE!=manager')).toEqual({ key: 'node.role', op: '!=', value: 'manager' });
    expect(parseConstraint('engine.labels.os==linux').key).toBe('engine.labels.os');
  });

  it('rejects bad syntax with a message naming the constraint and the fix', () => {
    expect(() => parseConstraint('node.role=manager')).toThrow(/constraint "node.role=manager" has no operator: write KEY==VALUE/);
    expect(() => parseConstraint('node.color==red')).toThrow(/unknown key "node.color"/);
    expect(() => parseConstraint('node.labels.zone==')).toThrow(/has no value/);
    expect(() => parseConstraint('node.role==boss')).toThrow(/a role is manager or worker/);
    expect(() => parseConstraint('node.labels.==x')).toThrow(/names no label/);
  });

  it('a missing label never equals and always differs', () => {
    expect(matchConstraint(node(1), parseConstraint('node.labels.zone==east'))).toBe(false);
    expect(matchConstraint(node(1), parseConstraint('node.labels.zone!=east'))).toBe(true);
  });
});
