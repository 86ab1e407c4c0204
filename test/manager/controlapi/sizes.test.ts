// Caps on what one spec may take as a whole: a service's task spec (every task
// carries a copy) and its whole spec, refused at create and update with the
// size and the limit; node labels bounded as service labels are.
import { describe, expect, it } from 'vitest';
import { ServiceApi } from '../../../manager/controlapi/index.js';
import { checkNodeLabels, MAX_SERVICE_SPEC_BYTES, MAX_TASK_SPEC_BYTES, SPEC_LIMITS } from '../../../spec/index.js';
import { localStore, type MemoryStore } from '../../../manager/store/index.js';
import { silentLogger } from '../../../lib/log.js';
import { ContainerSpec, ServiceSpec, TaskSpec } from '../../../proto/gen/objects.js';
import { errorOf, rejectionOf } from '../../errors.js';

function setup(): { store: MemoryStore; api: ServiceApi } {
  const store = localStore();
  return { store, api: new ServiceApi({ store, logger: silentLogger(), now: () => 1_000_000 }) };
}

/** A spec with `kib` KiB of env, in entries of 16 KiB (each within the per-entry bound). */
const withEnv = (name: string, kib: number): ServiceSpec =>
  ServiceSpec.create({
    name,
    task: TaskSpec.create({
      container: ContainerSpec.create({
        image: 'busybox',
        env: Array.from({ length: Math.ceil(kib / 16) }, (_, i) => `V${i}=${'x'.repeat(16 * 1024 - 8)}`),
      }),
    }),
  });

describe('spec size caps', () => {
  it('a task spec is capped at 256 KiB encoded, well under the store’s 1.5 MiB per object', () => {
    expect(MAX_TASK_SPEC_BYTES).toBe(256 * 1024);
    expect(2 * MAX_SERVICE_SPEC_BYTES).toBeLessThan(1.5 * 1024 * 1024);
  });

  it('create refuses a task spec over the cap, naming spec.task, its size and the limit; nothing is stored', async () => {
    const { store, api } = setup();
    const e = await rejectionOf(api.createService({ spec: withEnv('web', 300) }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(
      /^spec\.task is \d+ bytes encoded: at most 262144 bytes \(256 KiB\) are allowed, as every task carries a copy of it: make --env/,
    );
    expect(Number(/is (\d+) bytes/.exec(e.message)![1])).toBeGreaterThan(300 * 1024);
    expect(store.view((tx) => tx.services.count())).toBe(0);
  });

  it('update refuses a task spec over the cap and keeps the stored service', async () => {
    const { store, api } = setup();
    const s = (await api.createService({ spec: withEnv('web', 200) })).service;
    const e = await rejectionOf(api.updateService({ ref: 'web', version: s.meta.version, spec: withEnv('web', 300), rollback: false }));
    expect(e.message).toMatch(/^spec\.task is \d+ bytes encoded: at most 262144 bytes/);
    expect(store.view((tx) => tx.services.get(s.meta.id))!.meta.version).toBe(s.meta.version);
  });

  it('a whole spec over 512 KiB (service labels) is refused naming spec and the limit', async () => {
    const { api } = setup();
    const labels: Record<string, string> = {};
    for (let i = 0; i < 150; i++) labels[`l${i}`] = 'y'.repeat(SPEC_LIMITS.labelValueLength);
    const e = await rejectionOf(api.createService({ spec: ServiceSpec.create({ ...withEnv('web', 16), labels }) }));
    expect(e.message).toMatch(/^spec is \d+ bytes encoded: at most 524288 bytes \(512 KiB\)/);
  });
});

describe('node labels', () => {
  it('more than 256 labels are refused naming --label-add and the bound', () => {
    const labels: Record<string, string> = {};
    for (let i = 0; i <= SPEC_LIMITS.labels; i++) labels[`k${i}`] = 'v';
    expect(errorOf(() => checkNodeLabels(labels))).toEqual({
      code: 'INVALID_ARGUMENT',
      message: `spec.labels has ${SPEC_LIMITS.labels + 1} entries: at most ${SPEC_LIMITS.labels} are allowed (--label-add)`,
    });
  });

  it('a key or value over its length bound, or an empty key, is refused', () => {
    expect(errorOf(() => checkNodeLabels({ ['k'.repeat(SPEC_LIMITS.labelKeyLength + 1)]: 'v' })).message).toMatch(
      /spec\.labels has a key of 1025 characters: at most 1024 are allowed \(--label-add\)/,
    );
    expect(errorOf(() => checkNodeLabels({ zone: 'v'.repeat(SPEC_LIMITS.labelValueLength + 1) })).message).toBe(
      'spec.labels.zone is 4097 characters long: at most 4096 are allowed (--label-add)',
    );
    expect(errorOf(() => checkNodeLabels({ '': 'v' })).message).toMatch(/empty key/);
  });

  it('labels within the bounds pass', () => {
    const labels: Record<string, string> = {};
    for (let i = 0; i < SPEC_LIMITS.labels; i++) labels[`k${i}`] = 'v'.repeat(SPEC_LIMITS.labelValueLength);
    expect(() => checkNodeLabels(labels)).not.toThrow();
  });
});
