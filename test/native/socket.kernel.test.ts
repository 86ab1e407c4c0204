// native/libc.ts socket wrappers against the real kernel: a socket opened
// inside a namespace the test creates (tss-ns-*, removed when the file ends)
// stays there after the thread returns home, and Node serves it by descriptor.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindInet4, boundInet4Socket, nativeAvailable, setInterfaceUp, withNetns } from '../../native/libc.js';
import { isRoot } from '../have.js';

const run = promisify(execFile);
const native = nativeAvailable();
const blocker = !native.ok ? native.reason : !isRoot ? 'creating a network namespace needs root' : '';

const ipLinkUp = (ns: string): boolean => execFileSync('ip', ['-n', ns, '-o', 'link', 'show', 'lo'], { encoding: 'utf8' }).includes(',UP');

describe.skipIf(blocker !== '')(`sockets inside a network namespace${blocker ? ` (skipped: ${blocker})` : ''}`, () => {
  const name = `tss-ns-${process.pid}-${randomBytes(2).toString('hex')}`;
  const path = `/run/netns/${name}`;

  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', name]);
  });
  afterAll(() => {
    if (existsSync(path)) execFileSync('ip', ['netns', 'del', name]);
  });

  it('setInterfaceUp brings lo of a fresh namespace up once and reports that it was already up the second time', () => {
    // bind(2) to 127.0.0.11 succeeds even while lo is down, but nothing
    // reaches it: whoever serves there must bring lo up first.
    expect(ipLinkUp(name)).toBe(false);
    expect(withNetns(path, () => setInterfaceUp('lo'))).toBe(true);
    expect(ipLinkUp(name)).toBe(true);
    expect(withNetns(path, () => setInterfaceUp('lo'))).toBe(false);
  });

  it('setInterfaceUp on a missing interface throws ENODEV', () => {
    expect(() => withNetns(path, () => setInterfaceUp('tssnope0'))).toThrow(/ioctl\(SIOCGIFFLAGS, tssnope0\) failed: ENODEV/);
  });

  it('a UDP socket bound inside the namespace is served by dgram and answers a client in that namespace', async () => {
    const fds = withNetns(path, () => ({
      server: boundInet4Socket('udp', '127.0.0.11', 53),
      client: boundInet4Socket('udp', '127.0.0.1', 0),
    }));
    const server = dgram.createSocket('udp4');
    const client = dgram.createSocket('udp4');
    await Promise.all([
      new Promise<void>((r) => server.bind({ fd: fds.server }, r)),
      new Promise<void>((r) => client.bind({ fd: fds.client }, r)),
    ]);
    server.on('message', (msg, rinfo) => server.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address));
    const reply = new Promise<string>((r) => client.once('message', (m) => r(m.toString())));
    client.send('hi', 53, '127.0.0.11');
    expect(await reply).toBe('echo:hi');
    // The socket lives in the namespace, not in the one this process runs in.
    const inside = execFileSync('nsenter', [`--net=${path}`, 'ss', '-Hunl'], { encoding: 'utf8' });
    expect(inside).toContain('127.0.0.11:53');
    const home = execFileSync('ss', ['-Hunl'], { encoding: 'utf8' });
    expect(home).not.toContain('127.0.0.11:53 ');
    await Promise.all([new Promise<void>((r) => server.close(r)), new Promise<void>((r) => client.close(r))]);
    // Closed through Node, the descriptor is gone: the address binds again.
    const again = withNetns(path, () => boundInet4Socket('udp', '127.0.0.11', 53));
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind({ fd: again }, r));
    await new Promise<void>((r) => s.close(r));
  });

  it('a TCP socket bound inside the namespace is listened on by net.Server and accepts a connection there', async () => {
    const fd = withNetns(path, () => boundInet4Socket('tcp', '127.0.0.11', 53));
    const server = net.createServer((c) => c.end('hello'));
    await new Promise<void>((r) => server.listen({ fd }, r));
    // Connect from a process inside the namespace (Node's connect would run in this one).
    const { stdout } = await run('nsenter', [`--net=${path}`, '/bin/busybox', 'nc', '127.0.0.11', '53'], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(stdout).toBe('hello');
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('bindInet4 rejects an address that is not a dotted quad before any call', () => {
    expect(() => bindInet4(0, '127.0.0', 53)).toThrow('bind address must be an IPv4 dotted quad such as 127.0.0.11 (got "127.0.0")');
  });
});
