// A lone manager served to the CLI as a daemon serves it, on a unix socket:
// its Control API behind the leader proxy (a lone leader forwards nothing),
// and the Daemon API's info. For CLI tests of cluster verbs. ResolveImage
// knows one registry, `registry.test` (a fixed digest, linux/amd64), and
// counts its calls; any other image is unreachable, as in a sandbox.
import * as grpc from '@grpc/grpc-js';
import { unary } from '../../lib/grpc.js';
import { controlImplementation, leaderProxy } from '../../manager/controlapi/server.js';
import { ControlService, DaemonService } from '../../proto/gen/control.js';
import type { LoneManager } from '../manager/lone-manager.js';

/** Serves `lone` on `unix://<sock>`; resolves with the server (tryShutdown it after). */
export const TEST_REGISTRY_DIGEST = `sha256:${'7'.repeat(64)}`;
export const resolvedImages: string[] = [];
/** The X-Registry-Auth each ResolveImage call carried ('' for none), in order. */
export const resolvedAuths: string[] = [];

export async function serveLoneManager(lone: LoneManager, sock: string, nodeId = 'm1'): Promise<grpc.Server> {
  const m = lone.manager;
  const server = new grpc.Server();
  const never = (): Promise<never> => Promise.reject(new Error('a lone leader forwards nothing'));
  server.addService(
    ControlService,
    controlImplementation(
      leaderProxy(m.controlHandlers(), {
        isLeader: () => m.consensus.isLeader,
        leaderAddr: () => m.consensus.leaderAddr,
        forward: never,
        forwardStream: never,
      }),
      () => undefined,
    ),
  );
  server.addService(DaemonService, {
    info: unary(async () =>
      m.clusterApi.info({ state: 'active', version: 'test', stale: false, nodeId, nodeName: nodeId, clusterId: lone.clusterId }),
    ),
    resolveImage: unary(async (req: { reference: string; registryAuth: string }) => {
      resolvedImages.push(req.reference);
      resolvedAuths.push(req.registryAuth);
      if (!req.reference.startsWith('registry.test/')) throw new Error(`resolving ${req.reference}: no registry is reachable in tests`);
      return { digest: TEST_REGISTRY_DIGEST, platforms: [{ os: 'linux', architecture: 'amd64' }] };
    }),
  });
  await new Promise<void>((res, rej) =>
    server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
  );
  return server;
}
