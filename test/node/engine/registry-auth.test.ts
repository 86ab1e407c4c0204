// X-Registry-Auth on POST /services/create and /services/{id}/update: the
// docker CLI's --with-registry-auth lands in the spec's pullOptions for the
// agents; without it an update sends none (the Control API keeps the
// service's own); a header that is not an AuthConfig is a 400.
import { afterEach, describe, expect, it } from 'vitest';
import type { ControlHandlers } from '../../../proto/gen/control.js';
import type { ServiceSpec } from '../../../proto/gen/objects.js';
import { EMPTY_REGISTRY_AUTH } from '../../../spec/docker/distribution.js';
import { call, fakeBackend, serve, type Served } from './fake.js';

const AUTH = Buffer.from(JSON.stringify({ username: 'tss', password: 'pw', serveraddress: 'reg:5000' })).toString('base64url');
const BODY = JSON.stringify({ Name: 'web', TaskTemplate: { ContainerSpec: { Image: 'reg:5000/app:v1' } } });

describe('X-Registry-Auth on service create and update', () => {
  let s: Served | undefined;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });

  async function served(): Promise<{ specs: { method: string; spec: ServiceSpec | undefined }[] }> {
    const f = fakeBackend();
    const specs: { method: string; spec: ServiceSpec | undefined }[] = [];
    const control = f.backend.control() as unknown as Record<string, unknown>;
    const svc = { meta: { id: 's1', version: 3 }, spec: { name: 'web' } };
    Object.assign(control, {
      listNetworks: async () => ({ networks: [], stale: false }),
      createService: async (req: { spec: ServiceSpec }) => {
        specs.push({ method: 'create', spec: req.spec });
        return { service: svc, warnings: [], stale: false };
      },
      updateService: async (req: { spec?: ServiceSpec }) => {
        specs.push({ method: 'update', spec: req.spec });
        return { service: svc, warnings: [], stale: false };
      },
    } satisfies Partial<Record<keyof ControlHandlers, unknown>>);
    s = await serve(f.backend);
    return { specs };
  }

  it('puts the credentials in pullOptions on create and update; no header is none put; `{}` is an explicit none', async () => {
    const { specs } = await served();
    expect((await call(s!.socket, 'POST', '/v1.41/services/create', BODY, { 'X-Registry-Auth': AUTH })).status).toBe(201);
    expect(specs[0]!.spec!.task.container.pullOptions).toEqual({ registryAuth: AUTH });
    expect((await call(s!.socket, 'POST', '/v1.41/services/s1/update?version=3', BODY, { 'X-Registry-Auth': AUTH })).status).toBe(200);
    expect(specs[1]!.spec!.task.container.pullOptions).toEqual({ registryAuth: AUTH });
    expect((await call(s!.socket, 'POST', '/v1.41/services/s1/update?version=3&registryAuthFrom=spec', BODY)).status).toBe(200);
    expect(specs[2]!.spec!.task.container.pullOptions ?? null).toBeNull();
    // The docker CLI's `{}` without a login is no credentials, sent as such: on an update it replaces
    // what the service holds (as dockerd), rather than leave the old registry's login in place.
    expect((await call(s!.socket, 'POST', '/v1.41/services/create', BODY, { 'X-Registry-Auth': 'e30=' })).status).toBe(201);
    expect(specs[3]!.spec!.task.container.pullOptions).toEqual({ registryAuth: EMPTY_REGISTRY_AUTH });
    expect((await call(s!.socket, 'POST', '/v1.41/services/s1/update?version=3', BODY, { 'X-Registry-Auth': 'e30=' })).status).toBe(200);
    expect(specs[4]!.spec!.task.container.pullOptions).toEqual({ registryAuth: EMPTY_REGISTRY_AUTH });
  });

  it('a header that is not base64url JSON of an AuthConfig is a 400, and nothing is created', async () => {
    const { specs } = await served();
    const r = await call(s!.socket, 'POST', '/v1.41/services/create', BODY, { 'X-Registry-Auth': '%%%' });
    expect(r.status).toBe(400);
    expect((r.json as { message: string }).message).toMatch(/X-Registry-Auth is not base64url-encoded JSON/);
    expect(specs).toEqual([]);
  });
});

describe('POST /auth (docker login)', () => {
  let s: Served | undefined;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });

  it("checks the credentials against the serveraddress's registry (Docker Hub when none), 401 when refused", async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    const ok = await call(
      s.socket,
      'POST',
      '/v1.41/auth',
      JSON.stringify({ username: 'tss', password: 'good', serveraddress: 'https://Reg:5000/v2/' }),
    );
    expect([ok.status, ok.json]).toEqual([200, { Status: 'Login Succeeded', IdentityToken: '' }]);
    expect(f.calls.at(-1)).toEqual({ method: 'registryLogin', req: { registry: 'reg:5000', auth: { username: 'tss', password: 'good' } } });
    const hub = await call(s.socket, 'POST', '/v1.41/auth', JSON.stringify({ username: 'tss', password: 'bad' }));
    expect(hub.status).toBe(401);
    expect((hub.json as { message: string }).message).toMatch(/refused/);
    expect((f.calls.at(-1)!.req as { registry: string }).registry).toBe('registry-1.docker.io');
    expect((await call(s.socket, 'POST', '/v1.41/auth', JSON.stringify({ serveraddress: 'a b' }))).status).toBe(400);
  });
});
