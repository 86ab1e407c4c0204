// A session hello must carry an IPv4 address: over real gRPC on loopback, a
// hello naming a host name is refused with an error naming the field, and the
// node is not marked READY; an IPv4 hello is welcomed.
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Dispatcher, type NodeLiveness } from '../../../manager/dispatcher/dispatcher.js';
import { localStore } from '../../../manager/store/index.js';
import { type AgentMessage, DispatcherService, type ManagerMessage } from '../../../proto/gen/control.js';

const log = pino({ level: 'silent' });
const cleanup: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function setup(): Promise<{ addr: string; ready: string[] }> {
  const ready: string[] = [];
  const liveness: NodeLiveness = {
    setState: async (id, state) => void (state === 'ready' && ready.push(id)),
    nodeIds: () => [],
    desiredRole: () => 'worker',
    managerAddrs: () => [],
    leaderAddr: () => '',
    isLeader: () => true,
    silentManagers: () => [],
  };
  const d = new Dispatcher({ heartbeatPeriodMs: 60_000, graceMultiplier: 3, logger: log, liveness, store: localStore() });
  cleanup.push(() => d.close());
  const server = new grpc.Server();
  server.addService(DispatcherService, { session: (s: grpc.ServerDuplexStream<AgentMessage, ManagerMessage>) => d.session(s, 'node-1') });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  cleanup.push(() => void server.forceShutdown());
  return { addr: `127.0.0.1:${port}`, ready };
}

/** Opens a session, says hello with `addr`, and resolves with the first message or the error that ends the stream. */
function hello(target: string, addr: string): Promise<{ message?: ManagerMessage; error?: grpc.ServiceError }> {
  const Client = grpc.makeGenericClientConstructor(DispatcherService as unknown as grpc.ServiceDefinition, 'Dispatcher');
  const client = new Client(target, grpc.credentials.createInsecure());
  cleanup.push(() => client.close());
  const stream = (client as unknown as { session: () => grpc.ClientDuplexStream<AgentMessage, ManagerMessage> }).session();
  return new Promise((resolve) => {
    stream.on('data', (m: ManagerMessage) => {
      resolve({ message: m });
      stream.cancel();
    });
    stream.on('error', (e: grpc.ServiceError) => resolve({ error: e }));
    stream.write({ hello: { description: { hostname: 'n1' }, addr } } as AgentMessage);
  });
}

describe('session hello address', () => {
  it('refuses a hello whose address is a host name, naming the field, and leaves the node unmarked', async () => {
    const { addr, ready } = await setup();
    const r = await hello(addr, 'evil.example.com:4242');
    expect(r.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(r.error?.details).toMatch(/^hello\.addr \(the node's advertise address\) must be an IPv4 address .*host name is not an address/);
    expect(ready).toEqual([]);
  });

  it('welcomes a hello with an IPv4 address and port', async () => {
    const { addr } = await setup();
    const r = await hello(addr, '10.1.2.3:4242');
    expect(r.error).toBeUndefined();
    expect(r.message?.welcome).toBeTruthy();
  });
});
