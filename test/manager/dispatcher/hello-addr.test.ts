// A session hello must carry an IPv4 address: over real gRPC on loopback, a
// hello naming a host name is refused with an error naming the field, and the
// node is not marked READY; an IPv4 hello is welcomed.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { localStore } from '../../../manager/store/index.js';
import type { AgentMessage } from '../../../proto/gen/control.js';
import { dispatcherHarness, firstReply, type FirstReply, stubLiveness } from './harness.js';

const { dispatcher, serve, openSession } = dispatcherHarness();

async function setup(): Promise<{ addr: string; ready: string[] }> {
  const ready: string[] = [];
  const d = dispatcher(localStore(), { liveness: stubLiveness(ready) });
  return { addr: await serve(d, 'node-1'), ready };
}

/** Opens a session, says hello with `addr`, and resolves with the first message or the error that ends the stream. */
function hello(target: string, addr: string): Promise<FirstReply> {
  const stream = openSession(target);
  const first = firstReply(stream, { cancel: true });
  stream.write({ hello: { description: { hostname: 'n1' }, addr } } as AgentMessage);
  return first;
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
