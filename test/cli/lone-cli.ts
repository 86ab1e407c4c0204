// A lone manager served to the CLI as a daemon serves it, on a unix socket:
// its Control API behind the leader proxy (a lone leader forwards nothing),
// and the Daemon API's info. For CLI tests of cluster verbs.
import * as grpc from '@grpc/grpc-js';
import { unary } from '../../lib/grpc.js';
import { controlImplementation, leaderProxy } from '../../manager/controlapi/server.js';
import { ControlService, DaemonService } from '../../proto/gen/control.js';
import type { LoneManager } from '../manager/lone-manager.js';

/** Serves `lone` on `unix://<sock>`; resolves with the server (tryShutdown it after). */
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
  });
  await new Promise<void>((res, rej) =>
    server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
  );
  return server;
}
