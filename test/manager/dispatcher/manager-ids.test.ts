// The session tells each node who the managers are, by node id as well as by
// address: the welcome and every heartbeat ack carry the ids the manager
// lists now, so a node pins managers' certificates to them (ca/pin.ts).
import { describe, expect, it } from 'vitest';
import { localStore } from '../../../manager/store/index.js';
import type { AgentMessage, ManagerMessage } from '../../../proto/gen/control.js';
import { dispatcherHarness, stubLiveness } from './harness.js';

const { dispatcher, serve, openSession } = dispatcherHarness();

describe('manager node ids in the session', () => {
  it("the welcome and each heartbeat ack carry the current managers' node ids", async () => {
    let ids = ['tssm1', 'tssm2', 'tssm3'];
    const d = dispatcher(localStore(), { heartbeatPeriodMs: 60_000, liveness: { ...stubLiveness(), managerNodeIds: () => ids } });
    const stream = openSession(await serve(d, 'tssn1'));
    stream.on('error', () => undefined); // the cancel at clean-up
    const got: ManagerMessage[] = [];
    let wake: () => void = () => undefined;
    stream.on('data', (m: ManagerMessage) => {
      got.push(m);
      wake();
    });
    const next = (pred: (m: ManagerMessage) => boolean): Promise<ManagerMessage> =>
      new Promise((resolve) => {
        const look = () => {
          const m = got.find(pred);
          if (m) resolve(m);
        };
        wake = look;
        look();
      });
    stream.write({ hello: { description: { hostname: 'tssn1' }, addr: '10.0.0.1:4242' } } as AgentMessage);
    const welcome = await next((m) => !!m.welcome);
    expect(welcome.welcome!.managerNodeIds).toEqual(['tssm1', 'tssm2', 'tssm3']);
    // A demotion: the next ack no longer lists the node.
    ids = ['tssm1', 'tssm3'];
    stream.write({ heartbeat: {} } as AgentMessage);
    const ack = await next((m) => !!m.heartbeatAck);
    expect(ack.heartbeatAck!.managerNodeIds).toEqual(['tssm1', 'tssm3']);
  });

  it('a manager that does not list its managers sends none, which nodes read as "not known yet"', async () => {
    const d = dispatcher(localStore());
    const stream = openSession(await serve(d, 'tssn2'));
    stream.on('error', () => undefined); // the cancel at clean-up
    const first = new Promise<ManagerMessage>((resolve) => stream.on('data', (m: ManagerMessage) => resolve(m)));
    stream.write({ hello: { description: { hostname: 'tssn2' }, addr: '10.0.0.2:4242' } } as AgentMessage);
    expect((await first).welcome!.managerNodeIds).toEqual([]);
  });
});
