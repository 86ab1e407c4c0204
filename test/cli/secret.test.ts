// The secret and config CLI and the service --secret/--config flags: command
// lines to specs and references (pure), then the commands against SecretApi,
// ConfigApi and ServiceApi over a real gRPC server on a unix socket: docker's
// columns and JSON shape, values never printed for secrets, and each bad
// input of issue 16 a clear error with nothing stored.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configCommand, createSpec, objectJson, objectRows, readValue, secretCommand, setStdin } from '../../cli/secret.js';
import { parseCreateArgv, parseFileRef, parseUpdateArgv, serviceCommand } from '../../cli/service.js';
import { unary } from '../../lib/grpc.js';
import { silentLogger } from '../../lib/log.js';
import { ConfigApi, SecretApi, ServiceApi } from '../../manager/controlapi/index.js';
import { localStore } from '../../manager/store/index.js';
import { ControlService } from '../../proto/gen/control.js';
import { Secret, ServiceSpec, TaskSpec } from '../../proto/gen/objects.js';
import { thrownMessage } from '../errors.js';
import { runCommand } from './run-command.js';

const dir = mkdtempSync(join(tmpdir(), 'tss-secret-'));
const write = (name: string, data: string | Buffer): string => {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
};
const stdinOf = (...chunks: string[]) =>
  (async function* () {
    for (const c of chunks) yield c;
  })();

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a rejection');
}

describe('secret and config command lines (pure)', () => {
  it('--secret NAME and source=,target=,uid=,gid=,mode= (octal); --config defaults its target to /NAME', () => {
    expect(parseFileRef('secret', '--secret', 'db_pw')).toEqual({
      secretId: '',
      secretName: 'db_pw',
      target: { name: 'db_pw', uid: '', gid: '', mode: 0 },
    });
    expect(parseFileRef('secret', '--secret', 'src=db_pw.v2,target=db_pw,uid=33,gid=34,mode=0400')).toEqual({
      secretId: '',
      secretName: 'db_pw.v2',
      target: { name: 'db_pw', uid: '33', gid: '34', mode: 0o400 },
    });
    expect(parseFileRef('secret', '--secret', 'source=k,mode=640').target!.mode).toBe(0o640);
    expect(parseFileRef('config', '--config', 'nginx.conf')).toEqual({
      configId: '',
      configName: 'nginx.conf',
      target: { name: '/nginx.conf', uid: '', gid: '', mode: 0 },
    });
    expect(parseFileRef('config', '--config', 'source=app,target=/etc/app.conf').target!.name).toBe('/etc/app.conf');
  });

  it.each([
    ['target=x', /^--secret needs the secret's name: --secret NAME or --secret source=NAME/],
    ['source=a,mode=999', /^--secret mode must be an octal file mode from 0001 to 0777, e.g. mode=0400 \(got "999"\)/],
    ['source=a,mode=4755', /^--secret mode must be an octal file mode from 0001 to 0777/],
    ['source=a,uid=www', /^--secret uid must be a numeric uid such as uid=1000 \(got "www"\)/],
    ['source=a,owner=1', /^--secret: unknown option "owner" in "source=a,owner=1": use source, target, uid, gid and mode/],
  ])('--secret %s is refused naming the flag', (v, re) => {
    expect(thrownMessage(() => parseFileRef('secret', '--secret', v))).toMatch(re);
  });

  it('service create --secret/--config; update --secret-rm/--secret-add (the rotation recipe), --config-rm', () => {
    const { spec } = parseCreateArgv(['--secret', 'db_pw', '--config', 'source=app,target=/etc/app.conf', 'busybox']);
    expect(spec.task.container!.secrets.map((r) => [r.secretName, r.target!.name])).toEqual([['db_pw', 'db_pw']]);
    expect(spec.task.container!.configs.map((r) => [r.configName, r.target!.name])).toEqual([['app', '/etc/app.conf']]);
    const cur = ServiceSpec.create({
      name: 'web',
      task: TaskSpec.create({
        container: {
          ...spec.task.container!,
          secrets: [{ secretId: 'id-old', secretName: 'db_pw', target: { name: 'db_pw', uid: '0', gid: '0', mode: 0o444 } }],
          configs: [{ configId: 'id-app', configName: 'app', target: { name: '/etc/app.conf', uid: '0', gid: '0', mode: 0o444 } }],
        },
      }),
    });
    const next = parseUpdateArgv(['--secret-rm', 'db_pw', '--secret-add', 'source=db_pw.v2,target=db_pw', '--config-rm', 'id-app'], cur);
    expect(next.task.container!.secrets).toEqual([
      { secretId: '', secretName: 'db_pw.v2', target: { name: 'db_pw', uid: '', gid: '', mode: 0 } },
    ]);
    expect(next.task.container!.configs).toEqual([]);
    expect(thrownMessage(() => parseUpdateArgv(['--secret-rm', 'nope'], cur))).toMatch(
      /^--secret-rm nope: the service uses no secret nope \(its secrets: db_pw\)/,
    );
  });

  it('create reads FILE or - (standard input), refusing 500 KiB and more before sending, and an empty or missing file', async () => {
    const spec = await createSpec('secret', ['env=prod'], ['db_pw', '-'], stdinOf('s3', 'cr3t'));
    expect(spec).toMatchObject({ name: 'db_pw', labels: { env: 'prod' } });
    expect(Buffer.from(spec.data).toString()).toBe('s3cr3t');
    expect(Buffer.from((await createSpec('config', [], ['app', write('app.conf', 'x=1')])).data).toString()).toBe('x=1');
    expect(await rejection(createSpec('secret', [], ['big', write('big', Buffer.alloc(600 * 1024))]))).toMatch(
      /^spec.data is 614400 bytes: a secret must be smaller than 500 KiB \(512000 bytes\)/,
    );
    // Standard input stops being read once past the limit.
    const chunk = 'x'.repeat(64 * 1024);
    let read = 0;
    const endless = (async function* () {
      for (;;) {
        read++;
        yield chunk;
      }
    })();
    expect(await rejection(readValue('secret', '-', endless))).toMatch(/^spec.data is 524288 bytes: a secret must be smaller/);
    expect(read).toBe(8);
    expect(await rejection(createSpec('secret', [], ['empty', write('empty', '')]))).toMatch(/^spec.data is empty/);
    expect(await rejection(createSpec('secret', [], ['x', join(dir, 'missing')]))).toMatch(/^FILE .*missing cannot be read: no such file/);
    mkdirSync(join(dir, 'adir'), { recursive: true });
    expect(await rejection(createSpec('secret', [], ['x', join(dir, 'adir')]))).toMatch(/is a directory: give a file, or - to read/);
    expect(await rejection(createSpec('secret', [], ['-bad', '-'], stdinOf('x')))).toMatch(/is not a valid secret name/);
    expect(await rejection(createSpec('secret', [], ['only-name']))).toMatch(/^give a name and a file \(or - for standard input\)/);
  });

  it("ls rows and inspect JSON have docker's columns and shape; a secret's JSON has no Data, a config's has it in base64", () => {
    const s = Secret.create({
      meta: { id: 'abcdefghijklmnopqrstuvwxy', version: 7, createdAt: 1_000, updatedAt: 61_000 },
      spec: { name: 'db_pw', labels: { a: 'b' }, data: new Uint8Array() },
    });
    expect(objectRows('secret', [s], 121_000)).toEqual([['abcdefghijklmnopqrstuvwxy', 'db_pw', '', '2 minutes ago', 'About a minute ago']]);
    expect(objectRows('config', [s], 121_000)[0]).toHaveLength(4);
    expect(objectJson('secret', s)).toEqual({
      ID: 'abcdefghijklmnopqrstuvwxy',
      Version: { Index: 7 },
      CreatedAt: '1970-01-01T00:00:01.000Z',
      UpdatedAt: '1970-01-01T00:01:01.000Z',
      Spec: { Name: 'db_pw', Labels: { a: 'b' } },
    });
    const c = { ...s, spec: { ...s.spec, data: Buffer.from('x=1') } };
    expect(objectJson('config', c)).toMatchObject({ Spec: { Name: 'db_pw', Data: 'eD0x' } });
  });
});

const sock = join(dir, 'tsswarm.sock');
const store = localStore();
const secrets = new SecretApi({ store, logger: silentLogger() });
const configs = new ConfigApi({ store, logger: silentLogger() });
const services = new ServiceApi({ store, logger: silentLogger() });
const server = new grpc.Server();

beforeAll(async () => {
  const u = <Req, Res>(fn: (r: Req) => Promise<Res>) => unary<Req, Res>((r) => fn(r));
  server.addService(ControlService, {
    createSecret: u((r: Parameters<SecretApi['createSecret']>[0]) => secrets.createSecret(r)),
    getSecret: u((r: Parameters<SecretApi['getSecret']>[0]) => secrets.getSecret(r)),
    listSecrets: u((r: Parameters<SecretApi['listSecrets']>[0]) => secrets.listSecrets(r)),
    removeSecret: u((r: Parameters<SecretApi['removeSecret']>[0]) => secrets.removeSecret(r)),
    createConfig: u((r: Parameters<ConfigApi['createConfig']>[0]) => configs.createConfig(r)),
    getConfig: u((r: Parameters<ConfigApi['getConfig']>[0]) => configs.getConfig(r)),
    listConfigs: u((r: Parameters<ConfigApi['listConfigs']>[0]) => configs.listConfigs(r)),
    removeConfig: u((r: Parameters<ConfigApi['removeConfig']>[0]) => configs.removeConfig(r)),
    createService: u((r: Parameters<ServiceApi['createService']>[0]) => services.createService(r)),
    getService: u((r: Parameters<ServiceApi['getService']>[0]) => services.getService(r)),
    updateService: u((r: Parameters<ServiceApi['updateService']>[0]) => services.updateService(r)),
    listNetworks: u(async () => ({ networks: [], stale: false })),
  });
  await new Promise<void>((res, rej) =>
    server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
  );
});

afterAll(async () => {
  await new Promise<void>((res) => server.tryShutdown(() => res()));
  rmSync(dir, { recursive: true, force: true });
});

const run = (...argv: string[]) =>
  runCommand({ secret: secretCommand, config: configCommand, service: serviceCommand }, `unix://${sock}`, argv);
const count = () => store.view((tx) => ({ secrets: tx.secrets.count(), configs: tx.configs.count(), services: tx.services.count() }));
const VALUE = 'hunter2-do-not-print';

describe('secret and config CLI over the Control API', () => {
  it('secret create FILE and -, ls, inspect [--pretty]: the value is stored and never printed', async () => {
    const c = await run('secret', 'create', '--label', 'env=prod', 'db_pw', write('pw', VALUE));
    expect(c.err).toBe('');
    expect(c.code).toBe(0);
    const id = store.view((tx) => tx.secrets.byName('db_pw'))!.meta.id;
    expect(c.out).toBe(`${id}\n`);
    expect(Buffer.from(store.view((tx) => tx.secrets.get(id))!.spec.data).toString()).toBe(VALUE);
    setStdin(() => stdinOf(VALUE, '-2'));
    expect((await run('secret', 'create', 'api_key', '-')).code).toBe(0);
    expect(Buffer.from(store.view((tx) => tx.secrets.byName('api_key'))!.spec.data).toString()).toBe(`${VALUE}-2`);

    const ls = await run('secret', 'ls');
    expect(ls.out).toMatch(/^ID\s+NAME\s+DRIVER\s+CREATED\s+UPDATED\n/);
    expect(ls.out).toMatch(new RegExp(`${id}\\s+db_pw\\s+(Less than a second|\\d+ seconds?) ago`));
    expect((await run('secret', 'ls', '-q')).out.split('\n').filter(Boolean)).toHaveLength(2);
    const [json] = JSON.parse((await run('secret', 'inspect', 'db_pw')).out);
    expect(json).toMatchObject({ ID: id, Spec: { Name: 'db_pw', Labels: { env: 'prod' } } });
    expect(json.Spec.Data).toBeUndefined();
    const pretty = (await run('secret', 'inspect', '--pretty', id.slice(0, 8))).out;
    expect(pretty).toMatch(new RegExp(`^ID:\\s+${id}\\nName:\\s+db_pw\\nLabels:\\n - env=prod\\nDriver:\\s+\\nCreated at:\\s+\\d{4}-`));
    const all = [ls.out, (await run('secret', 'ls', '--format', 'json')).out, pretty, JSON.stringify(json)].join('');
    expect(all).not.toContain(VALUE);
  });

  it('secret ls and config ls take a Go template --format and --filter id=, name=, label= as docker', async () => {
    expect((await run('secret', 'create', '-l', 'tier=web', '-l', 'x', 'fmt_a', write('fa', VALUE))).code).toBe(0);
    expect((await run('secret', 'create', 'fmt_b', write('fb', VALUE))).code).toBe(0);
    const a = store.view((tx) => tx.secrets.byName('fmt_a'))!.meta.id;
    expect((await run('secret', 'ls', '--filter', 'name=fmt_', '--format', '{{.Name}} {{.Labels}}')).out).toBe(
      'fmt_a tier=web,x=\nfmt_b \n',
    );
    expect((await run('secret', 'ls', '-f', 'label=tier=web', '--format', '{{.ID}}')).out).toBe(`${a}\n`);
    expect((await run('secret', 'ls', '-f', 'label=x', '-f', 'name=fmt', '--format', '{{.Name}}')).out).toBe('fmt_a\n');
    expect((await run('secret', 'ls', '-f', `id=${a.slice(0, 6)}`, '-q')).out).toBe(`${a}\n`);
    expect((await run('secret', 'ls', '-f', 'name=fmt_b', '--format', 'table {{.Name}}\t{{.Driver}}')).out).toBe(
      'NAME      DRIVER\nfmt_b     \n',
    );
    expect((await run('secret', 'ls', '-f', 'name=fmt_a', '--format', '{{json .}}')).out).toMatch(
      /^\{"ID":"\w+","Name":"fmt_a",.*"Labels":"tier=web,x="\}\n$/,
    );
    const bad = await run('secret', 'ls', '-f', 'driver=x');
    expect([bad.code, bad.err]).toEqual([1, expect.stringMatching(/invalid filter 'driver'/)]);
    expect((await run('secret', 'ls', '--format', '{{.Nope}}')).err).toMatch(/can't evaluate field Nope in type \*secret.secretContext/);
    expect((await run('config', 'create', '-l', 'k=v', 'fmt_c', write('fc', 'c'))).code).toBe(0);
    expect((await run('config', 'ls', '-f', 'label=k', '--format', 'table {{.Name}}\t{{.Labels}}')).out).toBe(
      'NAME      LABELS\nfmt_c     k=v\n',
    );
    expect((await run('config', 'ls', '--format', '{{.Driver}}')).err).toMatch(
      /can't evaluate field Driver in type \*config.configContext/,
    );
    expect((await run('secret', 'rm', 'fmt_a', 'fmt_b')).code).toBe(0);
    expect((await run('config', 'rm', 'fmt_c')).code).toBe(0);
  });

  it('config create, ls (no DRIVER), inspect shows the data as docker does', async () => {
    expect((await run('config', 'create', 'app.conf', write('app.conf', 'listen 80;\n'))).code).toBe(0);
    expect((await run('config', 'ls')).out).toMatch(/^ID\s+NAME\s+CREATED\s+UPDATED\n\w{25}\s+app\.conf\s+/);
    expect((await run('config', 'inspect', '--pretty', 'app.conf')).out).toMatch(/\nData:\nlisten 80;\n/);
    const [json] = JSON.parse((await run('config', 'inspect', 'app.conf')).out);
    expect(Buffer.from(json.Spec.Data, 'base64').toString()).toBe('listen 80;\n');
  });

  it('the bad inputs of issue 16: a 600 KB secret, a duplicate name, an unknown --secret, a relative config target: each a clear error, nothing stored', async () => {
    const before = count();
    const big = await run('secret', 'create', 'big', write('big', Buffer.alloc(600 * 1024, 1)));
    expect(big.code).toBe(1);
    expect(big.err).toMatch(/^tsswarm: spec.data is 614400 bytes: a secret must be smaller than 500 KiB \(512000 bytes\)/);
    const dup = await run('secret', 'create', 'db_pw', write('pw2', 'other'));
    expect(dup.code).toBe(1);
    expect(dup.err).toMatch(
      /^tsswarm: spec.name: secret db_pw already exists \(\w+; names are compared without case\): choose another name, e.g. db_pw.v2/,
    );
    const unknown = await run('service', 'create', '-d', '--no-resolve-image', '--name', 'web', '--secret', 'nope', 'busybox');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(
      /^tsswarm: spec.task.container.secrets\[0\] \(--secret nope\): secret nope not found: see `tsswarm secret ls`, or create it with `tsswarm secret create nope FILE`/,
    );
    const rel = await run('service', 'create', '-d', '--name', 'web', '--config', 'source=app.conf,target=etc/app.conf', 'busybox');
    expect(rel.code).toBe(1);
    expect(rel.err).toMatch(
      /^tsswarm: spec.task.container.configs\[0\].target.name \(--config source=app.conf,target=etc\/app.conf\) "etc\/app.conf" is not an absolute path/,
    );
    expect(count()).toEqual(before);
    expect(Buffer.from(store.view((tx) => tx.secrets.byName('db_pw'))!.spec.data).toString()).toBe(VALUE);
  });

  it('service create --secret --config, inspect shows the references only; rm in use is refused naming the service; the rotation recipe frees it', async () => {
    const c = await run(
      'service',
      'create',
      '-d',
      '--name',
      'web',
      '--secret',
      'db_pw',
      '--config',
      'source=app.conf,target=/etc/app.conf,mode=0440',
      'busybox',
    );
    expect(c.code).toBe(0);
    expect(c.err).not.toMatch(/WARNING: secrets and configs/);
    const pretty = (await run('service', 'inspect', '--pretty', 'web')).out;
    expect(pretty).toMatch(/Secrets:\n Target:\tdb_pw\n {2}Source:\tdb_pw\n {2}UID:\t\t0\n {2}GID:\t\t0\n {2}Mode:\t\t0444\n/);
    expect(pretty).toMatch(/Configs:\n Target:\t\/etc\/app.conf\n {2}Source:\tapp.conf\n {2}UID:\t\t0\n {2}GID:\t\t0\n {2}Mode:\t\t0440\n/);
    const inspected = (await run('service', 'inspect', 'web')).out;
    expect(inspected).not.toContain(VALUE);
    expect(JSON.parse(inspected)[0].spec.task.container.secrets[0].secretName).toBe('db_pw');

    const rm = await run('secret', 'rm', 'db_pw', 'api_key');
    expect(rm.code).toBe(1);
    expect(rm.err).toBe(
      "tsswarm: secret 'db_pw' is in use by the following service: web: remove it from it first (`tsswarm service update --secret-rm db_pw SERVICE`)\n",
    );
    expect(rm.out).toBe('api_key\n');
    expect(store.view((tx) => tx.secrets.byName('db_pw'))).toBeDefined();
    expect((await run('config', 'rm', 'app.conf')).err).toMatch(/^tsswarm: config 'app.conf' is in use by the following service: web/);

    expect((await run('secret', 'create', 'db_pw.v2', write('pw3', 'new'))).code).toBe(0);
    const up = await run('service', 'update', '-d', '--secret-rm', 'db_pw', '--secret-add', 'source=db_pw.v2,target=db_pw', 'web');
    expect(up.code).toBe(0);
    const svc = store.view((tx) => tx.services.byName('web'))!;
    expect(svc.spec.task.container!.secrets.map((r) => [r.secretName, r.target!.name])).toEqual([['db_pw.v2', 'db_pw']]);
    expect((await run('secret', 'rm', 'db_pw')).code).toBe(0);
    expect(
      store.view((tx) =>
        tx.secrets
          .list()
          .map((s) => s.spec.name)
          .sort(),
      ),
    ).toEqual(['db_pw.v2']);
  });
});
