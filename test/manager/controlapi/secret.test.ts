// SecretApi and ConfigApi, and the secret and config references of services:
// on a Raft-less store (each refusal names the field and stores nothing, a
// secret's value is never answered, removal is refused while a service uses
// it), on the orchestrator harness (changing the references rolls the
// tasks: the rotation recipe), and on a real manager through its Control
// handlers and Raft.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serviceUpdateSpec } from '../../../cli/service.js';
import { silentLogger } from '../../../lib/log.js';
import { ConfigApi, SecretApi, ServiceApi, sameTaskSpec } from '../../../manager/controlapi/index.js';
import type { Manager } from '../../../manager/manager.js';
import { localStore, type MemoryStore } from '../../../manager/store/index.js';
import type { ControlHandlers } from '../../../proto/gen/control.js';
import { ConfigSpec, ContainerSpec, SecretSpec, ServiceSpec, TaskSpec, TaskState, UpdateState } from '../../../proto/gen/objects.js';
import { MAX_FILE_OBJECT_BYTES } from '../../../spec/index.js';
import { agents, cluster, running, teardown } from '../orchestrator/harness.js';
import { type LoneManager, startLoneManager } from '../lone-manager.js';

const bytes = (s: string | number): Uint8Array => (typeof s === 'number' ? new Uint8Array(s).fill(120) : new TextEncoder().encode(s));
const sspec = (name: string, data: Uint8Array | string = 'pw', labels: Record<string, string> = {}): SecretSpec =>
  SecretSpec.create({ name, labels, data: typeof data === 'string' ? bytes(data) : data });
const cspec = (name: string, data: string = 'conf'): ConfigSpec => ConfigSpec.create({ name, data: bytes(data) });

type Ref = { source: string; target?: string; uid?: string; gid?: string; mode?: number };
const file = (r: Ref) =>
  r.target === undefined && r.uid === undefined && r.mode === undefined
    ? null
    : { name: r.target ?? '', uid: r.uid ?? '', gid: r.gid ?? '', mode: r.mode ?? 0 };
const service = (name: string, secrets: Ref[] = [], configs: Ref[] = []): ServiceSpec =>
  ServiceSpec.create({
    name,
    task: TaskSpec.create({
      container: ContainerSpec.create({
        image: 'busybox',
        secrets: secrets.map((r) => ({ secretId: '', secretName: r.source, target: file(r) })),
        configs: configs.map((r) => ({ configId: '', configName: r.source, target: file(r) })),
      }),
    }),
  });

async function refused(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
  throw new Error('expected a refusal');
}

function setup(): { store: MemoryStore; secrets: SecretApi; configs: ConfigApi; svcs: ServiceApi } {
  const store = localStore();
  const logger = silentLogger();
  return {
    store,
    secrets: new SecretApi({ store, logger, now: () => 5_000 }),
    configs: new ConfigApi({ store, logger, now: () => 5_000 }),
    svcs: new ServiceApi({ store, logger }),
  };
}

const counts = (store: MemoryStore) =>
  store.view((tx) => ({ secrets: tx.secrets.count(), configs: tx.configs.count(), services: tx.services.count() }));

describe('SecretApi', () => {
  it('create stores the value and answers without it; get (id, name, id prefix) and list never answer it', async () => {
    const { store, secrets } = setup();
    const r = await secrets.createSecret({ spec: sspec('db_pw', 's3cr3t', { env: 'prod' }) });
    const id = r.secret.meta.id;
    expect(r.secret.spec).toMatchObject({ name: 'db_pw', labels: { env: 'prod' } });
    expect(r.secret.spec.data).toHaveLength(0);
    expect(r.secret.meta.createdAt).toBe(5_000);
    expect(new TextDecoder().decode(store.view((tx) => tx.secrets.get(id))!.spec.data)).toBe('s3cr3t');
    for (const ref of [id, 'db_pw', id.slice(0, 5)]) {
      const g = await secrets.getSecret({ ref });
      expect(g.secret.meta.id).toBe(id);
      expect(g.secret.spec.data).toHaveLength(0);
    }
    await secrets.createSecret({ spec: sspec('api_key') });
    const ls = await secrets.listSecrets({});
    expect(ls.secrets.map((s) => s.spec.name)).toEqual(['api_key', 'db_pw']);
    expect(ls.secrets.every((s) => s.spec.data.length === 0)).toBe(true);
    expect(JSON.stringify(ls)).not.toContain('s3cr3t');
    expect((await refused(secrets.getSecret({ ref: 'nope' }))).message).toMatch(
      /^secret nope not found: see `tsswarm secret ls`, or create it with `tsswarm secret create nope FILE`/,
    );
  });

  it('sizes: 1 byte and 511,999 bytes pass; 0, 512,000 and 600 KB are refused naming spec.data, nothing stored', async () => {
    const { store, secrets } = setup();
    await secrets.createSecret({ spec: sspec('one', bytes(1)) });
    await secrets.createSecret({ spec: sspec('max', bytes(MAX_FILE_OBJECT_BYTES - 1)) });
    for (const [n, re] of [
      [0, /^spec.data is empty: a secret holds 1 byte to 500 KiB/],
      [512_000, /^spec.data is 512000 bytes: a secret must be smaller than 500 KiB \(512000 bytes\)/],
      [600 * 1024, /^spec.data is 614400 bytes: a secret must be smaller than 500 KiB/],
    ] as const) {
      const e = await refused(secrets.createSecret({ spec: sspec(`big${n}`, bytes(n)) }));
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.message).toMatch(re);
    }
    expect(counts(store).secrets).toBe(2);
  });

  it("names as Docker's: 64 characters pass; 65, a leading or trailing -._, spaces and slashes are refused", async () => {
    const { store, secrets } = setup();
    await secrets.createSecret({ spec: sspec('a'.repeat(64)) });
    await secrets.createSecret({ spec: sspec('a-b_c.d') });
    await secrets.createSecret({ spec: sspec('X') });
    for (const name of ['a'.repeat(65), '-a', '.a', '_a', 'a-', 'a.', 'a b', 'a/b', 'é']) {
      const e = await refused(secrets.createSecret({ spec: sspec(name) }));
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.message).toMatch(
        /^spec.name ".*" is not a valid secret name: only 64 \[a-zA-Z0-9-_.\] characters allowed, and the start and end character must be \[a-zA-Z0-9\]$/,
      );
    }
    expect((await refused(secrets.createSecret({ spec: sspec('') }))).message).toMatch(/^spec.name is required/);
    expect((await refused(secrets.createSecret({ spec: sspec('l', 'x', { '': 'v' }) }))).message).toMatch(/^spec.labels has an empty key/);
    expect((await refused(secrets.createSecret({ spec: null }))).message).toMatch(/^spec is required/);
    expect(counts(store).secrets).toBe(3);
  });

  it('a duplicate name (also in another case) is ALREADY_EXISTS naming the holder, nothing stored', async () => {
    const { store, secrets } = setup();
    const first = await secrets.createSecret({ spec: sspec('db_pw', 'one') });
    for (const name of ['db_pw', 'DB_PW']) {
      const e = await refused(secrets.createSecret({ spec: sspec(name, 'two') }));
      expect(e.code).toBe('ALREADY_EXISTS');
      expect(e.message).toBe(
        `spec.name: secret db_pw already exists (${first.secret.meta.id}; names are compared without case): choose another name, e.g. ${name}.v2 (a secret cannot be changed: create a new one and move services to it)`,
      );
    }
    expect(counts(store).secrets).toBe(1);
    expect(new TextDecoder().decode(store.view((tx) => tx.secrets.byName('db_pw'))!.spec.data)).toBe('one');
  });

  it('update changes labels only (the value may be sent again unchanged, as stack deploy does); a new name or value, or a stale version, is refused', async () => {
    const { store, secrets, configs } = setup();
    const id = (await secrets.createSecret({ spec: sspec('db_pw', 's3cr3t', { a: '1' }) })).secret.meta.id;
    const v = Number(store.view((tx) => tx.secrets.get(id))!.meta.version);
    const r = await secrets.updateSecret({ ref: 'db_pw', version: v, spec: sspec('db_pw', 's3cr3t', { a: '2', b: '3' }) });
    expect(r.secret.spec).toMatchObject({ name: 'db_pw', labels: { a: '2', b: '3' } });
    expect(r.secret.spec.data).toHaveLength(0);
    expect(new TextDecoder().decode(store.view((tx) => tx.secrets.get(id))!.spec.data)).toBe('s3cr3t');
    await secrets.updateSecret({ ref: id, version: 0, spec: sspec('db_pw', new Uint8Array(0), {}) });
    expect(store.view((tx) => tx.secrets.get(id))!.spec.labels).toEqual({});
    for (const spec of [sspec('db_pw', 'other'), sspec('renamed', 's3cr3t')])
      expect(await refused(secrets.updateSecret({ ref: id, version: 0, spec }))).toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: expect.stringContaining('only updates to Labels are allowed'),
      });
    expect((await refused(secrets.updateSecret({ ref: id, version: 1, spec: sspec('db_pw', 's3cr3t') }))).message).toContain(
      'update out of sequence',
    );
    expect(new TextDecoder().decode(store.view((tx) => tx.secrets.get(id))!.spec.data)).toBe('s3cr3t');
    const cid = (await configs.createConfig({ spec: cspec('app.conf', 'x=1') })).config.meta.id;
    const c = await configs.updateConfig({ ref: cid, version: 0, spec: { ...cspec('app.conf', 'x=1'), labels: { l: 'v' } } });
    expect(c.config.spec.labels).toEqual({ l: 'v' });
    expect((await refused(configs.updateConfig({ ref: cid, version: 0, spec: cspec('app.conf', 'x=2') }))).code).toBe('INVALID_ARGUMENT');
  });

  it('an ambiguous id prefix is refused listing the matches', async () => {
    const { secrets } = setup();
    const ids = [];
    for (let i = 0; i < 40; i++) ids.push((await secrets.createSecret({ spec: sspec(`s${i}`) })).secret.meta.id);
    const firsts = new Map<string, number>();
    for (const id of ids) firsts.set(id[0]!, (firsts.get(id[0]!) ?? 0) + 1);
    const shared = [...firsts].find(([, n]) => n > 1)![0];
    const e = await refused(secrets.getSecret({ ref: shared }));
    expect(e.message).toMatch(new RegExp(`^secret reference "${shared}" is ambiguous: it is the start of \\d+ ids`));
  });
});

describe('ConfigApi', () => {
  it("create and get answer the data (as Docker's), list does not; the same size and name rules; duplicates refused", async () => {
    const { store, configs } = setup();
    const r = await configs.createConfig({ spec: cspec('nginx.conf', 'server {}') });
    expect(new TextDecoder().decode(r.config.spec.data)).toBe('server {}');
    expect(new TextDecoder().decode((await configs.getConfig({ ref: 'nginx.conf' })).config.spec.data)).toBe('server {}');
    expect((await configs.listConfigs({})).configs.map((c) => [c.spec.name, c.spec.data.length])).toEqual([['nginx.conf', 0]]);
    expect((await refused(configs.createConfig({ spec: cspec('nginx.conf') }))).code).toBe('ALREADY_EXISTS');
    const big = await refused(configs.createConfig({ spec: ConfigSpec.create({ name: 'big', data: bytes(600 * 1024) }) }));
    expect(big.message).toMatch(/^spec.data is 614400 bytes: a config must be smaller than 500 KiB/);
    expect((await refused(configs.createConfig({ spec: cspec('-x') }))).message).toMatch(/is not a valid config name/);
    expect(counts(store).configs).toBe(1);
  });
});

describe('services referencing secrets and configs', () => {
  it('sources resolve to ids and names; the managers fill target, uid, gid and mode; no warning (they are delivered)', async () => {
    const { store, secrets, configs, svcs } = setup();
    const s = (await secrets.createSecret({ spec: sspec('db_pw') })).secret.meta.id;
    const k = (await secrets.createSecret({ spec: sspec('api_key') })).secret.meta.id;
    const c = (await configs.createConfig({ spec: cspec('app.conf') })).config.meta.id;
    const r = await svcs.createService({
      spec: service(
        'web',
        [{ source: 'db_pw' }, { source: k.slice(0, 6), target: '/etc/key', uid: '33', gid: '33', mode: 0o400 }],
        [{ source: 'app.conf' }],
      ),
    });
    const ct = store.view((tx) => tx.services.byName('web'))!.spec.task.container!;
    expect(ct.secrets).toEqual([
      { secretId: s, secretName: 'db_pw', target: { name: 'db_pw', uid: '0', gid: '0', mode: 0o444 } },
      { secretId: k, secretName: 'api_key', target: { name: '/etc/key', uid: '33', gid: '33', mode: 0o400 } },
    ]);
    expect(ct.configs).toEqual([{ configId: c, configName: 'app.conf', target: { name: '/app.conf', uid: '0', gid: '0', mode: 0o444 } }]);
    expect(r.warnings.filter((w) => /secret|config/.test(w))).toEqual([]);
    // The service never carries a value.
    expect(JSON.stringify(ServiceSpec.toObject(r.service.spec))).not.toContain('"data"');
  });

  it.each([
    [
      'an unknown secret',
      service('bad', [{ source: 'nope' }]),
      /^spec.task.container.secrets\[0\] \(--secret nope\): secret nope not found: see `tsswarm secret ls`, or create it with `tsswarm secret create nope FILE`/,
    ],
    [
      'an unknown config',
      service('bad', [], [{ source: 'nope' }]),
      /^spec.task.container.configs\[0\] \(--config nope\): config nope not found/,
    ],
    [
      'a relative config target',
      service('bad', [], [{ source: 'app.conf', target: 'etc/app.conf' }]),
      /^spec.task.container.configs\[0\].target.name \(--config source=app.conf,target=etc\/app.conf\) "etc\/app.conf" is not an absolute path: a config's target is where the file appears in the container, e.g. target=\/etc\/app.conf/,
    ],
    [
      'two secrets at one target',
      service('bad', [{ source: 'db_pw' }, { source: 'api_key', target: 'db_pw' }]),
      /^spec.task.container.secrets\[1\].target.name \(--secret source=api_key,target=db_pw\) conflicting target: \/run\/secrets\/db_pw is also the target of secrets\[0\]/,
    ],
    [
      'a secret and a config at one path',
      service('bad', [{ source: 'db_pw', target: '/etc/x' }], [{ source: 'app.conf', target: '/etc/x' }]),
      /^spec.task.container.configs\[0\].target.name .* conflicting target: \/etc\/x is also the target of secrets\[0\]/,
    ],
    ['a .. in a target', service('bad', [{ source: 'db_pw', target: '../etc/shadow' }]), /has a "\.\." component/],
    [
      'a non-numeric uid',
      service('bad', [{ source: 'db_pw', uid: 'www' }]),
      /^spec.task.container.secrets\[0\].target.uid \(--secret uid=www\) "www" is not a numeric uid/,
    ],
    [
      'a mode over 0777',
      service('bad', [{ source: 'db_pw', mode: 0o4755 }]),
      /^spec.task.container.secrets\[0\].target.mode \(--secret mode=\) must be a file mode from 0001 to 0777 \(got 4755 octal\)/,
    ],
  ])('%s is refused naming the field, nothing stored', async (_what, spec, re) => {
    const { store, secrets, configs, svcs } = setup();
    await secrets.createSecret({ spec: sspec('db_pw') });
    await secrets.createSecret({ spec: sspec('api_key') });
    await configs.createConfig({ spec: cspec('app.conf') });
    const e = await refused(svcs.createService({ spec }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(re);
    expect(counts(store).services).toBe(0);
  });

  it("rm is refused while services use it, naming them as Docker's message does; allowed once they stop", async () => {
    const { store, secrets, configs, svcs } = setup();
    await secrets.createSecret({ spec: sspec('db_pw') });
    await configs.createConfig({ spec: cspec('app.conf') });
    await svcs.createService({ spec: service('web', [{ source: 'db_pw' }], [{ source: 'app.conf' }]) });
    const one = await refused(secrets.removeSecret({ ref: 'db_pw' }));
    expect(one).toEqual({
      code: 'FAILED_PRECONDITION',
      message:
        "secret 'db_pw' is in use by the following service: web: remove it from it first (`tsswarm service update --secret-rm db_pw SERVICE`)",
    });
    await svcs.createService({ spec: service('api', [{ source: 'db_pw', target: 'pw' }]) });
    expect((await refused(secrets.removeSecret({ ref: 'db_pw' }))).message).toMatch(
      /^secret 'db_pw' is in use by the following services: api, web: remove it from them first/,
    );
    expect((await refused(configs.removeConfig({ ref: 'app.conf' }))).message).toMatch(
      /^config 'app.conf' is in use by the following service: web: remove it from it first \(`tsswarm service update --config-rm app.conf SERVICE`\)/,
    );
    expect(counts(store)).toMatchObject({ secrets: 1, configs: 1 });
    await svcs.removeService({ ref: 'api' });
    await svcs.removeService({ ref: 'web' });
    await secrets.removeSecret({ ref: 'db_pw' });
    await configs.removeConfig({ ref: 'app.conf' });
    expect(counts(store)).toMatchObject({ secrets: 0, configs: 0 });
  });
});

describe('rollback to a spec whose secret was removed', () => {
  it('is refused saying which secret is gone; nothing changes', async () => {
    const { store, secrets, svcs } = setup();
    await secrets.createSecret({ spec: sspec('db_pw') });
    await secrets.createSecret({ spec: sspec('db_pw.v2') });
    await svcs.createService({ spec: service('web', [{ source: 'db_pw' }]) });
    const cur = store.view((tx) => tx.services.byName('web'))!;
    await svcs.updateService({
      ref: 'web',
      version: 0,
      spec: serviceUpdateSpec(cur.spec, { 'secret-rm': ['db_pw'], 'secret-add': ['source=db_pw.v2,target=db_pw'] }),
      rollback: false,
    });
    await secrets.removeSecret({ ref: 'db_pw' });
    const before = store.view((tx) => tx.services.byName('web'))!;
    const e = await refused(svcs.updateService({ ref: 'web', version: 0, spec: null, rollback: true }));
    expect(e.code).toBe('FAILED_PRECONDITION');
    expect(e.message).toMatch(
      /^service web cannot roll back: its previous spec uses a secret or config that no longer exists \(spec.task.container.secrets\[0\] \(--secret \w+\): secret \w+ not found/,
    );
    expect(store.view((tx) => tx.services.byName('web'))).toEqual(before);
  });
});

describe('rotation: a change of references rolls the tasks', () => {
  afterEach(teardown);

  it('create db_pw.v2, `service update --secret-rm db_pw --secret-add source=db_pw.v2,target=db_pw`: every task replaced, db_pw then removable', async () => {
    const c = await cluster(2);
    const secrets = new SecretApi({ store: c.store, logger: silentLogger() });
    const v1 = (await secrets.createSecret({ spec: sspec('db_pw', 'one') })).secret.meta.id;
    await c.api.createService({ spec: { ...service('web', [{ source: 'db_pw' }]), replicated: { replicas: 3 } } });
    await agents(c);
    const before = running(c, 'web');
    expect(before).toHaveLength(3);
    expect(before.every((t) => t.spec.container!.secrets[0]!.secretId === v1)).toBe(true);

    const v2 = (await secrets.createSecret({ spec: sspec('db_pw.v2', 'two') })).secret.meta.id;
    const cur = c.store.view((tx) => tx.services.byName('web'))!;
    const next = serviceUpdateSpec(cur.spec, { 'secret-rm': ['db_pw'], 'secret-add': ['source=db_pw.v2,target=db_pw'] });
    expect(sameTaskSpec(next.task, cur.spec.task)).toBe(false);
    const r = await c.api.updateService({ ref: 'web', version: cur.meta.version, spec: next, rollback: false });
    expect(r.service.updateStatus?.state).toBe(UpdateState.UPDATING);
    expect(r.service.spec.task.container!.secrets).toEqual([
      { secretId: v2, secretName: 'db_pw.v2', target: { name: 'db_pw', uid: '0', gid: '0', mode: 0o444 } },
    ]);
    await agents(c, undefined, 30);
    const after = running(c, 'web');
    expect(after).toHaveLength(3);
    expect(after.every((t) => t.spec.container!.secrets[0]!.secretId === v2)).toBe(true);
    expect(before.every((t) => c.store.view((tx) => tx.tasks.get(t.meta.id))?.desiredState !== TaskState.RUNNING)).toBe(true);
    await secrets.removeSecret({ ref: 'db_pw' });
    expect(c.store.view((tx) => tx.secrets.list().map((s) => s.spec.name))).toEqual(['db_pw.v2']);
  });
});

describe('on a manager, through its Control handlers and Raft', () => {
  let lone: LoneManager;
  let m: Manager;
  let h: ControlHandlers;
  beforeAll(async () => {
    lone = await startLoneManager('tssm-secrets', 'tssc-secrets');
    m = lone.manager;
    h = m.controlHandlers();
  }, 30_000);
  afterAll(() => lone?.close());

  it('a 511,999-byte secret is replicated and never answered; a 600 KB one, a duplicate and an unknown --secret are refused, nothing stored', async () => {
    const value = bytes(MAX_FILE_OBJECT_BYTES - 1);
    const r = await h.createSecret({ spec: sspec('big', value) });
    expect(r.secret.spec.data).toHaveLength(0);
    expect(m.store.view((tx) => tx.secrets.byName('big'))!.spec.data).toHaveLength(MAX_FILE_OBJECT_BYTES - 1);
    expect((await h.getSecret({ ref: 'big' })).secret.spec.data).toHaveLength(0);
    expect((await h.listSecrets({})).secrets.map((s) => [s.spec.name, s.spec.data.length])).toEqual([['big', 0]]);
    expect((await refused(h.createSecret({ spec: sspec('huge', bytes(600 * 1024)) }))).code).toBe('INVALID_ARGUMENT');
    expect((await refused(h.createSecret({ spec: sspec('big', 'x') }))).code).toBe('ALREADY_EXISTS');
    expect((await refused(h.createService({ spec: service('web', [{ source: 'nope' }]) }))).message).toMatch(
      /^spec.task.container.secrets\[0\] \(--secret nope\): secret nope not found/,
    );
    expect(counts(m.store)).toEqual({ secrets: 1, configs: 0, services: 0 });

    await h.createConfig({ spec: cspec('app.conf', 'x=1') });
    await h.createService({ spec: service('web', [{ source: 'big' }], [{ source: 'app.conf', target: '/etc/app.conf' }]) });
    expect((await refused(h.removeSecret({ ref: 'big' }))).message).toMatch(/^secret 'big' is in use by the following service: web/);
    expect((await refused(h.removeConfig({ ref: 'app.conf' }))).message).toMatch(
      /^config 'app.conf' is in use by the following service: web/,
    );
    await h.removeService({ ref: 'web' });
    await h.removeSecret({ ref: 'big' });
    await h.removeConfig({ ref: 'app.conf' });
    expect(counts(m.store)).toEqual({ secrets: 0, configs: 0, services: 0 });
  });
});
