// A cluster without Raft or agents for the orchestration tests: nodes in a
// localStore, the real orchestrator, allocator and scheduler on a manual
// clock, and an "agents" step that plays the workers (runs assigned tasks,
// stops those asked to stop, fails those a test says fail).
import { pino } from 'pino';
import { ServiceApi } from '../../../manager/controlapi/index.js';
import { type Clock, type Orchestration, startOrchestration } from '../../../manager/orchestrator/index.js';
import { localStore, type MemoryStore } from '../../../manager/store/index.js';
import {
  Meta,
  Node,
  NodeAvailability,
  NodeRole,
  NodeState,
  RestartCondition,
  type ServiceSpec,
  Task,
  TaskState,
} from '../../../proto/gen/objects.js';

export const log = pino({ level: 'silent' });

/** Real time plus whatever the test advanced: never behind Date.now(), which the control API stamps. */
export class ManualClock implements Clock {
  private offset = 0;
  private seq = 0;
  private readonly timers = new Map<number, { due: number; fn: () => void }>();
  now(): number {
    return Date.now() + this.offset;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { due: this.now() + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  get pending(): number {
    return this.timers.size;
  }
  /** Moves time on and fires the timers that came due. */
  advance(ms: number): void {
    this.offset += ms;
    for (const [id, t] of [...this.timers]) {
      if (t.due <= this.now()) {
        this.timers.delete(id);
        t.fn();
      }
    }
  }
}

export interface TestCluster {
  store: MemoryStore;
  api: ServiceApi;
  clock: ManualClock;
  orch: Orchestration;
}

let current: TestCluster | null = null;

/** Stops the running cluster's orchestration (afterEach). */
export async function teardown(): Promise<void> {
  await current?.orch.stop();
  current = null;
}

export function nodeObject(i: number, labels: Record<string, string> = {}, over: Partial<Node> = {}): Node {
  return Node.create({
    meta: Meta.create({ id: `n${i}` }),
    spec: { name: `h${i}`, role: i === 1 ? NodeRole.MANAGER : NodeRole.WORKER, availability: NodeAvailability.ACTIVE, labels },
    status: { state: NodeState.READY, message: '', addr: '' },
    description: {
      hostname: `h${i}`,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCpus: 2e9, memoryBytes: 2 ** 30, pids: 0 },
      engineVersion: '',
    },
    ...over,
  } as Partial<Node>);
}

export async function cluster(n: number, labels: (i: number) => Record<string, string> = () => ({})): Promise<TestCluster> {
  const store = localStore();
  await store.update((tx) => {
    for (let i = 1; i <= n; i++) tx.nodes.create(nodeObject(i, labels(i)));
  });
  const clock = new ManualClock();
  const orch = startOrchestration({ store, logger: log, clock });
  current = { store, api: new ServiceApi({ store, logger: log }), clock, orch };
  return current;
}

export const spec = (name: string, over: Partial<ServiceSpec> = {}): ServiceSpec =>
  ({
    name,
    labels: {},
    task: {
      container: { image: 'busybox', command: [], args: ['sleep', '1d'], env: [], mounts: [] },
      restart: { condition: RestartCondition.ANY, delayMs: 0, maxAttempts: 0, windowMs: 0 },
    },
    replicated: { replicas: 1 },
    ...over,
  }) as unknown as ServiceSpec;

export const withTask = (s: ServiceSpec, task: Partial<NonNullable<ServiceSpec['task']>>): ServiceSpec =>
  ({ ...s, task: { ...s.task, ...task } }) as ServiceSpec;
export const withImage = (s: ServiceSpec, image: string): ServiceSpec => withTask(s, { container: { ...s.task.container, image } });

/** Runs every pass that is due, on every part, until none is (the clock does not move). */
export async function settle(c: TestCluster = current!): Promise<void> {
  await c.orch.idle();
}

export const all = (c: TestCluster): Task[] => c.store.view((tx) => tx.tasks.list());

/** The workers' part, one round: assigned tasks with desired RUNNING run (or fail); tasks asked to stop stop. */
export async function agentsStep(c: TestCluster, fail: (t: Task) => boolean = () => false): Promise<boolean> {
  await settle(c);
  const down = new Set(
    c.store
      .view((tx) => tx.nodes.list())
      .filter((n) => n.status?.state === NodeState.DOWN)
      .map((n) => n.meta.id),
  );
  const tasks = all(c).filter((t) => !down.has(t.nodeId));
  const st = (t: Task): number => t.status?.state ?? 0;
  const start = tasks.filter(
    (t) => t.nodeId && st(t) >= TaskState.ASSIGNED && st(t) < TaskState.RUNNING && t.desiredState === TaskState.RUNNING,
  );
  const stop = tasks.filter((t) => t.desiredState > TaskState.RUNNING && st(t) >= TaskState.ASSIGNED && st(t) <= TaskState.RUNNING);
  if (!start.length && !stop.length) return false;
  const now = c.clock.now();
  await c.store.update((tx) => {
    for (const t of start) {
      const f = fail(t);
      tx.tasks.update(
        Task.create({
          ...t,
          status: {
            ...t.status,
            state: f ? TaskState.FAILED : TaskState.RUNNING,
            startedAt: now,
            runningAt: f ? 0 : now,
            timestamp: now,
            exitCode: f ? 1 : 0,
            err: f ? 'task: non-zero exit (1)' : '',
          },
        }),
      );
    }
    for (const t of stop)
      tx.tasks.update(Task.create({ ...t, status: { ...t.status, state: TaskState.SHUTDOWN, timestamp: now, exitCode: 0 } }));
  });
  await settle(c);
  return true;
}

/** Agent rounds until nothing changes. */
export async function agents(c: TestCluster, fail?: (t: Task) => boolean, rounds = 8): Promise<void> {
  for (let i = 0; i < rounds; i++) if (!(await agentsStep(c, fail))) return;
}

export const tasksOf = (c: TestCluster, name: string): Task[] =>
  c.store.view((tx) => {
    const s = tx.services.byName(name);
    return s ? tx.tasks.by('service', s.meta.id) : [];
  });

/** Tasks wanted and running. */
export const running = (c: TestCluster, name: string): Task[] =>
  tasksOf(c, name).filter((t) => t.desiredState === TaskState.RUNNING && t.status?.state === TaskState.RUNNING);

/** Writes a new observed status on a task (an agent's report). */
export async function report(c: TestCluster, t: Task, status: Partial<NonNullable<Task['status']>>): Promise<void> {
  await c.store.update((tx) => {
    const cur = tx.tasks.get(t.meta.id)!;
    tx.tasks.update(Task.create({ ...cur, status: { ...cur.status, timestamp: c.clock.now(), ...status } }));
  });
  await settle(c);
}

export async function setNode(c: TestCluster, id: string, change: (n: Node) => Node): Promise<void> {
  await c.store.update((tx) => tx.nodes.update(change(tx.nodes.get(id)!)));
  await settle(c);
}

export const service = (c: TestCluster, name: string) => c.store.view((tx) => tx.services.byName(name))!;
