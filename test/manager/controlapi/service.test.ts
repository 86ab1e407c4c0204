// ServiceApi on a Raft-less store: create, get, list, update, scale, rollback,
// remove, tasks; version conflicts, name clashes, references by prefix, and
// nothing stored for a refused request.
import { describe, expect, it } from 'vitest';
import { EMPTY_REGISTRY_AUTH } from '../../../spec/docker/distribution.js';
import { ServiceApi } from '../../../manager/controlapi/index.js';
import { localStore, type MemoryStore } from '../../../manager/store/index.js';
import { silentLogger } from '../../../lib/log.js';
import {
  ContainerSpec,
  Meta,
  Node,
  NodeDescription,
  NodeSpec,
  Service,
  ServiceSpec,
  Task,
  TaskSpec,
  TaskState,
  TaskStatus,
  UpdateState,
} from '../../../proto/gen/objects.js';
import type { ServiceResponse } from '../../../proto/gen/control.js';

function setup(): { store: MemoryStore; api: ServiceApi } {
  const store = localStore();
  return { store, api: new ServiceApi({ store, logger: silentLogger(), now: () => 1_000_000 }) };
}

const spec = (name: string, o: Partial<ServiceSpec> = {}, image = 'busybox'): ServiceSpec =>
  ServiceSpec.create({ name, task: TaskSpec.create({ container: ContainerSpec.create({ image, args: ['sleep', '1d'] }) }), ...o });

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
  throw new Error('expected a rejection');
}

const task = (id: string, svc: Service, slot: number, desired: TaskState, state: TaskState, nodeId = 'n1'): Task =>
  Task.create({
    meta: Meta.create({ id }),
    serviceId: svc.meta.id,
    serviceName: svc.spec.name,
    slot,
    nodeId,
    desiredState: desired,
    status: TaskStatus.create({ state }),
    spec: svc.spec.task,
  });

describe('ServiceApi', () => {
  it('creates a service with an id, times, defaults and no update status', async () => {
    const { store, api } = setup();
    const r = await api.createService({ spec: spec('web') });
    const s = r.service;
    expect(s.meta.id).toMatch(/^[0-9a-z]{25}$/);
    expect(s.meta.createdAt).toBe(1_000_000);
    expect(s.meta.version).toBeGreaterThan(0);
    expect(s.spec.replicated).toEqual({ replicas: 1 });
    expect(s.spec.task.restart!.delayMs).toBe(5000);
    expect(s.updateStatus ?? null).toBeNull();
    expect(s.previousSpec ?? null).toBeNull();
    expect(store.view((tx) => tx.services.count())).toBe(1);
    expect(store.view((tx) => tx.tasks.count())).toBe(0);
  });

  it('gives a service created without a name a generated one', async () => {
    const { api } = setup();
    const r = await api.createService({ spec: spec('') });
    expect(r.service.spec.name).toMatch(/^[a-z]+_[a-z]+$/);
  });

  it('refuses a second service with the same name in any case, storing nothing', async () => {
    const { store, api } = setup();
    await api.createService({ spec: spec('web') });
    const e = await codeOf(api.createService({ spec: spec('WEB') }));
    expect(e.code).toBe('ALREADY_EXISTS');
    expect(e.message).toMatch(/WEB/);
    expect(store.view((tx) => tx.services.count())).toBe(1);
  });

  it('stores nothing for an invalid spec', async () => {
    const { store, api } = setup();
    const before = store.appliedIndex;
    const e = await codeOf(api.createService({ spec: spec('web', {}, '') }));
    expect(e).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/image/) });
    expect(store.view((tx) => tx.services.count())).toBe(0);
    expect(store.appliedIndex).toBe(before);
    expect((await codeOf(api.createService({ spec: null }))).code).toBe('INVALID_ARGUMENT');
  });

  it('finds services by id, name, and unique id prefix; an ambiguous prefix lists the candidates', async () => {
    const { store, api } = setup();
    const mk = (id: string, name: string) => Service.create({ meta: Meta.create({ id }), spec: spec(name) });
    await store.update((tx) => {
      tx.services.create(mk('abc111', 'web'));
      tx.services.create(mk('abc222', 'api'));
      tx.services.create(mk('xyz333', 'db'));
    });
    expect((await api.getService({ ref: 'abc111' })).service.spec.name).toBe('web');
    expect((await api.getService({ ref: 'Api' })).service.meta.id).toBe('abc222');
    expect((await api.getService({ ref: 'xy' })).service.spec.name).toBe('db');
    const amb = await codeOf(api.getService({ ref: 'abc' }));
    expect(amb.code).toBe('INVALID_ARGUMENT');
    expect(amb.message).toMatch(/ambiguous.*abc111 \(web\).*abc222 \(api\)/);
    expect((await codeOf(api.getService({ ref: 'nope' }))).code).toBe('NOT_FOUND');
  });

  it('updates: previous spec kept, UPDATING when the task spec changes, version checked', async () => {
    const { store, api } = setup();
    const s = (await api.createService({ spec: spec('web') })).service;
    const r = await api.updateService({ ref: 'web', version: s.meta.version, spec: spec('web', {}, 'nginx'), rollback: false });
    const u = r.service;
    expect(u.spec.task.container.image).toBe('nginx');
    expect(u.previousSpec!.task.container.image).toBe('busybox');
    expect(u.updateStatus).toMatchObject({ state: UpdateState.UPDATING, startedAt: 1_000_000 });
    expect(u.meta.version).toBeGreaterThan(s.meta.version);
    // A stale version is refused and nothing changes.
    const stale = await codeOf(api.updateService({ ref: 'web', version: s.meta.version, spec: spec('web', {}, 'redis'), rollback: false }));
    expect(stale.code).toBe('CONFLICT');
    expect(store.view((tx) => tx.services.byName('web'))!.spec.task.container.image).toBe('nginx');
    // Version 0: the current one.
    await api.updateService({ ref: 'web', version: 0, spec: spec('web', {}, 'redis'), rollback: false });
    expect(store.view((tx) => tx.services.byName('web'))!.spec.task.container.image).toBe('redis');
  });

  it('a replicas-only change (scale) clears the update status, as SwarmKit (the docker CLI stops at a completed one)', async () => {
    const { api } = setup();
    await api.createService({ spec: spec('web') });
    const u = await api.updateService({ ref: 'web', version: 0, spec: spec('web', {}, 'nginx'), rollback: false });
    expect(u.service.updateStatus?.state).toBe(UpdateState.UPDATING);
    const r = await api.updateService({
      ref: 'web',
      version: 0,
      spec: spec('web', { replicated: { replicas: 5 } }, 'nginx'),
      rollback: false,
    });
    expect(r.service.spec.replicated!.replicas).toBe(5);
    expect(r.service.updateStatus ?? null).toBeNull();
    expect(r.service.previousSpec!.replicated!.replicas).toBe(1);
    expect(r.service.previousSpec!.task.container.image).toBe('nginx');
  });

  it('refuses mode changes, renames and missing specs, storing nothing', async () => {
    const { store, api } = setup();
    const s = (await api.createService({ spec: spec('web') })).service;
    const e = await codeOf(api.updateService({ ref: 'web', version: 0, spec: spec('web', { global: {} }), rollback: false }));
    expect(e).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/spec\.mode.*replicated.*global/) });
    expect((await codeOf(api.updateService({ ref: 'web', version: 0, spec: spec('web2'), rollback: false }))).message).toMatch(
      /spec\.name/,
    );
    expect((await codeOf(api.updateService({ ref: 'web', version: 0, spec: null, rollback: false }))).code).toBe('INVALID_ARGUMENT');
    expect((await codeOf(api.updateService({ ref: 'web', version: 0, spec: spec('web', {}, ''), rollback: false }))).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(store.view((tx) => tx.services.get(s.meta.id))!.meta.version).toBe(s.meta.version);
  });

  it('rolls back to the previous spec, swapping them, and refuses without one', async () => {
    const { store, api } = setup();
    await api.createService({ spec: spec('web') });
    const none = await codeOf(api.updateService({ ref: 'web', version: 0, spec: null, rollback: true }));
    expect(none).toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringMatching(/no previous spec/) });
    await api.updateService({ ref: 'web', version: 0, spec: spec('web', {}, 'nginx'), rollback: false });
    const r = (await api.updateService({ ref: 'web', version: 0, spec: null, rollback: true })).service;
    expect(r.spec.task.container.image).toBe('busybox');
    expect(r.previousSpec!.task.container.image).toBe('nginx');
    expect(r.updateStatus).toMatchObject({
      state: UpdateState.ROLLBACK_STARTED,
      startedAt: 1_000_000,
      message: 'manually requested rollback',
    });
    expect(store.view((tx) => tx.services.byName('web'))!.spec.task.container.image).toBe('busybox');
  });

  it('removes a service by prefix; a second removal is NOT_FOUND', async () => {
    const { store, api } = setup();
    const s = (await api.createService({ spec: spec('web') })).service;
    await api.removeService({ ref: s.meta.id.slice(0, 6) });
    expect(store.view((tx) => tx.services.count())).toBe(0);
    expect((await codeOf(api.removeService({ ref: 'web' }))).code).toBe('NOT_FOUND');
  });

  it('lists services with running and desired counts; lists and gets tasks', async () => {
    const { store, api } = setup();
    const web = (await api.createService({ spec: spec('web', { replicated: { replicas: 3 } }) })).service;
    const agent = (await api.createService({ spec: spec('agent', { global: {} }) })).service;
    await store.update((tx) => {
      tx.nodes.create(
        Node.create({
          meta: Meta.create({ id: 'n1' }),
          spec: NodeSpec.create({ name: 'h1' }),
          description: NodeDescription.create({ hostname: 'host1' }),
        }),
      );
      tx.nodes.create(
        Node.create({
          meta: Meta.create({ id: 'n2' }),
          spec: NodeSpec.create({ name: 'h2' }),
          description: NodeDescription.create({ hostname: 'host2' }),
        }),
      );
      tx.tasks.create(task('t1', web, 1, TaskState.RUNNING, TaskState.RUNNING));
      tx.tasks.create(task('t2', web, 2, TaskState.RUNNING, TaskState.STARTING, 'n2'));
      tx.tasks.create(task('t3', web, 3, TaskState.SHUTDOWN, TaskState.RUNNING));
      tx.tasks.create(task('g1', agent, 0, TaskState.RUNNING, TaskState.RUNNING));
      tx.tasks.create(task('g2', agent, 0, TaskState.RUNNING, TaskState.PENDING, 'n2'));
    });
    const ls = (await api.listServices({})).services;
    expect(ls.map((x) => [x.service.spec.name, x.running, x.desired])).toEqual([
      ['agent', 1, 2],
      ['web', 1, 3],
    ]);
    const ids = (r: { tasks: Task[] }) => r.tasks.map((t) => t.meta.id).sort();
    expect(ids(await api.listTasks({ services: ['web'], nodes: [], desiredRunning: false }))).toEqual(['t1', 't2', 't3']);
    expect(ids(await api.listTasks({ services: ['web'], nodes: [], desiredRunning: true }))).toEqual(['t1', 't2']);
    expect(ids(await api.listTasks({ services: [], nodes: ['host2'], desiredRunning: false }))).toEqual(['g2', 't2']);
    expect(ids(await api.listTasks({ services: [agent.meta.id.slice(0, 8)], nodes: ['n1'], desiredRunning: false }))).toEqual(['g1']);
    expect((await api.getTask({ ref: 'g2' })).task.nodeId).toBe('n2');
    expect((await codeOf(api.getTask({ ref: 't' }))).message).toMatch(/ambiguous/);
    expect((await codeOf(api.listTasks({ services: ['nope'], nodes: [], desiredRunning: false }))).code).toBe('NOT_FOUND');
  });

  it('reads through the given linearizable read, and says when it could only be served stale', async () => {
    const store = localStore();
    let reads = 0;
    const api = new ServiceApi({ store, logger: silentLogger(), read: async (fn) => (reads++, { value: store.view(fn), stale: true }) });
    await api.createService({ spec: spec('web') });
    const r: ServiceResponse = await api.getService({ ref: 'web' });
    const l = await api.listServices({});
    expect(r.service.spec.name).toBe('web');
    expect(reads).toBe(2);
    expect([r.stale, l.stale]).toEqual([true, true]);
  });
});

describe('registry credentials (--with-registry-auth)', () => {
  const AUTH = Buffer.from(JSON.stringify({ username: 'tss', password: 'pw' })).toString('base64url');
  const withAuth = (name: string, auth = AUTH): ServiceSpec => {
    const s = spec(name);
    s.task.container.pullOptions = { registryAuth: auth };
    return s;
  };

  it('are stored for the agents but never answered: create, get, list, update, tasks', async () => {
    const { store, api } = setup();
    const created = await api.createService({ spec: withAuth('web') });
    expect(created.service!.spec.task.container.pullOptions ?? null).toBeNull();
    const id = created.service!.meta.id;
    expect(store.view((tx) => tx.services.get(id))!.spec.task.container.pullOptions).toEqual({ registryAuth: AUTH });
    expect((await api.getService({ ref: 'web' })).service!.spec.task.container.pullOptions ?? null).toBeNull();
    expect((await api.listServices({})).services[0]!.service.spec.task.container.pullOptions ?? null).toBeNull();
    const t = Task.create({
      meta: Meta.create({ id: 't1' }),
      serviceId: id,
      spec: store.view((tx) => tx.services.get(id))!.spec.task,
      status: TaskStatus.create({ state: TaskState.RUNNING }),
    });
    await store.update((tx) => tx.tasks.create(t));
    expect((await api.getTask({ ref: 't1' })).task!.spec.container.pullOptions ?? null).toBeNull();
    expect(
      (await api.listTasks({ services: [], nodes: [], desiredRunning: false })).tasks[0]!.spec.container.pullOptions ?? null,
    ).toBeNull();
    // The stored task keeps them: the dispatcher sends it to the agent as it is.
    expect(store.view((tx) => tx.tasks.get('t1'))!.spec.container.pullOptions).toEqual({ registryAuth: AUTH });
  });

  it('an update without credentials keeps the service’s own (read-modify-write drops nothing); new ones replace them', async () => {
    const { store, api } = setup();
    const { service } = await api.createService({ spec: withAuth('web') });
    const read = (await api.getService({ ref: 'web' })).service!;
    read.spec.task.container.env = ['A=1'];
    const up = await api.updateService({ ref: 'web', version: read.meta.version, spec: read.spec, rollback: false });
    expect(up.service!.previousSpec?.task.container.pullOptions ?? null).toBeNull();
    const stored = () => store.view((tx) => tx.services.get(service!.meta.id))!;
    expect(stored().spec.task.container.pullOptions).toEqual({ registryAuth: AUTH });
    const other = Buffer.from('{"username":"u2","password":"p2"}').toString('base64url');
    const next = withAuth('web', other);
    await api.updateService({ ref: 'web', version: stored().meta.version, spec: next, rollback: false });
    expect(stored().spec.task.container.pullOptions).toEqual({ registryAuth: other });
  });

  it('an update that moves the image to another registry drops the old registry’s credentials', async () => {
    const { store, api } = setup();
    const regA = Buffer.from(JSON.stringify({ username: 'tss', password: 'pw', serveraddress: 'rega.example:5000' })).toString('base64url');
    const s = withAuth('web', regA);
    s.task.container.image = 'rega.example:5000/app:v1';
    const { service } = await api.createService({ spec: s });
    const stored = () => store.view((tx) => tx.services.get(service!.meta.id))!;
    // Same registry, another tag: kept.
    let read = (await api.getService({ ref: 'web' })).service!;
    read.spec.task.container.image = 'rega.example:5000/app:v2';
    await api.updateService({ ref: 'web', version: read.meta.version, spec: read.spec, rollback: false });
    expect(stored().spec.task.container.pullOptions).toEqual({ registryAuth: regA });
    // `update --image other.reg/x` with nothing sent: other.reg never gets rega's login.
    read = (await api.getService({ ref: 'web' })).service!;
    read.spec.task.container.image = 'other.reg/x';
    await api.updateService({ ref: 'web', version: read.meta.version, spec: read.spec, rollback: false });
    expect(stored().spec.task.container.pullOptions ?? null).toBeNull();
    // Credentials without a serveraddress stay only while the image stays on its registry.
    const bare = withAuth('bare');
    bare.task.container.image = 'rega.example:5000/app:v1';
    const b = (await api.createService({ spec: bare })).service!;
    read = (await api.getService({ ref: 'bare' })).service!;
    read.spec.task.container.image = 'busybox';
    await api.updateService({ ref: 'bare', version: read.meta.version, spec: read.spec, rollback: false });
    expect(store.view((tx) => tx.services.get(b.meta.id))!.spec.task.container.pullOptions ?? null).toBeNull();
  });

  it('explicit none (`{}`, --with-registry-auth without a login) clears what the service holds', async () => {
    const { store, api } = setup();
    const { service } = await api.createService({ spec: withAuth('web') });
    const read = (await api.getService({ ref: 'web' })).service!;
    read.spec.task.container.pullOptions = { registryAuth: EMPTY_REGISTRY_AUTH };
    await api.updateService({ ref: 'web', version: read.meta.version, spec: read.spec, rollback: false });
    expect(store.view((tx) => tx.services.get(service!.meta.id))!.spec.task.container.pullOptions ?? null).toBeNull();
  });

  it('must decode to an AuthConfig: base64 of no JSON, of no object, or with a huge field is refused, naming the field', async () => {
    const { api } = setup();
    const notJson = await codeOf(api.createService({ spec: withAuth('a', Buffer.from('secret-no-json').toString('base64url')) }));
    expect(notJson.code).toBe('INVALID_ARGUMENT');
    expect(notJson.message).toMatch(/spec.task.container.pullOptions.registryAuth is base64 of no JSON/);
    expect(notJson.message).not.toContain('secret');
    const arr = await codeOf(api.createService({ spec: withAuth('b', Buffer.from('[1]').toString('base64url')) }));
    expect(arr.message).toMatch(/pullOptions.registryAuth is base64 of JSON that is no object/);
    const field = await codeOf(
      api.createService({
        spec: withAuth('c', Buffer.from(JSON.stringify({ username: 'u', password: 'p'.repeat(9000) })).toString('base64url')),
      }),
    );
    expect(field.message).toMatch(/pullOptions.registryAuth is refused: X-Registry-Auth: its "password" is 9000 characters long/);
    const server = await codeOf(
      api.createService({
        spec: withAuth('d', Buffer.from(JSON.stringify({ username: 'u', password: 'p', serveraddress: 'a b' })).toString('base64url')),
      }),
    );
    expect(server.message).toMatch(/pullOptions.registryAuth has a serveraddress that is not a registry/);
  });

  it('are bounded and must look like X-Registry-Auth; the error does not echo them', async () => {
    const { api } = setup();
    const long = await codeOf(api.createService({ spec: withAuth('a', 'x'.repeat(16 * 1024 + 1)) }));
    expect(long.message).toMatch(/spec.task.container.pullOptions.registryAuth is 16385 characters long: at most 16384/);
    const odd = await codeOf(api.createService({ spec: withAuth('b', 'not base64 {secret}') }));
    expect(odd.code).toBe('INVALID_ARGUMENT');
    expect(odd.message).toMatch(/must be base64url JSON of an AuthConfig/);
    expect(odd.message).not.toContain('secret');
  });
});
