// agent/dns/resolvconf.ts: the host's resolv.conf read for upstreams, and the
// file a container gets.
import { describe, expect, it } from 'vitest';
import {
  bridgeResolvConf,
  containerResolvConf,
  hostResolvConfForBridge,
  parseResolvConf,
  upstreamsFrom,
} from '../../../agent/dns/resolvconf.js';

describe('host resolv.conf', () => {
  it('reads nameservers, the last search line and options, skipping comments and junk', () => {
    const conf = parseResolvConf(
      [
        '# generated',
        'nameserver 10.255.255.53',
        'nameserver not-an-ip',
        '; comment',
        'domain old.example',
        'search a.example b.example',
        'nameserver fe80::1%eth0',
        'options edns0 timeout:2   # trailing',
        'options rotate',
      ].join('\n'),
    );
    expect(conf).toEqual({
      nameservers: ['10.255.255.53', 'fe80::1%eth0'],
      search: ['a.example', 'b.example'],
      options: ['edns0', 'timeout:2', 'rotate'],
    });
  });

  it('upstreams leave out 127.0.0.11 (it would loop) and keep at most three, on port 53', () => {
    const conf = parseResolvConf(
      'nameserver 127.0.0.11\nnameserver 127.0.0.53\nnameserver 1.1.1.1\nnameserver 8.8.8.8\nnameserver 9.9.9.9\n',
    );
    expect(upstreamsFrom(conf)).toEqual([
      { address: '127.0.0.53', port: 53 },
      { address: '1.1.1.1', port: 53 },
      { address: '8.8.8.8', port: 53 },
    ]);
  });
});

describe('container resolv.conf', () => {
  it('points at 127.0.0.11 with ndots:0', () => {
    expect(containerResolvConf()).toBe(
      '# written by tsswarm: the embedded DNS server answers service names and forwards the rest\nnameserver 127.0.0.11\noptions ndots:0\n',
    );
  });

  it('carries search domains and extra options, and never a second ndots', () => {
    const text = containerResolvConf({ search: ['corp.example'], options: ['ndots:5', 'timeout:2'] });
    expect(text.split('\n').slice(1)).toEqual(['nameserver 127.0.0.11', 'search corp.example', 'options ndots:0 timeout:2', '']);
  });
});

describe("default-bridge resolv.conf (Docker's bridge network: no embedded server)", () => {
  it("keeps the host's IPv4 resolvers, search domains and options, at most three resolvers", () => {
    const conf = parseResolvConf(
      'nameserver 10.255.255.53\nnameserver 1.1.1.1\nnameserver 9.9.9.9\nnameserver 8.8.8.8\nsearch corp.example\noptions edns0 timeout:2\n',
    );
    expect(bridgeResolvConf(conf).split('\n').slice(1)).toEqual([
      'nameserver 10.255.255.53',
      'nameserver 1.1.1.1',
      'nameserver 9.9.9.9',
      'search corp.example',
      'options edns0 timeout:2',
      '',
    ]);
  });

  it('leaves out loopback resolvers (systemd-resolved answers only in the host namespace) and IPv6 ones', () => {
    const conf = parseResolvConf('nameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver 10.0.0.2\nnameserver ::1\n');
    expect(
      bridgeResolvConf(conf)
        .split('\n')
        .filter((l) => l.startsWith('nameserver')),
    ).toEqual(['nameserver 10.0.0.2']);
  });

  it("falls back to Docker's public defaults when no resolver is left, and says so", () => {
    const text = bridgeResolvConf(parseResolvConf('nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n'));
    expect(text).toMatch(/^# written by tsswarm: the host has no resolver a container can reach/);
    expect(text.split('\n').slice(1)).toEqual(['nameserver 8.8.8.8', 'nameserver 8.8.4.4', 'search lan', 'options edns0 trust-ad', '']);
    expect(bridgeResolvConf(parseResolvConf(''))).toContain('nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
  });

  it('behind systemd-resolved, gives the servers its stub forwards to, as Docker reads /run/systemd/resolve/resolv.conf', () => {
    const etc = 'nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n';
    const resolved = '# upstreams\nnameserver 192.168.1.1\nnameserver 10.0.0.53\nsearch lan corp\n';
    expect(bridgeResolvConf(hostResolvConfForBridge(etc, resolved)).split('\n').slice(1)).toEqual([
      'nameserver 192.168.1.1',
      'nameserver 10.0.0.53',
      'search lan corp',
      '',
    ]);
    // No such file, or one naming nothing reachable: the stub's file, hence Docker's public defaults.
    expect(hostResolvConfForBridge(etc, undefined)).toEqual(parseResolvConf(etc));
    expect(hostResolvConfForBridge(etc, 'nameserver 127.0.0.1\n')).toEqual(parseResolvConf(etc));
    // A host file with a reachable server, or no stub, is used as it is.
    const mixed = 'nameserver 127.0.0.53\nnameserver 10.1.2.3\n';
    expect(hostResolvConfForBridge(mixed, resolved)).toEqual(parseResolvConf(mixed));
    expect(hostResolvConfForBridge('nameserver 127.0.0.1\n', resolved)).toEqual(parseResolvConf('nameserver 127.0.0.1\n'));
  });
});
