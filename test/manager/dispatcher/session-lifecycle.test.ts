// How a dispatcher session ends, over real gRPC on loopback: a node that
// reconnects replaces its old session, a removed node's session is closed, and
// a manager that loses the leadership ends every session naming the new leader.
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { localStore } from '../../../manager/store/index.js';
import type { AgentMessage, ManagerMessage } from '../../../proto/gen/control.js';
import { until } from '../../lib/wait.js';
import { dispatcherHarness, firstReply, stubLiveness } from './harness.js';

const { dispatcher, serve, openSession } = dispatcherHarness();
const wait = <T>(what: string, fn: () => T): Promise<NonNullable<T>> => until(what, fn, { timeoutMs: 5_000, everyMs: 5 });

type Stream = grpc.ClientDuplexStream<AgentMessage, ManagerMessage>;

/** How the stream ended, once it has: its gRPC status code and details. */
function ending(s: Stream): { status?: grpc.StatusObject } {
  const r: { status?: grpc.StatusObject } = {};
  s.on('status', (st: grpc.StatusObject) => (r.status = st));
  s.on('error', () => undefined);
  return r;
}

/** Opens a session for the node the server stands for and waits for its welcome. */
async function welcomed(addr: string, nodeId: string): Promise<Stream> {
  const s = openSession(addr);
  const first = firstReply(s);
  s.write({ hello: { description: { hostname: nodeId }, addr: '127.0.0.1' } } as AgentMessage);
  const r = await first;
  expect(r.error).toBeUndefined();
  expect(r.message?.welcome?.sessionId).toMatch(/^[0-9a-f]{16}$/);
  return s;
}

describe('dispatcher session lifecycle', () => {
  it('a node that opens a second session replaces the first: the old stream is ended and one session remains', async () => {
    const d = dispatcher(localStore());
    const addr = await serve(d, 'tssn1');
    const old = await welcomed(addr, 'tssn1');
    const oldEnd = ending(old);
    old.on('data', () => undefined);
    const fresh = await welcomed(addr, 'tssn1');
    const freshEnd = ending(fresh);
    await wait('the old session ended', () => oldEnd.status);
    expect(d.hasSession('tssn1')).toBe(true);
    expect(freshEnd.status).toBeUndefined();
  });

  it('forgetting a node (node rm) closes its session at once', async () => {
    const d = dispatcher(localStore());
    const s = await welcomed(await serve(d, 'tssn2'), 'tssn2');
    const end = ending(s);
    s.on('data', () => undefined);
    d.forget('tssn2');
    expect(d.hasSession('tssn2')).toBe(false);
    await wait('the session ended', () => end.status);
  });

  it('losing the leadership ends every session with NOT_LEADER naming the new leader, so agents move there', async () => {
    let leader = true;
    const d = dispatcher(localStore(), {
      liveness: { ...stubLiveness(), isLeader: () => leader, leaderAddr: () => (leader ? '' : '127.0.0.1:4242') },
    });
    const a = await welcomed(await serve(d, 'tssn3'), 'tssn3');
    const b = await welcomed(await serve(d, 'tssn4'), 'tssn4');
    const ends = [ending(a), ending(b)];
    for (const s of [a, b]) s.on('data', () => undefined);
    leader = false;
    d.lostLeadership();
    expect(d.hasSession('tssn3') || d.hasSession('tssn4')).toBe(false);
    for (const e of ends) {
      const st = await wait('the session ended', () => e.status);
      expect(st.code).toBe(grpc.status.UNAVAILABLE); // as NOT_LEADER travels
      expect(st.details).toBe('this manager is no longer the leader; the leader is at 127.0.0.1:4242');
    }
  });
});
