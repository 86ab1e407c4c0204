// Secrets and configs in the dispatcher's assignment feed, as SwarmKit's
// assignment set sends them: a node gets only those its tasks reference, when
// its first task that uses one is assigned to it, and their removal when the
// last such task ends or leaves; large ones go in parts; no value in any log.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AssignmentFeed } from '../../../manager/dispatcher/assignments.js';
import { localStore } from '../../../manager/store/index.js';
import { PartAssembler, splitMessage } from '../../../lib/parts.js';
import { type Assignments, ManagerMessage } from '../../../proto/gen/control.js';
import {
  Config,
  ConfigSpec,
  ContainerSpec,
  Meta,
  Secret,
  SecretSpec,
  Task,
  TaskSpec,
  TaskState,
  TaskStatus,
} from '../../../proto/gen/objects.js';

const MARK = 'tss-marker-value-9f3c1d';
const value = (id: string, bytes = 0): Uint8Array => new Uint8Array(Buffer.from(`${MARK}:${id}:${'x'.repeat(bytes)}`));
const secret = (id: string, bytes = 0): Secret =>
  Secret.create({ meta: Meta.create({ id }), spec: SecretSpec.create({ name: `name-${id}`, data: value(id, bytes) }) });
const config = (id: string): Config =>
  Config.create({ meta: Meta.create({ id }), spec: ConfigSpec.create({ name: `name-${id}`, data: value(id) }) });

function task(id: string, nodeId: string, o: { state?: TaskState; secrets?: string[]; configs?: string[] } = {}): Task {
  return Task.create({
    meta: Meta.create({ id }),
    serviceId: 'svc',
    nodeId,
    slot: 1,
    desiredState: TaskState.RUNNING,
    status: TaskStatus.create({ state: o.state ?? TaskState.ASSIGNED }),
    spec: TaskSpec.create({
      container: ContainerSpec.create({
        image: 'busybox',
        secrets: (o.secrets ?? []).map((s) => ({
          secretId: s,
          secretName: `name-${s}`,
          target: { name: `name-${s}`, uid: '0', gid: '0', mode: 0o444 },
        })),
        configs: (o.configs ?? []).map((c) => ({
          configId: c,
          configName: `name-${c}`,
          target: { name: `/name-${c}`, uid: '0', gid: '0', mode: 0o444 },
        })),
      }),
    }),
  });
}

/** Everything a logger wrote, at every level. */
function capture(): { logger: pino.Logger; text: () => string } {
  const lines: string[] = [];
  const logger = pino(
    { level: 'trace' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  );
  return { logger, text: () => lines.join('') };
}

const ids = (a: Assignments | undefined) => ({
  secrets: (a?.dependencies?.secrets ?? []).map((s) => s.meta.id).sort(),
  configs: (a?.dependencies?.configs ?? []).map((c) => c.meta.id).sort(),
  removedSecrets: [...(a?.dependencies?.removedSecretIds ?? [])].sort(),
  removedConfigs: [...(a?.dependencies?.removedConfigIds ?? [])].sort(),
});

async function setup() {
  const store = localStore();
  await store.update((tx) => {
    for (const s of ['s1', 's2', 's3']) tx.secrets.create(secret(s));
    tx.configs.create(config('c1'));
    tx.tasks.create(task('t1', 'n1', { secrets: ['s1'], configs: ['c1'] }));
    tx.tasks.create(task('t2', 'n1', { secrets: ['s1'] }));
    tx.tasks.create(task('t3', 'n2', { secrets: ['s2'] }));
    // Not past the scheduler: its secret goes nowhere yet.
    tx.tasks.create(task('t4', 'n1', { state: TaskState.PENDING, secrets: ['s3'] }));
  });
  const log = capture();
  const feed = new AssignmentFeed(store, log.logger);
  const n1: Assignments[] = [];
  const n2: Assignments[] = [];
  feed.attach('n1', (a) => n1.push(a));
  feed.attach('n2', (a) => n2.push(a));
  const setState = (id: string, state: TaskState) =>
    store.update((tx) => {
      const t = tx.tasks.get(id)!;
      tx.tasks.update(Task.create({ ...t, status: { ...t.status, state } }));
    });
  return { store, feed, n1, n2, log, setState };
}

describe("the assignment feed's secrets and configs", () => {
  it('sends each node, with its full set, only the secrets and configs its tasks reference, values included', async () => {
    const { n1, n2, feed } = await setup();
    expect(ids(n1[0])).toEqual({ secrets: ['s1'], configs: ['c1'], removedSecrets: [], removedConfigs: [] });
    expect(Buffer.from(n1[0]!.dependencies!.secrets[0]!.spec.data).toString()).toBe(`${MARK}:s1:`);
    expect(ids(n2[0])).toEqual({ secrets: ['s2'], configs: [], removedSecrets: [], removedConfigs: [] });
    expect(feed.held('n1')).toEqual({ secrets: ['s1'], configs: ['c1'] });
    expect(feed.held('n2')).toEqual({ secrets: ['s2'], configs: [] });
  });

  it('sends a secret with the first task that needs it on the node, in the same message, and never to another node', async () => {
    const { n1, n2, setState } = await setup();
    await setState('t4', TaskState.ASSIGNED);
    expect(n1).toHaveLength(2);
    expect(n1[1]!.tasks.map((t) => t.meta.id)).toEqual(['t4']);
    expect(ids(n1[1])).toEqual({ secrets: ['s3'], configs: [], removedSecrets: [], removedConfigs: [] });
    expect(n2).toHaveLength(1);
    expect(n2.flatMap((a) => a.dependencies?.secrets ?? []).map((s) => s.meta.id)).toEqual(['s2']);
  });

  it('does not send a secret again to a node that holds it for another task', async () => {
    const { store, n1 } = await setup();
    await store.update((tx) => tx.tasks.create(task('t5', 'n1', { secrets: ['s1'] })));
    expect(n1).toHaveLength(2);
    expect(n1[1]!.tasks.map((t) => t.meta.id)).toEqual(['t5']);
    expect(n1[1]!.dependencies ?? null).toBeNull();
  });

  it('removes a secret when the last task on the node that uses it ends (past RUNNING) or is deleted, not before', async () => {
    const { store, n1, feed, setState } = await setup();
    await setState('t1', TaskState.RUNNING);
    expect(n1).toHaveLength(1); // a status report is no order
    await setState('t1', TaskState.FAILED);
    // t1 ended: c1 was only t1's, s1 is still t2's.
    expect(n1).toHaveLength(2);
    expect(n1[1]!.tasks).toEqual([]);
    expect(ids(n1[1])).toEqual({ secrets: [], configs: [], removedSecrets: [], removedConfigs: ['c1'] });
    expect(feed.held('n1')).toEqual({ secrets: ['s1'], configs: [] });
    await store.update((tx) => tx.tasks.delete(tx.tasks.get('t2')!));
    expect(n1).toHaveLength(3);
    expect(n1[2]!.removedTaskIds).toEqual(['t2']);
    expect(ids(n1[2])).toEqual({ secrets: [], configs: [], removedSecrets: ['s1'], removedConfigs: [] });
    expect(feed.held('n1')).toEqual({ secrets: [], configs: [] });
    // Deleting the ended t1 later changes nothing more.
    await store.update((tx) => tx.tasks.delete(tx.tasks.get('t1')!));
    expect(n1[3]!.dependencies ?? null).toBeNull();
  });

  it('a task moved to another node takes its secret with it', async () => {
    const { store, n1, n2, feed } = await setup();
    await store.update((tx) => {
      const t = tx.tasks.get('t3')!;
      tx.tasks.update(Task.create({ ...t, nodeId: 'n1' }));
    });
    expect(ids(n2.at(-1))).toMatchObject({ removedSecrets: ['s2'] });
    expect(n2.at(-1)!.removedTaskIds).toEqual(['t3']);
    expect(ids(n1.at(-1))).toMatchObject({ secrets: ['s2'] });
    expect(feed.held('n2').secrets).toEqual([]);
  });

  it('a replacement on the same node in the same transaction as the end of the old task keeps the secret, sent again at most', async () => {
    const { store, n1, feed } = await setup();
    await store.update((tx) => {
      const t = tx.tasks.get('t2')!;
      tx.tasks.update(Task.create({ ...t, status: { ...t.status, state: TaskState.SHUTDOWN } }));
      const t1 = tx.tasks.get('t1')!;
      tx.tasks.update(Task.create({ ...t1, status: { ...t1.status, state: TaskState.COMPLETE } }));
      tx.tasks.create(task('t6', 'n1', { secrets: ['s1'] }));
    });
    const last = n1.at(-1)!;
    expect(last.tasks.map((t) => t.meta.id)).toEqual(['t6']);
    expect(ids(last).removedSecrets).toEqual([]);
    expect(ids(last).secrets).toEqual(['s1']);
    expect(feed.held('n1')).toEqual({ secrets: ['s1'], configs: [] });
  });

  it('a session that opens again gets the complete list with its full set', async () => {
    const { feed, setState } = await setup();
    await setState('t1', TaskState.COMPLETE);
    const again: Assignments[] = [];
    feed.attach('n1', (a) => again.push(a));
    expect(again[0]!.full).toBe(true);
    expect(ids(again[0])).toEqual({ secrets: ['s1'], configs: [], removedSecrets: [], removedConfigs: [] });
  });

  it('a missing secret is reported by id (the task then waits on the node), never by value', async () => {
    const { store, n1, log } = await setup();
    await store.update((tx) => tx.tasks.create(task('t7', 'n1', { secrets: ['gone'] })));
    expect(n1.at(-1)!.tasks.map((t) => t.meta.id)).toEqual(['t7']);
    expect(ids(n1.at(-1)).secrets).toEqual([]);
    expect(log.text()).toMatch(/secret gone/);
  });

  it('no value appears in anything the feed logs', async () => {
    const { store, log, setState } = await setup();
    await setState('t4', TaskState.ASSIGNED);
    await setState('t1', TaskState.FAILED);
    await store.update((tx) => tx.tasks.create(task('t8', 'n1', { secrets: ['nope'] })));
    expect(log.text()).not.toContain(MARK);
  });

  it('large secrets go in parts under the message limit and come back whole', async () => {
    const big = [secret('b1', 400_000), secret('b2', 400_000), secret('b3', 400_000)];
    const a: Assignments = {
      full: true,
      tasks: [task('t1', 'n1', { secrets: ['b1', 'b2', 'b3'] })],
      removedTaskIds: [],
      dependencies: { secrets: big, configs: [config('c1')], removedSecretIds: ['old'], removedConfigIds: [] },
    };
    const m = ManagerMessage.create({ assignments: a });
    const parts = splitMessage(m, 512 * 1024);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    for (const p of parts.slice(0, -1)) expect(p.bytes).toBeLessThan(512 * 1024);
    const asm = new PartAssembler();
    let whole: ManagerMessage | null = null;
    for (const p of parts) whole = asm.push(ManagerMessage.decode(ManagerMessage.encode(p.message)));
    expect(whole).not.toBeNull();
    const got = whole!.assignments!;
    expect(got.dependencies!.secrets.map((s) => s.meta.id)).toEqual(['b1', 'b2', 'b3']);
    expect(got.dependencies!.secrets.map((s) => s.spec.data.length)).toEqual(big.map((s) => s.spec.data.length));
    expect(got.dependencies!.configs.map((c) => c.meta.id)).toEqual(['c1']);
    expect(got.dependencies!.removedSecretIds).toEqual(['old']);
    expect(got.tasks.map((t) => t.meta.id)).toEqual(['t1']);
  });
});
