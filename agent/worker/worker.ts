// The agent's worker: keeps one TaskRunner per task assigned to this node,
// applies the managers' assignments (full set on each new session, then
// changes), re-adopts containers that outlived a previous agent (live
// restore), removes containers no task owns, and sends status reports in
// batches. Reports made while no session is open wait, and every task's
// latest state is sent again when a session opens, so the managers learn the
// fate of containers that exited while they were away.
import { availableParallelism } from 'node:os';
import type pino from 'pino';
import type { AgentMessage, Assignments, ExecOutput, LogChunk, RelayRequest } from '../../proto/gen/control.js';
import type { Task, TaskStatus } from '../../proto/gen/objects.js';
import { HealthMonitor, mergeHealthcheck, type Runtime } from '../runtime/index.js';
import { Dependencies } from './dependencies.js';
import { TASK_LABEL, TaskRunner, type TaskNetworking, type TemplateNode } from './task.js';

export interface WorkerOptions {
  runtime: Runtime;
  nodeId: string;
  logger: pino.Logger;
  /** Sends on the open session; false when none is open. */
  send: (m: AgentMessage) => boolean;
  /** Overlay networking; absent: containers get loopback only. */
  network?: TaskNetworking;
  /** This node as service templates name it (`{{.Node.Hostname}}`). */
  node?: TemplateNode;
  /** How long a task waits for a secret or config that has not arrived before it is rejected (ms); default DEPENDENCY_WAIT_MS. */
  dependencyWaitMs?: number;
}

/** How long reports gather before one message (ms). */
const REPORT_BATCH_MS = 10;

export class Worker {
  private readonly runners = new Map<string, TaskRunner>();
  private readonly outbox = new Map<string, TaskStatus>();
  private readonly relays = new Map<string, AbortController>();
  private timer: NodeJS.Timeout | null = null;
  private ready: Promise<void> = Promise.resolve();
  private offExit: (() => void) | null = null;
  /** Container operations in flight, and those waiting for a turn. */
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly maxActive = Number(process.env.TSSWARM_CONTAINER_OPS) || Math.max(2, availableParallelism());
  private closed = false;
  private readonly log: pino.Logger;
  /** The secrets and configs of this node's tasks, in memory only. */
  readonly dependencies = new Dependencies();

  constructor(private readonly o: WorkerOptions) {
    this.log = o.logger.child({ component: 'worker' });
  }

  /** Starts watching container exits; containers from a previous agent are adopted when the first assignments arrive. */
  start(): void {
    this.offExit = this.o.runtime.onExit((id, code) => {
      for (const r of this.runners.values()) if (r.containerId === id) r.exited(code);
    });
  }

  get taskCount(): number {
    return this.runners.size;
  }

  runner(taskId: string): TaskRunner | undefined {
    return this.runners.get(taskId);
  }

  /** The managers' orders. Applied in arrival order. */
  assignments(a: Assignments): void {
    this.ready = this.ready.then(() => this.apply(a)).catch((err: unknown) => this.log.error({ err }, 'applying assignments failed'));
  }

  private async apply(a: Assignments): Promise<void> {
    if (this.closed) return;
    // Before the tasks: a task arrives with its secrets and configs, in the same message.
    this.dependencies.apply(a.full, a.dependencies);
    const d = a.dependencies;
    const newDeps = (d?.secrets.length ?? 0) + (d?.configs.length ?? 0) > 0;
    if (newDeps || d?.removedSecretIds.length || d?.removedConfigIds.length)
      // Ids only: a value is never logged.
      this.log.info(
        {
          secrets: d?.secrets.map((x) => x.meta.id),
          configs: d?.configs.map((x) => x.meta.id),
          removedSecrets: d?.removedSecretIds,
          removedConfigs: d?.removedConfigIds,
          full: a.full,
        },
        "secrets and configs for this node's tasks received",
      );
    if (a.full) {
      const keep = new Set(a.tasks.map((t) => t.meta.id));
      for (const [id, r] of this.runners) if (!keep.has(id)) r.remove();
      // Containers no task owns: left by a task removed while this agent was down.
      const known = new Set(a.tasks.map((t) => t.meta.id));
      for (const c of await this.o.runtime.list().catch(() => [])) {
        const owner = c.labels[TASK_LABEL];
        if (!owner || known.has(owner) || this.runners.has(owner)) continue;
        this.log.info({ container: c.id, task: owner }, 'removing a container whose task is gone');
        await this.o.runtime
          .remove(c.id)
          .catch((err: unknown) => this.log.warn({ err, container: c.id }, 'could not remove an orphaned container'));
      }
    }
    for (const t of a.tasks) this.upsert(t);
    for (const id of a.removedTaskIds) this.runners.get(id)?.remove();
    if (newDeps) for (const r of this.runners.values()) r.dependenciesChanged();
  }

  private upsert(t: Task): void {
    const id = t.meta.id;
    const r = this.runners.get(id);
    if (r) {
      r.update(t);
      return;
    }
    const runner = new TaskRunner(t, {
      runtime: this.o.runtime,
      nodeId: this.o.nodeId,
      node: this.o.node,
      logger: this.log,
      report: (taskId, status) => this.report(taskId, status),
      limit: (fn) => this.limit(fn),
      network: this.o.network,
      files: (task) => this.dependencies.files(task),
      dependencyWaitMs: this.o.dependencyWaitMs,
      forget: (taskId) => {
        if (this.runners.get(taskId) === runner) this.runners.delete(taskId);
        runner.close();
      },
      health: (task, containerId, onChange) => {
        const img = this.o.runtime.images.resolve(task.spec?.container?.image ?? '');
        // --health-interval etc. without --health-cmd time the image's check (Docker's merge).
        const cfg = mergeHealthcheck(task.spec?.container?.healthcheck, img?.healthcheck);
        if (!cfg) return null;
        return new HealthMonitor(this.o.runtime, containerId, cfg, onChange);
      },
    });
    this.runners.set(id, runner);
    runner.update(t);
  }

  /**
   * At most a few container operations at once: each forks conmon and runc, and a burst of
   * dozens would keep the CPUs (and this process's event loop, which every fork blocks for a
   * moment) from everything else the daemon does, such as a manager's Raft.
   */
  private async limit<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.maxActive) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }

  private report(taskId: string, status: TaskStatus): void {
    this.outbox.set(taskId, status);
    if (!this.timer && !this.closed) this.timer = setTimeout(() => this.flush(), REPORT_BATCH_MS);
  }

  /** Sends the waiting reports; they stay queued if no session is open. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.outbox.size === 0) return;
    const updates = [...this.outbox].map(([taskId, status]) => ({ taskId, status }));
    if (this.o.send({ taskStatus: { updates } } as AgentMessage)) this.outbox.clear();
  }

  /** A session opened: every task's latest state goes again (the managers drop what they already have). */
  sessionOpened(): void {
    for (const [id, r] of this.runners) if (!this.outbox.has(id) && r.lastStatus.state) this.outbox.set(id, r.lastStatus);
    this.flush();
  }

  // ------------------------------------------------------------ relayed logs and exec

  relay(req: RelayRequest): void {
    if (req.cancel) {
      this.relays.get(req.requestId)?.abort();
      this.relays.delete(req.requestId);
      return;
    }
    const ac = new AbortController();
    this.relays.set(req.requestId, ac);
    const send = (d: { log?: LogChunk; exec?: ExecOutput; end?: boolean; error?: string }): void => {
      this.o.send({ relay: { requestId: req.requestId, end: false, error: '', ...d } } as AgentMessage);
    };
    const job = req.exec ? this.exec(req, ac.signal, send) : this.logs(req, ac.signal, send);
    job
      .then(() => send({ end: true }))
      .catch((e: unknown) => send({ end: true, error: (e as Error).message }))
      .finally(() => this.relays.delete(req.requestId));
  }

  private containerFor(taskId: string): { id: string; task: Task } {
    const r = this.runners.get(taskId);
    if (!r) throw new Error(`task ${taskId} is not on this node`);
    return { id: r.containerId, task: r.task };
  }

  private async logs(req: RelayRequest, signal: AbortSignal, send: (d: { log: LogChunk }) => void): Promise<void> {
    const { id, task } = this.containerFor(req.taskId);
    const q = req.logs!;
    const o = {
      follow: q.follow,
      tail: q.tail || undefined,
      since: Number(q.sinceMs) || undefined,
      until: Number(q.untilMs) || undefined,
      signal,
    };
    for await (const l of this.o.runtime.logs(id, o)) {
      if (signal.aborted) break;
      send({
        log: {
          taskId: req.taskId,
          nodeId: this.o.nodeId,
          slot: task.slot,
          stream: l.stream,
          data: l.line,
          time: l.time,
          serviceName: task.serviceName,
          serviceId: task.serviceId,
        } as LogChunk,
      });
    }
  }

  private async exec(req: RelayRequest, signal: AbortSignal, send: (d: { exec: ExecOutput }) => void): Promise<void> {
    const { id } = this.containerFor(req.taskId);
    const e = req.exec!;
    if (e.cmd.length === 0) throw new Error('exec needs a command');
    send({ exec: { taskId: req.taskId } as ExecOutput });
    const h = this.o.runtime.exec(id, { cmd: e.cmd, env: e.env, user: e.user || undefined, workdir: e.workdir || undefined, signal });
    h.stdout.on('data', (b: Buffer) => send({ exec: { stdout: new Uint8Array(b) } as ExecOutput }));
    h.stderr.on('data', (b: Buffer) => send({ exec: { stderr: new Uint8Array(b) } as ExecOutput }));
    signal.addEventListener('abort', () => h.kill('SIGKILL'), { once: true });
    const code = await h.exit;
    send({ exec: { exitCode: code, exited: true } as ExecOutput });
  }

  /** Stops reporting and relays at once; containers keep running (live restore). */
  async close(): Promise<void> {
    this.closed = true;
    this.offExit?.();
    if (this.timer) clearTimeout(this.timer);
    for (const ac of this.relays.values()) ac.abort();
    this.relays.clear();
    // Steps in flight are not awaited: a stop can take a task's whole grace period (10 s by
    // default), and a daemon that restarts must be back before its node is judged DOWN. The
    // containers stay as they are; the next agent compares them with the managers' orders again.
    for (const r of this.runners.values()) r.close();
  }
}
