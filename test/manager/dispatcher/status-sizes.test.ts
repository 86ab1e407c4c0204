// Task status reports are written in transactions under the store's cap, and a
// report that would push its task over the per-object cap is dropped with a
// warning naming the task and node, while every other report is written.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { StatusWriter } from '../../../manager/dispatcher/status.js';
import { encodedSize, MAX_TRANSACTION_BYTES, MemoryStore } from '../../../manager/store/index.js';
import { Meta, PortProtocol, PublishMode, Task, type TaskStatus, TaskState } from '../../../proto/gen/objects.js';

function measuredStore(): { store: MemoryStore; entries: number[] } {
  const entries: number[] = [];
  const store: MemoryStore = new MemoryStore({
    propose: async (d) => {
      entries.push(d.length);
      store.apply(d, entries.length);
      return entries.length;
    },
  });
  return { store, entries };
}

const taskOn = (id: string, nodeId: string, env: string[]): Task =>
  Task.create({
    meta: Meta.create({ id }),
    serviceId: 's',
    slot: 1,
    nodeId,
    desiredState: TaskState.RUNNING,
    status: { state: TaskState.ASSIGNED },
    spec: { container: { image: 'busybox', env } },
  } as unknown as Partial<Task>);

const running = (message: string, over: Partial<TaskStatus> = {}): TaskStatus =>
  ({ state: TaskState.RUNNING, timestamp: 1, message, ...over }) as TaskStatus;

function capture(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { logger: pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }), lines };
}

describe('task status writer under the store’s cap', () => {
  it('a report that pushes its task over the object cap (4 KiB error, 1,000 ports) is dropped alone, with a warning naming task and node; the others are written', async () => {
    const { store, entries } = measuredStore();
    // A task just under the cap (a spec stored before specs were capped).
    const big = taskOn('tbig', 'n2', [`PAD=${'p'.repeat(MAX_TRANSACTION_BYTES - 8_000)}`]);
    await store.update((tx) => tx.tasks.create(big));
    await store.update((tx) => {
      for (let i = 0; i < 3; i++) tx.tasks.create(taskOn(`t${i}`, 'n1', ['A=1']));
    });
    expect(encodedSize('tasks', store.view((tx) => tx.tasks.get('tbig'))!)).toBeLessThan(MAX_TRANSACTION_BYTES);
    const { logger, lines } = capture();
    const w = new StatusWriter(store, logger, { retryMs: 5 });
    const ports = Array.from({ length: 1000 }, (_, i) => ({
      name: `port${i}`,
      protocol: PortProtocol.TCP,
      targetPort: 1 + i,
      publishedPort: 30000 + i,
      publishMode: PublishMode.HOST,
    }));
    w.push('n2', [{ taskId: 'tbig', status: running('started', { err: 'e'.repeat(4096), portStatus: ports }) }]);
    w.push(
      'n1',
      [0, 1, 2].map((i) => ({ taskId: `t${i}`, status: running(`started ${i}`) })),
    );
    const before = entries.length;
    await w.flush();
    for (let i = 0; i < 3; i++)
      expect(store.view((tx) => tx.tasks.get(`t${i}`))!.status).toMatchObject({ state: TaskState.RUNNING, message: `started ${i}` });
    expect(store.view((tx) => tx.tasks.get('tbig'))!.status?.state).toBe(TaskState.ASSIGNED);
    expect(w.written).toBe(3);
    expect(w.dropped).toBe(1);
    expect(w.failed).toBe(0);
    expect(Math.max(...entries.slice(before))).toBeLessThanOrEqual(MAX_TRANSACTION_BYTES);
    const warn = lines.find((l) => l.task === 'tbig');
    expect(warn).toMatchObject({ level: 40, task: 'tbig', node: 'n2', msg: expect.stringMatching(/dropped.*over the store's limit/) });
    // Nothing kept for a retry: the next flush writes nothing and the chain is free.
    await w.flush();
    expect(entries.length).toBe(before + 1);
    w.close();
  });

  it('reports worth more than 1.5 MiB in one window are written in several transactions under the cap', async () => {
    const { store, entries } = measuredStore();
    const env = Array.from({ length: 8 }, (_, i) => `V${i}=${'x'.repeat(1020)}`);
    for (let from = 0; from < 400; from += 100) {
      await store.update((tx) => {
        for (let i = from; i < from + 100; i++) tx.tasks.create(taskOn(`t${i}`, 'n1', env));
      });
    }
    const w = new StatusWriter(store, pino({ level: 'silent' }));
    w.push(
      'n1',
      Array.from({ length: 400 }, (_, i) => ({ taskId: `t${i}`, status: running('started') })),
    );
    const before = entries.length;
    await w.flush();
    expect(w.written).toBe(400);
    expect(w.failed).toBe(0);
    const written = entries.slice(before);
    expect(written.length).toBeGreaterThan(2);
    expect(Math.max(...written)).toBeLessThanOrEqual(MAX_TRANSACTION_BYTES);
    w.close();
  });
});
