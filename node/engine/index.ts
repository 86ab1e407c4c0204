// The Docker Engine API a tsswarm daemon serves on its docker socket
// (docs/engine-api.md). A resource is one module exporting its Route[] and
// one line below; the server (./server.ts) does versions, bodies, errors.
import type { Route } from './route.js';
import { eventRoutes } from './events.js';
import { distributionRoutes } from './distribution.js';
import { nodeRoutes } from './nodes.js';
import { localRoutes } from './local.js';
import { objectRoutes } from './objects.js';
import { serviceRoutes } from './services.js';
import { swarmRoutes } from './swarm.js';
import { systemRoutes } from './system.js';

export const ENGINE_ROUTES: readonly Route[] = [
  ...systemRoutes,
  ...eventRoutes,
  ...swarmRoutes,
  ...nodeRoutes,
  ...serviceRoutes,
  ...objectRoutes,
  ...localRoutes,
  ...distributionRoutes,
];

export type { EngineBackend } from './backend.js';
export { DockerError, dockerErrorOf, STATUS_OF_CODE } from './errors.js';
export {
  del,
  empty,
  type EngineReply,
  type EngineRequest,
  get,
  json,
  post,
  queryBool,
  queryStrictBool,
  queryVersion,
  type Route,
  RouteTable,
} from './route.js';
export { type EngineServer, type EngineServerOptions, serveEngine } from './server.js';
export { type EngineTlsCredentials, type EngineTlsServer, serveEngineTls } from './tls.js';
export { API_VERSION, compareVersions, MIN_API_VERSION } from './version.js';
