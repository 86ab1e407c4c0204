// `/networks`, `/secrets` and `/configs`: list (dockerd's filters), inspect,
// create and remove, on the Control API's calls; Docker's JSON converted by
// spec/docker/objects.ts. A secret's value is accepted and never answered.
import { TsswarmError, UsageError } from '../../lib/errors.js';
import {
  configSpecFromDocker,
  fileObjectFilter,
  fileObjectToDocker,
  networkFilter,
  networkSpecFromDocker,
  networkToDocker,
  secretSpecFromDocker,
} from '../../spec/docker/objects.js';
import { parseDockerFilters } from '../../spec/docker/filters.js';
import { DockerError } from './errors.js';
import { del, empty, get, json, post, queryVersion, type Route } from './route.js';

/** How long DELETE /networks waits for the tasks of removed services to let go of their addresses (a stop takes up to the grace period, 10 s by default). */
const NETWORK_DRAIN_MS = 45_000;

/** Body conversion errors are 400s naming the Docker field. */
function from<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof UsageError) throw new DockerError(400, e.message);
    throw e;
  }
}

/** Our "not found" for a network in dockerd's words (the CLI matches on the 404 status, and prints the message). */
async function orDockerNotFound<T>(kind: string, ref: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof TsswarmError && e.code === 'NOT_FOUND') throw new DockerError(404, `${kind} ${ref} not found`);
    throw e;
  }
}

export const objectRoutes: Route[] = [
  get('/networks', 'any', async (r) => {
    const f = parseDockerFilters(r.query.get('filters'));
    const i = r.backend.localInfo();
    // A node that is not an active manager lists the networks it holds for its tasks, as a dockerd
    // worker lists its own (Portainer's snapshot asks every node); each is in use by a task here.
    if (i.state !== 'active' || !i.isManager)
      return json(
        r.backend
          .localNetworks()
          .filter(networkFilter(f))
          .map((n) => networkToDocker(n)),
      );
    const c = r.backend.control();
    const { networks } = await c.listNetworks({});
    let inUse: ((id: string) => boolean) | undefined;
    if (f.has('dangling')) {
      const used = new Set<string>();
      for (const n of networks) {
        const info = await c.getNetwork({ ref: n.meta.id });
        if (info.services.length || Number(info.tasks)) used.add(n.meta.id);
      }
      inUse = (id) => used.has(id);
    }
    const keep = networkFilter(f, inUse ? (n) => inUse(n.meta.id) : undefined);
    return json(networks.filter(keep).map((n) => networkToDocker(n)));
  }),

  get('/networks/{id}', 'manager', async (r) => {
    const scope = r.query.get('scope') ?? '';
    // Only swarm networks here: a local-scoped lookup finds nothing, as on a dockerd without local networks of that name.
    if (scope !== '' && scope !== 'swarm') throw new DockerError(404, `network ${r.params.id} not found`);
    const { network } = await orDockerNotFound('network', r.params.id!, () => r.backend.control().getNetwork({ ref: r.params.id! }));
    return json(networkToDocker(network));
  }),

  post('/networks/create', 'manager', async (r) => {
    const body = await r.json();
    const s = from(() => networkSpecFromDocker(body));
    const { network } = await r.backend.control().createNetwork({ spec: s });
    return json({ Id: network.meta.id, Warning: '' }, 201);
  }),

  del('/networks/{id}', 'manager', async (r) => {
    const c = r.backend.control();
    const ref = r.params.id!;
    // Tasks of removed services still hold addresses while their containers stop: wait for them (as
    // `docker stack rm` expects the network to go right after its services), never for a service.
    const end = Date.now() + NETWORK_DRAIN_MS;
    for (;;) {
      const info = await orDockerNotFound('network', ref, () => c.getNetwork({ ref }));
      if (info.services.length > 0 || Number(info.tasks) === 0 || Date.now() > end || r.signal.aborted) break;
      await new Promise((res) => setTimeout(res, 250));
    }
    await orDockerNotFound('network', ref, () => c.removeNetwork({ ref }));
    return empty(204);
  }),

  get('/secrets', 'manager', async (r) => {
    const keep = fileObjectFilter(parseDockerFilters(r.query.get('filters')));
    const { secrets } = await r.backend.control().listSecrets({});
    return json(secrets.filter(keep).map((s) => fileObjectToDocker(s, false)));
  }),

  get('/secrets/{id}', 'manager', async (r) => {
    const { secret } = await r.backend.control().getSecret({ ref: r.params.id! });
    return json(fileObjectToDocker(secret, false));
  }),

  post('/secrets/create', 'manager', async (r) => {
    const body = await r.json();
    const { secret } = await r.backend.control().createSecret({ spec: from(() => secretSpecFromDocker(body)) });
    return json({ ID: secret.meta.id }, 201);
  }),

  // Labels only, as Swarm (docker stack deploy sends the same value again on a redeploy).
  post('/secrets/{id}/update', 'manager', async (r) => {
    const version = queryVersion(r, 'secret');
    const body = await r.json();
    await r.backend.control().updateSecret({ ref: r.params.id!, version, spec: from(() => secretSpecFromDocker(body)) });
    return empty();
  }),

  del('/secrets/{id}', 'manager', async (r) => {
    await r.backend.control().removeSecret({ ref: r.params.id! });
    return empty(204);
  }),

  get('/configs', 'manager', async (r) => {
    const keep = fileObjectFilter(parseDockerFilters(r.query.get('filters')));
    const { configs } = await r.backend.control().listConfigs({});
    // The list carries no data (GetConfig has it), as the Control API answers it.
    return json(configs.filter(keep).map((x) => fileObjectToDocker(x, false)));
  }),

  get('/configs/{id}', 'manager', async (r) => {
    const { config } = await r.backend.control().getConfig({ ref: r.params.id! });
    return json(fileObjectToDocker(config, true));
  }),

  post('/configs/create', 'manager', async (r) => {
    const body = await r.json();
    const { config } = await r.backend.control().createConfig({ spec: from(() => configSpecFromDocker(body)) });
    return json({ ID: config.meta.id }, 201);
  }),

  post('/configs/{id}/update', 'manager', async (r) => {
    const version = queryVersion(r, 'config');
    const body = await r.json();
    await r.backend.control().updateConfig({ ref: r.params.id!, version, spec: from(() => configSpecFromDocker(body)) });
    return empty();
  }),

  del('/configs/{id}', 'manager', async (r) => {
    await r.backend.control().removeConfig({ ref: r.params.id! });
    return empty(204);
  }),
];
