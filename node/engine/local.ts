// This node's `/containers/json`, `/containers/{id}/json`, `/images/json` and
// `/volumes` (`docker ps`, `docker container inspect`, `docker image ls`,
// `docker volume ls`, Portainer's snapshot): served by any node, manager or
// worker, from its own runtime.
import { checkFilterKeys, filterValues, parseDockerFilters } from '../../spec/docker/filters.js';
import {
  containerFilter,
  containerInspectToDocker,
  containerToDocker,
  findContainer,
  imageFilter,
  imageToDocker,
  volumesToDocker,
} from '../../spec/docker/local.js';
import { get, json, queryBool, type Route } from './route.js';

export const localRoutes: Route[] = [
  get('/containers/json', 'any', async (r) => {
    const keep = containerFilter(parseDockerFilters(r.query.get('filters')));
    const all = queryBool(r.query, 'all');
    const cs = (await r.backend.containers()).filter((c) => (all || c.status === 'running') && keep(c));
    const now = Date.now();
    return json(cs.sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0)).map((c) => containerToDocker(c, now)));
  }),

  get('/containers/{id}/json', 'any', async (r) => {
    const c = findContainer(await r.backend.containers(), r.params.id!);
    return json(containerInspectToDocker(c, r.backend.containerDetail(c)));
  }),

  get('/images/json', 'any', async (r) => {
    const keep = imageFilter(parseDockerFilters(r.query.get('filters')));
    return json(r.backend.images().filter(keep).map(imageToDocker));
  }),

  get('/volumes', 'any', async (r) => {
    const f = parseDockerFilters(r.query.get('filters'));
    // dockerd's keys tsswarm can answer: every volume is the local driver's, none is dangling-tracked.
    checkFilterKeys(f, ['name', 'driver']);
    const names = filterValues(f, 'name');
    const drivers = filterValues(f, 'driver');
    const vs = r.backend
      .volumes()
      .filter((v) => (names.length === 0 || names.some((n) => v.name.includes(n))) && (drivers.length === 0 || drivers.includes('local')));
    return json(volumesToDocker(vs));
  }),
];
