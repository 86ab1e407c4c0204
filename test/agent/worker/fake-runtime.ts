// An in-memory container runtime with the surface the worker uses (create,
// start, inspect, stop, remove, list, exit events, image lookup, exec for
// health checks), so the task state machine runs in unit tests; every call is
// recorded and any step can fail or wait.
import { PassThrough } from 'node:stream';
import type { ImageStore, Runtime } from '../../../agent/runtime/index.js';
import type { ContainerConfig, ContainerState, ExecHandle } from '../../../agent/runtime/types.js';

type Op = 'create' | 'start' | 'stop' | 'remove' | 'pull';

interface Held {
  state: ContainerState;
  cfg?: ContainerConfig;
}

/** What the fake promises to be: the part of Runtime the worker and its task runners call. */
type WorkerRuntime = Pick<Runtime, 'onExit' | 'create' | 'start' | 'inspect' | 'list' | 'stop' | 'remove' | 'exec'> & {
  images: Pick<ImageStore, 'resolve' | 'pull'>;
};

export class FakeRuntime implements WorkerRuntime {
  readonly containers = new Map<string, Held>();
  /** Every call, as "op id" (pull: "pull ref"), in order. */
  readonly calls: string[] = [];
  /** The credentials each pull was given (--with-registry-auth), in order. */
  readonly pullAuths: unknown[] = [];
  /** Images this node holds; others must be pulled. */
  readonly localImages = new Set<string>(['tss/busybox:latest']);
  /** A step that fails with this message every time, until deleted. */
  readonly failing = new Map<Op, string>();
  /** A step that waits for `release(op)` before it does anything. */
  private readonly gates = new Map<Op, { promise: Promise<void>; open: () => void }>();
  /** The exit code a container gets when stopped (a process killed by SIGKILL). */
  stopExitCode = 137;
  private readonly exitListeners = new Set<(id: string, code: number) => void>();
  private nextPid = 1000;

  readonly images: WorkerRuntime['images'] = {
    resolve: (ref) =>
      this.localImages.has(ref)
        ? { id: `sha256:${ref}`, references: [ref], layers: [], entrypoint: [], cmd: [], env: [], workdir: '', user: '' }
        : undefined,
    pull: async (ref, o) => {
      this.pullAuths.push(o?.auth);
      await this.step('pull', ref);
      this.localImages.add(ref);
      return [];
    },
  };

  /** Makes `op` wait until release(op) is called. */
  hold(op: Op): void {
    let open!: () => void;
    const promise = new Promise<void>((r) => (open = r));
    this.gates.set(op, { promise, open });
  }

  release(op: Op): void {
    this.gates.get(op)?.open();
    this.gates.delete(op);
  }

  /** Whether a call to `op` is waiting at its gate. */
  waitingAt(op: Op, id: string): boolean {
    return this.gates.has(op) && this.calls.includes(`${op} ${id}`);
  }

  private async step(op: Op, id: string): Promise<void> {
    this.calls.push(`${op} ${id}`);
    await this.gates.get(op)?.promise;
    const msg = this.failing.get(op);
    if (msg) throw new Error(msg);
  }

  /** A container left by a previous agent, as the runtime finds it at start. */
  seed(id: string, taskId: string, status: ContainerState['status'], exitCode?: number): void {
    this.containers.set(id, {
      state: {
        id,
        status,
        pid: status === 'running' ? this.nextPid++ : 0,
        exitCode,
        labels: { 'tsswarm.task.id': taskId },
        image: 'tss/busybox:latest',
      },
    });
  }

  /** The container's main process exits by itself with `code`. */
  exit(id: string, code: number): void {
    const c = this.containers.get(id);
    if (!c || c.state.status !== 'running') throw new Error(`fake runtime: ${id} is not running`);
    this.containers.set(id, { ...c, state: { ...c.state, status: 'stopped', pid: 0, exitCode: code, finishedAt: Date.now() } });
    for (const f of this.exitListeners) f(id, code);
  }

  status(id: string): ContainerState['status'] | 'gone' {
    return this.containers.get(id)?.state.status ?? 'gone';
  }

  config(id: string): ContainerConfig | undefined {
    return this.containers.get(id)?.cfg;
  }

  count(op: Op, id: string): number {
    return this.calls.filter((c) => c === `${op} ${id}`).length;
  }

  onExit(fn: (id: string, code: number) => void): () => void {
    this.exitListeners.add(fn);
    return () => this.exitListeners.delete(fn);
  }

  async create(c: ContainerConfig): Promise<void> {
    await this.step('create', c.id);
    if (this.containers.has(c.id)) throw new Error(`container ${c.id} already exists`);
    this.containers.set(c.id, {
      cfg: c,
      state: { id: c.id, status: 'created', pid: this.nextPid++, labels: c.labels ?? {}, image: c.image },
    });
  }

  async start(id: string): Promise<ContainerState> {
    await this.step('start', id);
    const c = this.containers.get(id);
    if (!c) throw new Error(`no container ${id}`);
    const state: ContainerState = { ...c.state, status: 'running', startedAt: Date.now() };
    this.containers.set(id, { ...c, state });
    return { ...state };
  }

  async inspect(id: string): Promise<ContainerState | undefined> {
    const c = this.containers.get(id);
    return c ? { ...c.state } : undefined;
  }

  async list(): Promise<ContainerState[]> {
    return [...this.containers.values()].map((c) => ({ ...c.state }));
  }

  /** The exit code of an exec (a health probe) in each container; absent: 1, the check fails. */
  readonly probeExit = new Map<string, number>();
  /** How many execs ran in each container. */
  readonly probes = new Map<string, number>();

  exec(id: string, o: { cmd: string[] }): ExecHandle {
    this.probes.set(id, (this.probes.get(id) ?? 0) + 1);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const code = this.containers.get(id)?.state.status === 'running' ? (this.probeExit.get(id) ?? 1) : 126;
    stdout.end(`${o.cmd.join(' ')}: ${code === 0 ? 'ok' : 'not ready'}\n`);
    return { stdout, stderr, exit: Promise.resolve(code), kill: () => undefined };
  }

  /** The last stop's grace period and signal, by container. */
  readonly stops = new Map<string, { graceMs: number; signal?: string }>();

  async stop(id: string, graceMs: number, signal?: string): Promise<void> {
    this.stops.set(id, { graceMs, signal });
    await this.step('stop', id);
    const c = this.containers.get(id);
    if (!c || c.state.status !== 'running') return;
    this.exit(id, this.stopExitCode);
  }

  async remove(id: string): Promise<void> {
    await this.step('remove', id);
    this.containers.delete(id);
  }

  /** The fake as the worker's constructor types it; the `implements` clause above checks every method it calls. */
  asRuntime(): Runtime {
    return this as unknown as Runtime;
  }
}
