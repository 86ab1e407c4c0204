// Forwards questions the table does not own to the host's resolvers: the
// client's bytes with a fresh random id, over UDP from a fresh socket per try
// (random source port), then over TCP when the UDP answer came back truncated.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from '../../lib/log.js';
import type { Upstream } from './resolvconf.js';
import { isTruncated, messageId, withId } from './wire.js';

export interface ForwarderOptions {
  /** Asked on every forward, so a changed host resolv.conf applies at once. */
  upstreams: () => readonly Upstream[];
  /** Per upstream and try (default 2000 ms). */
  timeoutMs?: number;
  /** Forwards in flight at once; beyond it a question gets SERVFAIL at once (default 1024). */
  maxInFlight?: number;
  log: Logger;
}

export type Transport = 'udp' | 'tcp';

/** Forwards raw DNS messages; `forward` resolves to the answer with the client's id, or undefined (→ SERVFAIL). */
export class Forwarder {
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private inFlight = 0;
  private closed = false;
  /** Cancels every forward in flight on close. */
  private readonly abort = new AbortController();

  constructor(private readonly opts: ForwarderOptions) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.maxInFlight = opts.maxInFlight ?? 1024;
  }

  /**
   * Tries each upstream in turn. `transport` is how the client asked: a UDP
   * client gets a truncated answer as it came (it will ask us again over
   * TCP); a TCP client gets the full answer fetched over TCP. `upstreams`,
   * when given and not empty, replace the host's (a service's --dns).
   */
  async forward(query: Buffer, transport: Transport, upstreams?: readonly Upstream[]): Promise<Buffer | undefined> {
    const clientId = messageId(query);
    if (clientId === undefined || this.closed) return undefined;
    if (this.inFlight >= this.maxInFlight) {
      this.opts.log.warn({ inFlight: this.inFlight }, 'too many DNS forwards in flight; answering SERVFAIL');
      return undefined;
    }
    this.inFlight++;
    try {
      for (const upstream of upstreams?.length ? upstreams : this.opts.upstreams()) {
        if (this.closed) return undefined;
        const id = randomInt(0, 0x10000);
        const out = withId(query, id);
        try {
          let answer = await udpExchange(upstream, out, id, this.timeoutMs, this.abort.signal);
          if (isTruncated(answer) && transport === 'tcp') {
            answer = await tcpExchange(upstream, out, id, this.timeoutMs, this.abort.signal);
          }
          return withId(answer, clientId);
        } catch (err) {
          this.opts.log.debug(
            { upstream: `${upstream.address}:${upstream.port}`, err: (err as Error).message },
            'DNS upstream failed; trying the next',
          );
        }
      }
      return undefined;
    } finally {
      this.inFlight--;
    }
  }

  /** Stops every forward in flight (they resolve to undefined). */
  close(): void {
    this.closed = true;
    this.abort.abort();
  }
}

/**
 * One exchange's ending, whichever comes first (answer, error, timeout or the
 * forwarder closing): settles the promise once and releases the socket, the
 * timer and the abort listener.
 */
function settleOnce(
  resolve: (b: Buffer) => void,
  reject: (e: Error) => void,
  release: () => void,
  signal: AbortSignal,
  timeoutMs: number,
  timeoutMessage: string,
): { finish: (err: Error | undefined, answer?: Buffer) => void; isDone: () => boolean } {
  let done = false;
  const finish = (err: Error | undefined, answer?: Buffer): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    release();
    if (err) reject(err);
    else resolve(answer!);
  };
  const onAbort = (): void => finish(new Error('forwarder closed'));
  const timer = setTimeout(() => finish(new Error(timeoutMessage)), timeoutMs);
  signal.addEventListener('abort', onAbort);
  return { finish, isDone: () => done };
}

function udpExchange(upstream: Upstream, query: Buffer, id: number, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(upstream.address.split('%')[0]!) ? 'udp6' : 'udp4');
    const { finish, isDone } = settleOnce(resolve, reject, () => sock.close(), signal, timeoutMs, `no answer within ${timeoutMs} ms`);
    sock.on('error', (err) => finish(err));
    // A connected socket only receives from the upstream's address and port;
    // the id must match too, else the datagram is ignored (spoofing guard).
    sock.on('message', (msg) => {
      if (messageId(msg) === id && msg.length >= 12 && (msg[2]! & 0x80) !== 0) finish(undefined, msg);
    });
    sock.connect(upstream.port, upstream.address, () => {
      if (isDone()) return;
      // A throw here would be uncaught (it runs in a socket callback) and end the daemon.
      try {
        sock.send(query, 0, query.length, (err) => err && finish(err));
      } catch (err) {
        finish(err as Error);
      }
    });
  });
}

function tcpExchange(upstream: Upstream, query: Buffer, id: number, timeoutMs: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: upstream.address, port: upstream.port });
    let buffered = Buffer.alloc(0);
    const { finish } = settleOnce(resolve, reject, () => sock.destroy(), signal, timeoutMs, `no TCP answer within ${timeoutMs} ms`);
    sock.on('error', (err) => finish(err));
    sock.on('close', () => finish(new Error('upstream closed the TCP connection before answering')));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length, 0);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const n = buffered.readUInt16BE(0);
        if (buffered.length < 2 + n) return;
        const msg = buffered.subarray(2, 2 + n);
        buffered = buffered.subarray(2 + n);
        if (messageId(msg) === id) return finish(undefined, Buffer.from(msg));
      }
    });
  });
}
