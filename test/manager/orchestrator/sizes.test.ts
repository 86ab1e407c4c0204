// Every task carries its service's spec, so a big service is megabytes of
// tasks: the orchestrator, allocator and scheduler must write them in
// transactions under the store's cap, and a task no transaction can hold must
// be left out and reported, never retried forever.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ServiceApi } from '../../../manager/controlapi/index.js';
import { type Orchestration, startOrchestration } from '../../../manager/orchestrator/index.js';
import { encodedSize, MAX_TRANSACTION_BYTES, MemoryStore } from '../../../manager/store/index.js';
import { ContainerSpec, Meta, Network, NetworkSpec, Service, ServiceSpec, TaskSpec, TaskState } from '../../../proto/gen/objects.js';
import { log, ManualClock, nodeObject, spec, withTask } from './harness.js';

let orch: Orchestration | null = null;
afterEach(async () => {
  await orch?.stop();
  orch = null;
});

/** A store whose proposer applies at once and records every entry's size, as a Raft leader's log would hold it. */
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

/** The passes run on the test's manual clock: settling them all must reach `cond`. */
async function until(cond: () => boolean, what: string): Promise<void> {
  await orch!.idle();
  if (!cond()) throw new Error(`not reached once every pass settled: ${what}`);
}

describe('orchestration under the store’s transaction cap', () => {
  it('a service whose tasks total over 8 MiB is created, allocated and scheduled in full, every transaction under 1.5 MiB', async () => {
    const { store, entries } = measuredStore();
    await store.update((tx) => {
      for (let i = 1; i <= 3; i++) tx.nodes.create(nodeObject(i));
      tx.networks.create(
        Network.create({
          meta: Meta.create({ id: 'net1' }),
          spec: NetworkSpec.create({ name: 'back', driver: 'overlay', subnet: '10.77.0.0/20' }),
        }),
      );
    });
    orch = startOrchestration({ store, logger: log, clock: new ManualClock() });
    const replicas = 1100;
    // 8 KiB of env per task: 1,100 tasks are ~9 MB, over even the 8 MiB batch cap this replaces.
    const env = Array.from({ length: 8 }, (_, i) => `V${i}=${'x'.repeat(1020)}`);
    const base = spec('big', { replicated: { replicas } });
    const s = withTask(base, { container: { ...base.task.container, env }, networks: [{ target: 'net1', aliases: [] }] });
    await new ServiceApi({ store, logger: log }).createService({ spec: s });
    const done = (): number =>
      store.view((tx) => tx.tasks.list().filter((t) => t.status?.state === TaskState.ASSIGNED && t.networks.length === 1).length);
    await until(() => done() === replicas, `all ${replicas} tasks are assigned with an address`);
    await orch.idle();

    const tasks = store.view((tx) => tx.tasks.list());
    expect(tasks).toHaveLength(replicas);
    expect(new Set(tasks.map((t) => t.slot)).size).toBe(replicas);
    expect(tasks.every((t) => t.spec?.container?.env.length === 8)).toBe(true);
    const total = tasks.reduce((a, t) => a + encodedSize('tasks', t), 0);
    expect(total).toBeGreaterThan(8 << 20);
    expect(Math.max(...entries)).toBeLessThanOrEqual(MAX_TRANSACTION_BYTES);
    // Written in many transactions, not one per task either.
    expect(entries.length).toBeGreaterThan(3 * 8);
    expect(entries.length).toBeLessThan(replicas);
  }, 120_000);

  it('a task too large for any transaction is left out and reported once; the orchestrator goes idle and other services still converge', async () => {
    const { store } = measuredStore();
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
    await store.update((tx) => tx.nodes.create(nodeObject(1)));
    // A service stored before task specs were capped, so large that its task (the same spec plus
    // the task's own fields) is over the cap although the service itself fits.
    const svc = Service.create({
      meta: Meta.create({ id: 'legacy1', createdAt: 1, updatedAt: 1 }),
      spec: ServiceSpec.create({
        name: 'legacy',
        replicated: { replicas: 1 },
        task: TaskSpec.create({ container: ContainerSpec.create({ image: 'busybox', env: [] }) }),
      }),
    });
    const target = MAX_TRANSACTION_BYTES - 50;
    let pad = target - encodedSize('services', svc) - 10;
    for (let i = 0; i < 10; i++) {
      svc.spec.task.container.env = [`PAD=${'p'.repeat(pad)}`];
      const n = encodedSize('services', Service.create({ ...svc, spec: ServiceSpec.create({ ...svc.spec }) }));
      if (n === target) break;
      pad += target - n;
    }
    await store.update((tx) => tx.services.create(svc));
    orch = startOrchestration({ store, logger, clock: new ManualClock() });
    // Before the fix: the store refused every pass and the orchestrator retried every 50 ms, never idle.
    await until(() => lines.some((l) => l.includes('legacy1')), 'the oversized task is reported');
    await orch.idle();
    expect(store.view((tx) => tx.tasks.by('service', 'legacy1'))).toHaveLength(0);
    const report = lines.filter((l) => l.includes('legacy1'));
    expect(report).toHaveLength(1);
    expect(JSON.parse(report[0]!)).toMatchObject({
      level: 50,
      service: 'legacy1',
      msg: expect.stringMatching(/task of this service is \d+ bytes encoded, over the store's limit per object.*service update/),
    });

    await new ServiceApi({ store, logger: log }).createService({ spec: spec('small', { replicated: { replicas: 2 } }) });
    await until(
      () =>
        store.view((tx) => tx.tasks.list().filter((t) => t.serviceName === 'small' && t.status?.state === TaskState.ASSIGNED).length) === 2,
      'the other service’s tasks are assigned',
    );
    await orch.idle();
    expect(lines.filter((l) => l.includes('legacy1'))).toHaveLength(1);
  }, 60_000);
});
