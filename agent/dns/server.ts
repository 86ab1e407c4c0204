// One container's DNS server: UDP and TCP sockets at 127.0.0.11:53 created
// inside the container's network namespace (setns, synchronously) and served
// by this process's event loop; answers from the table, the rest forwarded.
import dgram from 'node:dgram';
import { closeSync } from 'node:fs';
import net from 'node:net';
import type { Logger } from '../../lib/log.js';
import { boundInet4Socket, setInterfaceUp, withNetns } from '../../native/libc.js';
import type { Forwarder, Transport } from './forwarder.js';
import { redirectProgram, removeRedirectProgram, runNft } from './redirect.js';
import { EMBEDDED_DNS_ADDRESS } from './resolvconf.js';
import type { DnsTable } from './resolver.js';
import { buildResponse, CLASS_IN, DnsFormatError, OPCODE_QUERY, parseMessage, RCode, udpLimit, type Message } from './wire.js';

/** What answering needs; the server and the unit tests pass the same thing. */
export interface QueryContext {
  table: DnsTable;
  /** The container key the table knows this server by (its namespace path). */
  key: string;
  forwarder: Pick<Forwarder, 'forward'>;
}

const bare = (id: number): Message => ({
  header: { id, qr: false, opcode: OPCODE_QUERY, aa: false, tc: false, rd: false, ra: false, rcode: 0 },
  questions: [],
  answers: [],
  authorities: [],
  additionals: [],
  ednsUdpSize: undefined,
});

/**
 * The answer to one raw query, or undefined when nothing should be sent
 * (unreadable header, or a response someone sent us).
 */
export async function answerQuery(raw: Buffer, transport: Transport, ctx: QueryContext): Promise<Buffer | undefined> {
  let q: Message;
  try {
    q = parseMessage(raw);
  } catch (err) {
    const id = err instanceof DnsFormatError ? err.id : undefined;
    return id === undefined ? undefined : buildResponse(bare(id), { rcode: RCode.FORMERR });
  }
  if (q.header.qr) return undefined;
  if (q.header.opcode !== OPCODE_QUERY) return buildResponse({ ...q, questions: [] }, { rcode: RCode.NOTIMP });
  if (q.questions.length !== 1) return buildResponse({ ...q, questions: [] }, { rcode: RCode.FORMERR });
  const question = q.questions[0]!;
  const maxSize = transport === 'udp' ? udpLimit(q) : undefined;
  if (question.class === CLASS_IN) {
    const r = ctx.table.resolve(ctx.key, question.name, question.type);
    if (r.kind === 'answer') return buildResponse(q, { rcode: RCode.NOERROR, aa: true, answers: r.answers, maxSize });
  }
  const forwarded = await ctx.forwarder.forward(raw, transport, ctx.table.container(ctx.key)?.upstreams);
  return forwarded ?? buildResponse(q, { rcode: RCode.SERVFAIL, maxSize });
}

export interface ServerOptions extends QueryContext {
  /** Path of the container's network namespace (`/run/netns/NAME`, `/proc/PID/ns/net`). */
  netnsPath: string;
  log: Logger;
  address?: string;
  port?: number;
  /**
   * Listen on ephemeral ports and redirect :53 to them with an nft table in
   * the namespace (default false: bind :53 itself). Redirect leaves 0.0.0.0:53
   * free for the container's own DNS server, at the price of one nft process
   * per container start.
   */
  redirect?: boolean;
  /** Set lo up in the namespace first (default true): bind works while lo is down, but nothing arrives. */
  loopbackUp?: boolean;
  /** A TCP connection idle this long is closed (default 10 s, RFC 7766 suggests seconds). */
  tcpIdleMs?: number;
  /** TCP connections at once; more are refused (default 64). */
  maxTcpConnections?: number;
}

/**
 * Opens the sockets in the namespace and serves them. Socket creation runs
 * inside withNetns, which is synchronous and moves the thread back in a
 * finally, so no other callback can run while the thread is in the container's
 * namespace; Node then adopts the descriptors.
 */
export class ContainerDnsServer {
  private readonly udp: dgram.Socket;
  private readonly tcp: net.Server;
  private readonly conns = new Set<net.Socket>();
  private closing: Promise<void> | undefined;
  private readonly ready: Promise<void>;
  private redirected = false;
  private readonly log: Logger;

  private constructor(
    private readonly opts: ServerOptions,
    fds: { udp: number; tcp: number },
  ) {
    this.log = opts.log;
    this.udp = dgram.createSocket('udp4');
    this.tcp = net.createServer((c) => this.onConnection(c));
    this.udp.on('message', (msg, rinfo) => {
      void answerQuery(msg, 'udp', this.opts)
        .then((out) => {
          if (out && !this.closing) this.udp.send(out, rinfo.port, rinfo.address);
        })
        .catch((err: unknown) => this.log.warn({ err }, 'DNS query failed'));
    });
    // Listen for 'listening' first: dgram emits it synchronously for a descriptor.
    this.ready = Promise.all([once(this.udp, 'listening'), once(this.tcp, 'listening')]).then(() => undefined);
    this.ready.catch(() => undefined);
    this.udp.bind({ fd: fds.udp });
    this.tcp.listen({ fd: fds.tcp });
    // A socket error is logged (and fails open() when it comes first), never thrown into the event loop.
    this.udp.on('error', (err) => this.log.error({ err }, 'DNS UDP socket error'));
    this.tcp.on('error', (err) => this.log.error({ err }, 'DNS TCP server error'));
  }

  static async open(opts: ServerOptions): Promise<ContainerDnsServer> {
    const address = opts.address ?? EMBEDDED_DNS_ADDRESS;
    const port = opts.redirect ? 0 : (opts.port ?? 53);
    const fds = withNetns(opts.netnsPath, () => {
      if (opts.loopbackUp ?? true) setInterfaceUp('lo');
      const udp = boundInet4Socket('udp', address, port);
      try {
        return { udp, tcp: boundInet4Socket('tcp', address, port) };
      } catch (err) {
        closeFd(udp);
        throw err;
      }
    });
    let server: ContainerDnsServer;
    try {
      server = new ContainerDnsServer(opts, fds);
    } catch (err) {
      closeFd(fds.udp);
      closeFd(fds.tcp);
      throw err;
    }
    try {
      await server.ready;
      if (opts.redirect) {
        server.redirected = true;
        await runNft(opts.netnsPath, redirectProgram(server.udp.address().port, (server.tcp.address() as net.AddressInfo).port, address));
      }
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  private onConnection(c: net.Socket): void {
    if (this.closing || this.conns.size >= (this.opts.maxTcpConnections ?? 64)) {
      c.destroy();
      return;
    }
    this.conns.add(c);
    c.on('close', () => this.conns.delete(c));
    c.on('error', () => c.destroy());
    c.setTimeout(this.opts.tcpIdleMs ?? 10_000, () => c.destroy());
    let buffered = Buffer.alloc(0);
    c.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      // Several length-prefixed queries may come on one connection, answered as each is ready.
      while (buffered.length >= 2) {
        const n = buffered.readUInt16BE(0);
        if (buffered.length < 2 + n) break;
        const msg = Buffer.from(buffered.subarray(2, 2 + n));
        buffered = buffered.subarray(2 + n);
        void answerQuery(msg, 'tcp', this.opts)
          .then((out) => {
            if (!out || c.destroyed) return;
            const len = Buffer.alloc(2);
            len.writeUInt16BE(out.length, 0);
            c.write(Buffer.concat([len, out]));
          })
          .catch((err: unknown) => this.log.warn({ err }, 'DNS query failed'));
      }
    });
  }

  /** The UDP and TCP ports served (53, or ephemeral ones in redirect mode). */
  ports(): { udp: number; tcp: number } {
    return { udp: this.udp.address().port, tcp: (this.tcp.address() as net.AddressInfo).port };
  }

  /** Closes both sockets and every TCP connection (and the redirect); the address can be bound again once this resolves. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of this.conns) c.destroy();
      await Promise.all([
        new Promise<void>((resolve) => this.udp.close(() => resolve())),
        new Promise<void>((resolve) => this.tcp.close(() => resolve())),
      ]);
      if (this.redirected) {
        // Gone with the namespace when the container ended; only a live namespace needs it removed.
        await runNft(this.opts.netnsPath, removeRedirectProgram()).catch((err: unknown) =>
          this.log.debug({ err: (err as Error).message }, 'DNS redirect not removed'),
        );
      }
    })();
    return this.closing;
  }
}

function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** Resolves on `ok`, rejects on the first `error` before it. */
function once(emitter: dgram.Socket | net.Server, ok: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    emitter.once('error', onError);
    emitter.once(ok, () => {
      emitter.off('error', onError);
      resolve();
    });
  });
}
