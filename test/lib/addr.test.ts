// Node addresses: the IPv4 check the managers apply at join and in every
// session hello, and --advertise-addr resolution at daemon start (interface
// names and host names to IPv4), with hostile and malformed inputs.
import { describe, expect, it } from 'vitest';
import { nodeAddrError, parseNodeAddr, resolveAdvertiseAddr } from '../../lib/addr.js';
import { clusterCommands } from '../../cli/cluster.js';
import { runCommand } from '../cli/run-command.js';
import { errorOf, rejectionOf } from '../errors.js';

describe('node address check', () => {
  it('accepts an IPv4 address with or without a port', () => {
    expect(parseNodeAddr('addr', '192.168.1.10')).toEqual({ ip: '192.168.1.10' });
    expect(parseNodeAddr('addr', '10.0.0.1:4242')).toEqual({ ip: '10.0.0.1', port: 4242 });
    expect(parseNodeAddr('addr', '127.0.0.1:1', { port: 'required' })).toEqual({ ip: '127.0.0.1', port: 1 });
  });

  it.each([
    ['', /empty/],
    ['node1.example.com:4242', /host name is not an address/],
    ['node1', /host name is not an address/],
    ['[::1]:4242', /IPv6/],
    ['fe80::1', /IPv6/],
    ['256.1.1.1', /not an IPv4 address/],
    ['01.2.3.4', /not an IPv4 address/],
    ['1.2.3', /not an IPv4 address/],
    ['1.2.3.4:0', /port "0"/],
    ['1.2.3.4:65536', /port "65536"/],
    ['1.2.3.4:42a', /port "42a"/],
    ['1.2.3.4 ', /not an IPv4 address/],
    ['0.0.0.0:4242', /unspecified/],
    ['224.0.0.1', /multicast/],
    ['255.255.255.255', /broadcast/],
    ['1.2.3.4:80\n', /port/],
  ])('refuses %j, naming the field', (value, why) => {
    const e = errorOf(() => parseNodeAddr('hello.addr', value));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/^hello\.addr must be an IPv4 address/);
    expect(e.message).toMatch(why);
  });

  it('refuses a megabyte of text quickly, quoting only its start', () => {
    const big = '1'.repeat(1 << 20);
    const t = performance.now();
    const e = nodeAddrError('addr', big)!;
    expect(performance.now() - t).toBeLessThan(50);
    expect(e.message).toMatch(/longer than 64 characters/);
    expect(e.message.length).toBeLessThan(400);
  });

  it('enforces a required or forbidden port', () => {
    expect(errorOf(() => parseNodeAddr('addr', '10.0.0.1', { port: 'required' })).message).toMatch(/port is missing/);
    expect(errorOf(() => parseNodeAddr('addr', '10.0.0.1:4242', { port: 'forbidden' })).message).toMatch(/without a port/);
  });

  it('answers undefined for a usable address and the error for one that is not', () => {
    expect(nodeAddrError('addr', '10.1.2.3:4242')).toBeUndefined();
    expect(nodeAddrError('addr', 'evil.example')?.code).toBe('INVALID_ARGUMENT');
  });
});

describe('--advertise-addr resolution', () => {
  const ifs = () => ({
    eth0: [
      { family: 'IPv4', address: '192.168.5.7', internal: false },
      { family: 'IPv6', address: 'fe80::1', internal: false },
    ],
    bond0: [
      { family: 'IPv4', address: '10.0.0.1', internal: false },
      { family: 'IPv4', address: '10.0.0.2', internal: false },
    ],
    v6only: [{ family: 'IPv6', address: 'fe80::2', internal: false }],
  });
  const lookup = async (host: string): Promise<string[]> => {
    if (host === 'node1.example') return ['192.168.9.9'];
    if (host === 'multi.example') return ['192.168.9.1', '192.168.9.2'];
    if (host === 'six.example') return ['fd00::1'];
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  };
  const resolve = (v: string) => resolveAdvertiseAddr('--advertise-addr', v, { lookup, interfaces: ifs });

  it('keeps an IPv4 address and its port as given', async () => {
    expect(await resolve('192.168.1.10')).toBe('192.168.1.10');
    expect(await resolve('192.168.1.10:4343')).toBe('192.168.1.10:4343');
  });

  it('turns an interface name into its one IPv4 address, keeping the port', async () => {
    expect(await resolve('eth0')).toBe('192.168.5.7');
    expect(await resolve('eth0:4243')).toBe('192.168.5.7:4243');
  });

  it('refuses an interface with several IPv4 addresses or none, naming them', async () => {
    expect((await rejectionOf(resolve('bond0'))).message).toMatch(
      /--advertise-addr bond0: .*more than one IPv4 address \(10\.0\.0\.1, 10\.0\.0\.2\)/,
    );
    expect((await rejectionOf(resolve('v6only'))).message).toMatch(/--advertise-addr v6only: the interface has no IPv4 address/);
  });

  it('resolves a host name to its IPv4 address once', async () => {
    expect(await resolve('node1.example:4242')).toBe('192.168.9.9:4242');
  });

  it('refuses a host name that does not resolve, resolves to several addresses or to IPv6 only', async () => {
    const nx = await rejectionOf(resolve('nowhere.example'));
    expect(nx.code).toBe('USAGE');
    expect(nx.message).toMatch(/^--advertise-addr nowhere\.example: the name does not resolve to an IPv4 address \(ENOTFOUND\)/);
    expect((await rejectionOf(resolve('multi.example'))).message).toMatch(/several IPv4 addresses/);
    expect((await rejectionOf(resolve('six.example'))).message).toMatch(/no IPv4 address/);
  });

  it('refuses IPv6, garbage, bad ports and unusable addresses, naming the flag', async () => {
    for (const [v, why] of [
      ['::1', /IPv6/],
      ['[::1]:4242', /IPv6/],
      ['not an address!', /not an IPv4 address, a host name or an interface/],
      ['eth0:99999', /port from 1 to 65535/],
      ['300.1.2.3', /not an IPv4 address, a host name/],
      ['0.0.0.0', /unspecified/],
      ['x'.repeat(5000), /characters long/],
    ] as const) {
      const e = await rejectionOf(resolve(v));
      expect(e.message).toMatch(/^--advertise-addr/);
      expect(e.message).toMatch(why);
    }
  });

  it('resolves the loopback interface and localhost for real', async () => {
    expect(await resolveAdvertiseAddr('--advertise-addr', 'lo')).toBe('127.0.0.1');
    expect(await resolveAdvertiseAddr('--advertise-addr', 'localhost:4243')).toMatch(/^127\.\d+\.\d+\.\d+:4243$/);
  });
});

describe('tsswarm daemon --advertise-addr', () => {
  const groups = Object.fromEntries(clusterCommands.map((c) => [c.name, c]));

  it('refuses an address it cannot resolve before starting anything', async () => {
    const r = await runCommand(groups, '/tmp/tss-addr-test-no-daemon.sock', [
      'daemon',
      '--state-dir',
      '/tmp/tss-addr-test-never-made',
      '--advertise-addr',
      'no_such_host!',
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^tsswarm: --advertise-addr "no_such_host!" is not an IPv4 address, a host name or an interface of this host/);
  });

  it('refuses an IPv6 address read from the config file, naming the file key', async () => {
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const dir = mkdtempSync('/tmp/tss-addr-test-');
    try {
      writeFileSync(`${dir}/daemon.json`, JSON.stringify({ advertiseAddr: 'fd00::7' }));
      const r = await runCommand(groups, `${dir}/none.sock`, ['daemon', '--config', `${dir}/daemon.json`, '--state-dir', `${dir}/state`]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        new RegExp(`^tsswarm: "advertiseAddr" in ${dir}/daemon\\.json "fd00::7": IPv6 addresses are not supported yet`),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
