// `/nodes`: list (with dockerd's filters), inspect, update (a whole NodeSpec,
// versioned) and remove, on the Control API's node calls.
import { TsswarmError } from '../../lib/errors.js';
import { filterNodes, nodeUpdateFromDocker, parseNodeFilters, toDockerNode } from '../../spec/docker/node.js';
import { del, empty, get, json, post, queryBool, queryVersion, type Route } from './route.js';

/** How often a node update is tried while the leader hands over before its own demotion. */
const HANDOVER_TRIES = 20;

export const nodeRoutes: Route[] = [
  get('/nodes', 'manager', async (r) => {
    const f = parseNodeFilters(r.query.get('filters'));
    const { nodes } = await r.backend.control().listNodes({});
    const tls = r.backend.tlsInfo();
    const version = r.backend.host().version;
    return json(filterNodes(nodes, f).map((n) => toDockerNode(n, tls, version)));
  }),

  get('/nodes/{id}', 'manager', async (r) => {
    const { node } = await r.backend.control().getNode({ ref: r.params.id! });
    return json(toDockerNode(node, r.backend.tlsInfo(), r.backend.host().version));
  }),

  post('/nodes/{id}/update', 'manager', async (r) => {
    const version = queryVersion(r, 'node');
    const body = await r.json();
    const c = r.backend.control();
    const { node } = await c.getNode({ ref: r.params.id! });
    const req = nodeUpdateFromDocker(node, body, version);
    for (let attempt = 1; ; attempt++) {
      try {
        await c.updateNode(req);
        return empty();
      } catch (e) {
        // Demoting the leader: it hands leadership over first and asks to be called again (on the new leader).
        if (!(e instanceof TsswarmError && e.code === 'NOT_LEADER') || attempt >= HANDOVER_TRIES || r.signal.aborted) throw e;
        await new Promise((res) => setTimeout(res, 250));
      }
    }
  }),

  del('/nodes/{id}', 'manager', async (r) => {
    await r.backend.control().removeNode({ ref: r.params.id!, force: queryBool(r.query, 'force') });
    return empty();
  }),
];
