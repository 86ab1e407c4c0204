// This node's `/containers/json` and `/images/json` (`docker ps`,
// `docker image ls`, Portainer's snapshot): served by any node, manager or
// worker, from its own runtime.
import { parseDockerFilters } from '../../spec/docker/filters.js';
import { containerFilter, containerToDocker, imageFilter, imageToDocker } from '../../spec/docker/local.js';
import { get, json, queryBool, type Route } from './route.js';

export const localRoutes: Route[] = [
  get('/containers/json', 'any', async (r) => {
    const keep = containerFilter(parseDockerFilters(r.query.get('filters')));
    const all = queryBool(r.query, 'all');
    const cs = (await r.backend.containers()).filter((c) => (all || c.status === 'running') && keep(c));
    const now = Date.now();
    return json(cs.sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0)).map((c) => containerToDocker(c, now)));
  }),

  get('/images/json', 'any', async (r) => {
    const keep = imageFilter(parseDockerFilters(r.query.get('filters')));
    return json(r.backend.images().filter(keep).map(imageToDocker));
  }),
];
