// `GET /distribution/{name}/json`: the digest and platforms of an image on its
// registry, which the docker CLI asks for before `service create|update` (and
// `stack deploy`) to pin `image:tag@sha256:…` in the spec. Any node answers, as
// dockerd does, resolving through the agent's registry client with the
// caller's X-Registry-Auth; a registry's refusal keeps its status and words.
import { TsswarmError } from '../../lib/errors.js';
import { decodeRegistryAuth, distributionRef } from '../../spec/docker/distribution.js';
import { DockerError } from './errors.js';
import { get, json, post, type Route } from './route.js';

/** A registry's answer (agent/runtime/registry.ts RegistryError) as dockerd passes it on: its status, its error text. */
function registryFailure(e: unknown): unknown {
  const x = e as { status?: unknown; registryText?: unknown };
  if (e instanceof TsswarmError && typeof x.status === 'number' && [401, 403, 404].includes(x.status))
    return new DockerError(x.status, typeof x.registryText === 'string' && x.registryText ? x.registryText : e.message);
  return e;
}

/** Docker Hub's names for itself in an AuthConfig's serveraddress; its registry is registry-1.docker.io. */
const HUB = /^(docker\.io|index\.docker\.io|registry-1\.docker\.io|registry\.hub\.docker\.com)$/;

/** The registry (HOST[:PORT]) an AuthConfig's serveraddress names, as dockerd reads it: no scheme, no path; empty is Docker Hub. */
export function loginRegistry(serveraddress: unknown): string {
  const host = (typeof serveraddress === 'string' ? serveraddress : '')
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .split('/')[0]!
    .toLowerCase();
  if (host.length > 255 || (host && !/^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:]+\](:\d{1,5})?$/.test(host)))
    throw new DockerError(400, 'serveraddress is not a registry: give HOST[:PORT]');
  return !host || HUB.test(host) ? 'registry-1.docker.io' : host;
}

export const distributionRoutes: Route[] = [
  // `docker login`: the daemon checks the credentials against the registry (dockerd's POST /auth); the CLI stores them.
  post('/auth', 'any', async (r) => {
    const body = await r.json();
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new DockerError(400, 'the body must be an AuthConfig');
    const b = body as Record<string, unknown>;
    const auth = decodeRegistryAuth(Buffer.from(JSON.stringify(b)).toString('base64url')) ?? {};
    const registry = loginRegistry(b.serveraddress);
    const signal = AbortSignal.any([r.signal, AbortSignal.timeout(30_000)]);
    try {
      await r.backend.registryLogin(registry, auth, signal);
    } catch (e) {
      const x = e as { status?: unknown };
      if (e instanceof TsswarmError && (x.status === 401 || x.status === 403)) throw new DockerError(401, e.message);
      throw e;
    }
    return json({ Status: 'Login Succeeded', IdentityToken: '' });
  }),
  get('/distribution/{name*}/json', 'any', async (r) => {
    const ref = distributionRef(r.params.name!);
    const auth = decodeRegistryAuth(r.headers['x-registry-auth']);
    const signal = AbortSignal.any([r.signal, AbortSignal.timeout(30_000)]);
    try {
      return json(await r.backend.distribution(ref, auth, signal));
    } catch (e) {
      throw registryFailure(e);
    }
  }),
];
