// Small helpers around @grpc/grpc-js shared by every gRPC server in tsswarm.
import type * as grpc from '@grpc/grpc-js';
import type { Socket } from 'node:net';

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
  const servers = (server as unknown as { http2Servers?: Map<{ on(ev: 'connection', fn: (s: Socket) => void): void }, unknown> }).http2Servers;
  if (!(servers instanceof Map)) return;
  for (const h of servers.keys()) {
    if (noDelaySet.has(h)) continue;
    noDelaySet.add(h);
    h.on('connection', (s: Socket) => s.setNoDelay?.(true));
  }
}
const noDelaySet = new WeakSet<object>();
