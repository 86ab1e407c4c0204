// One task on this node: drives its container from what the managers want
// (desired state) and reports what is (observed state), only ever forwards:
// ASSIGNED → ACCEPTED → PREPARING → READY → STARTING → RUNNING → COMPLETE |
// FAILED | SHUTDOWN | REJECTED. A container with a health check stays STARTING
// until its check first passes (as Docker's executor): RUNNING means serving.
// Every step runs in one queue per task, so an exit event, a new desired state
// and a health change never interleave.
import type pino from 'pino';
import { MountType, type PortConfig, SeccompMode, type Task, TaskState, type TaskStatus } from '../../proto/gen/objects.js';
import type { ContainerConfig, ContainerFile, ContainerState, HealthMonitor, Runtime } from '../runtime/index.js';
import { TsswarmError } from '../../lib/errors.js';
import { MissingDependencyError } from './dependencies.js';
import { credentialsFitImage, type DockerRegistryAuth, decodeRegistryAuth } from '../../spec/docker/distribution.js';
import { expandTemplate, isTemplate, type TemplateContext } from '../../lib/template.js';
import { isVolumeName, VOLUME_NAME_HINT } from '../../lib/volumes.js';
import { LogDriverError, logPolicy } from '../../spec/log-driver.js';

export const TERMINAL = new Set([
  TaskState.COMPLETE,
  TaskState.FAILED,
  TaskState.SHUTDOWN,
  TaskState.REJECTED,
  TaskState.ORPHANED,
  TaskState.REMOVE,
]);
const DEFAULT_GRACE_MS = 10_000;
/**
 * How long a task waits for a secret or config it references before it is
 * rejected (ms). The managers send them with the task, in the same message,
 * so one that is missing is one that is gone (or a bug): the wait covers
 * nothing but a race, and the rejection says which.
 */
export const DEPENDENCY_WAIT_MS = 10_000;
/** How long a task on overlay networks keeps running after it left the VIP backends, before it is signalled (ms). */
export const LB_DRAIN_MS = Number(process.env.TSSWARM_LB_DRAIN_MS ?? 500);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The container of a task: named like Swarm's `web.1.<task id>`, with the tss prefix. */
export function containerIdOf(t: Task): string {
  const slot = t.slot ? String(t.slot) : t.nodeId.slice(0, 12);
  const name = (t.serviceName || 'task').replace(/[^A-Za-z0-9_.-]/g, '_');
  return `tss-${name}.${slot}.${t.meta.id}`;
}

export const TASK_LABEL = 'tsswarm.task.id';

/** What a task's templates may say about the node running it. */
export interface TemplateNode {
  hostname: string;
  os: string;
  architecture: string;
}

/** The values Docker's templates name, for one task on this node. */
export function taskTemplateContext(t: Task, nodeId: string, node?: TemplateNode): TemplateContext {
  const id = t.meta.id;
  return {
    service: { id: t.serviceId, name: t.serviceName },
    node: { id: nodeId, hostname: node?.hostname ?? '', os: node?.os ?? '', architecture: node?.architecture ?? '' },
    // Docker's task name: service.slot.id, or service.node.id for a global service's task.
    task: { id, name: `${t.serviceName}.${t.slot ? String(t.slot) : t.nodeId}.${id}`, slot: String(t.slot) },
  };
}

const HOST_LABEL_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
/** The kernel's limit on a UTS hostname (HOST_NAME_MAX). */
const MAX_HOSTNAME = 64;

/**
 * The container's hostname: the spec's, its template expanded for this task
 * and node, or the task id's first 12 characters. An expansion that is not a
 * hostname the kernel takes (a node hostname with "_", a long task name) is
 * an error saying which, so the task is rejected with the reason.
 */
export function taskHostname(t: Task, nodeId: string, node?: TemplateNode): string {
  const h = t.spec?.container?.hostname;
  if (!h) return t.meta.id.slice(0, 12);
  if (!isTemplate(h)) return h;
  const out = expandTemplate('--hostname', h, taskTemplateContext(t, nodeId, node));
  const labelsOk = out.split('.').every((l) => l.length <= 63 && HOST_LABEL_RE.test(l));
  if (!labelsOk || out.length > MAX_HOSTNAME) {
    throw new TsswarmError(
      'INVALID_ARGUMENT',
      `--hostname ${JSON.stringify(h)} expands to ${JSON.stringify(out)} on this node, which is not a valid hostname (letters, digits and "-" in dot-separated labels of at most 63 characters, ${MAX_HOSTNAME} in all): change the template`,
    );
  }
  return out;
}

/**
 * A volume mount's source expanded for this task and node. The manager
 * checked the template against sample values only; the real ones (a node's
 * hostname, a service name) are known here, and a name that is not a volume
 * name (a "/" or ".." would make it a path under or beside the volumes
 * directory) rejects the task with the reason.
 */
function volumeSource(source: string, i: number, ctx: TemplateContext): string {
  const out = expandTemplate(`--mount source= (mounts[${i}])`, source, ctx);
  if (out !== '' && !isVolumeName(out)) {
    throw new TsswarmError(
      'INVALID_ARGUMENT',
      `--mount source= (mounts[${i}]) ${JSON.stringify(source)} ${out === source ? 'is' : `expands to ${JSON.stringify(out.length > 120 ? `${out.slice(0, 120)}…` : out)} on this node, which is`} not a volume name: ${VOLUME_NAME_HINT}; change the template`,
    );
  }
  return out;
}

/** What the runtime is asked to run for a task; templates (hostname, env, mount sources) expanded for it and this node. */
export function containerConfig(t: Task, nodeId: string, node?: TemplateNode): ContainerConfig {
  const c = t.spec?.container;
  const limits = t.spec?.resources?.limits;
  const ctx = taskTemplateContext(t, nodeId, node);
  return {
    id: containerIdOf(t),
    image: c?.image ?? '',
    command: c?.command ?? [],
    args: c?.args ?? [],
    env: (c?.env ?? []).map((e, i) => expandTemplate(`--env (env[${i}])`, e, ctx)),
    workdir: c?.dir || undefined,
    user: c?.user || undefined,
    hostname: taskHostname(t, nodeId, node),
    mounts: (c?.mounts ?? []).map((m, i) => ({
      type: m.type === MountType.VOLUME ? 'volume' : m.type === MountType.TMPFS ? 'tmpfs' : 'bind',
      source:
        m.type === MountType.VOLUME ? volumeSource(m.source, i, ctx) : expandTemplate(`--mount source= (mounts[${i}])`, m.source, ctx),
      target: m.target,
      readOnly: m.readOnly,
      ...(m.volumeNocopy ? { noCopy: true } : {}),
    })),
    limits: { nanoCpus: limits?.nanoCpus || undefined, memoryBytes: limits?.memoryBytes || undefined, pids: limits?.pids || undefined },
    // The service's --container-label values, then ours (which they cannot replace).
    labels: {
      ...(c?.labels ?? {}),
      [TASK_LABEL]: t.meta.id,
      'tsswarm.service.id': t.serviceId,
      'tsswarm.service.name': t.serviceName,
      'tsswarm.task.slot': String(t.slot),
      'tsswarm.node.id': nodeId,
    },
    readOnly: c?.readOnly || undefined,
    init: c?.init || undefined,
    tty: c?.tty || undefined,
    stopSignal: c?.stopSignal || undefined,
    capAdd: c?.capabilityAdd?.length ? [...c.capabilityAdd] : undefined,
    capDrop: c?.capabilityDrop?.length ? [...c.capabilityDrop] : undefined,
    seccomp: c?.seccomp === SeccompMode.SECCOMP_UNCONFINED ? 'unconfined' : undefined,
    noNewPrivileges: c?.noNewPrivileges || undefined,
    log: taskLogPolicy(t),
    sysctls: c?.sysctls && Object.keys(c.sysctls).length ? { ...c.sysctls } : undefined,
    ulimits: c?.ulimits?.length ? c.ulimits.map((u) => ({ name: u.name, soft: u.soft, hard: u.hard })) : undefined,
    groups: c?.groups?.length ? [...c.groups] : undefined,
    oomScoreAdj: c?.oomScoreAdj || undefined,
    extraHosts: c?.hosts?.length ? [...c.hosts] : undefined,
    dns: c?.dnsConfig
      ? { nameservers: [...c.dnsConfig.nameservers], search: [...c.dnsConfig.search], options: [...c.dnsConfig.options] }
      : undefined,
  };
}

/** The task's --log-driver as the runtime keeps its output (the manager validated it; a bad one fails the task by name). */
function taskLogPolicy(t: Task): ContainerConfig['log'] {
  try {
    return logPolicy(t.spec?.logDriver);
  } catch (e) {
    if (e instanceof LogDriverError) throw new TsswarmError('INVALID_ARGUMENT', e.message);
    throw e;
  }
}

export interface TaskHost {
  runtime: Runtime;
  nodeId: string;
  /** This node as templates see it (`{{.Node.Hostname}}`); absent: those placeholders expand to "". */
  node?: TemplateNode;
  logger: pino.Logger;
  report(taskId: string, status: TaskStatus): void;
  /** The runner is done (task removed and its container gone). */
  forget(taskId: string): void;
  /** Runs a container operation (create, start) within the worker's limit of concurrent ones. */
  limit<T>(fn: () => Promise<T>): Promise<T>;
  /** Health monitors are made here (tests may swap them). */
  health(
    t: Task,
    containerId: string,
    onChange: (status: 'starting' | 'healthy' | 'unhealthy', output: string) => void,
  ): HealthMonitor | null;
  /** Networking: the default bridge and overlays (absent: tasks run with loopback only). */
  network?: TaskNetworking;
  /**
   * The files of the task's secrets and configs (agent/worker/dependencies.ts);
   * throws MissingDependencyError while one has not arrived. Absent: the task
   * may reference none.
   */
  files?(t: Task): ContainerFile[];
  /** How long a task waits for a missing secret or config before it is rejected; default DEPENDENCY_WAIT_MS. */
  dependencyWaitMs?: number;
}

/** What the worker needs from overlay networking (agent/network-agent.ts). */
export interface TaskNetworking {
  /** Whether the task joins networks: every task but one on `none` (the default bridge, overlays, host-mode ports). */
  uses(t: Task): boolean;
  /** Whether the task can be a VIP backend (it is on overlay networks): its stop waits for the other hosts to drop it. */
  behindVip(t: Task): boolean;
  /** The container's resolv.conf, or undefined for the host's. */
  resolvConf(t: Task): string | undefined;
  /** Joins the created container (its init pid) to the task's networks, before it starts; idempotent. Returns its host-mode ports as bound on this node (for its status). */
  attach(t: Task, pid: number, hostname?: string): Promise<PortConfig[] | void>;
  /** The container has stopped or is going away. */
  detach(t: Task): Promise<void>;
}

export class TaskRunner {
  task: Task;
  /** The state last reported (or the managers' copy of it, on adoption). */
  private cur: TaskState;
  private status: TaskStatus;
  private queue: Promise<void> = Promise.resolve();
  private removed = false;
  private health: HealthMonitor | null = null;
  readonly containerId: string;
  private readonly log: pino.Logger;
  /** Since when the task has waited for a secret or config (0: it is not waiting). */
  private waitingSince = 0;
  private waitTimer: NodeJS.Timeout | null = null;

  constructor(
    task: Task,
    private readonly host: TaskHost,
  ) {
    this.task = task;
    this.cur = task.status?.state ?? TaskState.ASSIGNED;
    this.status = { ...(task.status ?? ({} as TaskStatus)) } as TaskStatus;
    this.containerId = containerIdOf(task);
    this.log = host.logger.child({ task: task.meta.id, service: task.serviceName, slot: task.slot });
  }

  get state(): TaskState {
    return this.cur;
  }

  get lastStatus(): TaskStatus {
    return this.status;
  }

  /** A newer copy of the task from the managers (desired state may have changed). */
  update(t: Task): void {
    // The managers' copy may lag behind what we reported; never go back to it.
    this.task = t;
    this.kick();
  }

  /** New secrets or configs reached the node: a task waiting for one tries again. */
  dependenciesChanged(): void {
    if (this.waitingSince) this.kick();
  }

  /** The task is no longer assigned here: stop and remove its container, then forget it. */
  remove(): void {
    this.removed = true;
    this.kick();
  }

  /** The container's main process exited with `code`. */
  exited(code: number): void {
    this.run(async () => {
      if (TERMINAL.has(this.cur)) return;
      this.stopHealth();
      this.leaveNetworks();
      if (this.task.desiredState >= TaskState.SHUTDOWN) this.report(TaskState.SHUTDOWN, 'shutdown', { exitCode: code, pid: 0 });
      else if (code === 0) this.report(TaskState.COMPLETE, 'finished', { exitCode: 0, pid: 0 });
      else this.report(TaskState.FAILED, 'started', { exitCode: code, err: `task: non-zero exit (${code})`, pid: 0 });
    });
    this.kick();
  }

  private kick(): void {
    this.run(() => this.reconcile());
  }

  private run(fn: () => Promise<void>): void {
    this.queue = this.queue.then(fn).catch((err: unknown) => this.log.error({ err }, 'task step failed'));
  }

  /** Resolves when every step queued so far is done (tests, shutdown). */
  settled(): Promise<void> {
    return this.queue;
  }

  private report(state: TaskState, message: string, extra: Partial<TaskStatus> = {}): void {
    if (state < this.cur) return;
    this.cur = state;
    this.status = {
      ...this.status,
      state,
      message,
      err: '',
      timestamp: Date.now(),
      containerId: this.containerId,
      ...extra,
    } as TaskStatus;
    this.host.report(this.task.meta.id, this.status);
  }

  private fail(state: TaskState.FAILED | TaskState.REJECTED, err: string, extra: Partial<TaskStatus> = {}): void {
    this.log.warn({ err }, state === TaskState.REJECTED ? 'task rejected' : 'task failed');
    this.report(state, state === TaskState.REJECTED ? 'rejected' : 'failed', { err, ...extra });
  }

  private async inspect(): Promise<ContainerState | undefined> {
    return this.host.runtime.inspect(this.containerId).catch(() => undefined);
  }

  private async reconcile(): Promise<void> {
    const rt = this.host.runtime;
    const want = this.task.desiredState;
    if (this.removed || want >= TaskState.REMOVE) {
      await this.stopContainer();
      if (!TERMINAL.has(this.cur)) this.report(TaskState.SHUTDOWN, 'shutdown');
      await rt.remove(this.containerId).catch((err: unknown) => this.log.warn({ err }, 'could not remove the container'));
      if (this.removed) this.host.forget(this.task.meta.id);
      return;
    }
    if (TERMINAL.has(this.cur)) {
      // An ended task's container must not run. A runner adopted from the managers' copy (a
      // restarted agent) can say "ended" while the container still runs: a stop that failed is
      // still reported SHUTDOWN or FAILED, and that report outlives the agent that made it.
      const c = await this.inspect();
      if (c && c.status !== 'stopped') {
        this.log.warn({ container: this.containerId, status: c.status }, 'the task has ended but its container still runs: stopping it');
        await this.stopContainer();
      }
      return;
    }
    if (want >= TaskState.SHUTDOWN) {
      const exitCode = await this.stopContainer();
      this.report(TaskState.SHUTDOWN, 'shutdown', exitCode === undefined ? {} : { exitCode, pid: 0 });
      return;
    }
    // Desired READY or RUNNING: walk forward as far as allowed.
    if (this.cur <= TaskState.ASSIGNED) this.report(TaskState.ACCEPTED, 'accepted');
    if (this.cur === TaskState.ACCEPTED) {
      this.report(TaskState.PREPARING, 'preparing');
    }
    if (this.cur === TaskState.PREPARING) {
      if (!(await this.prepare())) return;
      this.report(TaskState.READY, 'prepared');
    }
    if (want < TaskState.RUNNING) return;
    if (this.cur === TaskState.READY) this.report(TaskState.STARTING, 'starting');
    if (this.cur === TaskState.STARTING) {
      // Started, waiting for its first healthy check: the monitor moves it on (or fails it).
      if (this.health) return;
      const c = await this.inspect();
      if (!c) {
        // Adopted at STARTING without a container (the agent died mid-create): make it again.
        if (!(await this.prepare())) return;
      }
      if (!c || c.status === 'created') {
        if (!(await this.joinNetworks(c ?? (await this.inspect())))) return;
        try {
          // Not queued behind other tasks' creates: a start is a FIFO read (see Runtime.start), and a
          // FIFO-ordered limit made every container of a burst wait for the last create before starting.
          const s = await rt.start(this.containerId);
          this.started({ pid: s.pid, startedAt: s.startedAt ?? Date.now(), exitCode: 0 });
        } catch (e) {
          // Attached above: its ports, host-port forwards and DNS records go with it.
          this.leaveNetworks();
          this.fail(TaskState.FAILED, `starting the container failed: ${(e as Error).message}`);
        }
        return;
      }
      if (c.status === 'running') {
        if (!(await this.joinNetworks(c))) return;
        this.started({ pid: c.pid, startedAt: c.startedAt ?? Date.now() });
        return;
      }
      this.exitedFrom(c);
      return;
    }
    if (this.cur === TaskState.RUNNING && !this.health) {
      // Adopted while running (agent restart, or a new leader's copy): check the container is still there.
      const c = await this.inspect();
      if (!c) this.fail(TaskState.FAILED, 'the container is gone (removed outside tsswarm?)');
      else if (c.status === 'running') {
        // Its veths live in its namespace; DNS sockets and the VIP table are opened again.
        if (!(await this.joinNetworks(c))) return;
        this.startHealth();
      } else this.exitedFrom(c);
    }
  }

  /** Joins the container to the task's overlay networks; false (task failed, container stopped) when that fails. */
  private async joinNetworks(c: ContainerState | undefined): Promise<boolean> {
    const net = this.host.network;
    if (!net?.uses(this.task)) return true;
    try {
      if (!c?.pid) throw new Error('the container has no process to join');
      const ports = await net.attach(this.task, c.pid, taskHostname(this.task, this.host.nodeId, this.host.node));
      if (ports && ports.length > 0) this.status = { ...this.status, portStatus: ports } as TaskStatus;
      return true;
    } catch (e) {
      await this.stopContainer();
      this.fail(TaskState.FAILED, `joining the task's networks failed: ${(e as Error).message}`, { pid: 0 });
      return false;
    }
  }

  private leaveNetworks(): void {
    const net = this.host.network;
    if (net?.uses(this.task)) void net.detach(this.task).catch((err: unknown) => this.log.warn({ err }, 'leaving the networks failed'));
  }

  private exitedFrom(c: ContainerState): void {
    this.leaveNetworks();
    const code = c.exitCode ?? -1;
    if (code === 0) this.report(TaskState.COMPLETE, 'finished', { exitCode: 0, pid: 0 });
    else
      this.fail(TaskState.FAILED, code < 0 ? 'the container stopped and its exit code is unknown' : `task: non-zero exit (${code})`, {
        exitCode: code,
        pid: 0,
      });
  }

  /** Makes the container (idempotent); false when the task was rejected. */
  private async prepare(): Promise<boolean> {
    const rt = this.host.runtime;
    const existing = await this.inspect();
    if (existing) return true;
    let cfg: ContainerConfig;
    try {
      cfg = containerConfig(this.task, this.host.nodeId, this.host.node);
    } catch (e) {
      this.fail(TaskState.REJECTED, (e as Error).message);
      return false;
    }
    cfg.resolvConf = this.host.network?.resolvConf(this.task);
    // Never without its secrets and configs: a task whose file has not arrived waits for it, then is rejected.
    const files = this.files();
    if (!files) return false;
    if (files.length) cfg.files = files;
    if (!cfg.image) {
      this.fail(TaskState.REJECTED, 'the task has no image');
      return false;
    }
    if (!rt.images.resolve(cfg.image)) {
      // --with-registry-auth: the credentials travel with the task, are used for this pull only, and never reach a disk or a log.
      // Only to the registry they are for: a service moved to another registry never hands it the old login.
      let auth: DockerRegistryAuth | undefined;
      try {
        auth = decodeRegistryAuth(this.task.spec?.container?.pullOptions?.registryAuth);
      } catch (e) {
        this.fail(TaskState.REJECTED, `--with-registry-auth: ${(e as Error).message}`);
        return false;
      }
      if (auth && !credentialsFitImage(auth, cfg.image)) auth = undefined;
      try {
        await rt.images.pull(cfg.image, { insecure: /^(localhost|127\.0\.0\.1)(:\d+)?\//.test(cfg.image), auth });
      } catch (e) {
        this.fail(TaskState.REJECTED, pullFailure(cfg.image, this.host.nodeId, e, auth !== undefined));
        return false;
      }
    }
    try {
      await this.host.limit(() => rt.create(cfg));
      return true;
    } catch (e) {
      await rt.remove(cfg.id).catch(() => undefined);
      this.fail(TaskState.REJECTED, `creating the container failed: ${(e as Error).message}`);
      return false;
    }
  }

  /**
   * The task's secret and config files, or null when it cannot have them now:
   * one has not reached the node (the task waits for it, up to the
   * host's dependencyWaitMs, then is rejected naming it) or a reference is
   * malformed (rejected). Never logs a value.
   */
  private files(): ContainerFile[] | null {
    try {
      const files = this.host.files?.(this.task) ?? [];
      this.stopWaiting();
      return files;
    } catch (e) {
      if (!(e instanceof MissingDependencyError)) {
        this.stopWaiting();
        this.fail(TaskState.REJECTED, `the task's secrets and configs: ${(e as Error).message}`);
        return null;
      }
      const waitMs = this.host.dependencyWaitMs ?? DEPENDENCY_WAIT_MS;
      const now = Date.now();
      if (!this.waitingSince) this.waitingSince = now;
      const left = this.waitingSince + waitMs - now;
      if (left <= 0) {
        this.stopWaiting();
        this.fail(
          TaskState.REJECTED,
          `${e.message} within ${waitMs / 1000} s, and the task does not start without ${e.missing.length === 1 ? 'it' : 'them'}: the managers send a task's secrets and configs with the task; check that they still exist (tsswarm secret ls, tsswarm config ls)`,
        );
        return null;
      }
      const message = `waiting for ${e.missing.join(', ')}`;
      if (this.status.message !== message) {
        this.log.info({ missing: e.missing }, 'the task waits for a secret or config to reach this node');
        this.report(this.cur, message);
      }
      if (!this.waitTimer) {
        this.waitTimer = setTimeout(() => {
          this.waitTimer = null;
          this.kick();
        }, left + 1);
        this.waitTimer.unref?.();
      }
      return null;
    }
  }

  private stopWaiting(): void {
    this.waitingSince = 0;
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = null;
  }

  /** Stops the container if it runs; the exit code when it ran. */
  private async stopContainer(): Promise<number | undefined> {
    this.stopHealth();
    const c = await this.inspect();
    if (!c || c.status === 'stopped') {
      this.leaveNetworks();
      return c?.exitCode;
    }
    const spec = this.task.spec?.container;
    const grace = spec?.stopGracePeriodMs || DEFAULT_GRACE_MS;
    // The managers took the task out of every VIP's backends in the same
    // transaction that asked for the stop; give the other hosts a moment to
    // apply that before the container gets its signal, so no new connection
    // is sent to a process that is going away (connections in flight then
    // have the stop grace period to finish).
    if (c.status === 'running' && this.host.network?.behindVip(this.task) && this.task.desiredState > TaskState.RUNNING)
      await sleep(LB_DRAIN_MS);
    try {
      await this.host.runtime.stop(this.containerId, grace, spec?.stopSignal || undefined);
    } catch (err) {
      this.log.warn({ err }, 'stopping the container failed');
    }
    this.leaveNetworks();
    return (await this.inspect())?.exitCode;
  }

  /**
   * The container runs: without a health check the task is RUNNING now; with
   * one it stays STARTING (no VIP sends it traffic, a start-first update keeps
   * the task it replaces) until the check first passes.
   */
  private started(extra: Partial<TaskStatus>): void {
    if (this.startHealth()) this.report(TaskState.STARTING, 'waiting for the container to be healthy', { ...extra, health: 'starting' });
    else this.report(TaskState.RUNNING, 'started', { ...extra, runningAt: Date.now() });
  }

  /** Starts the container's health check if it has one; whether it has. */
  private startHealth(): boolean {
    if (this.health) return true;
    this.health = this.host.health(this.task, this.containerId, (h, output) => this.run(() => this.healthChanged(h, output)));
    this.health?.start();
    return this.health !== null;
  }

  private async healthChanged(h: 'starting' | 'healthy' | 'unhealthy', output: string): Promise<void> {
    if (this.cur !== TaskState.STARTING && this.cur !== TaskState.RUNNING) return;
    if (h === 'starting') return; // said when it started; a task adopted RUNNING keeps its last word until a check answers
    if (h === 'healthy') {
      if (this.cur === TaskState.STARTING) this.report(TaskState.RUNNING, 'started', { health: h, runningAt: Date.now() });
      else if (this.status.health !== h) this.report(TaskState.RUNNING, 'started', { health: h });
      return;
    }
    // Swarm's rule: an unhealthy container is a failed task (the orchestrator replaces it), whether
    // it never passed its check or stopped passing it. Said at once, so it leaves the VIPs before the stop.
    const before = this.cur === TaskState.STARTING ? ' before it ever passed its health check' : '';
    this.report(this.cur, this.cur === TaskState.STARTING ? 'unhealthy' : 'started', { health: h });
    this.log.warn({ output }, `container unhealthy${before}: stopping it`);
    const code = (await this.stopContainer()) ?? -1;
    const last = output.trim().slice(0, 200);
    this.fail(
      TaskState.FAILED,
      `task: non-zero exit (${code}): unhealthy container${before}${last ? ` (last check said: ${JSON.stringify(last)})` : ''}`,
      { exitCode: code, pid: 0 },
    );
  }

  private stopHealth(): void {
    this.health?.stop();
    this.health = null;
  }

  close(): void {
    this.stopHealth();
    this.stopWaiting();
  }
}

/**
 * Why a task was rejected when its image could not be pulled, with the fix:
 * a registry that wants credentials the task did not bring names
 * --with-registry-auth (Docker says only "No such image").
 */
export function pullFailure(image: string, nodeId: string, e: unknown, hadAuth: boolean): string {
  const why = (e as Error).message;
  const head = `image ${image} is not on node ${nodeId.slice(0, 12)} and could not be pulled (${why})`;
  const status = (e as { status?: unknown }).status;
  if (status === 401 || status === 403 || (e as TsswarmError).code === 'UNAUTHENTICATED')
    return hadAuth
      ? `${head}: the registry refused the credentials the service carries; log in again (\`tsswarm login REGISTRY\`) and update the service with --with-registry-auth`
      : `${head}: the registry needs authentication; log in (\`tsswarm login REGISTRY\`) and create or update the service with --with-registry-auth`;
  return `${head}: load it on every node with \`tsswarm image load -i FILE\``;
}
