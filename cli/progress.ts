// The progress display of `service create|update|scale|rollback` without
// --detach, docker style: one line per slot (global: per node) with the task's
// state as a bar, then `verify: Service converged` once the tasks stay running.
// ProgressTracker decides from snapshots and a clock given to it (pure); the
// renderers and watchProgress do the drawing and polling.
import { type Service, type Task, TaskSpec, TaskState, type UpdateStatus, UpdateState } from '../proto/gen/objects.js';
import type { Writer } from './command.js';
import { jobCounts, jobIteration } from '../spec/jobs.js';

/** How long every task must stay running before the service counts as converged. */
export const STABILITY_MS = 1_000;
/** How long every task that is not running may wait with "no suitable node" before we give up. */
export const NO_NODE_MS = 3_000;
/** Poll period of watchProgress. */
export const POLL_MS = 200;

const BAR_WIDTH = 50;
const STATE_WIDTH = 'preparing'.length;

export type Operation = 'create' | 'update' | 'rollback' | 'scale';

export interface Snapshot {
  service: Service;
  /** The service's tasks (any desired state). */
  tasks: Task[];
  /** node id → hostname, for global services' lines. */
  nodeNames?: ReadonlyMap<string, string>;
}

export interface Line {
  /** Identifies the line across frames (`overall`, `slot 3`, `node abc`, `verify`). */
  key: string;
  text: string;
}

export interface Outcome {
  ok: boolean;
  /** Failure: what went wrong and what to do; success: empty. */
  message: string;
}

export interface ProgressStep {
  lines: Line[];
  done?: Outcome;
}

/** `running`, `pending`, ...: the words docker uses. */
export function stateWord(s: TaskState | undefined): string {
  return (TaskState[s ?? TaskState.NEW] ?? 'unknown').toLowerCase();
}

// Docker's bar positions: new 1 ... running 9 (it also has `allocated`, 2).
const barPosition: Partial<Record<TaskState, number>> = {
  [TaskState.NEW]: 1,
  [TaskState.PENDING]: 3,
  [TaskState.ASSIGNED]: 4,
  [TaskState.ACCEPTED]: 5,
  [TaskState.PREPARING]: 6,
  [TaskState.READY]: 7,
  [TaskState.STARTING]: 8,
  [TaskState.RUNNING]: 9,
};

/** `[=====>        ]` for a task state. */
export function bar(s: TaskState | undefined): string {
  const n = Math.floor((BAR_WIDTH * (barPosition[s ?? TaskState.NEW] ?? 0)) / 9);
  return `[${'='.repeat(n)}>${' '.repeat(BAR_WIDTH - n)}]`;
}

const wantsRunning = (t: Task): boolean => t.desiredState === TaskState.RUNNING || t.desiredState === TaskState.READY;
const isRunning = (t: Task): boolean => t.status?.state === TaskState.RUNNING;
const newestFirst = (a: Task, b: Task): number =>
  (b.meta?.createdAt ?? 0) - (a.meta?.createdAt ?? 0) || (b.meta?.version ?? 0) - (a.meta?.version ?? 0);
const NO_NODE_RE = /no suitable node/i;
/** The allocator's prefix when a task cannot get its addresses or ports (manager/allocator ALLOCATION_FAILED). */
const ALLOCATION_RE = /^network allocation failed/i;

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
const taskSpecKey = (t: TaskSpec | null | undefined): string => (t ? canonical(TaskSpec.toObject(t)) : 'null');

interface Row {
  key: string;
  label: string;
  task: Task | undefined;
}

/**
 * Follows one service after a create/update/scale/rollback. Feed it a snapshot
 * and the time at each poll; it answers with the lines to show and, at the
 * end, the outcome.
 */
export class ProgressTracker {
  private convergedSince: number | null = null;
  private noNodeSince: number | null = null;
  private failedSince: number | null = null;
  /** Whether this operation started an update or rollback whose end we watch. */
  private readonly watchesUpdate: boolean;

  /** `initial`: the update status the write returned. */
  constructor(
    private readonly op: Operation,
    initial: UpdateStatus | null | undefined = null,
  ) {
    this.watchesUpdate = initial?.state === UpdateState.UPDATING || initial?.state === UpdateState.ROLLBACK_STARTED;
  }

  step(snap: Snapshot, now: number): ProgressStep {
    const svc = snap.service;
    const spec = svc.spec;
    if (spec.replicatedJob || spec.globalJob) return this.jobStep(snap, now);
    const current = taskSpecKey(spec.task);
    const isCurrent = (t: Task): boolean => taskSpecKey(t.spec) === current;
    const live = snap.tasks.filter(wantsRunning);
    const rows = spec.global ? this.globalRows(snap, live) : this.replicatedRows(snap.tasks, spec.replicated?.replicas ?? 0, isCurrent);
    const n = rows.length;
    const runningCurrent = rows.filter((r) => r.task && wantsRunning(r.task) && isRunning(r.task) && isCurrent(r.task)).length;

    const lines: Line[] = [];
    const us = svc.updateStatus;
    if (
      us?.message &&
      (us.state === UpdateState.ROLLBACK_STARTED ||
        us.state === UpdateState.ROLLBACK_COMPLETED ||
        us.state === UpdateState.ROLLBACK_PAUSED) &&
      this.op !== 'create'
    ) {
      lines.push({ key: 'rollback', text: `rollback: ${us.message}` });
    }
    lines.push({ key: 'overall', text: `overall progress: ${runningCurrent} out of ${n} tasks` });
    for (const r of rows) {
      const t = r.task;
      const err = t?.status?.err ? ` ${t.status.err}` : '';
      lines.push({ key: r.key, text: `${r.label}: ${stateWord(t?.status?.state).padEnd(STATE_WIDTH)} ${bar(t?.status?.state)}${err}` });
    }

    // The update's end, as the updater reports it.
    if (this.watchesUpdate && us) {
      const fail = (message: string): ProgressStep => ({ lines, done: { ok: false, message } });
      const hint = 'fix the service with `tsswarm service update`, or return to the previous spec with `tsswarm service rollback`';
      if (us.state === UpdateState.PAUSED)
        return fail(`${/^update paused/.test(us.message) ? us.message : `update paused: ${us.message || 'a task failed'}`}\n${hint}`);
      if (us.state === UpdateState.ROLLBACK_PAUSED) return fail(`rollback paused: ${us.message || 'a task failed'}\n${hint}`);
      if (us.state === UpdateState.ROLLBACK_COMPLETED && this.op === 'update')
        return fail(`rolled back: ${us.message || 'the update failed'}`);
    }

    // Tasks that cannot be placed.
    const waiting = live.filter((t) => isCurrent(t) && !isRunning(t));
    // Stuck: no node fits (PENDING), or the managers cannot give the task its network addresses (NEW).
    const stuck =
      waiting.length > 0 &&
      waiting.every(
        (t) =>
          (t.status?.state === TaskState.PENDING && NO_NODE_RE.test(t.status?.err ?? '')) ||
          (t.status?.state === TaskState.NEW && ALLOCATION_RE.test(t.status?.err ?? '')),
      );
    if (!stuck) this.noNodeSince = null;
    else {
      this.noNodeSince ??= now;
      if (now - this.noNodeSince >= NO_NODE_MS) {
        const why = [...new Set(waiting.map((t) => t.status.err))].join('; ');
        const what = waiting.every((t) => t.status?.state === TaskState.NEW) ? 'its networks or published ports' : 'the constraints';
        const advice =
          this.op === 'create'
            ? `the service was created; fix ${what} with \`tsswarm service update\` or remove it`
            : `the service was updated; fix ${what} with \`tsswarm service update\`, or undo the change with \`tsswarm service rollback\``;
        return { lines, done: { ok: false, message: `${why}\n${advice}` } };
      }
    }

    const updating = us?.state === UpdateState.UPDATING || us?.state === UpdateState.ROLLBACK_STARTED;
    const converged = !updating && runningCurrent === n && live.length === n;
    if (!converged) {
      this.convergedSince = null;
      return { lines };
    }
    this.convergedSince ??= now;
    const left = STABILITY_MS - (now - this.convergedSince);
    if (left > 0) {
      lines.push({ key: 'verify', text: `verify: Waiting ${Math.ceil(left / 1000)} seconds to verify that tasks are stable...` });
      return { lines };
    }
    lines.push({ key: 'verify', text: 'verify: Service converged' });
    return { lines, done: { ok: true, message: '' } };
  }

  /**
   * A job: done once every completion of its current iteration is made (a
   * global job: once each node given a task has completed it); failed once a
   * task of it has ended in failure and stayed so (its restart policy gave up).
   */
  private jobStep(snap: Snapshot, now: number): ProgressStep {
    const svc = snap.service;
    const it = jobIteration(svc);
    const mine = snap.tasks.filter((t) => t.jobIteration === it && wantsRunning(t));
    const c = jobCounts(svc, snap.tasks);
    const active = mine.filter(isRunning).length;
    const lines: Line[] = [
      { key: 'job', text: `job progress: ${c.completed} out of ${c.total} complete` },
      { key: 'active', text: `active tasks: ${active} out of ${c.desired} tasks` },
    ];
    const failed = mine.filter((t) => (t.status?.state ?? 0) > TaskState.COMPLETE);
    if (!failed.length) this.failedSince = null;
    else {
      // Given the orchestrator's time to replace it (restart policy): only one that stays failed ends the watch.
      this.failedSince ??= now;
      if (now - this.failedSince >= NO_NODE_MS) {
        const why = [...new Set(failed.map((t) => t.status.err || stateWord(t.status.state)))].join('; ');
        return {
          lines,
          done: {
            ok: false,
            message: `${why}
the job cannot complete: its restart policy gave up; fix it with \`tsswarm service update\``,
          },
        };
      }
    }
    const complete = svc.spec.replicatedJob ? c.completed >= c.total : c.total > 0 && c.desired === 0;
    if (!complete) return { lines };
    lines.push({ key: 'verify', text: 'job complete' });
    return { lines, done: { ok: true, message: '' } };
  }

  /** Slots 1..replicas: the newest task of the current spec that should run, else the newest task in the slot. */
  private replicatedRows(tasks: Task[], replicas: number, isCurrent: (t: Task) => boolean): Row[] {
    const rows: Row[] = [];
    for (let slot = 1; slot <= replicas; slot++) {
      const inSlot = tasks.filter((t) => t.slot === slot).sort(newestFirst);
      const task = inSlot.find((t) => wantsRunning(t) && isCurrent(t)) ?? inSlot.find(wantsRunning) ?? inSlot[0];
      rows.push({ key: `slot ${slot}`, label: `${slot}/${replicas}`, task });
    }
    return rows;
  }

  /** One row per node that should run a task. */
  private globalRows(snap: Snapshot, live: Task[]): Row[] {
    const byNode = new Map<string, Task>();
    for (const t of [...live].sort(newestFirst)) if (!byNode.has(t.nodeId)) byNode.set(t.nodeId, t);
    return [...byNode.entries()]
      .map(([node, task]) => ({ key: `node ${node}`, label: snap.nodeNames?.get(node) ?? node.slice(0, 12), task }))
      .sort((a, b) => a.label.localeCompare(b.label));
  }
}

// ------------------------------------------------------------------ drawing

export interface Renderer {
  draw(lines: readonly Line[]): void;
}

/** A terminal: the frame is redrawn in place. */
export function ttyRenderer(out: Writer): Renderer {
  let shown = 0;
  return {
    draw(lines) {
      const up = shown > 0 ? `\x1b[${shown}A\x1b[J` : '';
      out.write(up + lines.map((l) => `${l.text}\n`).join(''));
      shown = lines.length;
    },
  };
}

/** A pipe or file: a line is printed only when it changed. */
export function lineRenderer(out: Writer): Renderer {
  const last = new Map<string, string>();
  return {
    draw(lines) {
      let s = '';
      for (const l of lines) {
        if (last.get(l.key) === l.text) continue;
        last.set(l.key, l.text);
        s += `${l.text}\n`;
      }
      if (s) out.write(s);
    },
  };
}

export interface WatchOptions {
  op: Operation;
  /** The update status the write returned. */
  initial?: UpdateStatus | null;
  fetch: () => Promise<Snapshot>;
  out: Writer;
  isTTY: boolean;
  signal?: AbortSignal;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  pollMs?: number;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Polls until the service converges or cannot; null when `signal` stopped the watch (the service stays as it is). */
export async function watchProgress(o: WatchOptions): Promise<Outcome | null> {
  const tracker = new ProgressTracker(o.op, o.initial);
  const render = o.isTTY ? ttyRenderer(o.out) : lineRenderer(o.out);
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? defaultSleep;
  while (!o.signal?.aborted) {
    const snap = await o.fetch();
    if (o.signal?.aborted) break;
    const r = tracker.step(snap, now());
    render.draw(r.lines);
    if (r.done) return r.done;
    await sleep(o.pollMs ?? POLL_MS, o.signal);
  }
  return null;
}
