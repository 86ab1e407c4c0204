// Hollow nodes: the real agent stack above the kernel, many to a process, for
// measuring and testing a cluster larger than the machines at hand (as
// Kubernetes' kubemark does with hollow kubelets). Each hollow node joins
// with a token through the same code as `tsswarm join` (node/join.ts), with
// its own key and certificate held in memory, keeps its own mTLS session with
// heartbeats (agent/session.ts), and runs the real Worker and task runners;
// only the runtime and the network below them are hollow: a container is a
// record that goes created → running after configurable delays, can be made
// to fail, and stops when asked; joining a network is recorded and does
// nothing. Nothing is written to disk.
import type * as grpc from '@grpc/grpc-js';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { checkManagerCert, generateNodeKey } from '../ca/index.js';
import { channelCredentials, MemoryCertificateProvider } from '../lib/tls.js';
import type { AgentMessage } from '../proto/gen/control.js';
import type { PortConfig, Task } from '../proto/gen/objects.js';
import type { ContainerConfig, ContainerState, ExecHandle, LogLine, ResolvedImage, Runtime } from '../agent/runtime/index.js';
import { AgentSession } from '../agent/session.js';
import type { TaskNetworking } from '../agent/worker/task.js';
import { Worker } from '../agent/worker/worker.js';
import { nodeDescription } from './daemon.js';
import { requestJoin } from './join.js';

/** How long a hollow container takes at each step (ms). */
export interface HollowDelays {
  /** create: the task's PREPARING time (a pull and a rootfs, on a real node). */
  prepareMs: number;
  /** start: the task's STARTING time. */
  startMs: number;
  /** stop: from the stop asked to the exit. */
  stopMs: number;
}

export const DEFAULT_HOLLOW_DELAYS: HollowDelays = { prepareMs: 50, startMs: 50, stopMs: 10 };

export interface HollowOptions {
  /** Managers to join through (host:port); the first answers the join. */
  managerAddrs: string[];
  /** A worker (or manager: the node still only runs an agent) join token. */
  joinToken: string;
  count: number;
  /** Hostnames are `${namePrefix}-${i}`; default 'hollow'. */
  namePrefix?: string;
  /** The address each hollow node advertises; default 127.0.0.1 (nothing listens there for it). */
  advertiseAddr?: string;
  delays?: Partial<HollowDelays>;
  /** Fraction (0..1) of container starts that fail, drawn at random; default 0. */
  failRate?: number;
  /** Whether this container's start fails (decides before failRate). */
  failStart?: (c: ContainerConfig, node: string) => boolean;
  /** How many joins run at once; default 16. */
  joinConcurrency?: number;
  /** Default: silent. Each node logs as a child with its name. */
  logger?: pino.Logger;
}

export interface HollowNode {
  name: string;
  nodeId: string;
  runtime: HollowRuntime;
  network: HollowNetwork;
  session: AgentSession;
  worker: Worker;
  /** Messages the managers sent about overlay networks. */
  networkUpdates: number;
}

export interface HollowNodes {
  nodes: HollowNode[];
  /** Stops every session, worker and timer; the nodes stay in the cluster's store (they go DOWN there, as machines switched off would). */
  close(): Promise<void>;
  /** Delays of hollow containers still pending (0 once closed). */
  readonly pendingTimers: number;
}

/** Timers a set of hollow runtimes share, all cleared at once. */
class Delays {
  private readonly pending = new Map<NodeJS.Timeout, (e: Error) => void>();
  closed = false;

  wait(ms: number): Promise<void> {
    if (this.closed) return Promise.reject(new Error('hollow node closed'));
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(t);
        resolve();
      }, ms);
      this.pending.set(t, reject);
    });
  }

  get size(): number {
    return this.pending.size;
  }

  close(): void {
    this.closed = true;
    for (const [t, reject] of this.pending) {
      clearTimeout(t);
      reject(new Error('hollow node closed'));
    }
    this.pending.clear();
  }
}

/** The part of Runtime the worker and its task runners call. */
type WorkerRuntime = Pick<Runtime, 'onExit' | 'create' | 'start' | 'inspect' | 'list' | 'stop' | 'remove' | 'exec' | 'logs'> & {
  images: Pick<Runtime['images'], 'resolve' | 'pull'>;
};

/** Containers as records: every image is present, nothing runs. */
export class HollowRuntime implements WorkerRuntime {
  readonly containers = new Map<string, ContainerState>();
  /** How many containers were started, and how many starts failed. */
  started = 0;
  failed = 0;
  private readonly exitListeners = new Set<(id: string, code: number) => void>();
  private nextPid = 1000;

  constructor(
    private readonly node: string,
    private readonly delays: HollowDelays,
    private readonly timers: Delays,
    private readonly failStart: (c: ContainerConfig) => boolean,
  ) {}

  readonly images: WorkerRuntime['images'] = {
    resolve: (ref: string): ResolvedImage => ({
      id: `sha256:hollow-${ref}`,
      references: [ref],
      layers: [],
      entrypoint: [],
      cmd: [],
      env: [],
      workdir: '',
      user: '',
    }),
    pull: async () => [],
  };

  /** Containers in the running state. */
  get running(): number {
    let n = 0;
    for (const c of this.containers.values()) if (c.status === 'running') n++;
    return n;
  }

  private readonly doomed = new Set<string>();

  onExit(fn: (id: string, code: number) => void): () => void {
    this.exitListeners.add(fn);
    return () => this.exitListeners.delete(fn);
  }

  async create(c: ContainerConfig): Promise<void> {
    await this.timers.wait(this.delays.prepareMs);
    if (this.containers.has(c.id)) throw new Error(`container ${c.id} already exists`);
    if (this.failStart(c)) this.doomed.add(c.id);
    this.containers.set(c.id, { id: c.id, status: 'created', pid: this.nextPid++, labels: c.labels ?? {}, image: c.image });
  }

  async start(id: string): Promise<ContainerState> {
    await this.timers.wait(this.delays.startMs);
    const c = this.containers.get(id);
    if (!c) throw new Error(`no container ${id}`);
    if (this.doomed.delete(id)) {
      this.failed++;
      throw new Error(`hollow node ${this.node}: this start was set to fail`);
    }
    const state: ContainerState = { ...c, status: 'running', startedAt: Date.now() };
    this.containers.set(id, state);
    this.started++;
    return { ...state };
  }

  async inspect(id: string): Promise<ContainerState | undefined> {
    const c = this.containers.get(id);
    return c ? { ...c } : undefined;
  }

  async list(): Promise<ContainerState[]> {
    return [...this.containers.values()].map((c) => ({ ...c }));
  }

  async stop(id: string): Promise<void> {
    await this.timers.wait(this.delays.stopMs);
    const c = this.containers.get(id);
    if (!c || c.status !== 'running') return;
    this.containers.set(id, { ...c, status: 'stopped', pid: 0, exitCode: 0, finishedAt: Date.now() });
    for (const f of this.exitListeners) f(id, 0);
  }

  async remove(id: string): Promise<void> {
    this.doomed.delete(id);
    this.containers.delete(id);
  }

  /** A health probe (or `exec`) passes at once in a running container, with no output. */
  exec(id: string): ExecHandle {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.end();
    stderr.end();
    const code = this.containers.get(id)?.status === 'running' ? 0 : 126;
    return { stdout, stderr, exit: Promise.resolve(code), kill: () => undefined };
  }

  /** A hollow container writes no output. */
  async *logs(): AsyncGenerator<LogLine> {}

  asRuntime(): Runtime {
    return this as unknown as Runtime;
  }
}

/** Networks as records: attaching and leaving do nothing but count. */
export class HollowNetwork implements TaskNetworking {
  readonly attached = new Set<string>();
  attaches = 0;
  detaches = 0;

  uses(): boolean {
    return true;
  }
  behindVip(): boolean {
    return false;
  }
  resolvConf(): string | undefined {
    return undefined;
  }
  async attach(t: Task): Promise<PortConfig[]> {
    this.attaches++;
    this.attached.add(t.meta.id);
    return [];
  }
  async detach(t: Task): Promise<void> {
    this.detaches++;
    this.attached.delete(t.meta.id);
  }
}

/** Joins `count` hollow nodes and starts their agents; resolves once every one joined (its session opens on its own). */
export async function startHollowNodes(o: HollowOptions): Promise<HollowNodes> {
  if (o.managerAddrs.length === 0) throw new Error('hollow nodes: managerAddrs is empty: give the address of a manager');
  if (!Number.isInteger(o.count) || o.count < 0) throw new Error(`hollow nodes: count must be a whole number ≥ 0 (got ${o.count})`);
  const failRate = o.failRate ?? 0;
  if (!(failRate >= 0 && failRate <= 1)) throw new Error(`hollow nodes: failRate must be between 0 and 1 (got ${failRate})`);
  const delays = { ...DEFAULT_HOLLOW_DELAYS, ...o.delays };
  const prefix = o.namePrefix ?? 'hollow';
  const logger = o.logger ?? pino({ level: 'silent' });
  const timers = new Delays();
  const nodes: HollowNode[] = [];
  const started: { session: AgentSession; worker: Worker }[] = [];

  const close = async (): Promise<void> => {
    timers.close();
    for (const n of started) {
      n.session.stop();
      await n.worker.close();
    }
  };

  const one = async (i: number): Promise<void> => {
    const name = `${prefix}-${i}`;
    const log = logger.child({ node: name });
    const tls = new MemoryCertificateProvider();
    let clusterId = '';
    let managerNodeIds: string[] = [];
    const credentials = (addr?: string): grpc.ChannelCredentials =>
      channelCredentials(tls, (cert, host) =>
        checkManagerCert(cert.raw, { clusterId: () => clusterId, addr, managerNodeIds: () => managerNodeIds }, host),
      );
    const key = generateNodeKey();
    const addr = o.advertiseAddr ?? '127.0.0.1';
    const { issued, remote } = await requestJoin({
      remote: o.managerAddrs[i % o.managerAddrs.length]!,
      token: o.joinToken,
      keyPem: key.privateKeyPem,
      hostname: name,
      addr,
      trust: (caPem) => tls.set(caPem),
      credentials,
    });
    tls.set(issued.caCertPem, issued.certPem, key.privateKeyPem);
    clusterId = issued.clusterId;
    let managerAddrs = issued.managerAddrs.length ? issued.managerAddrs : [remote];
    if (timers.closed) return;
    const runtime = new HollowRuntime(name, delays, timers, (c) => o.failStart?.(c, name) || Math.random() < failRate);
    const network = new HollowNetwork();
    // The worker sends on the session, made below.
    let session: AgentSession | null = null;
    const platform = nodeDescription(name).platform;
    const worker = new Worker({
      runtime: runtime.asRuntime(),
      nodeId: issued.nodeId,
      logger: log,
      send: (m: AgentMessage) => session?.send(m) ?? false,
      network,
      node: { hostname: name, os: platform?.os ?? '', architecture: platform?.architecture ?? '' },
    });
    let networkUpdates = 0;
    session = new AgentSession({
      nodeId: issued.nodeId,
      addr,
      description: nodeDescription(name),
      credentials: () => credentials(),
      managers: () => managerAddrs,
      logger: log,
      onAssignments: (m) => worker.assignments(m.assignments!),
      onNetworks: () => void networkUpdates++,
      onOpen: () => worker.sessionOpened(),
      onRelay: (r) => worker.relay(r),
      onWelcome: (w) => {
        if (w.managerAddrs.length) managerAddrs = w.managerAddrs;
        if (w.managerNodeIds.length) managerNodeIds = [...w.managerNodeIds].sort();
      },
    });
    worker.start();
    session.start();
    started.push({ session, worker });
    nodes[i] = {
      name,
      nodeId: issued.nodeId,
      runtime,
      network,
      session,
      worker,
      get networkUpdates() {
        return networkUpdates;
      },
    };
  };

  // A few joins at once: each is a certificate signed and a node written through Raft.
  const width = Math.max(1, o.joinConcurrency ?? 16);
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: Math.min(width, o.count) }, async () => {
        while (next < o.count && !timers.closed) await one(next++);
      }),
    );
  } catch (e) {
    await close();
    throw e;
  }
  return {
    nodes,
    close,
    get pendingTimers() {
      return timers.size;
    },
  };
}
