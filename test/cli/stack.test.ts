// `tsswarm stack`: the compose files read as regular files only, Docker's
// network body as ours, and deploy / ls / services / ps / rm against a lone
// manager: the objects carry the stack labels docker stack deploy uses.
import type * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeInputs, networkSpecFromCompose, readRegularFile, stackCommand, stackRows } from '../../cli/stack.js';
import { type LoneManager, startLoneManager } from '../manager/lone-manager.js';
import { resolvedAuths, resolvedImages, serveLoneManager, TEST_REGISTRY_DIGEST } from './lone-cli.js';
import { serviceCommand } from '../../cli/service.js';
import { runCommand } from './run-command.js';

const dir = mkdtempSync(join(tmpdir(), 'tss-stack-cli-'));
const sock = join(dir, 'cli.sock');
let cliServer: grpc.Server;
let lone: LoneManager;
const tss = (...argv: string[]) => runCommand({ stack: stackCommand }, `unix://${sock}`, ['stack', ...argv]);

beforeAll(async () => {
  lone = await startLoneManager('m1', 'c-stack-cli');
  cliServer = await serveLoneManager(lone, sock);
}, 30_000);

afterAll(async () => {
  await new Promise<void>((res) => cliServer?.tryShutdown(() => res()));
  await lone?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('files a compose file names', () => {
  it('are read when regular, refused when a directory, a FIFO or too large', () => {
    const f = join(dir, 'small');
    writeFileSync(f, 'abc');
    expect(Buffer.from(readRegularFile(f, 10)).toString()).toBe('abc');
    expect(() => readRegularFile(f, 2)).toThrow(`${f} is 3 bytes: larger than the 2 bytes allowed here`);
    const d = join(dir, 'a-dir');
    mkdirSync(d);
    expect(() => readRegularFile(d, 10)).toThrow(`${d} is not a regular file`);
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // Opening a FIFO for reading would wait for a writer: refused at once instead.
    expect(() => readRegularFile(fifo, 10)).toThrow(`${fifo} is not a regular file: a compose file may name regular files only`);
    expect(() => readRegularFile('/dev/zero', 10)).toThrow('/dev/zero is not a regular file');
    expect(() => readRegularFile(join(dir, 'missing'), 10)).toThrow(/ENOENT/);
  });

  it('-c files: the working directory is the first file’s', async () => {
    const a = join(dir, 'sub', 'a.yml');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(a, 'services: {}\n');
    const r = await composeInputs(
      [a, '-'],
      '/',
      readRegularFile,
      (async function* () {
        yield 'services: {web: {image: x}}\n';
      })(),
    );
    expect(r).toEqual({
      files: [
        { name: a, text: 'services: {}\n' },
        { name: '-', text: 'services: {web: {image: x}}\n' },
      ],
      workingDir: join(dir, 'sub'),
    });
    await expect(composeInputs([], '/')).rejects.toThrow('Specify a Compose file (with --compose-file)');
  });
});

describe('conversions', () => {
  const base = {
    Name: 'demo_front',
    Driver: 'overlay',
    Scope: '',
    IPAM: null,
    Internal: false,
    Attachable: true,
    Ingress: false,
    ConfigOnly: false,
    ConfigFrom: null,
    Options: { encrypted: '' },
    Labels: { 'com.docker.stack.namespace': 'demo' },
  };
  it('a Docker network body as our spec; what tsswarm lacks is refused by field', () => {
    expect(networkSpecFromCompose({ ...base, IPAM: { Driver: '', Options: null, Config: [{ Subnet: '10.1.0.0/24' }] } })).toEqual({
      name: 'demo_front',
      labels: { 'com.docker.stack.namespace': 'demo' },
      driver: 'overlay',
      subnet: '10.1.0.0/24',
      gateway: '',
      attachable: true,
      internal: false,
      vni: 0,
      driverOpts: { encrypted: '' },
      ingress: false,
    });
    expect(() => networkSpecFromCompose({ ...base, Driver: 'macvlan' })).toThrow('driver macvlan is not supported by tsswarm');
    expect(() =>
      networkSpecFromCompose({ ...base, IPAM: { Driver: '', Options: null, Config: [{ Subnet: 'a' }, { Subnet: 'b' }] } }),
    ).toThrow('IPAM.Config has 2 subnets');
  });

  it('stack ls counts services per namespace label', () => {
    expect(
      stackRows([{ 'com.docker.stack.namespace': 'b' }, { 'com.docker.stack.namespace': 'a' }, {}, { 'com.docker.stack.namespace': 'b' }]),
    ).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
  });
});

describe('stack deploy | ls | services | ps | rm on a lone manager', () => {
  it('creates the objects with the stack labels, updates on redeploy, prunes and removes', async () => {
    const app = join(dir, 'app');
    mkdirSync(app, { recursive: true });
    writeFileSync(join(app, 'pw.txt'), 'hunter2');
    writeFileSync(join(app, 'site.conf'), 'server {}');
    const compose = join(app, 'compose.yml');
    writeFileSync(
      compose,
      `services:
  web:
    image: busybox
    command: sleep 3600
    networks: [front]
    secrets: [pw]
    configs: [{source: site, target: /etc/site.conf}]
    deploy: {replicas: 2}
  worker:
    image: busybox
    build: .
networks:
  front: {attachable: true}
secrets:
  pw: {file: pw.txt}
configs:
  site: {file: ./site.conf}
`,
    );
    const first = await tss('deploy', '--resolve-image', 'never', '-c', compose, 'demo');
    expect(first.err).toBe('Ignoring unsupported options: build\n\n');
    expect(first.out.split('\n').filter(Boolean).sort()).toEqual(
      [
        'Creating config demo_site',
        'Creating network demo_default',
        'Creating network demo_front',
        'Creating secret demo_pw',
        'Creating service demo_web',
        'Creating service demo_worker',
      ].sort(),
    );
    expect(first.code).toBe(0);
    const svc = lone.manager.store.view((tx) => tx.services.list()).find((s) => s.spec.name === 'demo_web');
    expect(svc?.spec.labels).toEqual({ 'com.docker.stack.namespace': 'demo', 'com.docker.stack.image': 'busybox' });
    expect(svc?.spec.task?.container?.image).toBe('busybox:latest');

    expect((await tss('ls')).out).toBe('NAME   SERVICES\ndemo   2\n');
    const services = await tss('services', 'demo');
    expect(services.out).toMatch(/demo_web\s+replicated\s+\d+\/2\s+busybox:latest/);
    expect((await tss('services', 'nope')).err).toBe('Nothing found in stack: nope\n');

    // A redeploy (with docker's default --resolve-image always: tsswarm warns that it cannot resolve digests).
    writeFileSync(compose, readFileSync(compose, 'utf8').replace('pw: {file: pw.txt}', 'pw: {file: pw.txt, labels: {rotated: "no"}}'));
    const again = await tss('deploy', '-c', compose, 'demo');
    expect(again.out).toMatch(/^Updating service demo_web \(id: \w+\)$/m);
    expect(again.out).toMatch(/^Updating secret demo_pw$/m);
    expect(again.out).toMatch(/^Updating config demo_site$/m);
    expect(again.out).not.toMatch(/Creating/);
    expect(again.err).toContain('image busybox:latest could not be accessed on a registry to record\nits digest');
    const pw = lone.manager.store.view((tx) => tx.secrets.list()).find((x) => x.spec.name === 'demo_pw');
    expect(pw?.spec.labels).toEqual({ 'com.docker.stack.namespace': 'demo', rotated: 'no' });
    // A changed value is refused by Swarm's rule, and nothing else changes.
    writeFileSync(join(app, 'pw.txt'), 'hunter3');
    const changed = await tss('deploy', '--resolve-image', 'never', '-c', compose, 'demo');
    expect(changed.code).toBe(1);
    expect(changed.err).toContain('only updates to Labels are allowed');
    writeFileSync(join(app, 'pw.txt'), 'hunter2');
    // --with-registry-auth: the login stored for Docker Hub travels in the spec of the services whose image is there.
    const dockerConfig = join(dir, 'docker-config');
    mkdirSync(dockerConfig, { recursive: true });
    writeFileSync(
      join(dockerConfig, 'config.json'),
      JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('tss:pw').toString('base64') } } }),
    );
    process.env.DOCKER_CONFIG = dockerConfig;
    try {
      expect((await tss('deploy', '--with-registry-auth', '--resolve-image', 'never', '-c', compose, 'demo')).code).toBe(0);
    } finally {
      delete process.env.DOCKER_CONFIG;
    }
    const web = lone.manager.store.view((tx) => tx.services.byName('demo_web'))!;
    expect(JSON.parse(Buffer.from(web.spec.task.container.pullOptions!.registryAuth, 'base64url').toString())).toEqual({
      username: 'tss',
      password: 'pw',
      serveraddress: 'https://index.docker.io/v1/',
    });

    writeFileSync(compose, 'services:\n  web:\n    image: busybox\n    command: sleep 3600\n');
    const pruned = await tss('deploy', '--prune', '--resolve-image', 'never', '-c', compose, 'demo');
    expect(pruned.out).toMatch(/^Removing service demo_worker$/m);

    const bad = await tss('deploy', '--resolve-image', 'sometimes', '-c', compose, 'demo');
    expect(bad.err).toBe('tsswarm: Invalid option sometimes for flag --resolve-image\n');

    const rm = await tss('rm', 'demo');
    expect(rm.out.split('\n').filter(Boolean)).toEqual([
      'Removing service demo_web',
      'Removing secret demo_pw',
      'Removing config demo_site',
      ...rm.out.split('\n').filter((l) => l.startsWith('Removing network')),
    ]);
    expect(rm.out).toContain('Removing network demo_default');
    expect((await tss('ls')).out).toBe('NAME   SERVICES\n');
  }, 30_000);

  it("a typo'd key: docker's text, then the file and line; nothing is made", async () => {
    const compose = join(dir, 'typo.yml');
    writeFileSync(compose, 'services:\n  web:\n    image: busybox\n    comand: sleep 1\n');
    const r = await tss('deploy', '--resolve-image', 'never', '-c', compose, 'typo');
    expect(r.code).toBe(1);
    expect(r.err).toBe(`tsswarm: services.web Additional property comand is not allowed (${compose}, line 4)\n`);
    expect((await tss('ls')).out).toBe('NAME   SERVICES\n');
  });

  it('--resolve-image pins the digest and platforms the daemon resolves; changed asks only for a new image; never asks nothing', async () => {
    const app = join(dir, 'pinned');
    mkdirSync(app, { recursive: true });
    const compose = join(app, 'compose.yml');
    writeFileSync(compose, 'services:\n  api:\n    image: registry.test/team/api:1\n    command: sleep 3600\n');
    resolvedImages.length = 0;
    const first = await tss('deploy', '-c', compose, 'pin');
    expect([first.code, first.err]).toEqual([0, '']);
    expect(resolvedImages).toEqual(['registry.test/team/api:1']);
    const svc = () => lone.manager.store.view((tx) => tx.services.list()).find((x) => x.spec.name === 'pin_api')!;
    expect(svc().spec.task.container.image).toBe(`registry.test/team/api:1@${TEST_REGISTRY_DIGEST}`);
    expect(svc().spec.task.placement?.platforms).toEqual([{ os: 'linux', architecture: 'amd64' }]);
    expect(svc().spec.labels['com.docker.stack.image']).toBe('registry.test/team/api:1');
    // changed: the image is the one the stack recorded, so no query and the spec keeps its tag (as docker's).
    expect((await tss('deploy', '--resolve-image', 'changed', '-c', compose, 'pin')).code).toBe(0);
    expect(resolvedImages).toHaveLength(1);
    writeFileSync(compose, 'services:\n  api:\n    image: registry.test/team/api:2\n    command: sleep 3600\n');
    expect((await tss('deploy', '--resolve-image', 'changed', '-c', compose, 'pin')).code).toBe(0);
    expect(resolvedImages).toEqual(['registry.test/team/api:1', 'registry.test/team/api:2']);
    expect(svc().spec.task.container.image).toBe(`registry.test/team/api:2@${TEST_REGISTRY_DIGEST}`);
    expect((await tss('deploy', '--resolve-image', 'never', '-c', compose, 'pin')).code).toBe(0);
    expect(resolvedImages).toHaveLength(2);
    expect(svc().spec.task.container.image).toBe('registry.test/team/api:2');
  }, 30_000);
});

describe('service create | update against the lone manager: digest pinning and --with-registry-auth', () => {
  const svc = (...argv: string[]) => runCommand({ service: serviceCommand }, `unix://${sock}`, ['service', ...argv]);
  const stored = (name: string) => lone.manager.store.view((tx) => tx.services.list()).find((x) => x.spec.name === name)!;

  it('create pins image:tag@digest with the login for its registry; inspect shows neither credentials nor less than the pin', async () => {
    const cfg = join(dir, 'svc-docker-config');
    mkdirSync(cfg, { recursive: true });
    writeFileSync(
      join(cfg, 'config.json'),
      JSON.stringify({ auths: { 'registry.test': { auth: Buffer.from('tss:pw').toString('base64') } } }),
    );
    process.env.DOCKER_CONFIG = cfg;
    resolvedImages.length = 0;
    resolvedAuths.length = 0;
    try {
      const r = await svc('create', '-d', '--with-registry-auth', '--name', 'priv', 'registry.test/team/priv:1', 'sleep', '1d');
      expect([r.code, r.err]).toEqual([0, '']);
    } finally {
      delete process.env.DOCKER_CONFIG;
    }
    expect(resolvedImages).toEqual(['registry.test/team/priv:1']);
    expect(JSON.parse(Buffer.from(resolvedAuths[0]!, 'base64url').toString())).toMatchObject({ username: 'tss', password: 'pw' });
    expect(stored('priv').spec.task.container.image).toBe(`registry.test/team/priv:1@${TEST_REGISTRY_DIGEST}`);
    expect(stored('priv').spec.task.container.pullOptions?.registryAuth).toBe(resolvedAuths[0]);
    const inspect = await svc('inspect', 'priv');
    expect(inspect.out).toContain(`registry.test/team/priv:1@${TEST_REGISTRY_DIGEST}`);
    expect(inspect.out).not.toMatch(/registryAuth/i);
    expect(inspect.out).not.toContain(resolvedAuths[0]!);

    // An update without --image asks nothing and keeps the credentials; --image asks again.
    expect((await svc('update', '-d', '--env-add', 'A=1', 'priv')).code).toBe(0);
    expect(resolvedImages).toHaveLength(1);
    expect(stored('priv').spec.task.container.pullOptions?.registryAuth).toBe(resolvedAuths[0]);
    expect((await svc('update', '-d', '--image', 'registry.test/team/priv:2', 'priv')).code).toBe(0);
    expect(resolvedImages).toEqual(['registry.test/team/priv:1', 'registry.test/team/priv:2']);
    expect(stored('priv').spec.task.container.image).toBe(`registry.test/team/priv:2@${TEST_REGISTRY_DIGEST}`);
    // --no-resolve-image keeps the tag as given.
    expect((await svc('update', '-d', '--no-resolve-image', '--image', 'registry.test/team/priv:3', 'priv')).code).toBe(0);
    expect(resolvedImages).toHaveLength(2);
    expect(stored('priv').spec.task.container.image).toBe('registry.test/team/priv:3');
    // --with-registry-auth with no login: the service's credentials are cleared, even on the same registry
    // (docker replaces stored credentials whenever the flag is given: the user logged out on purpose).
    const empty = join(dir, 'svc-docker-config-empty');
    mkdirSync(empty, { recursive: true });
    writeFileSync(join(empty, 'config.json'), '{}');
    process.env.DOCKER_CONFIG = empty;
    try {
      const r = await svc('update', '-d', '--no-resolve-image', '--with-registry-auth', '--image', 'registry.test/team/priv:4', 'priv');
      expect(r.code).toBe(0);
      expect(r.err).toMatch(/--with-registry-auth: no login for registry.test/);
    } finally {
      delete process.env.DOCKER_CONFIG;
    }
    expect(stored('priv').spec.task.container.pullOptions ?? null).toBeNull();
  });

  it('a registry out of reach is a warning, as the docker CLI words it, and the tag is kept', async () => {
    const r = await svc('create', '-d', '--name', 'unpinned', 'elsewhere.test/app:1');
    expect(r.code).toBe(0);
    expect(r.err).toMatch(
      /^image elsewhere.test\/app:1 could not be accessed on a registry to record\nits digest \(.*\)\. Each node will access elsewhere.test\/app:1 independently,\npossibly leading to different nodes running different\nversions of the image\.\n$/,
    );
    expect(stored('unpinned').spec.task.container.image).toBe('elsewhere.test/app:1');
  });
});
