// Small helpers around @grpc/grpc-js shared by every gRPC server in tsswarm.
import type * as grpc from '@grpc/grpc-js';
import { Metadata, status as Status } from '@grpc/grpc-js';
import { errorFromStatus, TsswarmError } from './errors.js';
import { MAX_MESSAGE_BYTES } from './limits.js';
import type { Socket } from 'node:net';
import { constants as http2Constants } from 'node:http2';

/**
 * Turns Nagle's algorithm off on the server's accepted connections. grpc-js
 * sets TCP_NODELAY on the connections it dials but not on those it accepts, so
 * a response written in several small pieces (headers, message, trailers) from
 * a later event-loop turn waits for the client's delayed ACK: measured on
 * loopback here, a Raft put answered 3–6 ms late. Call right after bindAsync
 * resolves, before the address is advertised. grpc-js has no option for this;
 * if its internals change, this does nothing rather than fail.
 */
export function serverNoDelay(server: grpc.Server): void {
  const servers = (server as unknown as { http2Servers?: Map<{ on(ev: 'connection', fn: (s: Socket) => void): void }, unknown> })
    .http2Servers;
  if (!(servers instanceof Map)) return;
  for (const h of servers.keys()) {
    if (noDelaySet.has(h)) continue;
    noDelaySet.add(h);
    h.on('connection', (s: Socket) => s.setNoDelay?.(true));
  }
}
const noDelaySet = new WeakSet<object>();

// ------------------------------------------------------------------ message size

/** The cap on every channel (lib/limits.ts says why 16 MiB). */
export { MAX_MESSAGE_BYTES };

type Limits = { 'grpc.max_send_message_length': number; 'grpc.max_receive_message_length': number };

/** The send and receive limits as gRPC options; `max` is for tests that need a small limit. */
export function messageLimits(max: number = MAX_MESSAGE_BYTES): Limits {
  return { 'grpc.max_send_message_length': max, 'grpc.max_receive_message_length': max };
}

/** Options for every grpc.Server: `extra` first, so no caller can lift the message limits. */
export function grpcServerOptions(extra: grpc.ServerOptions = {}, max?: number): grpc.ServerOptions {
  return { ...extra, ...messageLimits(max) };
}

/** Options for every client channel: `extra` first, so no caller can lift the message limits. */
export function grpcChannelOptions(extra: grpc.ChannelOptions = {}, max?: number): grpc.ChannelOptions {
  return { ...extra, ...messageLimits(max) };
}

/**
 * Ends a server call at once with RST_STREAM(ENHANCE_YOUR_CALM), which the
 * grpc-js client reports as RESOURCE_EXHAUSTED. For a peer that stopped
 * reading: a status would wait behind the data it does not read, and so would
 * the memory of that data, for as long as the peer answers keepalive pings.
 * grpc-js has no API for this; returns false when its internals changed, and
 * the caller falls back to ending the call with a status.
 */
export function resetServerCall(call: grpc.ServerDuplexStream<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>): boolean {
  let c = (call as unknown as { call?: unknown }).call as
    | { nextCall?: unknown; stream?: { close?: (code: number) => void; destroyed?: boolean } }
    | undefined;
  for (let i = 0; c && !c.stream && c.nextCall && i < 16; i++) c = c.nextCall as typeof c;
  const h2 = c?.stream;
  if (typeof h2?.close !== 'function') return false;
  if (!h2.destroyed) h2.close(http2Constants.NGHTTP2_ENHANCE_YOUR_CALM);
  return true;
}

// ------------------------------------------------------------------ errors across gRPC

const CODE_KEY = 'tsswarm-code';

/** A thrown value as a gRPC error: a TsswarmError keeps its stable code (in metadata) and message. */
export function toServiceError(err: unknown): grpc.ServiceError {
  const md = new Metadata();
  let code: number = Status.UNKNOWN;
  let message = err instanceof Error ? err.message : String(err);
  if (err instanceof TsswarmError) {
    code = err.grpcStatus;
    md.set(CODE_KEY, err.code);
  } else if (err && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'number') {
    code = (err as { code: number }).code; // already a gRPC error (e.g. from a forwarded call)
    message = (err as { details?: string }).details ?? message;
    const c = (err as { metadata?: grpc.Metadata }).metadata?.get(CODE_KEY)[0];
    if (typeof c === 'string') md.set(CODE_KEY, c);
  } else {
    message = `internal error: ${message}`;
  }
  return Object.assign(new Error(message), { code, details: message, metadata: md });
}

/** A gRPC error from a call as a TsswarmError with the code the server gave (or one derived from the status). */
export function fromServiceError(e: unknown, what: string): TsswarmError {
  const se = e as Partial<grpc.ServiceError>;
  const named = se.metadata?.get(CODE_KEY)[0];
  return errorFromStatus(se.code ?? -1, se.details || se.message || String(e), typeof named === 'string' ? named : undefined, what);
}

/** A unary handler written as an async function; what it throws becomes a gRPC error with a stable code. */
export function unary<Req, Res>(fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, cb) => {
    fn(call.request, call).then(
      (res) => cb(null, res),
      (err: unknown) => cb(toServiceError(err)),
    );
  };
}

type UnaryMethod<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (e: grpc.ServiceError | null, r?: Res) => void,
) => unknown;

/** Calls a unary method of a generic client as a promise, with a deadline; errors become TsswarmErrors. */
export function callUnary<Req, Res>(client: grpc.Client, method: string, req: Req, timeoutMs: number, what = method): Promise<Res> {
  const fn = (client as unknown as Record<string, UnaryMethod<Req, Res>>)[method];
  if (typeof fn !== 'function') return Promise.reject(new TsswarmError('INTERNAL', `no method ${method} on this client`));
  return new Promise((resolve, reject) => {
    fn.call(client, req, new Metadata(), { deadline: Date.now() + timeoutMs }, (e, r) =>
      e ? reject(fromServiceError(e, what)) : resolve(r as Res),
    );
  });
}

// ------------------------------------------------------------------ server streams

/**
 * A server-streaming handler written as an async function that writes messages; it ends the
 * stream when it returns, and ends it with a status when it throws. `signal` aborts when the
 * caller goes away.
 */
export function serverStream<Req, Res>(
  fn: (req: Req, write: (m: Res) => void, signal: AbortSignal, call: grpc.ServerWritableStream<Req, Res>) => Promise<void>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    const ac = new AbortController();
    call.on('cancelled', () => ac.abort());
    call.on('close', () => ac.abort());
    fn(
      call.request,
      (m) => {
        if (!ac.signal.aborted) call.write(m);
      },
      ac.signal,
      call,
    ).then(
      () => {
        if (!call.cancelled) call.end();
      },
      // grpc-js sends the status when a server stream emits 'error' (destroy() would leave the client hanging).
      (err: unknown) => {
        if (!call.cancelled) call.emit('error', toServiceError(err));
      },
    );
  };
}

type StreamMethod<Req, Res> = (req: Req, md: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<Res>;

/** Calls a server-streaming method of a generic client: each message to `onData`; resolves at the end; errors become TsswarmErrors. */
export function callStream<Req, Res>(
  client: grpc.Client,
  method: string,
  req: Req,
  onData: (m: Res) => void,
  signal?: AbortSignal,
  what = method,
): Promise<void> {
  const fn = (client as unknown as Record<string, StreamMethod<Req, Res>>)[method];
  if (typeof fn !== 'function') return Promise.reject(new TsswarmError('INTERNAL', `no method ${method} on this client`));
  return new Promise((resolve, reject) => {
    const s = fn.call(client, req, new Metadata(), {});
    const onAbort = (): void => s.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    s.on('data', onData);
    s.on('error', (e: grpc.ServiceError) => {
      signal?.removeEventListener('abort', onAbort);
      if (e.code === Status.CANCELLED && signal?.aborted) resolve();
      else reject(fromServiceError(e, what));
    });
    s.on('end', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
