// The pure allocators: IPv4 parsing, subnets carved from the default pool
// without overlaps, addresses handed out round-robin and never twice while
// held, VXLAN ids from 4096, published ports from 30000-32767.
import { describe, expect, it } from 'vitest';
import {
  AddressPool,
  AllocationError,
  DEFAULT_POOL,
  formatCidr,
  formatIp,
  IntPool,
  parseCidr,
  parseIp,
  portPool,
  SubnetPool,
  vniPool,
} from '../../../manager/allocator/index.js';
import { thrownMessage } from '../../errors.js';

const msg = thrownMessage;

describe('ipnet', () => {
  it('parses and formats IPv4 addresses and subnets', () => {
    expect(formatIp(parseIp('x', '10.0.9.1'))).toBe('10.0.9.1');
    expect(formatIp(parseIp('x', '255.255.255.255'))).toBe('255.255.255.255');
    expect(formatCidr(parseCidr('x', '192.168.4.0/22'))).toBe('192.168.4.0/22');
  });

  it('refuses malformed addresses and subnets naming the field', () => {
    expect(msg(() => parseIp('--gateway', '10.0.0.256'))).toMatch(/^--gateway "10.0.0.256" is not an IPv4 address/);
    expect(msg(() => parseCidr('--subnet', '10.0.0.0'))).toMatch(/^--subnet "10.0.0.0" is not an IPv4 subnet/);
    expect(msg(() => parseCidr('--subnet', '10.1.2.3/24'))).toMatch(/host bits set: write the network address, 10.1.2.0\/24/);
    expect(msg(() => parseCidr('--subnet', '10.0.0.0/31', { maxBits: 29 }))).toMatch(/from \/0 to \/29/);
  });
});

describe('SubnetPool', () => {
  it('carves consecutive /24s from 10.0.0.0/8 by default', () => {
    const p = new SubnetPool();
    expect(formatCidr(p.allocate('a'))).toBe('10.0.0.0/24');
    expect(formatCidr(p.allocate('b'))).toBe('10.0.1.0/24');
  });

  it('never hands out a subnet overlapping a given one, nor one holding a node address', () => {
    const p = new SubnetPool();
    p.reserve(parseCidr('s', '10.0.0.0/23'), 'given');
    expect(formatCidr(p.allocate('a', [parseIp('n', '10.0.2.7')]))).toBe('10.0.3.0/24');
  });

  it('refuses a given subnet that overlaps another network, naming it', () => {
    const p = new SubnetPool();
    p.allocate('net-a');
    expect(msg(() => p.reserve(parseCidr('s', '10.0.0.128/25'), 'net-b'))).toMatch(/10.0.0.128\/25 overlaps 10.0.0.0\/24 of network net-a/);
  });

  it('says the pool is exhausted when every subnet is taken, and reuses one once released', () => {
    const p = new SubnetPool(parseCidr('pool', '10.9.0.0/23'), 24);
    const a = p.allocate('a');
    p.allocate('b');
    expect(msg(() => p.allocate('c'))).toMatch(/no free \/24 subnet left/);
    expect(p.release(a, 'someone else')).toBe(false);
    expect(p.release(a, 'a')).toBe(true);
    expect(formatCidr(p.allocate('c'))).toBe('10.9.0.0/24');
  });
});

describe('AddressPool', () => {
  it('hands out host addresses round-robin, skipping the network and broadcast addresses', () => {
    const p = new AddressPool(parseCidr('s', '10.0.1.0/30'));
    expect(p.capacity).toBe(2);
    expect(formatIp(p.allocate('t1'))).toBe('10.0.1.1');
    expect(formatIp(p.allocate('t2'))).toBe('10.0.1.2');
    expect(() => p.allocate('t3')).toThrow(AllocationError);
  });

  it('does not hand a released address out again before the others', () => {
    const p = new AddressPool(parseCidr('s', '10.0.1.0/24'));
    p.reserve(parseIp('g', '10.0.1.1'), 'gateway');
    const a = p.allocate('t1');
    p.allocate('t2');
    p.release(a, 't1');
    expect(formatIp(p.allocate('t3'))).toBe('10.0.1.4');
  });

  it('never gives an address held by one owner to another', () => {
    const p = new AddressPool(parseCidr('s', '10.0.1.0/29'));
    const held = new Set<number>();
    for (let i = 0; i < 6; i++) held.add(p.allocate(`t${i}`));
    expect(held.size).toBe(6);
    expect(msg(() => p.reserve([...held][0]!, 'intruder'))).toMatch(/already in use \(by t0\)/);
    expect(p.release([...held][0]!, 'intruder')).toBe(false);
    expect(() => p.allocate('t7')).toThrow(/no free address left/);
  });

  it('refuses to reserve the network or broadcast address', () => {
    const p = new AddressPool(parseCidr('s', '10.0.1.0/24'));
    expect(msg(() => p.reserve(parseIp('x', '10.0.1.255'), 't'))).toMatch(/not a usable address of 10.0.1.0\/24/);
  });
});

describe('IntPool (VNIs, ports)', () => {
  it('VXLAN ids start at 4096 and are unique', () => {
    const v = vniPool();
    expect(v.allocate('a')).toBe(4096);
    expect(v.allocate('b')).toBe(4097);
    v.reserve(5000, 'c');
    expect(msg(() => v.reserve(5000, 'd'))).toMatch(/VXLAN id 5000 is already in use by c/);
  });

  it('published ports are picked from 30000-32767, while a given port may lie outside', () => {
    const p = portPool('tcp');
    expect(p.allocate('web')).toBe(30000);
    p.reserve(8080, 'api');
    expect(msg(() => p.reserve(8080, 'web'))).toMatch(/published port \(tcp\) 8080 is already in use by api/);
    expect(msg(() => p.reserve(70000, 'web'))).toMatch(/from 1 to 65535/);
  });

  it('reports exhaustion of a small range and reuses a released number', () => {
    const p = new IntPool('thing', 1, 2);
    p.allocate('a');
    p.allocate('b');
    expect(msg(() => p.allocate('c'))).toMatch(/no free thing left in 1-2/);
    p.release(1, 'a');
    expect(p.allocate('c')).toBe(1);
  });
});

it('the default pool is 10.0.0.0/8', () => {
  expect(formatCidr(DEFAULT_POOL)).toBe('10.0.0.0/8');
});
