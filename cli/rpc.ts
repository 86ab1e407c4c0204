// The CLI's gRPC client: unary and server-streaming calls over HTTP/2 on the
// daemon's unix socket, written on node:http2 in about a hundred lines
// instead of loading @grpc/grpc-js. A CLI command makes one or two calls to
// one local socket; loading and compiling grpc-js (and the proto-loader it
// pulls in) cost more than the rest of a `node ls` together. The daemon side
// stays on grpc-js; test/cli/rpc.test.ts holds this client to it.
//
// What it speaks: the gRPC wire protocol over HTTP/2 (length-prefixed
// messages, uncompressed; status in the trailers, or in the headers of a
// trailers-only answer; `grpc-timeout` for the deadline; the `tsswarm-code`
// metadata our servers set). What it enforces: the same 16 MiB message cap
// as every other channel, and the deadline on its own clock too.
import * as http2 from 'node:http2';
import { connect as netConnect } from 'node:net';
import { errorFromStatus, GrpcStatus, TsswarmError } from '../lib/errors.js';
import { MAX_MESSAGE_BYTES } from '../lib/limits.js';

/** One method of a generated service definition (proto/gen: XService.method). */
export interface RpcMethod<Req, Res> {
  path: string;
  requestSerialize(v: Req): Buffer;
  responseDeserialize(b: Buffer): Res;
}

const sessions = new Map<string, http2.ClientHttp2Session>();

function session(socket: string): http2.ClientHttp2Session {
  let s = sessions.get(socket);
  if (s && !s.closed && !s.destroyed) return s;
  s = http2.connect('http://localhost', { createConnection: () => netConnect(socket) });
  s.on('error', () => {}); // reported on each call's stream
  s.on('close', () => sessions.delete(socket));
  sessions.set(socket, s);
  return s;
}

/** Closes every session (at the end of a command). */
export function closeSessions(): void {
  for (const s of sessions.values()) s.close();
  sessions.clear();
}

function frame(msg: Buffer): Buffer {
  if (msg.length > MAX_MESSAGE_BYTES)
    throw new TsswarmError('RESOURCE_EXHAUSTED', `request of ${msg.length} bytes is over the 16 MiB limit`);
  const out = Buffer.allocUnsafe(5 + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  msg.copy(out, 5);
  return out;
}

/** Splits the response body into messages as bytes arrive; throws on a compressed or oversized message. */
class Deframer {
  // Chunks kept as they came and joined once a whole message is there: joining on every chunk
  // would copy a 16 MiB answer (a large `service ps`) about a thousand times over.
  private chunks: Buffer[] = [];
  private size = 0;
  /** The length of the message being received, once its prefix is in; -1 before. */
  private want = -1;

  push(chunk: Buffer, onMessage: (m: Buffer) => void): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    for (;;) {
      if (this.want < 0) {
        if (this.size < 5) return;
        const head = this.take(5);
        if (head[0] !== 0) throw new TsswarmError('INTERNAL', 'the daemon sent a compressed message, which this client did not ask for');
        const len = head.readUInt32BE(1);
        if (len > MAX_MESSAGE_BYTES)
          throw new TsswarmError('RESOURCE_EXHAUSTED', `response message of ${len} bytes is over the 16 MiB limit`);
        this.want = len;
      }
      if (this.size < this.want) return;
      const m = this.take(this.want);
      this.want = -1;
      onMessage(m);
    }
  }

  /** The next `n` buffered bytes (n ≤ size), joined only when they span chunks. */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks, this.size);
      out = all.subarray(0, n);
      this.chunks = n < all.length ? [all.subarray(n)] : [];
    }
    this.size -= n;
    return out;
  }

  /** Bytes received that do not yet make a whole message (a prefix counts). */
  get pending(): number {
    return this.size + (this.want >= 0 ? 5 : 0);
  }
}

const header = (h: http2.IncomingHttpHeaders, k: string): string | undefined => {
  const v = h[k];
  return Array.isArray(v) ? v[0] : v;
};

function decodeMessage(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * One call: sends `req`, hands each response message to `onMessage`, resolves
 * when the server ends the call with OK. `timeoutMs` 0: no deadline (streams).
 */
export function rpc<Req, Res>(
  socket: string,
  m: RpcMethod<Req, Res>,
  req: Req,
  onMessage: (r: Res) => void,
  opts: { timeoutMs?: number; signal?: AbortSignal; what?: string } = {},
): Promise<void> {
  const what = opts.what ?? m.path;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let stream: http2.ClientHttp2Stream | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (err && stream && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      err ? reject(err) : resolve();
    };
    const onAbort = (): void => finish();
    if (opts.signal?.aborted) return finish();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': m.path,
      'content-type': 'application/grpc',
      te: 'trailers',
    };
    if (opts.timeoutMs) {
      headers['grpc-timeout'] = `${Math.max(1, Math.ceil(opts.timeoutMs))}m`;
      timer = setTimeout(() => finish(new TsswarmError('DEADLINE_EXCEEDED', `${what}: Deadline exceeded`)), opts.timeoutMs);
    }
    let body: Buffer;
    try {
      body = frame(m.requestSerialize(req));
      stream = session(socket).request(headers);
    } catch (e) {
      return finish(e as Error);
    }
    const deframer = new Deframer();
    let status: { code: number; message: string; named?: string } | undefined;
    const takeStatus = (h: http2.IncomingHttpHeaders): void => {
      const code = header(h, 'grpc-status');
      if (code === undefined) return;
      status = { code: Number(code), message: decodeMessage(header(h, 'grpc-message') ?? ''), named: header(h, 'tsswarm-code') };
    };
    stream.on('response', (h) => {
      const httpStatus = Number(h[':status']);
      if (httpStatus !== 200 && h['grpc-status'] === undefined)
        return finish(new TsswarmError('UNAVAILABLE', `${what}: the daemon answered HTTP ${httpStatus}`));
      takeStatus(h); // a trailers-only answer carries its status here
    });
    stream.on('trailers', takeStatus);
    stream.on('data', (chunk: Buffer) => {
      try {
        deframer.push(chunk, (b) => onMessage(m.responseDeserialize(b)));
      } catch (e) {
        finish(e as Error);
      }
    });
    stream.on('error', (e: NodeJS.ErrnoException) => finish(connectError(e, socket, what)));
    stream.on('close', () => {
      if (settled) return;
      if (!status) {
        const code = stream!.rstCode;
        const why = code && code !== http2.constants.NGHTTP2_NO_ERROR ? ` (stream reset, code ${code})` : '';
        return finish(new TsswarmError('UNAVAILABLE', `${what}: the call ended without a status${why}`));
      }
      if (status.code === GrpcStatus.OK) {
        if (deframer.pending) return finish(new TsswarmError('INTERNAL', `${what}: the answer ended inside a message`));
        return finish();
      }
      finish(errorFromStatus(status.code, status.message, status.named, what));
    });
    stream.end(body);
  });
}

/** A unary call: the one response message. */
export async function unaryRpc<Req, Res>(socket: string, m: RpcMethod<Req, Res>, req: Req, timeoutMs: number, what?: string): Promise<Res> {
  let res: Res | undefined;
  let n = 0;
  await rpc(socket, m, req, (r) => ((res = r), n++), { timeoutMs, what });
  if (n !== 1) throw new TsswarmError('INTERNAL', `${what ?? m.path}: expected one response message, got ${n}`);
  return res as Res;
}

/** A connection that could not be made, as the daemon-not-running error. */
function connectError(e: NodeJS.ErrnoException, socket: string, what: string): TsswarmError {
  // A stream opened before the socket connected fails with the connection's error as its cause.
  const c = (e.cause as NodeJS.ErrnoException | undefined) ?? e;
  if (c.syscall === 'connect' || c.code === 'ENOENT' || c.code === 'ECONNREFUSED' || c.code === 'EACCES')
    return new TsswarmError(
      'UNAVAILABLE',
      `Cannot connect to the tsswarm daemon at unix://${socket}${c.code === 'EACCES' ? ' (permission denied: run as root or as a member of the socket group)' : ''}. Is the tsswarm daemon running? (start it with \`tsswarm daemon\`, or point --host/TSSWARM_HOST at its socket)`,
    );
  return new TsswarmError('UNAVAILABLE', `${what}: ${c.message}`);
}
