// agent/dns/server.ts answerQuery: what a raw query gets back, with the table
// and a stand-in forwarder (no sockets).
import { describe, expect, it } from 'vitest';
import { DnsTable } from '../../../agent/dns/resolver.js';
import { answerQuery, type QueryContext } from '../../../agent/dns/server.js';
import { aRecordAddress, buildQuery, parseMessage, RCode, RRType, withId } from '../../../agent/dns/wire.js';

function context(forwarded: Buffer | undefined = undefined): QueryContext & { forwards: Array<{ raw: Buffer; transport: string }> } {
  const table = new DnsTable();
  table.setNetwork('n1', [
    { name: 'web', endpointMode: 'vip', vip: '10.0.0.2', taskIps: Array.from({ length: 40 }, (_, i) => `10.0.0.${i + 10}`) },
  ]);
  table.setContainer('ns1', { hostname: 'c1', endpoints: [{ network: 'n1', ip: '10.0.0.5' }] });
  const forwards: Array<{ raw: Buffer; transport: string }> = [];
  return {
    table,
    key: 'ns1',
    forwards,
    forwarder: {
      forward: async (raw, transport) => {
        forwards.push({ raw, transport });
        return forwarded;
      },
    },
  };
}

describe('answerQuery', () => {
  it('a service name gets an authoritative answer with its VIP and nothing is forwarded', async () => {
    const ctx = context();
    const out = parseMessage((await answerQuery(buildQuery('Web.', RRType.A, { id: 9 }), 'udp', ctx))!);
    expect(out.header).toMatchObject({ id: 9, qr: true, aa: true, rcode: RCode.NOERROR });
    expect(out.answers.map(aRecordAddress)).toEqual(['10.0.0.2']);
    expect(ctx.forwards).toEqual([]);
  });

  it('over UDP a long tasks.<service> answer is cut to 512 bytes with TC; over TCP it is whole', async () => {
    const ctx = context();
    const udp = (await answerQuery(buildQuery('tasks.web', RRType.A, { id: 1 }), 'udp', ctx))!;
    expect(udp.length).toBeLessThanOrEqual(512);
    expect(parseMessage(udp).header.tc).toBe(true);
    const tcp = parseMessage((await answerQuery(buildQuery('tasks.web', RRType.A, { id: 1 }), 'tcp', ctx))!);
    expect(tcp.header.tc).toBe(false);
    expect(tcp.answers).toHaveLength(40);
  });

  it('an unknown name is forwarded as the client sent it, and the upstream answer is returned unchanged', async () => {
    const upstreamAnswer = withId(buildQuery('x', RRType.A, { id: 0 }), 4);
    const ctx = context(upstreamAnswer);
    const raw = buildQuery('example.test', RRType.A, { id: 4 });
    expect(await answerQuery(raw, 'tcp', ctx)).toBe(upstreamAnswer);
    expect(ctx.forwards).toEqual([{ raw, transport: 'tcp' }]);
  });

  it('a forward that gets no answer becomes SERVFAIL with the question', async () => {
    const ctx = context(undefined);
    const out = parseMessage((await answerQuery(buildQuery('example.test', RRType.A, { id: 5 }), 'udp', ctx))!);
    expect(out.header).toMatchObject({ id: 5, rcode: RCode.SERVFAIL, aa: false });
    expect(out.questions).toEqual([{ name: 'example.test', type: RRType.A, class: 1 }]);
  });

  it('a query that does not parse gets FORMERR when it has an id, and nothing when it has not', async () => {
    const ctx = context();
    const cut = buildQuery('web', RRType.A, { id: 6 }).subarray(0, 15);
    expect(parseMessage((await answerQuery(cut, 'udp', ctx))!).header).toMatchObject({ id: 6, qr: true, rcode: RCode.FORMERR });
    expect(await answerQuery(Buffer.from([1, 2, 3]), 'udp', ctx)).toBeUndefined();
  });

  it('a response sent to us is ignored, another opcode gets NOTIMP, two questions get FORMERR', async () => {
    const ctx = context();
    const response = buildQuery('web', RRType.A, { id: 7 });
    response[2]! |= 0x80;
    expect(await answerQuery(response, 'udp', ctx)).toBeUndefined();
    const notify = buildQuery('web', RRType.A, { id: 7 });
    notify[2] = (notify[2]! & 0x87) | (4 << 3);
    expect(parseMessage((await answerQuery(notify, 'udp', ctx))!).header.rcode).toBe(RCode.NOTIMP);
    const two = Buffer.concat([buildQuery('web', RRType.A, { id: 7 }), Buffer.from('03776562000001000 1'.replace(/ /g, ''), 'hex')]);
    two.writeUInt16BE(2, 4);
    expect(parseMessage((await answerQuery(two, 'udp', ctx))!).header.rcode).toBe(RCode.FORMERR);
    expect(ctx.forwards).toEqual([]);
  });

  it('mangled queries (seeded byte flips and cuts) never make answerQuery throw', async () => {
    const ctx = context(undefined);
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const base = buildQuery('tasks.web', RRType.A, { id: 8, ednsUdpSize: 4096 });
    for (let i = 0; i < 3000; i++) {
      const m = Buffer.from(base.subarray(0, 12 + rand(base.length)));
      for (let k = rand(4); k >= 0; k--) m[rand(m.length)] = rand(256);
      const out = await answerQuery(m, i % 2 ? 'udp' : 'tcp', ctx);
      if (out) expect(out.length).toBeGreaterThanOrEqual(12);
    }
  });
});
