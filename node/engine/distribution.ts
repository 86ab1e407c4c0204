// `GET /distribution/{name}/json`: the digest and platforms of an image on its
// registry, which the docker CLI asks for before `service create|update` (and
// `stack deploy`) to pin `image:tag@sha256:…` in the spec. Any node answers, as
// dockerd does, resolving through the agent's registry client with the
// caller's X-Registry-Auth; a registry's refusal keeps its status and words.
import { TsswarmError } from '../../lib/errors.js';
import { decodeRegistryAuth, distributionRef } from '../../spec/docker/distribution.js';
import { DockerError } from './errors.js';
import { get, json, type Route } from './route.js';

/** A registry's answer (agent/runtime/registry.ts RegistryError) as dockerd passes it on: its status, its error text. */
function registryFailure(e: unknown): unknown {
  const x = e as { status?: unknown; registryText?: unknown };
  if (e instanceof TsswarmError && typeof x.status === 'number' && [401, 403, 404].includes(x.status))
    return new DockerError(x.status, typeof x.registryText === 'string' && x.registryText ? x.registryText : e.message);
  return e;
}

export const distributionRoutes: Route[] = [
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
