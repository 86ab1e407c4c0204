// The pure parts of agent/lb: table validation, slot layout, and the nft,
// iptables and ipvs programs, checked line by line (no kernel involved).
import { describe, expect, it } from 'vitest';
import {
  assignSlots,
  chooseLbBackend,
  emptyIptState,
  emptyIpvsState,
  emptyNftState,
  iptChainName,
  ipvsTeardown,
  MARK_BASE,
  parseMarkTable,
  iptTeardown,
  nftTeardown,
  parseIptablesSave,
  parseIpvsSave,
  parseNftJson,
  planIptables,
  planIpvs,
  planIpvsChanges,
  planIptablesChanges,
  planNft,
  planNftChanges,
  iptJumps,
  validateTable,
  vipFrontends,
  type LbTable,
} from '../../../agent/lb/index.js';
import { UsageError } from '../../../lib/errors.js';

const web = (ips: string[], extra: Partial<LbTable> = {}): LbTable => ({
  services: [{ id: 'web', vip: '10.9.0.1', ports: [{ protocol: 'tcp', port: 80 }], backends: ips.map((ip) => ({ ip })) }],
  ingress: [],
  ...extra,
});
const lines = (p: string): string[] => p.trimEnd().split('\n');
/** A service forwarding every port of its VIP (`ports: []`). */
const anyWeb = (ips: string[], vip = '10.9.0.1'): LbTable => ({
  services: [{ id: 'web-any', vip, ports: [], backends: ips.map((ip) => ({ ip })) }],
  ingress: [],
});

describe('validateTable', () => {
  it('names the field of a bad VIP, backend, weight, port and unknown ingress service', () => {
    const bad = (t: LbTable): string => {
      try {
        validateTable(t);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(bad({ services: [{ id: 'a', vip: '10.0.0.300', ports: [], backends: [] }], ingress: [] })).toMatch(
      /^services\[0\]\.vip must be an IPv4 address/,
    );
    expect(bad({ services: [{ id: 'a', vip: '10.0.0.1', ports: [], backends: [{ ip: 'x' }] }], ingress: [] })).toMatch(
      /^services\[0\]\.backends\[0\]\.ip/,
    );
    expect(bad({ services: [{ id: 'a', vip: '10.0.0.1', ports: [], backends: [{ ip: '10.0.0.2', weight: 1.5 }] }], ingress: [] })).toMatch(
      /weight must be a whole number 0-100/,
    );
    expect(bad({ services: [{ id: 'a', vip: '10.0.0.1', ports: [{ protocol: 'tcp', port: 0 }], backends: [] }], ingress: [] })).toMatch(
      /ports\[0\]\.port must be a port number/,
    );
    expect(
      bad({ services: [{ id: 'a', vip: '10.0.0.1', ports: [{ protocol: 'sctp' as 'tcp', port: 1 }], backends: [] }], ingress: [] }),
    ).toMatch(/protocol must be "tcp" or "udp"/);
    expect(bad({ services: [], ingress: [{ protocol: 'tcp', publishedPort: 8080, targetPort: 80, serviceId: 'nope' }] })).toMatch(
      /serviceId "nope" is not in services/,
    );
    expect(
      bad(
        web(['10.1.0.2'], {
          ingress: [
            { protocol: 'tcp', publishedPort: 8080, targetPort: 80, serviceId: 'web' },
            { protocol: 'tcp', publishedPort: 8080, targetPort: 81, serviceId: 'web' },
          ],
        }),
      ),
    ).toMatch(/published twice/);
    expect(bad(web(['10.1.0.2']))).toBe('no error');
  });
});

describe('assignSlots', () => {
  const w = (...t: string[]) => t.map((target) => ({ target, weight: 1 }));
  it('lays out targets in the order given when nothing is programmed', () => {
    expect(assignSlots(w('a', 'b', 'c'), [])).toEqual(['a', 'b', 'c']);
  });
  it('keeps programmed slots and moves the last slot into the hole of a removed target', () => {
    expect(assignSlots(w('a', 'c', 'd'), ['a', 'b', 'c', 'd'])).toEqual(['a', 'd', 'c']);
  });
  it('gives a target as many slots as its weight and none at weight 0', () => {
    expect(
      assignSlots(
        [
          { target: 'a', weight: 2 },
          { target: 'b', weight: 0 },
          { target: 'c', weight: 1 },
        ],
        [],
      ),
    ).toEqual(['a', 'a', 'c']);
  });
});

describe('planNft', () => {
  it('builds the table from scratch in one transaction: skeleton, count chain, dispatch and slot elements', () => {
    const p = planNft(web(['10.1.0.2', '10.1.0.3']), emptyNftState());
    const l = lines(p.program);
    expect(l.slice(0, 3)).toEqual(['add table ip tss-lb', 'delete table ip tss-lb', 'table ip tss-lb {']);
    expect(p.program).toContain('\t\tip daddr . meta l4proto . th dport vmap @tss-vips\n');
    expect(l.slice(-4)).toEqual([
      'add chain ip tss-lb tss-vip-2',
      'add rule ip tss-lb tss-vip-2 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @tss-vip-slots',
      'add element ip tss-lb tss-vips { 10.9.0.1 . tcp . 80 : goto tss-vip-2 }',
      'add element ip tss-lb tss-vip-slots { 10.9.0.1 . tcp . 80 . 0 : 10.1.0.2 . 80, 10.9.0.1 . tcp . 80 . 1 : 10.1.0.3 . 80 }',
    ]);
  });

  it('adds one backend with a new slot, a new count chain and a moved dispatch element, and drops the unused chain', () => {
    const a = planNft(web(['10.1.0.2', '10.1.0.3']), emptyNftState()).next;
    const p = planNft(web(['10.1.0.2', '10.1.0.3', '10.1.0.4']), a);
    expect(lines(p.program)).toEqual([
      'add chain ip tss-lb tss-vip-3',
      'add rule ip tss-lb tss-vip-3 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 map @tss-vip-slots',
      'delete element ip tss-lb tss-vips { 10.9.0.1 . tcp . 80 }',
      'add element ip tss-lb tss-vips { 10.9.0.1 . tcp . 80 : goto tss-vip-3 }',
      'add element ip tss-lb tss-vip-slots { 10.9.0.1 . tcp . 80 . 2 : 10.1.0.4 . 80 }',
      'delete chain ip tss-lb tss-vip-2',
    ]);
  });

  it('removing a backend rewrites only its slot and the last one, whatever else the table holds', () => {
    const others = Array.from({ length: 50 }, (_, i) => ({
      id: `s${i}`,
      vip: `10.8.0.${i + 1}`,
      ports: [{ protocol: 'udp' as const, port: 53 }],
      backends: [{ ip: '10.2.0.1' }, { ip: '10.2.0.2' }],
    }));
    const t = (ips: string[]): LbTable => ({ services: [...web(ips).services, ...others], ingress: [] });
    const a = planNft(t(['10.1.0.2', '10.1.0.3', '10.1.0.4']), emptyNftState()).next;
    const p = planNft(t(['10.1.0.3', '10.1.0.4']), a);
    expect(lines(p.program)).toEqual([
      'delete element ip tss-lb tss-vips { 10.9.0.1 . tcp . 80 }',
      'delete element ip tss-lb tss-vip-slots { 10.9.0.1 . tcp . 80 . 0, 10.9.0.1 . tcp . 80 . 2 }',
      'add element ip tss-lb tss-vips { 10.9.0.1 . tcp . 80 : goto tss-vip-2 }',
      'add element ip tss-lb tss-vip-slots { 10.9.0.1 . tcp . 80 . 0 : 10.1.0.4 . 80 }',
      'delete chain ip tss-lb tss-vip-3',
    ]);
  });

  it('plans nothing when the desired table is what is programmed', () => {
    const a = planNft(web(['10.1.0.2']), emptyNftState()).next;
    expect(planNft(web(['10.1.0.2']), a)).toMatchObject({ program: '', ops: 0 });
  });

  it('removes a service with no backends left, and its count chain', () => {
    const a = planNft(web(['10.1.0.2']), emptyNftState()).next;
    expect(lines(planNft(web([]), a).program)).toEqual([
      'delete element ip tss-lb tss-vips { 10.9.0.1 . tcp . 80 }',
      'delete element ip tss-lb tss-vip-slots { 10.9.0.1 . tcp . 80 . 0 }',
      'delete chain ip tss-lb tss-vip-1',
    ]);
  });

  it('publishes an ingress port through the port maps, DNATing to the target port', () => {
    const t = web(['10.1.0.2'], { ingress: [{ protocol: 'tcp', publishedPort: 8080, targetPort: 80, serviceId: 'web' }] });
    const a = planNft(web(['10.1.0.2']), emptyNftState()).next;
    expect(lines(planNft(t, a).program)).toEqual([
      'add chain ip tss-lb tss-ing-1',
      'add rule ip tss-lb tss-ing-1 dnat ip to meta l4proto . th dport . numgen random mod 1 map @tss-port-slots',
      'add element ip tss-lb tss-ports { tcp . 8080 : goto tss-ing-1 }',
      'add element ip tss-lb tss-port-slots { tcp . 8080 . 0 : 10.1.0.2 . 80 }',
    ]);
  });

  it('rebuilds a broken table whole, and teardown deletes the table even when absent', () => {
    const p = planNft(web(['10.1.0.2']), { ...emptyNftState(), table: 'broken' });
    expect(lines(p.program).slice(0, 2)).toEqual(['add table ip tss-lb', 'delete table ip tss-lb']);
    expect(nftTeardown()).toBe('add table ip tss-lb\ndelete table ip tss-lb\n');
  });
});

describe('planned one service at a time', () => {
  // 200 services of 3 backends; service s7 has its backend 10.2.7.1 replaced by 10.3.0.1.
  const big = (replace: boolean): LbTable => ({
    services: Array.from({ length: 200 }, (_, i) => ({
      id: `s${i}`,
      vip: `10.8.${i >> 8}.${i & 255}`,
      ports: [{ protocol: 'tcp' as const, port: 80 }],
      backends: [replace && i === 7 ? '10.3.0.1' : `10.2.${i}.1`, `10.2.${i}.2`, `10.2.${i}.3`].map((ip) => ({ ip })),
    })),
    ingress: [],
  });
  const s7 = () => vipFrontends(big(true).services[7]!);

  it('nft: one backend replaced is one slot rewritten, and the committed state equals a full plan', () => {
    const st = planNft(big(false), emptyNftState()).next;
    const p = planNftChanges(s7(), st);
    expect(lines(p.program)).toEqual([
      'delete element ip tss-lb tss-vip-slots { 10.8.0.7 . tcp . 80 . 0 }',
      'add element ip tss-lb tss-vip-slots { 10.8.0.7 . tcp . 80 . 0 : 10.3.0.1 . 80 }',
    ]);
    p.commit(st);
    expect(planNft(big(true), st).program).toBe('');
  });

  it('nft: removing the last frontend of a count chain deletes the chain, and a new count adds one', () => {
    const st = planNft(web(['10.1.0.2']), emptyNftState()).next;
    const p = planNftChanges(vipFrontends(web(['10.1.0.2', '10.1.0.3']).services[0]!), st);
    expect(lines(p.program)).toEqual([
      'add chain ip tss-lb tss-vip-2',
      'add rule ip tss-lb tss-vip-2 dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @tss-vip-slots',
      'delete element ip tss-lb tss-vips { 10.9.0.1 . tcp . 80 }',
      'add element ip tss-lb tss-vips { 10.9.0.1 . tcp . 80 : goto tss-vip-2 }',
      'add element ip tss-lb tss-vip-slots { 10.9.0.1 . tcp . 80 . 1 : 10.1.0.3 . 80 }',
      'delete chain ip tss-lb tss-vip-1',
    ]);
    p.commit(st);
    expect([...st.chains]).toEqual(['tss-vip-2']);
    expect(planNft(web(['10.1.0.2', '10.1.0.3']), st).program).toBe('');
  });

  it("iptables: one backend replaced rewrites that frontend's chain only, and the committed state equals a full plan", () => {
    const st = planIptables(big(false), emptyIptState()).next;
    const p = planIptablesChanges(s7(), st);
    const chain = iptChainName(s7()[0]!.fe);
    expect(lines(p.program)).toEqual([
      '*nat',
      `:${chain} - [0:0]`,
      `-A ${chain} -p tcp -m statistic --mode random --probability 0.3333333333 -j DNAT --to-destination 10.3.0.1:80`,
      `-A ${chain} -p tcp -m statistic --mode random --probability 0.5000000000 -j DNAT --to-destination 10.2.7.2:80`,
      `-A ${chain} -p tcp -j DNAT --to-destination 10.2.7.3:80`,
      'COMMIT',
    ]);
    p.commit(st);
    expect(planIptables(big(true), st).program).toBe('');
    const gone = planIptablesChanges([{ ...s7()[0]!, targets: [] }], st);
    expect(lines(gone.program)).toEqual([
      '*nat',
      `:${chain} - [0:0]`,
      `-D TSS-SERVICES -d 10.8.0.7/32 -p tcp -m tcp --dport 80 -j ${chain}`,
      `-X ${chain}`,
      'COMMIT',
    ]);
  });

  it('ipvs: one backend replaced is one destination deleted and one added', () => {
    const st = planIpvs(big(false), emptyIpvsState()).next;
    const p = planIpvsChanges(s7(), st);
    expect(lines(p.program)).toEqual(['-d -t 10.8.0.7:80 -r 10.2.7.1:80', '-a -t 10.8.0.7:80 -r 10.3.0.1:80 -m -w 1']);
    p.commit(st);
    expect(planIpvs(big(true), st).program).toBe('');
  });
});

describe('parseNftJson', () => {
  // What `nft -j list table ip tss-lb` printed for web → 10.1.0.2, 10.1.0.3 (rules cut to what the parser reads).
  // web2 (10.9.0.2, every port) → 10.1.0.4, 10.1.0.5. `oldLayout`: the hooks as before every-port VIPs (two rules each).
  const listing = (opts: { dropSlot?: boolean; dropHook?: boolean; dropAnySlot?: boolean; oldLayout?: boolean } = {}) =>
    JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { table: { family: 'ip', name: 'tss-lb', handle: 1 } },
        {
          map: {
            family: 'ip',
            name: 'tss-vips',
            table: 'tss-lb',
            type: ['ipv4_addr', 'inet_proto', 'inet_service'],
            map: 'verdict',
            elem: [[{ concat: ['10.9.0.1', 'tcp', 80] }, { goto: { target: 'tss-vip-2' } }]],
          },
        },
        {
          map: {
            family: 'ip',
            name: 'tss-vip-slots',
            table: 'tss-lb',
            type: ['ipv4_addr', 'inet_proto', 'inet_service', 'integer'],
            map: 'ipv4_addr . inet_service',
            elem: [
              [{ concat: ['10.9.0.1', 'tcp', 80, 0] }, { concat: ['10.1.0.2', 80] }],
              ...(opts.dropSlot ? [] : [[{ concat: ['10.9.0.1', 'tcp', 80, 1] }, { concat: ['10.1.0.3', 80] }]]),
            ],
          },
        },
        {
          map: {
            family: 'ip',
            name: 'tss-vip-any',
            table: 'tss-lb',
            type: 'ipv4_addr',
            map: 'verdict',
            elem: [['10.9.0.2', { goto: { target: 'tss-any-2' } }]],
          },
        },
        {
          map: {
            family: 'ip',
            name: 'tss-any-slots',
            table: 'tss-lb',
            type: ['ipv4_addr', 'integer'],
            map: 'ipv4_addr',
            elem: [[{ concat: ['10.9.0.2', 0] }, '10.1.0.4'], ...(opts.dropAnySlot ? [] : [[{ concat: ['10.9.0.2', 1] }, '10.1.0.5']])],
          },
        },
        { map: { family: 'ip', name: 'tss-ports', table: 'tss-lb', type: ['inet_proto', 'inet_service'], map: 'verdict' } },
        {
          map: {
            family: 'ip',
            name: 'tss-port-slots',
            table: 'tss-lb',
            type: ['inet_proto', 'inet_service', 'integer'],
            map: 'ipv4_addr . inet_service',
          },
        },
        { chain: { family: 'ip', table: 'tss-lb', name: 'tss-vip-2' } },
        { chain: { family: 'ip', table: 'tss-lb', name: 'tss-any-2' } },
        { chain: { family: 'ip', table: 'tss-lb', name: 'tss-prerouting', type: 'nat', hook: 'prerouting' } },
        { chain: { family: 'ip', table: 'tss-lb', name: 'tss-output', type: 'nat', hook: 'output' } },
        {
          rule: {
            family: 'ip',
            table: 'tss-lb',
            chain: 'tss-vip-2',
            expr: [
              {
                dnat: {
                  family: 'ip',
                  addr: { map: { key: { concat: [{ numgen: { mode: 'random', mod: 2, offset: 0 } }] }, data: '@tss-vip-slots' } },
                },
              },
            ],
          },
        },
        {
          rule: {
            family: 'ip',
            table: 'tss-lb',
            chain: 'tss-any-2',
            expr: [
              {
                dnat: {
                  addr: {
                    map: {
                      key: { concat: [{ payload: { protocol: 'ip', field: 'daddr' } }, { numgen: { mode: 'random', mod: 2, offset: 0 } }] },
                      data: '@tss-any-slots',
                    },
                  },
                },
              },
            ],
          },
        },
        { rule: { family: 'ip', table: 'tss-lb', chain: 'tss-prerouting', expr: [{ vmap: { data: '@tss-vips' } }] } },
        ...(opts.oldLayout
          ? []
          : [
              {
                rule: {
                  family: 'ip',
                  table: 'tss-lb',
                  chain: 'tss-prerouting',
                  expr: [
                    { match: { left: { meta: { key: 'l4proto' } }, right: { set: ['tcp', 'udp'] } } },
                    { vmap: { data: '@tss-vip-any' } },
                  ],
                },
              },
            ]),
        ...(opts.dropHook
          ? []
          : [
              {
                rule: {
                  family: 'ip',
                  table: 'tss-lb',
                  chain: 'tss-prerouting',
                  expr: [{ match: { left: { fib: {} } } }, { vmap: { data: '@tss-ports' } }],
                },
              },
            ]),
        { rule: { family: 'ip', table: 'tss-lb', chain: 'tss-output', expr: [{ vmap: { data: '@tss-vips' } }] } },
        ...(opts.oldLayout
          ? []
          : [
              {
                rule: {
                  family: 'ip',
                  table: 'tss-lb',
                  chain: 'tss-output',
                  expr: [
                    { match: { left: { meta: { key: 'l4proto' } }, right: { set: ['tcp', 'udp'] } } },
                    { vmap: { data: '@tss-vip-any' } },
                  ],
                },
              },
            ]),
        {
          rule: {
            family: 'ip',
            table: 'tss-lb',
            chain: 'tss-output',
            expr: [{ match: { left: { fib: {} } } }, { vmap: { data: '@tss-ports' } }],
          },
        },
      ],
    });

  const both = (): LbTable => ({
    services: [...web(['10.1.0.2', '10.1.0.3']).services, anyWeb(['10.1.0.4', '10.1.0.5'], '10.9.0.2').services[0]!],
    ingress: [],
  });

  it('reads frontends, count chains and slots back, so re-planning the same table is empty', () => {
    const st = parseNftJson(listing());
    expect(st.table).toBe('ok');
    expect([...st.chains]).toEqual(['tss-vip-2', 'tss-any-2']);
    expect(st.frontends.get('vip-any 10.9.0.2')).toEqual({
      fe: { kind: 'vip-any', vip: '10.9.0.2' },
      chain: 'tss-any-2',
      slots: ['10.1.0.4', '10.1.0.5'],
    });
    expect(planNft(both(), st).program).toBe('');
  });

  it('repairs a slot deleted by hand with one element add, for a VIP port and for an every-port VIP', () => {
    expect(planNft(both(), parseNftJson(listing({ dropSlot: true }))).program).toBe(
      'add element ip tss-lb tss-vip-slots { 10.9.0.1 . tcp . 80 . 1 : 10.1.0.3 . 80 }\n',
    );
    expect(planNft(both(), parseNftJson(listing({ dropAnySlot: true }))).program).toBe(
      'add element ip tss-lb tss-any-slots { 10.9.0.2 . 1 : 10.1.0.5 }\n',
    );
  });

  it('calls a table with a hook rule missing broken, and an empty listing absent', () => {
    expect(parseNftJson(listing({ dropHook: true })).table).toBe('broken');
    expect(parseNftJson('').table).toBe('absent');
  });

  it('calls a table of the layout before every-port VIPs broken, so the next program rebuilds it', () => {
    // The old layout also lacked the two maps; without the hook rule alone it is broken too.
    expect(parseNftJson(listing({ oldLayout: true })).table).toBe('broken');
    expect(lines(planNft(both(), parseNftJson(listing({ oldLayout: true }))).program).slice(0, 2)).toEqual([
      'add table ip tss-lb',
      'delete table ip tss-lb',
    ]);
  });
});

describe('planIptables', () => {
  const chain = iptChainName({ kind: 'vip', vip: '10.9.0.1', proto: 'tcp', port: 80 });

  it('creates the TSS chains, the four jumps, a dispatch rule and a statistic chain per frontend', () => {
    const p = planIptables(web(['10.1.0.2', '10.1.0.3', '10.1.0.4']), emptyIptState());
    expect(chain).toMatch(/^TSS-SVC-[0-9A-F]{16}$/);
    expect(lines(p.program)).toEqual([
      '*nat',
      ':TSS-SERVICES - [0:0]',
      ':TSS-INGRESS - [0:0]',
      `:${chain} - [0:0]`,
      '-A PREROUTING -j TSS-SERVICES',
      '-A PREROUTING -m addrtype --dst-type LOCAL -j TSS-INGRESS',
      '-A OUTPUT -j TSS-SERVICES',
      '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j TSS-INGRESS',
      `-A TSS-SERVICES -d 10.9.0.1/32 -p tcp -m tcp --dport 80 -j ${chain}`,
      `-A ${chain} -p tcp -m statistic --mode random --probability 0.3333333333 -j DNAT --to-destination 10.1.0.2:80`,
      `-A ${chain} -p tcp -m statistic --mode random --probability 0.5000000000 -j DNAT --to-destination 10.1.0.3:80`,
      `-A ${chain} -p tcp -j DNAT --to-destination 10.1.0.4:80`,
      'COMMIT',
    ]);
  });

  // iptables-save's own text for the table above (probabilities as it prints them).
  const saved = (rules: string[]) =>
    [
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':TSS-INGRESS - [0:0]',
      ':TSS-SERVICES - [0:0]',
      `:${chain} - [0:0]`,
      '-A PREROUTING -j TSS-SERVICES',
      '-A PREROUTING -m addrtype --dst-type LOCAL -j TSS-INGRESS',
      '-A OUTPUT -j TSS-SERVICES',
      '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j TSS-INGRESS',
      `-A TSS-SERVICES -d 10.9.0.1/32 -p tcp -m tcp --dport 80 -j ${chain}`,
      ...rules,
      'COMMIT',
    ].join('\n');
  const full = [
    `-A ${chain} -p tcp -m statistic --mode random --probability 0.33333333349 -j DNAT --to-destination 10.1.0.2:80`,
    `-A ${chain} -p tcp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.1.0.3:80`,
    `-A ${chain} -p tcp -j DNAT --to-destination 10.1.0.4:80`,
  ];

  it('reads iptables-save back so that the same table plans nothing', () => {
    expect(planIptables(web(['10.1.0.2', '10.1.0.3', '10.1.0.4']), parseIptablesSave(saved(full))).program).toBe('');
  });

  it('rewrites only the chain of a frontend whose rule was deleted by hand', () => {
    const p = planIptables(web(['10.1.0.2', '10.1.0.3', '10.1.0.4']), parseIptablesSave(saved([full[0]!, full[2]!])));
    // The two surviving rules keep their order; the missing target takes the last slot.
    expect(lines(p.program)).toEqual([
      '*nat',
      `:${chain} - [0:0]`,
      `-A ${chain} -p tcp -m statistic --mode random --probability 0.3333333333 -j DNAT --to-destination 10.1.0.2:80`,
      `-A ${chain} -p tcp -m statistic --mode random --probability 0.5000000000 -j DNAT --to-destination 10.1.0.4:80`,
      `-A ${chain} -p tcp -j DNAT --to-destination 10.1.0.3:80`,
      'COMMIT',
    ]);
  });

  it('removes a frontend: its dispatch rule by the saved text, then flushes and deletes its chain', () => {
    expect(lines(planIptables(web([]), parseIptablesSave(saved(full))).program)).toEqual([
      '*nat',
      `:${chain} - [0:0]`,
      `-D TSS-SERVICES -d 10.9.0.1/32 -p tcp -m tcp --dport 80 -j ${chain}`,
      `-X ${chain}`,
      'COMMIT',
    ]);
  });

  it('deletes a duplicated jump and stray TSS chains it does not want', () => {
    const st = parseIptablesSave(
      saved(full).replace('COMMIT', '-A OUTPUT -j TSS-SERVICES\nCOMMIT').replace(':TSS-INGRESS', ':TSS-SVC-STALE - [0:0]\n:TSS-INGRESS'),
    );
    expect(lines(planIptables(web(['10.1.0.2', '10.1.0.3', '10.1.0.4']), st).program)).toEqual([
      '*nat',
      ':TSS-SVC-STALE - [0:0]',
      '-D OUTPUT -j TSS-SERVICES',
      '-X TSS-SVC-STALE',
      'COMMIT',
    ]);
  });

  it('publishes an ingress port in TSS-INGRESS with DNAT to the target port, and teardown removes jumps and chains', () => {
    const t = web(['10.1.0.2'], { ingress: [{ protocol: 'udp', publishedPort: 5353, targetPort: 53, serviceId: 'web' }] });
    const ing = iptChainName({ kind: 'ingress', proto: 'udp', port: 5353 });
    const p = planIptables(t, emptyIptState());
    expect(lines(p.program)).toContain(`-A TSS-INGRESS -p udp -m udp --dport 5353 -j ${ing}`);
    expect(lines(p.program)).toContain(`-A ${ing} -p udp -j DNAT --to-destination 10.1.0.2:53`);
    const st = parseIptablesSave(saved(full));
    expect(lines(iptTeardown(st))).toEqual([
      '*nat',
      ':TSS-INGRESS - [0:0]',
      ':TSS-SERVICES - [0:0]',
      `:${chain} - [0:0]`,
      '-D PREROUTING -j TSS-SERVICES',
      '-D PREROUTING -m addrtype --dst-type LOCAL -j TSS-INGRESS',
      '-D OUTPUT -j TSS-SERVICES',
      '-D OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j TSS-INGRESS',
      '-X TSS-INGRESS',
      '-X TSS-SERVICES',
      `-X ${chain}`,
      'COMMIT',
    ]);
    expect(iptTeardown(emptyIptState())).toBe('');
  });
});

describe('every-port VIPs (a service with ports: [])', () => {
  const three = ['10.1.0.2', '10.1.0.3', '10.1.0.4'];
  const fronts = (ips: string[]) => vipFrontends(anyWeb(ips).services[0]!);

  it('validation keeps an every-port VIP to one service, and allows distinct VIPs', () => {
    const two = (ports: LbTable['services'][0]['ports']): LbTable => ({
      services: [...web(['10.1.0.2']).services, { id: 'b', vip: '10.9.0.1', ports, backends: [] }],
      ingress: [],
    });
    expect(() => validateTable(two([]))).toThrow(
      'services[1].vip: 10.9.0.1 is already used by service web, and a VIP forwarding every port (ports: []) belongs to one service',
    );
    expect(() =>
      validateTable({ services: [...anyWeb(three).services, ...two([{ protocol: 'udp', port: 53 }]).services.slice(1)], ingress: [] }),
    ).toThrow('services[1].vip: 10.9.0.1 is already used by service web-any');
    expect(() => validateTable({ services: [...web(three).services, ...anyWeb(three, '10.9.0.2').services], ingress: [] })).not.toThrow();
  });

  it('nft: one dispatch element keyed by the VIP and slots holding an address only, in one transaction', () => {
    const p = planNft(anyWeb(three.slice(0, 2)), emptyNftState());
    for (const hook of ['prerouting priority dstnat', 'output priority -100'])
      expect(p.program).toContain(
        `${hook}; policy accept;\n\t\tip daddr . meta l4proto . th dport vmap @tss-vips\n\t\tmeta l4proto { tcp, udp } ip daddr vmap @tss-vip-any\n`,
      );
    expect(lines(p.program).slice(-4)).toEqual([
      'add chain ip tss-lb tss-any-2',
      'add rule ip tss-lb tss-any-2 dnat ip to ip daddr . numgen random mod 2 map @tss-any-slots',
      'add element ip tss-lb tss-vip-any { 10.9.0.1 : goto tss-any-2 }',
      'add element ip tss-lb tss-any-slots { 10.9.0.1 . 0 : 10.1.0.2, 10.9.0.1 . 1 : 10.1.0.3 }',
    ]);
    expect(p.ops).toBe(5); // table rebuild, count chain, three elements
  });

  it('nft: one backend replaced is one slot rewritten, and the committed state equals a full plan', () => {
    const st = planNft(anyWeb(three), emptyNftState()).next;
    const p = planNftChanges(fronts(['10.1.0.9', '10.1.0.3', '10.1.0.4']), st);
    expect(lines(p.program)).toEqual([
      'delete element ip tss-lb tss-any-slots { 10.9.0.1 . 0 }',
      'add element ip tss-lb tss-any-slots { 10.9.0.1 . 0 : 10.1.0.9 }',
    ]);
    p.commit(st);
    expect(planNft(anyWeb(['10.1.0.9', '10.1.0.3', '10.1.0.4']), st).program).toBe('');
  });

  it('nft: a removed backend moves the last slot into its hole and the VIP to the smaller count chain', () => {
    const st = planNft(anyWeb(three), emptyNftState()).next;
    const p = planNftChanges(fronts(['10.1.0.3', '10.1.0.4']), st);
    expect(lines(p.program)).toEqual([
      'add chain ip tss-lb tss-any-2',
      'add rule ip tss-lb tss-any-2 dnat ip to ip daddr . numgen random mod 2 map @tss-any-slots',
      'delete element ip tss-lb tss-vip-any { 10.9.0.1 }',
      'delete element ip tss-lb tss-any-slots { 10.9.0.1 . 0, 10.9.0.1 . 2 }',
      'add element ip tss-lb tss-vip-any { 10.9.0.1 : goto tss-any-2 }',
      'add element ip tss-lb tss-any-slots { 10.9.0.1 . 0 : 10.1.0.4 }',
      'delete chain ip tss-lb tss-any-3',
    ]);
    p.commit(st);
    expect([...st.chains]).toEqual(['tss-any-2']);
    expect(planNft(anyWeb(['10.1.0.3', '10.1.0.4']), st).program).toBe('');
  });

  it('nft: removing the service deletes its elements and its count chain; count chains are not shared across kinds', () => {
    const t: LbTable = { services: [...web(three).services, ...anyWeb(three, '10.9.0.2').services], ingress: [] };
    const st = planNft(t, emptyNftState()).next;
    expect([...st.chains].sort()).toEqual(['tss-any-3', 'tss-vip-3']);
    const p = planNftChanges(vipFrontends(anyWeb([], '10.9.0.2').services[0]!), st);
    expect(lines(p.program)).toEqual([
      'delete element ip tss-lb tss-vip-any { 10.9.0.2 }',
      'delete element ip tss-lb tss-any-slots { 10.9.0.2 . 0, 10.9.0.2 . 1, 10.9.0.2 . 2 }',
      'delete chain ip tss-lb tss-any-3',
    ]);
    p.commit(st);
    expect(planNft(web(three), st).program).toBe('');
  });

  it('nft: a service switched from listed ports to every port swaps its elements in one program', () => {
    const st = planNft(web(['10.1.0.2']), emptyNftState()).next;
    const explicit = vipFrontends(web(['10.1.0.2']).services[0]!).map((f) => ({ ...f, targets: [] }));
    const p = planNftChanges([...fronts(['10.1.0.2']), ...explicit], st);
    expect(lines(p.program)).toEqual([
      'add chain ip tss-lb tss-any-1',
      'add rule ip tss-lb tss-any-1 dnat ip to ip daddr . numgen random mod 1 map @tss-any-slots',
      'delete element ip tss-lb tss-vips { 10.9.0.1 . tcp . 80 }',
      'delete element ip tss-lb tss-vip-slots { 10.9.0.1 . tcp . 80 . 0 }',
      'add element ip tss-lb tss-vip-any { 10.9.0.1 : goto tss-any-1 }',
      'add element ip tss-lb tss-any-slots { 10.9.0.1 . 0 : 10.1.0.2 }',
      'delete chain ip tss-lb tss-vip-1',
    ]);
  });

  const chain = iptChainName({ kind: 'vip-any', vip: '10.9.0.1' });
  const dispatch = [`-A TSS-SERVICES -d 10.9.0.1/32 -p tcp -j ${chain}`, `-A TSS-SERVICES -d 10.9.0.1/32 -p udp -j ${chain}`];

  it('iptables: two dispatch rules (tcp, udp) without a port, and a chain DNATing to addresses only', () => {
    expect(chain).toMatch(/^TSS-ANY-[0-9A-F]{16}$/);
    const p = planIptables(anyWeb(three), emptyIptState());
    expect(lines(p.program)).toEqual([
      '*nat',
      ':TSS-SERVICES - [0:0]',
      ':TSS-INGRESS - [0:0]',
      `:${chain} - [0:0]`,
      ...iptJumps,
      ...dispatch,
      `-A ${chain} -m statistic --mode random --probability 0.3333333333 -j DNAT --to-destination 10.1.0.2`,
      `-A ${chain} -m statistic --mode random --probability 0.5000000000 -j DNAT --to-destination 10.1.0.3`,
      `-A ${chain} -j DNAT --to-destination 10.1.0.4`,
      'COMMIT',
    ]);
  });

  it('iptables: one backend replaced rewrites the chain only; removing the service deletes both dispatch rules and the chain', () => {
    const st = planIptables(anyWeb(three), emptyIptState()).next;
    const p = planIptablesChanges(fronts(['10.1.0.2', '10.1.0.4']), st);
    expect(lines(p.program)).toEqual([
      '*nat',
      `:${chain} - [0:0]`,
      `-A ${chain} -m statistic --mode random --probability 0.5000000000 -j DNAT --to-destination 10.1.0.2`,
      `-A ${chain} -j DNAT --to-destination 10.1.0.4`,
      'COMMIT',
    ]);
    p.commit(st);
    expect(planIptables(anyWeb(['10.1.0.2', '10.1.0.4']), st).program).toBe('');
    const gone = planIptablesChanges(fronts([]), st);
    expect(lines(gone.program)).toEqual([
      '*nat',
      `:${chain} - [0:0]`,
      ...dispatch.map((r) => r.replace('-A', '-D')),
      `-X ${chain}`,
      'COMMIT',
    ]);
    gone.commit(st);
    expect(st.dispatch).toEqual([...iptJumps]);
    expect(planIptables(anyWeb([]), st).program).toBe('');
  });

  // iptables-save's text for anyWeb(three) (as printed by iptables 1.8.9 here).
  const saved = (rules: string[], disp = dispatch) =>
    [
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      `:${chain} - [0:0]`,
      ':TSS-INGRESS - [0:0]',
      ':TSS-SERVICES - [0:0]',
      ...rules,
      ...iptJumps,
      ...disp,
      'COMMIT',
    ].join('\n');
  const full = [
    `-A ${chain} -m statistic --mode random --probability 0.33333333349 -j DNAT --to-destination 10.1.0.2`,
    `-A ${chain} -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.1.0.3`,
    `-A ${chain} -j DNAT --to-destination 10.1.0.4`,
  ];

  it('iptables: reads the chain back once (two dispatch rules), repairs a deleted rule or dispatch rule, and tears it down', () => {
    const st = parseIptablesSave(saved(full));
    expect([...st.frontends.values()]).toEqual([{ fe: { kind: 'vip-any', vip: '10.9.0.1' }, chain, slots: three, rulesOk: true }]);
    expect(planIptables(anyWeb(three), st).program).toBe('');
    expect(lines(planIptables(anyWeb(three), parseIptablesSave(saved([full[0]!, full[2]!]))).program)).toEqual([
      '*nat',
      `:${chain} - [0:0]`,
      `-A ${chain} -m statistic --mode random --probability 0.3333333333 -j DNAT --to-destination 10.1.0.2`,
      `-A ${chain} -m statistic --mode random --probability 0.5000000000 -j DNAT --to-destination 10.1.0.4`,
      `-A ${chain} -j DNAT --to-destination 10.1.0.3`,
      'COMMIT',
    ]);
    expect(planIptables(anyWeb(three), parseIptablesSave(saved(full, dispatch.slice(0, 1)))).program).toBe(
      `*nat\n${dispatch[1]}\nCOMMIT\n`,
    );
    // A rule that names a protocol is not one we write for this chain: rewritten.
    expect(
      parseIptablesSave(saved([full[0]!, full[1]!, `-A ${chain} -p tcp -j DNAT --to-destination 10.1.0.4`])).frontends.get(
        'vip-any 10.9.0.1',
      )!.rulesOk,
    ).toBe(false);
    expect(lines(iptTeardown(st))).toEqual([
      '*nat',
      `:${chain} - [0:0]`,
      ':TSS-INGRESS - [0:0]',
      ':TSS-SERVICES - [0:0]',
      ...iptJumps.map((r) => r.replace('-A', '-D')),
      `-X ${chain}`,
      '-X TSS-INGRESS',
      '-X TSS-SERVICES',
      'COMMIT',
    ]);
  });

  it('ipvs: an every-port VIP is a firewall-mark service whose destinations keep the port, marked by VIP in the mark table', () => {
    const p = planIpvs({ services: [...web(['10.1.0.2']).services, ...anyWeb(three, '10.9.0.2').services], ingress: [] }, emptyIpvsState());
    const m = MARK_BASE + 1;
    expect(lines(p.program)).toEqual([
      '-A -t 10.9.0.1:80 -s wrr',
      '-a -t 10.9.0.1:80 -r 10.1.0.2:80 -m -w 1',
      `-A -f ${m} -s wrr`,
      `-a -f ${m} -r 10.1.0.2:0 -m -w 1`,
      `-a -f ${m} -r 10.1.0.3:0 -m -w 1`,
      `-a -f ${m} -r 10.1.0.4:0 -m -w 1`,
    ]);
    expect(p.marks).toContain('type ipv4_addr : mark\n\t\telements = { 10.9.0.2 : 0x74530001 }');
    expect(p.marks).toContain('meta l4proto { tcp, udp } meta mark set ip daddr map @tss-vip-marks');
    expect(p.marks).not.toContain('delete table');
    // One service at a time against an empty namespace: the table comes with the first mark; the result equals the full plan.
    const st = emptyIpvsState();
    const c = planIpvsChanges(fronts(three), st);
    expect(lines(c.marks).slice(-1)).toEqual([`add element ip tss-lbmark tss-vip-marks { 10.9.0.1 : 0x74530001 }`]);
    expect(lines(c.program)).toEqual([
      `-A -f ${m} -s wrr`,
      `-a -f ${m} -r 10.1.0.2:0 -m -w 1`,
      `-a -f ${m} -r 10.1.0.3:0 -m -w 1`,
      `-a -f ${m} -r 10.1.0.4:0 -m -w 1`,
    ]);
    c.commit(st);
    expect(st).toEqual(planIpvs(anyWeb(three), emptyIpvsState()).next);
    // Removed: its service, then its mark element.
    const gone = planIpvsChanges(fronts([]), st);
    expect(lines(gone.program)).toEqual([`-D -f ${m}`]);
    expect(lines(gone.marks)).toEqual(['delete element ip tss-lbmark tss-vip-marks { 10.9.0.1 }']);
    gone.commit(st);
    expect(st.marks.size).toBe(0);
    expect(st.services.size).toBe(0);
  });

  it('ipvs: marks stay with their frontend; a new one takes the lowest free mark, never one given up in the same plan', () => {
    const two = (vips: string[]): LbTable => ({
      services: vips.map((vip, i) => ({ id: `s${i}`, vip, ports: [], backends: [{ ip: '10.1.0.2' }] })),
      ingress: [],
    });
    const st = planIpvs(two(['10.9.0.1', '10.9.0.2']), emptyIpvsState()).next;
    expect([...st.marks.values()].map((x) => x.mark - MARK_BASE)).toEqual([1, 2]);
    // 10.9.0.1 goes and 10.9.0.3 comes in one plan: 10.9.0.2 keeps mark 2, the new VIP gets 3, not the freed 1.
    const p = planIpvs(two(['10.9.0.2', '10.9.0.3']), st);
    expect(lines(p.marks)).toEqual([
      'delete element ip tss-lbmark tss-vip-marks { 10.9.0.1 }',
      'add element ip tss-lbmark tss-vip-marks { 10.9.0.3 : 0x74530003 }',
    ]);
    expect(lines(p.program)).toEqual([
      `-D -f ${MARK_BASE + 1}`,
      `-A -f ${MARK_BASE + 3} -s wrr`,
      `-a -f ${MARK_BASE + 3} -r 10.1.0.2:0 -m -w 1`,
    ]);
    // Later, mark 1 is free again.
    const q = planIpvs(two(['10.9.0.2', '10.9.0.3', '10.9.0.4']), p.next);
    expect(lines(q.marks)).toEqual(['add element ip tss-lbmark tss-vip-marks { 10.9.0.4 : 0x74530001 }']);
  });
});

describe('planIpvs (the ipvsadm-restore input)', () => {
  it('adds a wrr service per VIP port with masquerading destinations, and an ingress port as a firewall-mark service to the target port', () => {
    const t = web(['10.1.0.2', '10.1.0.3'], { ingress: [{ protocol: 'tcp', publishedPort: 8080, targetPort: 80, serviceId: 'web' }] });
    const p = planIpvs(t, emptyIpvsState());
    const m = MARK_BASE + 1;
    expect(lines(p.program)).toEqual([
      '-A -t 10.9.0.1:80 -s wrr',
      '-a -t 10.9.0.1:80 -r 10.1.0.2:80 -m -w 1',
      '-a -t 10.9.0.1:80 -r 10.1.0.3:80 -m -w 1',
      `-A -f ${m} -s wrr`,
      `-a -f ${m} -r 10.1.0.2:80 -m -w 1`,
      `-a -f ${m} -r 10.1.0.3:80 -m -w 1`,
    ]);
    expect(p.marks).toContain('type inet_proto . inet_service : mark\n\t\telements = { tcp . 8080 : 0x74530001 }');
    expect(p.marks).toContain('fib daddr type local ip daddr != 127.0.0.0/8 meta mark set meta l4proto . th dport map @tss-port-marks');
    expect(ipvsTeardown(p.next)).toEqual({
      program: ['-D -t 10.9.0.1:80', `-D -f ${m}`, ''].join('\n'),
      marks: 'delete table ip tss-lbmark\n',
    });
    expect(ipvsTeardown(emptyIpvsState())).toEqual({ program: '', marks: '' });
  });

  it('parses fwmark services and the mark table back, so the same table plans nothing; a changed mark table is rebuilt whole', () => {
    const t = web(['10.1.0.2'], { ingress: [{ protocol: 'udp', publishedPort: 5353, targetPort: 53, serviceId: 'web' }] });
    const m = MARK_BASE + 1;
    const saved = [
      '-A -t 10.9.0.1:80 -s wrr',
      '-a -t 10.9.0.1:80 -r 10.1.0.2:80 -m -w 1',
      `-A -f ${m} -s wrr`,
      `-a -f ${m} -r 10.1.0.2:53 -m -w 1`,
      '',
    ].join('\n');
    const json = (ruleCount: number) =>
      JSON.stringify({
        nftables: [
          { table: { family: 'ip', name: 'tss-lbmark' } },
          { map: { family: 'ip', name: 'tss-vip-marks', table: 'tss-lbmark', type: 'ipv4_addr', map: 'mark' } },
          {
            map: {
              family: 'ip',
              name: 'tss-port-marks',
              table: 'tss-lbmark',
              type: ['inet_proto', 'inet_service'],
              map: 'mark',
              elem: [[{ concat: ['udp', 5353] }, m]],
            },
          },
          { chain: { family: 'ip', table: 'tss-lbmark', name: 'tss-mark-prerouting', type: 'filter', hook: 'prerouting', prio: -150 } },
          { chain: { family: 'ip', table: 'tss-lbmark', name: 'tss-mark-output', type: 'route', hook: 'output', prio: -150 } },
          ...Array.from({ length: ruleCount }, (_, i) => ({
            rule: { family: 'ip', table: 'tss-lbmark', chain: i % 2 ? 'tss-mark-output' : 'tss-mark-prerouting', expr: [] },
          })),
        ],
      });
    const st = parseMarkTable(json(4), parseIpvsSave(saved));
    expect(st.markTable).toBe('ok');
    expect(planIpvs(t, st)).toMatchObject({ program: '', marks: '', ops: 0 });
    // A hook rule deleted by hand: the table is rebuilt in one transaction, marks given afresh.
    const broken = parseMarkTable(json(3), parseIpvsSave(saved));
    expect(broken.markTable).toBe('broken');
    const p = planIpvs(t, broken);
    expect(lines(p.marks).slice(0, 2)).toEqual(['add table ip tss-lbmark', 'delete table ip tss-lbmark']);
    expect(p.marks).toContain('elements = { udp . 5353 : 0x74530001 }');
    expect(parseMarkTable('').markTable).toBe('absent');
    // Another program's firewall-mark service is not ours: never read, so never deleted.
    expect(planIpvs(t, parseMarkTable(json(4), parseIpvsSave(`${saved}-A -f 7 -s rr\n-a -f 7 -r 10.5.0.1:0 -m -w 1\n`))).program).toBe('');
  });

  it('parses ipvsadm -S -n and changes only what differs: a drained weight, a gone backend, a gone service', () => {
    const saved = [
      '-A -t 10.9.0.1:80 -s wrr',
      '-a -t 10.9.0.1:80 -r 10.1.0.2:80 -m -w 1',
      '-a -t 10.9.0.1:80 -r 10.1.0.3:80 -m -w 1',
      '-A -u 10.9.0.9:53 -s rr',
      '-a -u 10.9.0.9:53 -r 10.1.0.9:53 -m -w 1',
      '',
    ].join('\n');
    const t: LbTable = {
      services: [{ id: 'web', vip: '10.9.0.1', ports: [{ protocol: 'tcp', port: 80 }], backends: [{ ip: '10.1.0.2', weight: 0 }] }],
      ingress: [],
    };
    expect(lines(planIpvs(t, parseIpvsSave(saved)).program)).toEqual([
      '-D -u 10.9.0.9:53',
      '-d -t 10.9.0.1:80 -r 10.1.0.3:80',
      '-e -t 10.9.0.1:80 -r 10.1.0.2:80 -m -w 0',
    ]);
    expect(planIpvs(web(['10.1.0.2', '10.1.0.3']), parseIpvsSave(saved.split('\n').slice(0, 3).join('\n'))).program).toBe('');
  });
});

describe('chooseLbBackend', () => {
  const det = {
    nft: { ok: true as const },
    iptables: { ok: true as const },
    ipvs: { ok: false as const, reason: 'the kernel has no IPVS (/proc/net/ip_vs is missing)' },
  };
  it('prefers nft, honours an override, and refuses an override that cannot run with the reason', () => {
    expect(chooseLbBackend(det)).toBe('nft');
    expect(chooseLbBackend({ ...det, nft: { ok: false, reason: 'x' } })).toBe('iptables');
    expect(chooseLbBackend(det, 'iptables')).toBe('iptables');
    expect(() => chooseLbBackend(det, 'ipvs')).toThrow(
      'lbBackend ipvs cannot run here: the kernel has no IPVS (/proc/net/ip_vs is missing); use nft or iptables',
    );
    expect(() => chooseLbBackend(det, 'bpf')).toThrow('lbBackend must be one of nft, iptables, ipvs (got "bpf")');
  });
});
