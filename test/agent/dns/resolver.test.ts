// agent/dns/resolver.ts: which names a container sees and what they answer,
// without sockets.
import { beforeEach, describe, expect, it } from 'vitest';
import { DnsTable, reverseName, TTL_TASKS, TTL_VIP, type Resolution } from '../../../agent/dns/resolver.js';
import { RRType } from '../../../agent/dns/wire.js';

const C1 = '/run/netns/c1';
const addresses = (r: Resolution): string[] => {
  if (r.kind !== 'answer') throw new Error(`expected an answer, got ${r.kind}`);
  return r.answers.map((a) => (a.type === 'A' ? a.address : `PTR ${a.target}`));
};

describe('DnsTable', () => {
  let t: DnsTable;
  beforeEach(() => {
    t = new DnsTable();
    t.setNetwork('front', [
      { name: 'web', endpointMode: 'vip', vip: '10.0.1.2', taskIps: ['10.0.1.10', '10.0.1.9', '10.0.1.11'] },
      { name: 'cache', endpointMode: 'dnsrr', taskIps: ['10.0.1.20', '10.0.1.21', '10.0.1.22'] },
    ]);
    t.setNetwork('back', [
      { name: 'db', endpointMode: 'vip', vip: '10.0.2.2', taskIps: ['10.0.2.5'] },
      { name: 'web', endpointMode: 'vip', vip: '10.0.2.3', taskIps: ['10.0.2.6'] },
    ]);
    t.setContainer(C1, { hostname: 'app-1', endpoints: [{ network: 'front', ip: '10.0.1.30' }] });
  });

  it('a service name answers its VIP with the VIP TTL', () => {
    const r = t.resolve(C1, 'web', RRType.A);
    expect(r).toEqual({ kind: 'answer', answers: [{ type: 'A', name: 'web', ttl: TTL_VIP, address: '10.0.1.2' }] });
  });

  it('names match without regard to case or a trailing dot, and the answer keeps the name as asked', () => {
    const r = t.resolve(C1, 'WeB.', RRType.A);
    expect(r).toEqual({ kind: 'answer', answers: [{ type: 'A', name: 'WeB', ttl: TTL_VIP, address: '10.0.1.2' }] });
    expect(addresses(t.resolve(C1, 'TASKS.web.', RRType.A))).toHaveLength(3);
  });

  it('tasks.<service> answers every task IP, in numeric order and then rotating by one per query', () => {
    expect(addresses(t.resolve(C1, 'tasks.web', RRType.A))).toEqual(['10.0.1.9', '10.0.1.10', '10.0.1.11']);
    expect(addresses(t.resolve(C1, 'tasks.web', RRType.A))).toEqual(['10.0.1.10', '10.0.1.11', '10.0.1.9']);
    expect(addresses(t.resolve(C1, 'tasks.web', RRType.A))).toEqual(['10.0.1.11', '10.0.1.9', '10.0.1.10']);
    expect(addresses(t.resolve(C1, 'tasks.web', RRType.A))).toEqual(['10.0.1.9', '10.0.1.10', '10.0.1.11']);
    const r = t.resolve(C1, 'tasks.web', RRType.A);
    expect(r.kind === 'answer' && r.answers.every((a) => a.ttl === TTL_TASKS)).toBe(true);
  });

  it('a dnsrr service answers its task IPs in rotating order and no VIP', () => {
    expect(addresses(t.resolve(C1, 'cache', RRType.A))).toEqual(['10.0.1.20', '10.0.1.21', '10.0.1.22']);
    expect(addresses(t.resolve(C1, 'cache', RRType.A))).toEqual(['10.0.1.21', '10.0.1.22', '10.0.1.20']);
  });

  it("the container's own hostname answers its address on its first network", () => {
    expect(addresses(t.resolve(C1, 'APP-1', RRType.A))).toEqual(['10.0.1.30']);
  });

  it('a service on a network the container is not on is not visible (forwarded, as any unknown name)', () => {
    expect(t.resolve(C1, 'db', RRType.A)).toEqual({ kind: 'forward' });
    expect(t.resolve(C1, 'example.org', RRType.A)).toEqual({ kind: 'forward' });
    expect(t.resolve('/run/netns/unknown', 'web', RRType.A)).toEqual({ kind: 'forward' });
  });

  it('a container on two networks gets the answer from its first network', () => {
    t.setContainer(C1, {
      hostname: 'app-1',
      endpoints: [
        { network: 'back', ip: '10.0.2.30' },
        { network: 'front', ip: '10.0.1.30' },
      ],
    });
    expect(addresses(t.resolve(C1, 'web', RRType.A))).toEqual(['10.0.2.3']);
    expect(addresses(t.resolve(C1, 'db', RRType.A))).toEqual(['10.0.2.2']);
    expect(addresses(t.resolve(C1, 'cache', RRType.A))).toHaveLength(3);
  });

  it('another type for a name we own is NODATA, not forwarded', () => {
    expect(t.resolve(C1, 'web', RRType.AAAA)).toEqual({ kind: 'answer', answers: [] });
    expect(t.resolve(C1, 'tasks.web', RRType.MX)).toEqual({ kind: 'answer', answers: [] });
  });

  it('a service with no task or no VIP yet is NODATA', () => {
    t.setService('front', { name: 'empty', endpointMode: 'dnsrr', taskIps: [] });
    t.setService('front', { name: 'novip', endpointMode: 'vip', taskIps: ['10.0.1.40'] });
    expect(t.resolve(C1, 'empty', RRType.A)).toEqual({ kind: 'answer', answers: [] });
    expect(t.resolve(C1, 'tasks.empty', RRType.A)).toEqual({ kind: 'answer', answers: [] });
    expect(t.resolve(C1, 'novip', RRType.A)).toEqual({ kind: 'answer', answers: [] });
  });

  it('PTR answers the VIP, task IPs and the container itself; other reverse names are forwarded', () => {
    expect(addresses(t.resolve(C1, reverseName('10.0.1.2'), RRType.PTR))).toEqual(['PTR web']);
    expect(addresses(t.resolve(C1, reverseName('10.0.1.21'), RRType.PTR))).toEqual(['PTR tasks.cache']);
    expect(addresses(t.resolve(C1, reverseName('10.0.1.30'), RRType.PTR))).toEqual(['PTR app-1']);
    expect(t.resolve(C1, reverseName('10.0.2.2'), RRType.PTR)).toEqual({ kind: 'forward' });
  });

  it('setNetwork reports added, removed and changed services, and the next query sees the new table', () => {
    const change = t.setNetwork('front', [
      { name: 'web', endpointMode: 'vip', vip: '10.0.1.2', taskIps: ['10.0.1.9', '10.0.1.12'] },
      { name: 'cache', endpointMode: 'dnsrr', taskIps: ['10.0.1.22', '10.0.1.20', '10.0.1.21'] },
      { name: 'api', endpointMode: 'vip', vip: '10.0.1.3', taskIps: [] },
    ]);
    expect(change).toEqual({ network: 'front', added: ['api'], removed: [], changed: ['web'] });
    expect(addresses(t.resolve(C1, 'tasks.web', RRType.A))).toEqual(['10.0.1.9', '10.0.1.12']);
    expect(addresses(t.resolve(C1, 'api', RRType.A))).toEqual(['10.0.1.3']);
    expect(t.setNetwork('front', [])).toEqual({ network: 'front', added: [], removed: ['web', 'cache', 'api'], changed: [] });
    expect(t.resolve(C1, 'web', RRType.A)).toEqual({ kind: 'forward' });
    expect(t.services('front')).toEqual([]);
  });

  it('removeService and removeContainer take names away', () => {
    t.removeService('front', 'WEB');
    expect(t.resolve(C1, 'web', RRType.A)).toEqual({ kind: 'forward' });
    expect(t.resolve(C1, 'tasks.web', RRType.A)).toEqual({ kind: 'forward' });
    t.removeContainer(C1);
    expect(t.resolve(C1, 'cache', RRType.A)).toEqual({ kind: 'forward' });
  });
});
