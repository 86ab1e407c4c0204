// Rolling updates and rollbacks of one service. A slot whose current task runs
// another TaskSpec (forceUpdate included) is replaced in slot order, at most
// `parallelism` at a time, waiting `delay` after each new task runs. A task
// runs once its container started and, with a health check, first passed it
// (the agent holds it STARTING until then, as Docker's executor). stop-first
// shuts the old task down as its successor is made READY, which starts once the
// old one has stopped (restart.ts); start-first shuts it down once the
// successor runs, so a successor that never gets healthy never replaces it. A
// new task that fails (an unhealthy one included) before it has run for
// `monitor` counts against maxFailureRatio, and the failure action then
// pauses, goes on, or rolls back (spec := previousSpec, run with the rollback
// config), as SwarmKit's updater. All of it is read back from the store
// (updateStatus.startedAt, task times), so a new leader continues an update
// where the old one was.
import { sameTaskSpec } from '../controlapi/index.js';
import { NodeAvailability, Service, type Task, TaskState, UpdateFailureAction, UpdateOrder, UpdateState } from '../../proto/gen/objects.js';
import { isTerminal, type ServiceContext } from './context.js';

const DEFAULT_MONITOR_MS = 5000;

/**
 * How long a failed task had been RUNNING when it failed (ms): from the time
 * it reached RUNNING (its container started and passed its first health
 * check) to its last report; 0 when it never ran. The dispatcher stamps both
 * with the manager's clock. A task without runningAt (RUNNING in a store
 * written before the dispatcher stamped it, from an agent that did not send
 * it) counts from its container's start when it has no health check, which is
 * when such a task runs; with a check, no runningAt means it never passed it.
 */
export function failedAfter(t: Task): number {
  const since = t.status?.runningAt || (t.status?.health ? 0 : t.status?.startedAt) || 0;
  return since ? Math.max(0, (t.status?.timestamp ?? 0) - since) : 0;
}

/**
 * How long a task has been RUNNING at `now` (ms), never negative; -1 while it
 * is not RUNNING. A runningAt ahead of `now` was stamped by another clock (a
 * former leader's running ahead, or an agent's in a store written before the
 * dispatcher stamped it): the task counts from its last write instead
 * (meta.updatedAt, this cluster's clock), so the update is not held for as
 * long as the clocks differ.
 */
export function ranFor(t: Task, now: number): number {
  if (t.status?.state !== TaskState.RUNNING) return -1;
  let since = t.status?.runningAt || t.status?.startedAt || t.status?.timestamp || now;
  if (since > now) since = Math.min(since, t.meta?.updatedAt || now);
  return Math.max(0, now - since);
}

export function rollingUpdate(c: ServiceContext): void {
  const { svc, p } = c;
  if (!svc) return;
  const spec = svc.spec;
  const st = svc.updateStatus?.state ?? UpdateState.UPDATE_UNKNOWN;
  const rollingBack = st === UpdateState.ROLLBACK_STARTED || st === UpdateState.ROLLBACK_PAUSED;
  const paused = st === UpdateState.PAUSED || st === UpdateState.ROLLBACK_PAUSED;
  const inUpdate = st === UpdateState.UPDATING || st === UpdateState.ROLLBACK_STARTED;
  const cfg = (rollingBack ? spec.rollback : spec.update) ?? undefined;
  const par = cfg?.parallelism || Infinity;
  const delay = Math.max(0, cfg?.delayMs ?? 0);
  const monitor = cfg ? Math.max(0, cfg.monitorMs) : DEFAULT_MONITOR_MS;
  const startedAt = svc.updateStatus?.startedAt ?? 0;
  // Tasks made from this very version of the service match without a deep compare; the others
  // are compared once per service version they were made from (a version has one spec).
  const byVersion = new Map<number, boolean>();
  const matches = (t: Task): boolean => {
    if (t.serviceVersion === svc.meta.version) return true;
    let m = byVersion.get(t.serviceVersion);
    if (m === undefined) byVersion.set(t.serviceVersion, (m = sameTaskSpec(t.spec, spec.task)));
    return m;
  };

  const outdated: Task[] = [];
  /** New tasks not yet running, or running for less than the delay: the batch is not over. */
  let inFlight = 0;
  /** New tasks still within their monitor window: the update is not over. */
  let watched = 0;
  for (const k of c.slots.keys()) {
    // A global task on a paused node is left as it is (SwarmKit's global orchestrator updates none there).
    if (c.global && p.nodes.get(k)?.spec?.availability === NodeAvailability.PAUSE) continue;
    const cur = c.current(k);
    const good = cur.filter(matches);
    const old = cur.filter((t) => !matches(t));
    for (const g of good) {
      const s = g.status?.state ?? 0;
      if (isTerminal(s)) continue;
      const ran = ranFor(g, p.now);
      const ofThisUpdate = inUpdate && (g.meta?.createdAt ?? 0) >= startedAt;
      if (s < TaskState.RUNNING || (ofThisUpdate && ran < delay)) {
        inFlight++;
        if (ran >= 0) p.wake = Math.min(p.wake, p.now + (delay - ran));
      }
      if (ofThisUpdate && (s < TaskState.RUNNING || ran < monitor)) {
        watched++;
        // A RUNNING task has ran ≥ 0: a wake is always set while it is monitored (a status change wakes the rest).
        if (ran >= 0) p.wake = Math.min(p.wake, p.now + (monitor - ran));
      }
    }
    if (!old.length) continue;
    // start-first: the old task goes once its successor runs (healthy, not already failing its check).
    if (good.some((g) => g.status?.state === TaskState.RUNNING && g.status?.health !== 'unhealthy')) {
      for (const o of old) c.setDesired(o, TaskState.SHUTDOWN, 'replaced by an updated task');
      continue;
    }
    if (good.length) continue; // a successor is on its way
    outdated.push(...old);
  }

  // Failures among the tasks this update made: ended (or turned unhealthy) before running `monitor`
  // ms, counted from RUNNING; one that never reached RUNNING (failed its first checks) ran 0 ms.
  if (inUpdate && cfg?.failureAction !== UpdateFailureAction.CONTINUE) {
    const made: Task[] = [];
    for (const list of c.slots.values())
      for (const t0 of list) {
        const t = c.latest(t0);
        if (startedAt > 0 && (t.meta?.createdAt ?? 0) >= startedAt && matches(t) && !c.isFresh(t)) made.push(t);
      }
    const failed = made.filter((t) => {
      const s = t.status?.state;
      // Reported unhealthy (its agent is stopping it): a failure now, not once the stop grace is over.
      const sick = (s === TaskState.STARTING || s === TaskState.RUNNING) && t.status?.health === 'unhealthy';
      if (s !== TaskState.FAILED && s !== TaskState.REJECTED && !sick) return false;
      return failedAfter(t) < monitor;
    });
    if (failed.length && failed.length / Math.max(1, made.length) > (cfg?.maxFailureRatio ?? 0)) {
      const f = failed[0]!;
      const err = f.status?.err || (f.status?.health === 'unhealthy' ? 'unhealthy container' : '');
      const why = `task ${f.meta.id}${err ? ` (${err})` : ''}`;
      if (cfg?.failureAction === UpdateFailureAction.ROLLBACK && !rollingBack && svc.previousSpec) {
        c.updateService(
          Service.create({
            ...svc,
            spec: svc.previousSpec,
            previousSpec: svc.spec,
            updateStatus: {
              state: UpdateState.ROLLBACK_STARTED,
              startedAt: p.now,
              completedAt: 0,
              message: `update rolled back due to failure or early termination of ${why}`,
            },
          }),
        );
      } else {
        const verb = rollingBack ? 'rollback' : 'update';
        c.updateService(
          Service.create({
            ...svc,
            updateStatus: {
              ...svc.updateStatus!,
              state: rollingBack ? UpdateState.ROLLBACK_PAUSED : UpdateState.PAUSED,
              message: `${verb} paused due to failure or early termination of ${why}`,
            },
          }),
        );
      }
      return;
    }
  }
  if (paused) return;
  if (!outdated.length) {
    if (inUpdate && watched === 0) {
      const done = rollingBack ? UpdateState.ROLLBACK_COMPLETED : UpdateState.COMPLETED;
      // A rollback keeps the reason it started with (the CLI shows it); otherwise say it is over.
      const message = rollingBack ? svc.updateStatus?.message || 'rollback completed' : 'update completed';
      c.updateService(Service.create({ ...svc, updateStatus: { ...svc.updateStatus!, state: done, completedAt: p.now, message } }));
    }
    return;
  }
  // Outdated tasks and no update under way (the Control API clears the status on
  // every update that keeps the task spec, e.g. a scale after a paused update,
  // as SwarmKit does): an update starts, so it is monitored and completes.
  if (!svc.updateStatus)
    c.updateService(
      Service.create({
        ...svc,
        updateStatus: { state: UpdateState.UPDATING, startedAt: p.now, completedAt: 0, message: 'update in progress' },
      }),
    );
  outdated.sort((a, b) => a.slot - b.slot || a.nodeId.localeCompare(b.nodeId));
  const room = par === Infinity ? outdated.length : Math.max(0, par - inFlight);
  const startFirst = cfg?.order === UpdateOrder.START_FIRST;
  for (const t of outdated.slice(0, room)) {
    if (startFirst) c.newTask(t.slot, c.global ? t.nodeId : '', TaskState.RUNNING, 0);
    else {
      // stop-first: the successor is scheduled and prepared (image pulled) now, and started by the
      // restart supervisor once this task has stopped (READY → RUNNING).
      c.setDesired(t, TaskState.SHUTDOWN, 'replaced by an updated task');
      c.newTask(t.slot, c.global ? t.nodeId : '', TaskState.READY, 0);
    }
  }
}
