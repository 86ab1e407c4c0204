// The Control API as one typed server: how each method is routed (the table is
// complete by type, so a new method in the .proto must be classified here), the
// gRPC registration of a handler set, and the proxy that forwards a call to the
// leader when this manager is not it (SwarmKit's raftproxy plays that part).
import type * as grpc from '@grpc/grpc-js';
import { TsswarmError } from '../../lib/errors.js';
import { serverStream, unary } from '../../lib/grpc.js';
import { type ControlHandlers, type ControlMethod, ControlService } from '../../proto/gen/control.js';

/**
 * `read`: any manager may answer from its own state when no leader can (the answer says it is
 * stale); `leader`: only the leader can answer (a write, or something only the leader holds,
 * such as the agents' sessions).
 */
export type ControlRoute = 'read' | 'leader';

export const CONTROL_ROUTES: Record<ControlMethod, ControlRoute> = {
  listNodes: 'read',
  getNode: 'read',
  updateNode: 'leader',
  removeNode: 'leader',
  getJoinTokens: 'read',
  rotateJoinToken: 'leader',
  transferLeader: 'leader',
  updateCluster: 'leader',
  // The leader's: a follower behind a rotation would answer the old key.
  getUnlockKey: 'leader',
  rotateUnlockKey: 'leader',
  info: 'read',
  createService: 'leader',
  getService: 'read',
  listServices: 'read',
  updateService: 'leader',
  removeService: 'leader',
  listTasks: 'read',
  getTask: 'read',
  serviceLogs: 'leader',
  exec: 'leader',
  createNetwork: 'leader',
  getNetwork: 'read',
  listNetworks: 'read',
  removeNetwork: 'leader',
  inspectDataplane: 'leader',
  createSecret: 'leader',
  getSecret: 'read',
  listSecrets: 'read',
  removeSecret: 'leader',
  updateSecret: 'leader',
  createConfig: 'leader',
  getConfig: 'read',
  listConfigs: 'read',
  removeConfig: 'leader',
  updateConfig: 'leader',
  getRootCAStatus: 'read',
  rotateRootCA: 'leader',
  issueOperatorCertificate: 'leader',
};

export const CONTROL_METHODS = Object.keys(ControlService) as ControlMethod[];

type AnyUnary = (req: unknown) => Promise<unknown>;
type AnyStream = (req: unknown, write: (m: unknown) => void, signal: AbortSignal) => Promise<void>;

/** The gRPC implementation of `h`, with `check(call)` (authorization) before every call. */
export function controlImplementation(
  h: ControlHandlers,
  check: (call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>) => void,
): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const m of CONTROL_METHODS) {
    const fn = (h as unknown as Record<string, AnyUnary & AnyStream>)[m]!.bind(h);
    impl[m] = ControlService[m].responseStream
      ? serverStream(async (req: unknown, write: (x: unknown) => void, signal, call) => {
          check(call);
          await fn(req, write, signal);
        })
      : unary(async (req: unknown, call) => {
          check(call);
          return fn(req);
        });
  }
  return impl;
}

export interface LeaderRoute {
  isLeader(): boolean;
  /** The leader's manager address, '' when none is known. */
  leaderAddr(): string;
  /** Calls `method` on the leader at `addr`. */
  forward(addr: string, method: ControlMethod, req: unknown): Promise<unknown>;
  /** Streams `method` from the leader at `addr`. */
  forwardStream(addr: string, method: ControlMethod, req: unknown, write: (m: unknown) => void, signal: AbortSignal): Promise<void>;
}

/**
 * Handlers that answer here when this manager leads and forward to the leader otherwise. A read
 * is answered here when no leader is known or the leader went away mid-call (the local handler
 * marks it stale); a leader-only call without a leader is answered here too, and the local
 * handler refuses it saying why.
 */
export function leaderProxy(local: ControlHandlers, r: LeaderRoute): ControlHandlers {
  const out: Record<string, unknown> = {};
  const impl = local as unknown as Record<string, AnyUnary & AnyStream>;
  for (const m of CONTROL_METHODS) {
    const here = impl[m]!.bind(local);
    const read = CONTROL_ROUTES[m] === 'read';
    if (ControlService[m].responseStream) {
      out[m] = (req: unknown, write: (x: unknown) => void, signal: AbortSignal): Promise<void> => {
        const leader = r.leaderAddr();
        return r.isLeader() || !leader ? here(req, write, signal) : r.forwardStream(leader, m, req, write, signal);
      };
      continue;
    }
    out[m] = async (req: unknown): Promise<unknown> => {
      const leader = r.leaderAddr();
      if (r.isLeader() || !leader) return here(req);
      try {
        return await r.forward(leader, m, req);
      } catch (e) {
        if (read && e instanceof TsswarmError && e.code === 'UNAVAILABLE') return here(req);
        throw e;
      }
    };
  }
  return out as unknown as ControlHandlers;
}
