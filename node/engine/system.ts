// `/_ping`, `/version` and `/info`: what every node answers, in or out of a cluster.
import { API_VERSION, MIN_API_VERSION } from './version.js';
import type { ClusterFacts } from '../../spec/docker/swarm.js';
import { swarmHeader, toDockerInfo, toDockerSwarmInfo, toDockerVersion } from '../../spec/docker/system.js';
import type { EngineBackend } from './backend.js';
import { type EngineRequest, get, json, type Route } from './route.js';

function ping(r: EngineRequest): Promise<{ status: number; text: string; headers: Record<string, string> }> {
  const headers = {
    'Api-Version': API_VERSION,
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    Pragma: 'no-cache',
    'Docker-Experimental': 'false',
    Swarm: swarmHeader(r.backend.localInfo()),
  };
  return Promise.resolve({ status: 200, text: r.method === 'HEAD' ? '' : 'OK', headers });
}

/** The cluster part of `/info` and `/swarm` from an info answer (the leader's, for `/swarm`). */
export function clusterFacts(b: EngineBackend, info: ClusterFacts['info']): ClusterFacts {
  return { info, ...b.clusterTimes(), tls: b.tlsInfo() };
}

export const systemRoutes: Route[] = [
  get('/_ping', 'any', ping),
  { method: 'HEAD', path: '/_ping', serves: 'any', handle: ping },
  get('/version', 'any', async (r) => json(toDockerVersion(r.backend.host(), { max: API_VERSION, min: MIN_API_VERSION }))),
  get('/info', 'any', async (r) => {
    const b = r.backend;
    let info = b.localInfo();
    let error = '';
    if (info.state === 'active' && info.isManager) {
      try {
        info = await b.info();
      } catch (e) {
        error = (e as Error).message;
      }
    }
    const cluster = info.isManager && info.state === 'active' && !error ? clusterFacts(b, info) : null;
    const out = toDockerInfo(b.host(), toDockerSwarmInfo(info, cluster, info.isManager ? [] : b.managerAddrs(), error));
    // This node's task containers, counted as docker ps --all would list them (none when the runtime is not usable).
    const cs = await b.containers().catch(() => []);
    const running = cs.filter((c) => c.status === 'running').length;
    const stopped = cs.filter((c) => c.status === 'stopped').length;
    return json({ ...out, Containers: cs.length, ContainersRunning: running, ContainersPaused: 0, ContainersStopped: stopped });
  }),
];
