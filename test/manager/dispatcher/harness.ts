// What the dispatcher session tests share: a NodeLiveness stub for a lone
// leader, a Dispatcher served over real gRPC on loopback, and a raw session
// client, each closed after the test that made it.
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach } from 'vitest';
import { Dispatcher, type DispatcherOptions, type NodeLiveness } from '../../../manager/dispatcher/dispatcher.js';
import type { MemoryStore } from '../../../manager/store/index.js';
import { type AgentMessage, DispatcherService, type ManagerMessage } from '../../../proto/gen/control.js';

export const log = pino({ level: 'silent' });

/** Liveness for a manager that is the leader and knows no nodes; the ids the dispatcher marks READY go to `ready`. */
export function stubLiveness(ready: string[] = []): NodeLiveness {
  return {
    setState: async (id, state) => void (state === 'ready' && ready.push(id)),
    nodeIds: () => [],
    desiredRole: () => 'worker',
    managerAddrs: () => [],
    leaderAddr: () => '',
    isLeader: () => true,
    silentManagers: () => [],
  };
}

/** The first message a session gets, or the error that ends it. */
export type FirstReply = { message?: ManagerMessage; error?: grpc.ServiceError };

export function firstReply(
  stream: grpc.ClientDuplexStream<AgentMessage, ManagerMessage>,
  o: { cancel?: boolean } = {},
): Promise<FirstReply> {
  return new Promise((resolve) => {
    stream.on('data', (m: ManagerMessage) => {
      resolve({ message: m });
      if (o.cancel) stream.cancel();
    });
    stream.on('error', (e: grpc.ServiceError) => resolve({ error: e }));
  });
}

/**
 * Dispatchers, servers and clients for the tests of the calling scope (a file
 * or a describe block): whatever they make is closed, last made first, after
 * each test, as is whatever a test pushes on `cleanup`.
 */
export function dispatcherHarness(o: { serverOptions?: grpc.ServerOptions; channelOptions?: grpc.ChannelOptions } = {}) {
  const cleanup: Array<() => void | Promise<void>> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  /** A dispatcher with a 60 s heartbeat period, the silent logger and the stub liveness unless `extra` says otherwise. */
  function dispatcher(store: MemoryStore, extra: Partial<DispatcherOptions> = {}): Dispatcher {
    const d = new Dispatcher({ heartbeatPeriodMs: 60_000, graceMultiplier: 3, logger: log, liveness: stubLiveness(), store, ...extra });
    cleanup.push(() => d.close());
    return d;
  }

  /** One loopback server per node id: the id a real manager takes from the caller's certificate. Resolves with its address. */
  async function serve(d: Dispatcher, nodeId: string): Promise<string> {
    const server = new grpc.Server(o.serverOptions);
    server.addService(DispatcherService, { session: (s: grpc.ServerDuplexStream<AgentMessage, ManagerMessage>) => d.session(s, nodeId) });
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    cleanup.push(() => void server.forceShutdown());
    return `127.0.0.1:${port}`;
  }

  /** A raw session to `target`, as a node opens it, before its hello. */
  function openSession(target: string): grpc.ClientDuplexStream<AgentMessage, ManagerMessage> {
    const Client = grpc.makeGenericClientConstructor(DispatcherService as unknown as grpc.ServiceDefinition, 'Dispatcher');
    const client = new Client(target, grpc.credentials.createInsecure(), o.channelOptions);
    cleanup.push(() => client.close());
    const stream = (client as unknown as { session: () => grpc.ClientDuplexStream<AgentMessage, ManagerMessage> }).session();
    cleanup.push(() => stream.cancel());
    return stream;
  }

  return { cleanup, dispatcher, serve, openSession };
}
