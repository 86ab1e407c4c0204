// `GET /distribution/{name}/json`: the digest and platforms of an image on its
// registry, which the docker CLI asks for before `service create|update` (and
// `stack deploy`) to pin `image:tag@sha256:…` in the spec. Any node answers, as
// dockerd does, resolving through the agent's registry client with the
// caller's X-Registry-Auth; a registry's refusal keeps its status and words.
import { TsswarmError } from '../../lib/errors.js';
import { decodeRegistryAuth, distributionRef, serverRegistry } from '../../spec/docker/distribution.js';
import { DockerError } from './errors.js';
import { get, json, post, type Route } from './route.js';

/** A registry's answer (agent/runtime/registry.ts RegistryError) as dockerd passes it on: its status, its error text. */
function registryFailure(e: unknown): unknown {
  const x = e as { status?: unknown; registryText?: unknown };
  if (e instanceof TsswarmError && typeof x.status === 'number' && [401, 403, 404].includes(x.status))
    return new DockerError(x.status, typeof x.registryText === 'string' && x.registryText ? x.registryText : e.message);
  return e;
}

/** The registry (HOST[:PORT]) an AuthConfig's serveraddress names, as dockerd reads it: no scheme, no path; empty is Docker Hub. */
export function loginRegistry(serveraddress: unknown): string {
  try {
    return serverRegistry(serveraddress);
  } catch (e) {
    throw new DockerError(400, (e as Error).message);
  }
}

export const distributionRoutes: Route[] = [
  // `docker login`: the daemon checks the credentials against the registry (dockerd's POST /auth); the CLI stores them.
  post('/auth', 'any', async (r) => {
    const body = await r.json();
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new DockerError(400, 'the body must be an AuthConfig');
    const b = body as Record<string, unknown>;
    const { serverAddress: _, ...auth } = decodeRegistryAuth(Buffer.from(JSON.stringify(b)).toString('base64url')) ?? {};
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
