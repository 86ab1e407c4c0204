// agent/dns/forwarder.ts against a fake upstream on 127.0.0.1 (loopback only):
// id swapping, fail-over on timeout, TCP after truncation, SERVFAIL paths.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Forwarder } from '../../../agent/dns/forwarder.js';
import { aRecordAddress, buildQuery, parseMessage, RCode, RRType } from '../../../agent/dns/wire.js';
import { createLogger } from '../../../lib/log.js';
import { startFakeUpstream, type FakeUpstream } from './fixtures/fake-upstream.js';

const log = createLogger({ level: 'silent' });

describe('Forwarder', () => {
  let up: FakeUpstream;
  let dead: FakeUpstream;
  const forwarders: Forwarder[] = [];
  // The fake upstream answers in this process: under a loaded machine its
  // answer can take far longer than a real one, so the timeout is generous
  // wherever an answer is expected (the fail-over test waits it out once).
  const make = (ports: number[], timeoutMs = 2000): Forwarder => {
    const f = new Forwarder({ upstreams: () => ports.map((port) => ({ address: '127.0.0.1', port })), timeoutMs, log });
    forwarders.push(f);
    return f;
  };
  beforeEach(async () => {
    up = await startFakeUpstream();
    dead = await startFakeUpstream();
    dead.silent = true;
  });
  afterEach(async () => {
    for (const f of forwarders.splice(0)) f.close();
    await up.close();
    await dead.close();
  });

  it('relays the upstream answer with the client id restored, having sent a different id upstream', async () => {
    const f = make([up.port]);
    const out = await f.forward(buildQuery('example.test', RRType.A, { id: 0x4242 }), 'udp');
    const m = parseMessage(out!);
    expect(m.header.id).toBe(0x4242);
    expect(m.answers.map(aRecordAddress)).toEqual(['192.0.2.1']);
    expect(up.asked).toEqual([{ name: 'example.test', type: RRType.A, transport: 'udp' }]);
  });

  it('an upstream that does not answer in time is skipped for the next one', async () => {
    const f = make([dead.port, up.port]);
    const m = parseMessage((await f.forward(buildQuery('nope.test', RRType.A, { id: 1 }), 'udp'))!);
    expect(m.header.rcode).toBe(RCode.NXDOMAIN);
    expect(dead.asked).toHaveLength(1);
    expect(up.asked).toHaveLength(1);
  });

  it('no upstream answering, or none configured, gives undefined (the server sends SERVFAIL)', async () => {
    expect(await make([dead.port], 300).forward(buildQuery('example.test', RRType.A, { id: 1 }), 'udp')).toBeUndefined();
    expect(await make([]).forward(buildQuery('example.test', RRType.A, { id: 1 }), 'udp')).toBeUndefined();
  });

  it('a truncated UDP answer is refetched over TCP for a TCP client and passed on as is to a UDP client', async () => {
    const f = make([up.port]);
    const viaTcp = parseMessage((await f.forward(buildQuery('big.test', RRType.A, { id: 2 }), 'tcp'))!);
    expect(viaTcp.header.tc).toBe(false);
    expect(viaTcp.answers).toHaveLength(100);
    expect(up.asked.map((a) => a.transport)).toEqual(['udp', 'tcp']);
    const viaUdp = parseMessage((await f.forward(buildQuery('big.test', RRType.A, { id: 3 }), 'udp'))!);
    expect(viaUdp.header).toMatchObject({ id: 3, tc: true });
    expect(viaUdp.answers.length).toBeLessThan(100);
  });

  it('close ends a forward in flight at once', async () => {
    const f = make([dead.port], 60_000);
    const pending = f.forward(buildQuery('example.test', RRType.A, { id: 1 }), 'udp');
    await new Promise((r) => setImmediate(r));
    f.close();
    expect(await pending).toBeUndefined();
  });
});
