// How the CLI reaches its local daemon: gRPC over a unix socket (cli/rpc.ts,
// not grpc-js), from --host/-H, else TSSWARM_HOST, else
// /run/tsswarm/tsswarm.sock. A daemon that is not running gives docker's kind
// of message, naming the socket.
import { UsageError } from '../lib/errors.js';
import {
  type ControlRequests,
  type ControlResponses,
  ControlService,
  type ControlUnaryMethod,
  type DaemonRequests,
  type DaemonResponses,
  DaemonService,
  type DaemonUnaryMethod,
} from '../proto/gen/control.js';
import type { Io } from './command.js';
import { hostSetting, onCommandEnd, setHost } from './host.js';
import { closeSessions, rpc, type RpcMethod, unaryRpc } from './rpc.js';

export const DEFAULT_SOCKET = '/run/tsswarm/tsswarm.sock';
export { setHost };

/** The socket path the CLI talks to. */
export function socketPath(env: NodeJS.ProcessEnv = process.env): string {
  const h = hostSetting() ?? env.TSSWARM_HOST ?? `unix://${DEFAULT_SOCKET}`;
  if (h.startsWith('unix://')) return h.slice('unix://'.length);
  if (h.startsWith('/')) return h;
  throw new UsageError(`--host must be unix:///path/to/tsswarm.sock (got "${h}")`, { field: '--host' });
}

export function closeClients(): void {
  closeSessions();
}
onCommandEnd(closeClients);

const WHAT = 'tsswarm daemon';

/** A Daemon API call (init, join, info, images...), typed by method. */
export const daemonApi = <M extends DaemonUnaryMethod>(
  method: M,
  req: Partial<DaemonRequests[M]> = {},
  timeoutMs = 30_000,
): Promise<DaemonResponses[M]> =>
  unaryRpc(
    socketPath(),
    DaemonService[method] as unknown as RpcMethod<Partial<DaemonRequests[M]>, DaemonResponses[M]>,
    req,
    timeoutMs,
    WHAT,
  );

/** A Control API call, typed by method: fields left out of the request take their protobuf defaults. */
export const controlApi = <M extends ControlUnaryMethod>(
  method: M,
  req: Partial<ControlRequests[M]> = {},
  timeoutMs = 15_000,
): Promise<ControlResponses[M]> =>
  unaryRpc(
    socketPath(),
    ControlService[method] as unknown as RpcMethod<Partial<ControlRequests[M]>, ControlResponses[M]>,
    req,
    timeoutMs,
    WHAT,
  );

/** A server-streaming Control call (logs, exec): each message to `onData`; resolves when the stream ends or `signal` aborts. */
export function controlStream<M extends 'serviceLogs' | 'exec'>(
  method: M,
  req: Partial<ControlRequests[M]>,
  onData: (m: ControlResponses[M]) => void,
  signal: AbortSignal,
): Promise<void> {
  const m = ControlService[method] as unknown as RpcMethod<Partial<ControlRequests[M]>, ControlResponses[M]>;
  return rpc(socketPath(), m, req, onData, { signal, what: WHAT });
}

/** What a command prints to stderr, once, when an answer could only come from a manager's own state. */
export const STALE_WARNING = 'WARNING: this manager could not confirm it is up to date with the leader; the result may be stale\n';
const warned = new WeakSet<Io>();

/** Prints STALE_WARNING when `r` says it is stale (once per command's io). */
export function warnIfStale(io: Io, r: { stale?: boolean }): void {
  if (!r.stale || warned.has(io)) return;
  warned.add(io);
  io.stderr.write(STALE_WARNING);
}

/** A Control API read: warns on stderr when the manager could only serve it stale. */
export async function controlRead<M extends ControlUnaryMethod>(
  io: Io,
  method: M,
  req: Partial<ControlRequests[M]> = {},
): Promise<ControlResponses[M]> {
  const r = await controlApi(method, req);
  warnIfStale(io, r as { stale?: boolean });
  return r;
}
