// `service logs` and `service exec` on the leader: find the tasks, ask the
// agents that run them over their existing mTLS sessions (the dispatcher's
// relay), and stream what comes back to the caller. No extra port or
// connection to the workers is needed, and workers never accept calls.
import type pino from 'pino';
import { TsswarmError } from '../lib/errors.js';
import type { ExecOutput, ExecRequest, LogChunk, RelayData, ServiceLogsRequest } from '../proto/gen/control.js';
import { type Service, type Task, TaskState } from '../proto/gen/objects.js';
import type { Dispatcher } from './dispatcher/dispatcher.js';
import type { MemoryStore } from './store/index.js';
import { findService, findTask } from './controlapi/index.js';

/** A service (by id, name or unique id prefix) with its tasks, or else one task by id or unique prefix. */
export function resolveTasks(store: MemoryStore, ref: string): { service?: Service; tasks: Task[] } {
  return store.view((tx) => {
    try {
      const service = findService(tx, ref);
      return { service, tasks: tx.tasks.by('service', service.meta.id) };
    } catch (e) {
      if ((e as TsswarmError).code !== 'NOT_FOUND') throw e;
    }
    try {
      return { tasks: [findTask(tx, ref)] };
    } catch (e) {
      if ((e as TsswarmError).code === 'NOT_FOUND')
        throw new TsswarmError('NOT_FOUND', `no service or task ${ref}: see \`tsswarm service ls\` and \`tsswarm service ps SERVICE\``);
      throw e;
    }
  });
}

const running = (t: Task): boolean => t.desiredState === TaskState.RUNNING && t.status?.state === TaskState.RUNNING;

export class TaskRelay {
  private readonly log: pino.Logger;

  constructor(
    private readonly store: MemoryStore,
    private readonly dispatcher: Dispatcher,
    logger: pino.Logger,
  ) {
    this.log = logger.child({ component: 'relay' });
  }

  /**
   * Streams the logs of a service's tasks (or one task). Without follow it ends when every
   * agent has sent its part; with follow it goes on, picking up tasks that start later, until `signal`
   * (or, given an until time, once that has passed and every agent's stream has ended).
   */
  async logs(req: ServiceLogsRequest, write: (c: LogChunk) => void, signal: AbortSignal): Promise<void> {
    const { service, tasks } = resolveTasks(this.store, req.ref);
    // As dockerd: a driver that keeps nothing cannot be read back. Each task is judged by its own spec's driver:
    // the tasks from before an update to none keep their logs; when no task can be read the request is refused.
    const started = (t: Task): boolean => !!t.nodeId && (t.status?.state ?? 0) >= TaskState.STARTING;
    const noLogs = (t: Task): boolean => t.spec?.logDriver?.name === 'none';
    const refusal = `configured logging driver does not support reading: ${req.ref} runs with --log-driver none (give json-file or local to keep logs)`;
    if (!service) {
      if (tasks[0] && noLogs(tasks[0])) throw new TsswarmError('FAILED_PRECONDITION', refusal);
    } else {
      const live = tasks.filter(started);
      // Nothing readable now: refused when the service itself is on none, or (without -f) when there was something to read.
      if (live.every(noLogs) && (service.spec.task?.logDriver?.name === 'none' || (!req.follow && live.length > 0)))
        throw new TsswarmError('FAILED_PRECONDITION', refusal);
    }
    const begun = new Set<string>();
    const cancels: (() => void)[] = [];
    // Following up to --until: no task started later can have lines before it, so the stream ends with the last agent's.
    const past = (): boolean => Number(req.untilMs) > 0 && Date.now() >= Number(req.untilMs);
    let open = 0;
    let unreachable = 0;
    let done: () => void = () => undefined;
    const finished = new Promise<void>((res) => (done = res));
    const begin = (t: Task): void => {
      const id = t.meta.id;
      if (begun.has(id) || !started(t)) return;
      begun.add(id);
      if (noLogs(t)) {
        // A task on none says so, once, in its own place in the stream; the others are read.
        write({
          taskId: id,
          nodeId: t.nodeId,
          slot: t.slot,
          stream: 'stderr',
          data: new TextEncoder().encode(`configured logging driver does not support reading: task ${id} runs with --log-driver none\n`),
          time: Date.now(),
          serviceName: t.serviceName,
          serviceId: t.serviceId,
        } as LogChunk);
        return;
      }
      open++;
      const cancel = this.dispatcher.relay(t.nodeId, { taskId: id, logs: req, exec: undefined }, (d: RelayData) => {
        if (d.log) write(d.log);
        if (d.end) {
          if (d.error) this.log.debug({ task: id, why: d.error }, 'a task log stream ended with an error');
          if (--open === 0 && (!req.follow || past())) done();
        }
      });
      if (!cancel) {
        unreachable++;
        if (--open === 0 && !req.follow) done();
      } else cancels.push(cancel);
    };
    for (const t of tasks) begin(t);
    let unsub: (() => void) | null = null;
    if (req.follow && service) {
      const sid = service.meta.id;
      const sub = this.store.subscribe(
        (e) => {
          if (e.kind !== 'commit' && e.table === 'tasks' && e.kind !== 'delete' && e.object.serviceId === sid) begin(e.object);
        },
        { tables: ['tasks'], commits: 'none' },
      );
      unsub = () => sub.close();
    }
    if (open === 0 && !req.follow) {
      if (tasks.length > 0 && unreachable === tasks.filter((t) => t.nodeId).length && unreachable > 0)
        throw new TsswarmError('UNAVAILABLE', `the nodes running ${req.ref}'s tasks are not connected: no logs can be read now`);
      return;
    }
    const onAbort = (): void => done();
    signal.addEventListener('abort', onAbort, { once: true });
    let untilTimer: NodeJS.Timeout | undefined;
    if (req.follow && Number(req.untilMs) > 0) {
      const check = (): void => {
        if (past() && open === 0) done();
        else untilTimer = setTimeout(check, past() ? 1000 : Math.min(Number(req.untilMs) - Date.now(), 2 ** 31 - 1));
      };
      check();
    }
    try {
      await finished;
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearTimeout(untilTimer);
      unsub?.();
      for (const c of cancels) c();
    }
  }

  /** Runs a command in one running task of the service (or the given task) and streams its output; the last message carries the exit code. */
  async exec(req: ExecRequest, write: (o: ExecOutput) => void, signal: AbortSignal): Promise<void> {
    if (req.cmd.length === 0)
      throw new TsswarmError('INVALID_ARGUMENT', 'exec needs a command: `tsswarm service exec SERVICE -- CMD [ARG...]`');
    const { service, tasks } = resolveTasks(this.store, req.ref);
    let task: Task | undefined;
    if (service) {
      const live = tasks.filter(running).sort((a, b) => a.slot - b.slot);
      task = req.slot ? live.find((t) => t.slot === req.slot) : live[0];
      if (!task) {
        throw new TsswarmError(
          'FAILED_PRECONDITION',
          req.slot
            ? `service ${service.spec.name} has no running task in slot ${req.slot} (running slots: ${live.map((t) => t.slot).join(', ') || 'none'})`
            : `service ${service.spec.name} has no running task`,
        );
      }
    } else {
      task = tasks[0];
      if (!task || !running(task)) throw new TsswarmError('FAILED_PRECONDITION', `task ${req.ref} is not running`);
    }
    let settle: (e?: Error) => void = () => undefined;
    const finished = new Promise<void>((res, rej) => (settle = (e) => (e ? rej(e) : res())));
    let sawExit = false;
    const cancel = this.dispatcher.relay(task.nodeId, { taskId: task.meta.id, exec: req, logs: undefined }, (d: RelayData) => {
      if (d.exec) {
        if (d.exec.exited) sawExit = true;
        write(d.exec);
      }
      if (d.end)
        settle(
          d.error
            ? new TsswarmError('UNAVAILABLE', `exec in task ${task!.meta.id}: ${d.error}`)
            : sawExit
              ? undefined
              : new TsswarmError('INTERNAL', 'the agent ended the exec without an exit code'),
        );
    });
    if (!cancel) throw new TsswarmError('UNAVAILABLE', `the node running task ${task.meta.id} is not connected`);
    const onAbort = (): void => {
      cancel();
      settle(new TsswarmError('CANCELLED', 'exec cancelled'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await finished;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }
}
