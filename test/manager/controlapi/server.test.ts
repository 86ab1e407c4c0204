// The Control API's one routing table and its leader proxy: a leader answers,
// a follower forwards to the leader, a read falls back to local state when no
// leader answers, a leader-only call never does, and streams are forwarded too.
import { describe, expect, it } from 'vitest';
import { TsswarmError } from '../../../lib/errors.js';
import { CONTROL_METHODS, CONTROL_ROUTES, leaderProxy, type LeaderRoute } from '../../../manager/controlapi/server.js';
import { type ControlHandlers, ControlService } from '../../../proto/gen/control.js';

/** Handlers that answer with where they ran: every method, unary or stream. */
function local(calls: string[]): ControlHandlers {
  return Object.fromEntries(
    CONTROL_METHODS.map((m) => [
      m,
      ControlService[m].responseStream
        ? async (_req: unknown, write: (x: unknown) => void) => {
            calls.push(`local ${m}`);
            write({ from: 'local' });
          }
        : async () => {
            calls.push(`local ${m}`);
            return { from: 'local' };
          },
    ]),
  ) as unknown as ControlHandlers;
}

function route(o: { leader: boolean; addr: string; fail?: TsswarmError }, calls: string[]): LeaderRoute {
  return {
    isLeader: () => o.leader,
    leaderAddr: () => o.addr,
    forward: async (addr, method) => {
      calls.push(`forward ${method} to ${addr}`);
      if (o.fail) throw o.fail;
      return { from: addr };
    },
    forwardStream: async (addr, method, _req, write) => {
      calls.push(`stream ${method} from ${addr}`);
      write({ from: addr });
    },
  };
}

describe('Control API routing', () => {
  it('classifies every method of the service, and only those', () => {
    expect(Object.keys(CONTROL_ROUTES).sort()).toEqual(Object.keys(ControlService).sort());
    expect(CONTROL_ROUTES.listNodes).toBe('read');
    expect(CONTROL_ROUTES.updateService).toBe('leader');
    expect(CONTROL_ROUTES.inspectDataplane).toBe('leader');
  });

  it('the leader answers every call itself', async () => {
    const calls: string[] = [];
    const h = leaderProxy(local(calls), route({ leader: true, addr: 'me:1' }, calls));
    await expect(h.listNodes({})).resolves.toEqual({ from: 'local' });
    await expect(h.createService({ spec: null })).resolves.toEqual({ from: 'local' });
    expect(calls).toEqual(['local listNodes', 'local createService']);
  });

  it('a follower forwards reads, writes and streams to the leader', async () => {
    const calls: string[] = [];
    const h = leaderProxy(local(calls), route({ leader: false, addr: 'lead:4242' }, calls));
    await expect(h.getService({ ref: 'x' })).resolves.toEqual({ from: 'lead:4242' });
    await expect(h.removeService({ ref: 'x' })).resolves.toEqual({ from: 'lead:4242' });
    const got: unknown[] = [];
    await h.serviceLogs({} as never, (m) => got.push(m), new AbortController().signal);
    expect(got).toEqual([{ from: 'lead:4242' }]);
    expect(calls).toEqual(['forward getService to lead:4242', 'forward removeService to lead:4242', 'stream serviceLogs from lead:4242']);
  });

  it('when the leader is unreachable a read is answered locally, a leader-only call fails with the reason', async () => {
    const calls: string[] = [];
    const gone = new TsswarmError('UNAVAILABLE', 'forwarding to the leader at lead:4242: connection refused');
    const h = leaderProxy(local(calls), route({ leader: false, addr: 'lead:4242', fail: gone }, calls));
    await expect(h.listTasks({ services: [], nodes: [], desiredRunning: false })).resolves.toEqual({ from: 'local' });
    await expect(h.updateNode({ ref: 'n', version: 1, availability: '', role: '', labelAdd: {}, labelRm: [] })).rejects.toBe(gone);
    expect(calls).toEqual(['forward listTasks to lead:4242', 'local listTasks', 'forward updateNode to lead:4242']);
  });

  it('any other failure of a forwarded read is passed on, not hidden behind local state', async () => {
    const calls: string[] = [];
    const refused = new TsswarmError('NOT_FOUND', 'service x not found');
    const h = leaderProxy(local(calls), route({ leader: false, addr: 'lead:4242', fail: refused }, calls));
    await expect(h.getService({ ref: 'x' })).rejects.toBe(refused);
    expect(calls).toEqual(['forward getService to lead:4242']);
  });

  it('without a known leader every call is answered here (the local handler refuses what needs the leader)', async () => {
    const calls: string[] = [];
    const h = leaderProxy(local(calls), route({ leader: false, addr: '' }, calls));
    await h.listNetworks({});
    await h.createNetwork({ spec: null });
    expect(calls).toEqual(['local listNetworks', 'local createNetwork']);
  });
});
