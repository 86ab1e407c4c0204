// The chaos nemesis is data: a seed gives one schedule, every fault is healed
// after a bounded hold, and the schedule covers the fault kinds issue 14 asks for;
// the end checks judge slots and containers as intended.
import { describe, expect, it } from 'vitest';
import { describeFault, planNemesis, type Step } from '../../../bench/chaos/nemesis.js';
import { containerFindings, doubleSlots, type ListedContainer } from '../../../bench/chaos/run.js';
import { Task, TaskState } from '../../../proto/gen/objects.js';
import type { ListTasksResponse } from '../../../proto/gen/control.js';

const hosts = { managers: ['h1', 'h2', 'h3'], workers: ['h4', 'h5'] };

describe('planNemesis', () => {
  it('the same seed replays the same schedule; another seed gives another', () => {
    expect(planNemesis(42, 600_000, hosts)).toEqual(planNemesis(42, 600_000, hosts));
    expect(planNemesis(43, 600_000, hosts)).not.toEqual(planNemesis(42, 600_000, hosts));
  });

  it('fills the run with faults that each hold 3-12 s and leave 2-6 s of quiet', () => {
    const plan = planNemesis(1, 120_000, hosts);
    const total = plan.reduce((t, s) => t + s.holdMs + s.gapMs, 0);
    expect(total).toBeGreaterThanOrEqual(120_000);
    expect(total - plan.at(-1)!.holdMs - plan.at(-1)!.gapMs).toBeLessThan(120_000);
    for (const s of plan) {
      expect(s.holdMs).toBeGreaterThanOrEqual(3000);
      expect(s.holdMs).toBeLessThanOrEqual(12_000);
      expect(s.gapMs).toBeGreaterThanOrEqual(2000);
      expect(s.gapMs).toBeLessThanOrEqual(6000);
    }
  });

  it('over a long run reaches every kind: cuts, one-way cuts, kills, pauses, restarts, leader transfers, and the leader as a target', () => {
    const plan: Step[] = planNemesis(7, 30 * 60_000, hosts);
    const kinds = new Set(plan.map((s) => s.fault.kind));
    expect([...kinds].sort()).toEqual(['cut', 'kill', 'oneway', 'pause', 'restart', 'transfer']);
    const text = plan.map((s) => describeFault(s.fault));
    expect(text.some((t) => t === 'pause the leader')).toBe(true);
    expect(text.some((t) => t === 'cut the leader')).toBe(true);
    expect(text.some((t) => /^transfer the leadership to h[123]$/.test(t))).toBe(true);
    expect(text.some((t) => t === 'transfer the leadership')).toBe(true);
    expect(text.some((t) => /^oneway the leader -> h[123]$/.test(t))).toBe(true);
    expect(text.some((t) => /^oneway h[123] -> the leader$/.test(t))).toBe(true);
    // Two managers cut at once (no quorum): only managers, never the same one twice.
    const two = plan.filter((s) => s.fault.kind === 'cut' && s.fault.targets.length === 2);
    expect(two.length).toBeGreaterThan(0);
    for (const s of two) {
      const names = (s.fault as { targets: Array<{ host: string }> }).targets.map((t) => t.host);
      expect(new Set(names).size).toBe(2);
      for (const n of names) expect(hosts.managers).toContain(n);
    }
  });

  it('a one-way cut never goes from a host to itself', () => {
    for (const s of planNemesis(3, 60 * 60_000, hosts)) {
      if (s.fault.kind === 'oneway' && 'host' in s.fault.from && 'host' in s.fault.to) expect(s.fault.from.host).not.toBe(s.fault.to.host);
    }
  });
});

describe('doubleSlots', () => {
  const task = (id: string, slot: number, node: string, desired: TaskState, state: TaskState) =>
    ({
      meta: { id },
      serviceId: 's1',
      serviceName: 'web',
      slot,
      nodeId: node,
      desiredState: desired,
      status: { state },
    }) as unknown as ListTasksResponse['tasks'][number];

  it('flags a slot with running tasks on two nodes, and nothing else', () => {
    const R = TaskState.RUNNING;
    const tasks = [
      task('a', 1, 'n1', R, R),
      task('b', 1, 'n2', R, R),
      task('c', 2, 'n1', R, R),
      // Replaced (desired shutdown) while still reported running: a handover, not a double.
      task('d', 2, 'n2', TaskState.SHUTDOWN, R),
      task('e', 3, 'n1', R, TaskState.PENDING),
      task('f', 3, 'n2', R, R),
    ];
    expect(doubleSlots({ tasks })).toEqual(['web/1 on n1, n2']);
  });
});

describe('containerFindings', () => {
  const names = new Map([['n1', 'h1']]);
  const mk = (id: string, desiredState: TaskState, observed: TaskState, nodeId = 'n1'): Task =>
    Task.create({
      meta: { id, version: 3, createdAt: 0, updatedAt: 1_000 },
      serviceName: 'web',
      slot: 3,
      nodeId,
      desiredState,
      status: { state: observed, timestamp: 4_000, message: 'shutdown' } as Task['status'],
    });
  const tasks = new Map([
    ['t1', mk('t1', TaskState.SHUTDOWN, TaskState.RUNNING)],
    ['t2', mk('t2', TaskState.SHUTDOWN, TaskState.SHUTDOWN)],
    ['t3', mk('t3', TaskState.RUNNING, TaskState.RUNNING)],
    ['t4', mk('t4', TaskState.RUNNING, TaskState.RUNNING, 'n2')],
  ]);
  const find = (listed: ListedContainer[], slots = new Map<string, string[]>()): string[] =>
    containerFindings('h1', 'n1', listed, tasks, names, 10_000, slots);

  it("reports a live container of a task that should not run with the task's desired and observed state, node and age", () => {
    const [f, ...rest] = find([{ id: 'tss-web.3.t1', status: 'running', created: 'T' }]);
    expect(rest).toEqual([]);
    expect(f).toBe(
      'h1: running container tss-web.3.t1 (created T) runs a task that should not run: task t1 (web.3, desired SHUTDOWN, observed RUNNING "shutdown", on h1, status last written 6.0 s ago, task updated 9.0 s ago)',
    );
  });

  it('keeps a stopped container of an ended task (its history), but never one without a task or of another node', () => {
    expect(
      find([
        { id: 'tss-web.3.t2', status: 'stopped' },
        { id: 'tss-web.3.t1', status: 'stopped' },
      ]),
    ).toEqual([]);
    expect(find([{ id: 'tss-web.3.gone', status: 'stopped' }])).toEqual(['h1: stopped container tss-web.3.gone (created ?) has no task']);
    expect(find([{ id: 'tss-web.3.t4', status: 'stopped' }])[0]).toMatch(/belongs to a task of another node: task t4 .* on n2/);
    expect(find([{ id: 'other-container', status: 'running' }])).toEqual([]);
  });

  it('counts only live containers of running tasks towards a slot', () => {
    const slots = new Map<string, string[]>();
    find(
      [
        { id: 'tss-web.3.t3', status: 'running' },
        { id: 'tss-web.3.t2', status: 'stopped' },
      ],
      slots,
    );
    expect([...slots]).toEqual([['web/3', ['h1']]]);
  });
});
