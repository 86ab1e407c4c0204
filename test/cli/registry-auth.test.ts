// The docker CLI's config file as tsswarm login/logout and --with-registry-auth
// use it, the X-Registry-Auth the Engine API takes, and the task rejection
// that names the missing login. Files live in a tss-named temp dir.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DOCKER_HUB_SERVER,
  dockerConfigPath,
  encodedAuthFor,
  imageRegistry,
  readDockerConfig,
  serverKey,
  withLogin,
  withoutLogin,
  writeDockerConfig,
} from '../../cli/registry-auth.js';
import { registryAuthOf } from '../../node/engine/services.js';
import { EMPTY_REGISTRY_AUTH } from '../../spec/docker/distribution.js';
import { pullFailure } from '../../agent/worker/task.js';
import { RegistryError } from '../../agent/runtime/registry.js';
import { loginCommand, logoutCommand } from '../../cli/login.js';
import { runCommand } from './run-command.js';

const dir = mkdtempSync(join(tmpdir(), 'tss-dockercfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const decode = (s: string | undefined): unknown => JSON.parse(Buffer.from(s!, 'base64url').toString());

describe("the docker CLI's config file", () => {
  it('is $DOCKER_CONFIG/config.json, else ~/.docker/config.json', () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: '/x/y' })).toBe('/x/y/config.json');
    expect(dockerConfigPath({})).toMatch(/\/\.docker\/config\.json$/);
  });

  it('server keys as docker stores them: Docker Hub by its v1 URL, others by HOST[:PORT]', () => {
    expect(serverKey(undefined)).toBe(DOCKER_HUB_SERVER);
    expect(serverKey('docker.io')).toBe(DOCKER_HUB_SERVER);
    expect(serverKey('https://index.docker.io/v1/')).toBe(DOCKER_HUB_SERVER);
    expect(serverKey('https://Reg.Example:5000/v2/')).toBe('reg.example:5000');
    expect(imageRegistry('busybox')).toBe('registry-1.docker.io');
    expect(imageRegistry('docker.io/user/app:1')).toBe('registry-1.docker.io');
    expect(imageRegistry('10.0.0.1:5000/tss/app:v1@sha256:1')).toBe('10.0.0.1:5000');
    expect(imageRegistry('localhost/app')).toBe('localhost');
  });

  it('a login is written as base64 user:password, mode 0600, every other key kept; logout removes it', () => {
    const path = join(dir, 'a', 'config.json');
    mkdirSync(join(dir, 'a'), { recursive: true });
    writeFileSync(path, JSON.stringify({ auths: { 'other:1': { auth: 'eDp5' } }, psFormat: '{{.ID}}', proxies: { default: {} } }));
    writeDockerConfig(path, withLogin(readDockerConfig(path), 'reg.example:5000', 'tss', 'p:w'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const doc = JSON.parse(readFileSync(path, 'utf8'));
    expect(doc).toEqual({
      auths: { 'other:1': { auth: 'eDp5' }, 'reg.example:5000': { auth: Buffer.from('tss:p:w').toString('base64') } },
      psFormat: '{{.ID}}',
      proxies: { default: {} },
    });
    expect(decode(encodedAuthFor(doc, 'reg.example:5000/app:v1'))).toEqual({
      username: 'tss',
      password: 'p:w',
      serveraddress: 'reg.example:5000',
    });
    expect(encodedAuthFor(doc, 'busybox')).toBeUndefined();
    const out = withoutLogin(doc, 'reg.example:5000')!;
    expect(out.auths).toEqual({ 'other:1': { auth: 'eDp5' } });
    expect(withoutLogin(out, 'reg.example:5000')).toBeUndefined();
  });

  it('an entry stored under a URL is found by its hostname, as the docker CLI looks up', () => {
    const c = { auths: { 'https://reg.example:5000/v1/': { auth: Buffer.from('u:p').toString('base64') } } };
    expect(decode(encodedAuthFor(c, 'reg.example:5000/a/b'))).toMatchObject({
      username: 'u',
      serveraddress: 'https://reg.example:5000/v1/',
    });
    const hub = { auths: { 'docker.io': { auth: Buffer.from('h:p').toString('base64') } } };
    expect(decode(encodedAuthFor(hub, 'library/busybox:1'))).toMatchObject({ username: 'h' });
  });

  it('credential helpers are refused, naming the setting; a broken file names itself', () => {
    expect(() => withLogin({ credsStore: 'desktop' }, 'reg:1', 'u', 'p', '/c.json')).toThrow(
      /\/c.json sets credsStore to "desktop", and tsswarm does not run credential helpers/,
    );
    expect(() => encodedAuthFor({ credHelpers: { 'reg:1': 'ecr-login' }, auths: { 'reg:1': {} } }, 'reg:1/app', '/c.json')).toThrow(
      /credHelpers\["reg:1"\] to "ecr-login"/,
    );
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{nope');
    expect(() => readDockerConfig(bad)).toThrow(`${bad} is not valid JSON`);
    expect(readDockerConfig(join(dir, 'absent.json'))).toEqual({});
  });
});

describe('tsswarm login and logout', () => {
  it('refuse without a username, and both password flags at once; logout of nothing says so', async () => {
    process.env.DOCKER_CONFIG = join(dir, 'cli');
    try {
      const cmds = { login: loginCommand, logout: logoutCommand };
      const sock = `unix://${join(dir, 'none.sock')}`;
      expect((await runCommand(cmds, sock, ['login', 'reg:5000'])).err).toMatch(
        /give the username: tsswarm login -u USER --password-stdin/,
      );
      expect((await runCommand(cmds, sock, ['login', '-u', 'x', '-p', 'y', '--password-stdin'])).err).toMatch(
        /--password and --password-stdin are mutually exclusive/,
      );
      expect((await runCommand(cmds, sock, ['logout', 'reg:5000'])).out).toBe('Not logged in to reg:5000\n');
    } finally {
      delete process.env.DOCKER_CONFIG;
    }
  });
});

describe('X-Registry-Auth on /services/create and update', () => {
  const h = (v: string) => ({ headers: { 'x-registry-auth': v } });
  it('is kept as sent when it carries credentials; {} is an explicit none, no header nothing; junk and too long are 400s', () => {
    const good = Buffer.from('{"username":"u","password":"p"}').toString('base64url');
    expect(registryAuthOf(h(good))).toBe(good);
    expect(registryAuthOf(h('e30='))).toBe(EMPTY_REGISTRY_AUTH);
    expect(registryAuthOf({ headers: {} })).toBeUndefined();
    expect(() => registryAuthOf(h('!!!'))).toThrow(/X-Registry-Auth is not base64url-encoded JSON/);
    expect(() => registryAuthOf(h(Buffer.from('[1]').toString('base64url')))).toThrow(/of an AuthConfig/);
    const huge = Buffer.from(JSON.stringify({ username: 'u', password: 'x'.repeat(13_000) })).toString('base64url');
    expect(() => registryAuthOf(h(huge))).toThrow(/at most 16384 are read/);
  });
});

describe('a task whose image the registry would not give', () => {
  it('names the login and --with-registry-auth when credentials were missing or refused', () => {
    const e = new RegistryError(
      401,
      'pulling r:1/a:v1: https://r:1/v2/a/manifests/v1 answered 401 Unauthorized (the registry needs credentials)',
    );
    expect(pullFailure('r:1/a:v1', 'node0123456789abc', e, false)).toBe(
      'image r:1/a:v1 is not on node node01234567 and could not be pulled (pulling r:1/a:v1: https://r:1/v2/a/manifests/v1 answered 401 Unauthorized (the registry needs credentials)): the registry needs authentication; log in (`tsswarm login REGISTRY`) and create or update the service with --with-registry-auth',
    );
    expect(pullFailure('r:1/a:v1', 'n', e, true)).toMatch(/refused the credentials the service carries/);
    expect(pullFailure('r:1/a:v1', 'n', new Error('ECONNREFUSED'), false)).toMatch(
      /load it on every node with `tsswarm image load -i FILE`$/,
    );
  });
});
