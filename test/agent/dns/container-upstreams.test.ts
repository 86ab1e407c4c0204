// A service's --dns servers as the embedded DNS server's upstreams for its
// containers: names outside the cluster asked from a container with them go
// there, not to the node's resolvers; other containers keep the node's.
// Fake upstreams on 127.0.0.1 only.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Forwarder } from '../../../agent/dns/forwarder.js';
import { DnsTable } from '../../../agent/dns/resolver.js';
import { answerQuery } from '../../../agent/dns/server.js';
import { buildQuery, RRType } from '../../../agent/dns/wire.js';
import { createLogger } from '../../../lib/log.js';
import { startFakeUpstream, type FakeUpstream } from './fixtures/fake-upstream.js';

const log = createLogger({ level: 'silent' });

describe('per-container DNS upstreams', () => {
  let node: FakeUpstream;
  let service: FakeUpstream;
  let f: Forwarder;
  beforeEach(async () => {
    node = await startFakeUpstream();
    service = await startFakeUpstream();
    f = new Forwarder({ upstreams: () => [{ address: '127.0.0.1', port: node.port }], timeoutMs: 5000, log });
  });
  afterEach(async () => {
    f.close();
    await node.close();
    await service.close();
  });

  it("a container with --dns servers forwards to them; one without, to the node's", async () => {
    const table = new DnsTable();
    table.setContainer('/run/netns/tss-a', {
      hostname: 'a',
      endpoints: [],
      upstreams: [{ address: '127.0.0.1', port: service.port }],
    });
    table.setContainer('/run/netns/tss-b', { hostname: 'b', endpoints: [] });
    await answerQuery(buildQuery('example.test', RRType.A, { id: 1 }), 'udp', { table, key: '/run/netns/tss-a', forwarder: f });
    expect(service.asked.map((q) => q.name)).toEqual(['example.test']);
    expect(node.asked).toEqual([]);
    await answerQuery(buildQuery('other.test', RRType.A, { id: 2 }), 'udp', { table, key: '/run/netns/tss-b', forwarder: f });
    expect(node.asked.map((q) => q.name)).toEqual(['other.test']);
    expect(service.asked).toHaveLength(1);
  });
});
