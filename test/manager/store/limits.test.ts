// The store's entry cap: a transaction whose encoded size is over 1.5 MiB is
// refused before it is proposed, with an error naming the object, its size
// and the cap; nothing is stored and the Raft log does not grow.
import { describe, expect, it } from 'vitest';
import { EntryTooLargeError, MAX_TRANSACTION_BYTES } from '../../../manager/store/index.js';
import { Service, ServiceSpec, Task } from '../../../proto/gen/objects.js';
import { recordingStore, service, task } from './fixtures.js';

/** `service(id, name)` with `bytes` of env spread over 1 KiB variables. */
function withEnv(id: string, name: string, bytes: number): Service {
  const s = service(id, name);
  const env = Array.from({ length: Math.ceil(bytes / 1024) }, (_, i) => `V${i}=${'x'.repeat(1020)}`);
  return Service.create({
    ...s,
    spec: ServiceSpec.create({ ...s.spec, task: { ...s.spec.task, container: { ...s.spec.task.container, env } } }),
  });
}

function withLabels(id: string, name: string, bytes: number): Service {
  const s = service(id, name);
  const labels: Record<string, string> = {};
  for (let i = 0; i < Math.ceil(bytes / 1024); i++) labels[`label.${i}`] = 'y'.repeat(1010);
  return Service.create({ ...s, spec: ServiceSpec.create({ ...s.spec, labels }) });
}

async function refusal(p: Promise<unknown>): Promise<EntryTooLargeError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(EntryTooLargeError);
  return e as EntryTooLargeError;
}

describe('store entry cap', () => {
  it('is 1.5 MiB, as etcd’s default request limit', () => {
    expect(MAX_TRANSACTION_BYTES).toBe(1_572_864);
  });

  it('refuses a service spec with 2 MB of env, naming the service, its size and the cap; nothing is stored or logged', async () => {
    const { store, log } = recordingStore();
    await store.update((tx) => tx.services.create(service('s0', 'small')));
    const logged = log.length;
    const e = await refusal(store.update((tx) => tx.services.create(withEnv('s1', 'web', 2_000_000))));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toContain('service "web" (id s1)');
    expect(e.message).toContain(String(MAX_TRANSACTION_BYTES));
    expect(e.largest.bytes).toBeGreaterThan(2_000_000);
    expect(e.message).toContain(`is ${e.largest.bytes} bytes`);
    expect(e.message).toMatch(/env, labels/);
    expect(log.length).toBe(logged);
    expect(store.view((tx) => tx.services.list().map((s) => s.spec.name))).toEqual(['small']);
  });

  it('refuses an update that grows a service’s labels to 2 MB and keeps the stored version', async () => {
    const { store, log } = recordingStore();
    await store.update((tx) => tx.services.create(service('s1', 'web')));
    const before = store.view((tx) => tx.services.get('s1'))!;
    const logged = log.length;
    const big = withLabels('s1', 'web', 2_000_000);
    const e = await refusal(store.update((tx) => tx.services.update(Service.create({ ...big, meta: before.meta }))));
    expect(e.message).toContain('service "web" (id s1)');
    expect(log.length).toBe(logged);
    expect(store.view((tx) => tx.services.get('s1'))).toEqual(before);
  });

  it('refuses a transaction of many small objects over the cap, naming the largest and asking for smaller transactions', async () => {
    const { store, log } = recordingStore();
    const e = await refusal(
      store.update((tx) => {
        for (let i = 0; i < 400; i++) tx.services.create(withEnv(`s${i}`, `svc${i}`, 5_000));
      }),
    );
    expect(e.bytes).toBeGreaterThan(MAX_TRANSACTION_BYTES);
    expect(e.largest.bytes).toBeLessThan(MAX_TRANSACTION_BYTES);
    expect(e.message).toMatch(/a store transaction of 400 objects is \d+ bytes/);
    expect(e.message).toMatch(/smaller transactions/);
    expect(log.length).toBe(0);
    expect(store.view((tx) => tx.services.count())).toBe(0);
  });

  it('holds every writer to 1.5 MiB: 5,000 tasks of 600 bytes in one transaction are refused, nothing logged', async () => {
    const { store, log } = recordingStore();
    // ~3 MB, as a 5,000-task orchestration pass once wrote in one go.
    const e = await refusal(
      store.update((tx) => {
        for (let i = 0; i < 5000; i++)
          tx.tasks.create(Task.create({ ...task(`t${i}`, 's1', 'n1', i), status: { state: 0, message: 'm'.repeat(550) } as never }));
      }),
    );
    expect(e.limit).toBe(MAX_TRANSACTION_BYTES);
    expect(e.message).toMatch(/a store transaction of 5000 objects is \d+ bytes.*smaller transactions/);
    expect(log).toHaveLength(0);
    expect(store.view((tx) => tx.tasks.count())).toBe(0);
  });

  it('accepts a transaction just under the cap', async () => {
    const { store } = recordingStore();
    await store.update((tx) => tx.services.create(withEnv('s1', 'web', 1_400_000)));
    expect(store.view((tx) => tx.services.get('s1'))?.spec?.task?.container?.env.length).toBe(Math.ceil(1_400_000 / 1024));
  });

  it('names a task by its id when it has no name', async () => {
    const { store } = recordingStore();
    const t = task('t1', 's1', 'n1', 1);
    const big = Task.create({ ...t, status: { state: 0, message: 'm'.repeat(2_000_000) } as never });
    const e = await refusal(store.update((tx) => tx.tasks.create(big)));
    expect(e.message).toMatch(/^task t1 is \d+ bytes encoded/);
  });
});
