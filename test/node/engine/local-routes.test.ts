// /distribution, /containers/{id}/json and /volumes on a fake backend: the
// reference taken whole from the path (slashes, tag, digest), credentials
// decoded and passed on, a registry's refusal answered with its status, a
// container inspected by id, name or prefix, the node's volumes listed.
import { afterEach, describe, expect, it } from 'vitest';
import { RouteTable } from '../../../node/engine/index.js';
import { get, json } from '../../../node/engine/route.js';
import { TsswarmError } from '../../../lib/errors.js';
import { Network, NetworkSpec } from '../../../proto/gen/objects.js';
import { baseInfo, call, fakeBackend, serve, type Served } from './fake.js';

let s: Served | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

const msg = (r: { json: unknown }): string => (r.json as { message: string }).message;
const D = `sha256:${'a'.repeat(64)}`;

describe('a {name*} route parameter', () => {
  it('takes one or more segments, slashes kept; literal routes and other lengths are not confused with it', () => {
    const h = async () => json({});
    const t = new RouteTable([get('/distribution/{name*}/json', 'any', h), get('/images/{name}/json', 'any', h)]);
    expect(t.match('GET', '/distribution/busybox/json')?.params).toEqual({ name: 'busybox' });
    expect(t.match('GET', `/distribution/10.0.0.1:5000/a/b:v1@${D}/json`)?.params).toEqual({ name: `10.0.0.1:5000/a/b:v1@${D}` });
    expect(t.match('GET', '/distribution/a%2Fb/json')?.params).toEqual({ name: 'a/b' });
    expect(t.match('GET', '/distribution/json')).toBeUndefined();
    expect(t.match('GET', '/distribution/a/../b/json')).toBeUndefined();
    expect(t.match('GET', '/distribution/a//b/json')).toBeUndefined();
    expect(t.match('GET', '/distribution/a/b')).toBeUndefined();
  });
});

describe('/distribution/{name}/json', () => {
  it('resolves the whole reference, versioned or not, with the decoded credentials', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    const auth = Buffer.from(JSON.stringify({ username: 'alice', password: 'pw' })).toString('base64url');
    const r = await call(s.socket, 'GET', `/v1.41/distribution/reg.lan:5000/team/app:v1@${D}/json`, undefined, { 'X-Registry-Auth': auth });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ Descriptor: { mediaType: 'm', digest: 'd', size: 1 }, Platforms: [] });
    expect(f.calls.at(-1)).toEqual({
      method: 'distribution',
      req: { ref: `reg.lan:5000/team/app:v1@${D}`, auth: { username: 'alice', password: 'pw' } },
    });
    expect((await call(s.socket, 'GET', '/distribution/busybox/json', undefined, { 'X-Registry-Auth': 'e30=' })).status).toBe(200);
    expect(f.calls.at(-1)).toEqual({ method: 'distribution', req: { ref: 'busybox', auth: undefined } });
  });

  it("refuses a bad reference or an image id with dockerd's words, and keeps a registry's 401/404", async () => {
    const f = fakeBackend();
    f.backend.distribution = async (ref) => {
      if (ref.includes('private'))
        throw Object.assign(new TsswarmError('UNAUTHENTICATED', 'resolving: 401'), {
          status: 401,
          registryText: 'unauthorized: authentication required',
        });
      throw Object.assign(new TsswarmError('NOT_FOUND', 'resolving: 404'), {
        status: 404,
        registryText: 'manifest unknown: manifest unknown',
      });
    };
    s = await serve(f.backend);
    const bad = await call(s.socket, 'GET', '/v1.41/distribution/bad:/json');
    expect([bad.status, msg(bad)]).toEqual([400, 'invalid reference format']);
    const upper = await call(s.socket, 'GET', '/v1.41/distribution/Busybox:1/json');
    expect([upper.status, msg(upper)]).toEqual([400, 'invalid reference format: repository name (library/Busybox) must be lowercase']);
    const id = await call(s.socket, 'GET', `/v1.41/distribution/${'a'.repeat(64)}/json`);
    expect([id.status, msg(id)]).toEqual([500, 'no manifest found for full image ID']);
    const denied = await call(s.socket, 'GET', '/v1.41/distribution/reg/private:1/json');
    expect([denied.status, msg(denied)]).toEqual([401, 'unauthorized: authentication required']);
    const missing = await call(s.socket, 'GET', '/v1.41/distribution/reg/app:9/json');
    expect([missing.status, msg(missing)]).toEqual([404, 'manifest unknown: manifest unknown']);
  });
});

describe('/containers/{id}/json and /volumes', () => {
  const c = {
    id: 'tss-c1',
    status: 'running' as const,
    pid: 9,
    startedAt: 1_000,
    labels: { 'tsswarm.task.id': 't1', 'tsswarm.service.name': 'web', 'tsswarm.task.slot': '1' },
    image: 'busybox',
  };

  it('inspects a task container by name, id or prefix; an unknown one is 404', async () => {
    const f = fakeBackend();
    f.backend.containers = async () => [c];
    f.backend.containerDetail = () => ({ image: { id: D, env: ['PATH=/bin'], entrypoint: [], cmd: ['sh'], workdir: '', user: '' } });
    s = await serve(f.backend);
    for (const ref of ['web.1.t1', 'tss-c1', 'tss-c']) {
      const r = await call(s.socket, 'GET', `/v1.41/containers/${ref}/json`);
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({
        Id: 'tss-c1',
        Name: '/web.1.t1',
        Image: D,
        State: { Running: true, Pid: 9 },
        Config: { Cmd: ['sh'] },
      });
    }
    const nf = await call(s.socket, 'GET', '/v1.41/containers/nope/json');
    expect([nf.status, msg(nf)]).toEqual([404, 'No such container: nope']);
  });

  it("a worker lists the networks it holds for its tasks, with the filters; a manager the swarm's", async () => {
    const f = fakeBackend(baseInfo({ isManager: false, role: 'worker' }));
    const net = Network.create({
      meta: { id: 'net1aaaaaaaaaaaaaaaaaaaaaa', version: 1, createdAt: 0, updatedAt: 0 },
      spec: NetworkSpec.create({ name: 'backend', driver: 'overlay' }),
    });
    f.backend.localNetworks = () => [net];
    s = await serve(f.backend);
    const all = await call(s.socket, 'GET', '/v1.41/networks');
    expect(all.status).toBe(200);
    expect(all.json).toEqual([expect.objectContaining({ Name: 'backend', Id: 'net1aaaaaaaaaaaaaaaaaaaaaa', Scope: 'swarm' })]);
    const q = (o: object) => `/v1.41/networks?filters=${encodeURIComponent(JSON.stringify(o))}`;
    expect((await call(s.socket, 'GET', q({ name: { front: true } }))).json).toEqual([]);
    expect((await call(s.socket, 'GET', q({ dangling: { true: true } }))).json).toEqual([]);
    expect(f.calls.filter((x) => x.method === 'listNetworks')).toEqual([]);
  });

  it('/info counts the task containers: all, running, stopped', async () => {
    const f = fakeBackend();
    f.backend.containers = async () => [
      c,
      { ...c, id: 'tss-c2', status: 'stopped' as const },
      { ...c, id: 'tss-c3', status: 'created' as const },
    ];
    s = await serve(f.backend);
    expect((await call(s.socket, 'GET', '/v1.41/info')).json).toMatchObject({
      Containers: 3,
      ContainersRunning: 1,
      ContainersPaused: 0,
      ContainersStopped: 1,
    });
  });

  it('lists the volumes, filtered by name and driver; other filters refused', async () => {
    const f = fakeBackend();
    f.backend.volumes = () => [
      { name: 'data', mountpoint: '/v/data', createdAt: 0 },
      { name: 'logs', mountpoint: '/v/logs', createdAt: 0 },
    ];
    s = await serve(f.backend);
    const all = (await call(s.socket, 'GET', '/v1.41/volumes')).json as { Volumes: { Name: string }[]; Warnings: string[] };
    expect(all.Volumes.map((v) => v.Name)).toEqual(['data', 'logs']);
    expect(all.Warnings).toEqual([]);
    const q = (o: object) => `/v1.41/volumes?filters=${encodeURIComponent(JSON.stringify(o))}`;
    expect(((await call(s.socket, 'GET', q({ name: { dat: true } }))).json as typeof all).Volumes.map((v) => v.Name)).toEqual(['data']);
    expect(((await call(s.socket, 'GET', q({ driver: { nfs: true } }))).json as typeof all).Volumes).toEqual([]);
    expect((await call(s.socket, 'GET', q({ dangling: { true: true } }))).status).toBe(400);
  });
});
