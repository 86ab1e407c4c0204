// Store transactions: atomic, refused whole on a stale version, a taken id or
// name, or a missing object; checked when built and again at apply; objects
// read back are normalized and cannot be changed in place.
import { describe, expect, it } from 'vitest';
import {
  AlreadyExistsError,
  InvalidTransactionError,
  localStore,
  ObjectNotFoundError,
  VersionConflictError,
} from '../../../manager/store/index.js';
import { Node, Service, StoreAction, StoreActionKind, StoreTransaction } from '../../../proto/gen/objects.js';
import { follower, ids, node, recordingStore, secret, service, task } from './fixtures.js';
import { sleep } from '../../lib/wait.js';

describe('store transactions', () => {
  it('a transaction over several tables commits every object at once, with the log index as version', async () => {
    const s = localStore();
    const index = await s.update((tx) => {
      tx.nodes.create(node('n1', 'h1'));
      tx.services.create(service('s1', 'web'));
      tx.tasks.create(task('t1', 's1', 'n1', 1));
    });
    expect(index).toBe(1);
    expect(s.appliedIndex).toBe(1);
    s.view((tx) => {
      expect(tx.nodes.get('n1')!.meta.version).toBe(index);
      expect(tx.services.get('s1')!.meta.version).toBe(index);
      expect(tx.tasks.get('t1')!.meta.version).toBe(index);
    });
  });

  it('create stamps createdAt and updatedAt; update keeps createdAt and moves updatedAt', async () => {
    const s = localStore();
    const before = Date.now();
    await s.update((tx) => tx.nodes.create(node('n1', 'h1')));
    const a = s.view((tx) => tx.nodes.get('n1'))!;
    expect(a.meta.createdAt).toBeGreaterThanOrEqual(before);
    expect(a.meta.updatedAt).toBe(a.meta.createdAt);
    await sleep(5); // so that updatedAt can differ from createdAt
    await s.update((tx) => tx.nodes.update(Node.create({ ...a, meta: { ...a.meta, createdAt: 1 } })));
    const b = s.view((tx) => tx.nodes.get('n1'))!;
    expect(b.meta.createdAt).toBe(a.meta.createdAt);
    expect(b.meta.updatedAt).toBeGreaterThan(a.meta.updatedAt);
    expect(b.meta.version).toBe(2);
  });

  it('a stale version refuses the whole transaction with VersionConflictError and applies nothing of it', async () => {
    const { store: s } = recordingStore();
    await s.update((tx) => tx.services.create(service('s1', 'web')));
    const read = s.view((tx) => tx.services.get('s1'))!;
    // Another writer changes it after our read, while our transaction is being built.
    const err = await s
      .update(async (tx) => {
        tx.services.create(service('s2', 'api'));
        await s.update((tx2) => tx2.services.update(Service.create({ ...read, spec: { ...read.spec, labels: { by: 'other' } } })));
        tx.services.update(Service.create({ ...read, spec: { ...read.spec, labels: { by: 'us' } } }));
      })
      .catch((e: unknown) => e);
    // The conflict is caught while building (the store already holds the newer version).
    expect(err).toBeInstanceOf(VersionConflictError);
    expect(err).toMatchObject({ code: 'CONFLICT', table: 'services', id: 's1', readVersion: 1, currentVersion: 2 });
    expect((err as Error).message).toMatch(/service s1 changed since it was read .*read it again and retry/);
    s.view((tx) => {
      expect(tx.services.get('s1')!.spec.labels).toEqual({ by: 'other' });
      expect(tx.services.get('s2')).toBeUndefined();
    });
  });

  it('a version that turns stale between proposing and applying is refused at apply, and the writer gets the conflict', async () => {
    const s = follower();
    const { store: leader, log } = recordingStore();
    await leader.update((tx) => tx.nodes.create(node('n1', 'h1')));
    const read = leader.view((tx) => tx.nodes.get('n1'))!;
    // Two writers read version 1; both transactions reach the log; only the first may apply.
    const p1 = leader.update((tx) => tx.nodes.update(Node.create({ ...read, spec: { ...read.spec, labels: { w: '1' } } })));
    const p2 = leader.update((tx) => {
      tx.nodes.create(node('n2', 'h2'));
      tx.nodes.update(Node.create({ ...read, spec: { ...read.spec, labels: { w: '2' } } }));
    });
    await expect(p1).resolves.toBe(2);
    await expect(p2).rejects.toBeInstanceOf(VersionConflictError);
    expect(log).toHaveLength(3);
    log.forEach((d, i) => s.apply(d, i + 1));
    for (const st of [leader, s]) {
      expect(st.view((tx) => tx.nodes.get('n1')!.spec.labels)).toEqual({ w: '1' });
      expect(st.view((tx) => tx.nodes.get('n2'))).toBeUndefined();
    }
  });

  it('creating an id that exists is refused with AlreadyExistsError naming the table and id', async () => {
    const s = localStore();
    await s.update((tx) => tx.nodes.create(node('n1', 'h1')));
    await expect(s.update((tx) => tx.nodes.create(node('n1', 'other')))).rejects.toThrow(/node n1 already exists in nodes/);
  });

  it('a unique name in use is refused, without regard to case, naming the table, the name and its holder', async () => {
    const s = localStore();
    await s.update((tx) => tx.services.create(service('s1', 'web')));
    const err = await s.update((tx) => tx.services.create(service('s2', 'Web'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AlreadyExistsError);
    expect(err).toMatchObject({ code: 'ALREADY_EXISTS', table: 'services', id: 's2', objectName: 'Web' });
    expect((err as Error).message).toBe(
      'services: the name "Web" is already in use by service s1 (names are compared without case): choose another name or remove that service first',
    );
  });

  it('two creates of one name in the same transaction are refused', async () => {
    const s = localStore();
    await expect(
      s.update((tx) => {
        tx.services.create(service('s1', 'web'));
        tx.services.create(service('s2', 'web'));
      }),
    ).rejects.toBeInstanceOf(AlreadyExistsError);
    expect(s.view((tx) => tx.services.count())).toBe(0);
  });

  it('a name freed by a rename or a removal earlier in the transaction may be taken later in it', async () => {
    const s = localStore();
    await s.update((tx) => {
      tx.services.create(service('s1', 'web'));
      tx.services.create(service('s2', 'api'));
    });
    const [s1, s2] = s.view((tx) => [tx.services.get('s1')!, tx.services.get('s2')!]);
    await s.update((tx) => {
      tx.services.update(Service.create({ ...s1, spec: { ...s1.spec, name: 'web-old' } }));
      tx.services.create(service('s3', 'web'));
      tx.services.delete(s2);
      tx.services.create(service('s4', 'api'));
    });
    s.view((tx) => {
      expect(tx.services.byName('web')!.meta.id).toBe('s3');
      expect(tx.services.byName('web-old')!.meta.id).toBe('s1');
      expect(tx.services.byName('api')!.meta.id).toBe('s4');
    });
  });

  it('node names may repeat (a node that joins again is a new node)', async () => {
    const s = localStore();
    await s.update((tx) => tx.nodes.create(node('n1', 'h1')));
    await s.update((tx) => tx.nodes.create(node('n2', 'h1')));
    expect(ids(s.view((tx) => tx.nodes.by('name', 'H1')))).toEqual(['n1', 'n2']);
  });

  it('updating or removing an object that is gone is refused with ObjectNotFoundError', async () => {
    const s = localStore();
    await s.update((tx) => tx.nodes.create(node('n1', 'h1')));
    const n = s.view((tx) => tx.nodes.get('n1'))!;
    await s.update((tx) => tx.nodes.delete(n));
    await expect(s.update((tx) => tx.nodes.update(n))).rejects.toThrow(ObjectNotFoundError);
    await expect(s.update((tx) => tx.nodes.delete('n1', n.meta.version))).rejects.toThrow(/node n1 not found in nodes .*list nodes again/);
  });

  it('writes to one object within a transaction fold into one action: create+update creates the final object, create+delete writes nothing', async () => {
    const { store: s, log } = recordingStore();
    await s.update((tx) => {
      const a = node('n1', 'h1');
      tx.nodes.create(a);
      tx.nodes.update(Node.create({ ...a, spec: { ...a.spec, labels: { x: '1' } } }));
      tx.nodes.create(node('n2', 'h2'));
      tx.nodes.delete('n2', 0);
    });
    expect(StoreTransaction.decode(log[0]!).actions).toHaveLength(1);
    expect(s.view((tx) => tx.nodes.list().map((n) => [n.meta.id, n.spec.labels]))).toEqual([['n1', { x: '1' }]]);
  });

  it('an empty transaction proposes nothing and resolves with the applied index', async () => {
    const { store: s, log } = recordingStore();
    await s.update((tx) => tx.nodes.create(node('n1', 'h1')));
    await expect(s.update(() => undefined)).resolves.toBe(1);
    expect(log).toHaveLength(1);
  });

  it('a callback that throws proposes nothing and the error reaches the caller', async () => {
    const { store: s, log } = recordingStore();
    await expect(
      s.update((tx) => {
        tx.nodes.create(node('n1', 'h1'));
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(log).toHaveLength(0);
  });

  it('writing through a transaction after its update() returned is refused', async () => {
    const s = localStore();
    let kept: Parameters<Parameters<typeof s.update>[0]>[0] | undefined;
    await s.update((tx) => {
      kept = tx;
    });
    expect(() => kept!.nodes.create(node('n1', 'h1'))).toThrow(InvalidTransactionError);
  });

  it('objects read back have every field at its default and cannot be changed in place', async () => {
    const s = localStore();
    await s.update((tx) => tx.services.create(service('s1', 'web', 3)));
    const v = s.view((tx) => tx.services.get('s1'))!;
    expect(v.spec.labels).toEqual({});
    expect(v.spec.replicated).toEqual({ replicas: 3 });
    expect(v.spec.global).toBeUndefined();
    expect(v.spec.task.container.env).toEqual([]);
    expect(v.previousSpec).toBeNull();
    expect(() => {
      (v.spec as { name: string }).name = 'x';
    }).toThrow(TypeError);
    expect(() => {
      v.spec.task.container.command.push('x');
    }).toThrow(TypeError);
  });

  it('bytes (secret data) are copied for each reader, so a reader cannot change the stored data', async () => {
    const s = localStore();
    await s.update((tx) => tx.secrets.create(secret('x1', 'pw', [1, 2, 3])));
    const a = s.view((tx) => tx.secrets.get('x1'))!;
    a.spec.data[0] = 99;
    expect([...s.view((tx) => tx.secrets.get('x1'))!.spec.data]).toEqual([1, 2, 3]);
  });

  it('an entry that is not a store transaction, or an action without exactly one object or id, is refused and recorded, never thrown', () => {
    const s = follower();
    expect(() => s.apply(new Uint8Array([0xff, 0xff, 0xff]), 1)).not.toThrow();
    expect(s.lastOutcome).toMatchObject({ index: 1, error: { code: 'INVALID_ARGUMENT' } });
    s.apply(StoreTransaction.encode(StoreTransaction.create({ actions: [StoreAction.create({ kind: StoreActionKind.CREATE })] })), 2);
    expect(s.lastOutcome!.error!.message).toMatch(/exactly one object/);
    s.apply(
      StoreTransaction.encode(
        StoreTransaction.create({
          actions: [
            StoreAction.create({
              kind: StoreActionKind.CREATE,
              node: Node.create({ meta: { id: '', version: 0, createdAt: 0, updatedAt: 0 } }),
            }),
          ],
        }),
      ),
      3,
    );
    expect(s.lastOutcome!.error!.message).toMatch(/without meta.id/);
    s.apply(StoreTransaction.encode(StoreTransaction.create({ actions: [StoreAction.create({ node: node('n1', 'h1') })] })), 4);
    expect(s.lastOutcome!.error!.message).toMatch(/unknown kind 0/);
    expect(s.appliedIndex).toBe(4);
    expect(s.view((tx) => tx.nodes.count())).toBe(0);
  });
});
