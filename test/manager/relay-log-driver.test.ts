// `service logs` and the none log driver: each task is judged by its own
// spec's driver, so the tasks from before an update to none stay readable and
// the tasks on none say they keep nothing; with nothing readable the request
// is refused as dockerd refuses it.
import { describe, expect, it } from 'vitest';
import type { Dispatcher } from '../../manager/dispatcher/dispatcher.js';
import { TaskRelay } from '../../manager/relay.js';
import { localStore } from '../../manager/store/index.js';
import { silentLogger } from '../../lib/log.js';
import type { LogChunk, RelayData, ServiceLogsRequest } from '../../proto/gen/control.js';
import { ContainerSpec, Meta, Service, ServiceSpec, Task, TaskSpec, TaskState, TaskStatus } from '../../proto/gen/objects.js';

const taskSpec = (driver: string): TaskSpec =>
  TaskSpec.create({ container: ContainerSpec.create({ image: 'busybox' }), logDriver: driver ? { name: driver, options: {} } : undefined });

async function setup(serviceDriver: string, tasks: { id: string; driver: string; state?: TaskState }[]) {
  const store = localStore();
  await store.update((tx) => {
    tx.services.create(
      Service.create({ meta: Meta.create({ id: 'svc1' }), spec: ServiceSpec.create({ name: 'web', task: taskSpec(serviceDriver) }) }),
    );
    for (const [i, t] of tasks.entries())
      tx.tasks.create(
        Task.create({
          meta: Meta.create({ id: t.id }),
          serviceId: 'svc1',
          serviceName: 'web',
          slot: i + 1,
          nodeId: 'node1',
          desiredState: TaskState.RUNNING,
          spec: taskSpec(t.driver),
          status: TaskStatus.create({ state: t.state ?? TaskState.RUNNING }),
        }),
      );
  });
  const asked: string[] = [];
  const dispatcher = {
    relay: (_node: string, req: { taskId: string }, fn: (d: RelayData) => void) => {
      asked.push(req.taskId);
      queueMicrotask(() => {
        fn({
          log: { taskId: req.taskId, stream: 'stdout', data: new TextEncoder().encode(`from ${req.taskId}\n`) } as LogChunk,
        } as RelayData);
        fn({ end: true, error: '' } as RelayData);
      });
      return () => undefined;
    },
  } as unknown as Dispatcher;
  const relay = new TaskRelay(store, dispatcher, silentLogger());
  const read = async (ref = 'web'): Promise<{ lines: string[]; asked: string[] }> => {
    const lines: string[] = [];
    await relay.logs(
      { ref, follow: false, tail: 0 } as unknown as ServiceLogsRequest,
      (c) => lines.push(`${c.stream} ${new TextDecoder().decode(c.data)}`),
      new AbortController().signal,
    );
    return { lines, asked };
  };
  return { read };
}

describe('service logs and the none driver, task by task', () => {
  it('after an update to none the older tasks stay readable; the task on none says so', async () => {
    const { read } = await setup('none', [
      { id: 'old1', driver: 'json-file', state: TaskState.SHUTDOWN },
      { id: 'new1', driver: 'none' },
    ]);
    const r = await read();
    expect(r.asked).toEqual(['old1']);
    expect(r.lines).toContain('stdout from old1\n');
    expect(r.lines).toContain('stderr configured logging driver does not support reading: task new1 runs with --log-driver none\n');
  });

  it('after an update from none the new tasks are read though older ones kept nothing', async () => {
    const { read } = await setup('json-file', [
      { id: 'old2', driver: 'none', state: TaskState.SHUTDOWN },
      { id: 'new2', driver: '' },
    ]);
    const r = await read();
    expect(r.asked).toEqual(['new2']);
    expect(r.lines).toContain('stdout from new2\n');
  });

  it('with nothing readable the request is refused, as dockerd; a task on none by its id too', async () => {
    const { read } = await setup('none', [{ id: 'only1', driver: 'none' }]);
    await expect(read()).rejects.toThrow(/^configured logging driver does not support reading: web runs with --log-driver none/);
    await expect(read('only1')).rejects.toThrow(/configured logging driver does not support reading/);
  });
});
