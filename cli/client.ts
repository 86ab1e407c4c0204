// How the CLI reaches its local daemon: gRPC over a unix socket, from
// --host/-H, else TSSWARM_HOST, else /run/tsswarm/tsswarm.sock. A daemon that
// is not running gives docker's kind of message, naming the socket.
import * as grpc from '@grpc/grpc-js';
import { TsswarmError, UsageError } from '../lib/errors.js';
import { callUnary, grpcChannelOptions } from '../lib/grpc.js';
import {
  type ControlRequests,
  type ControlResponses,
  ControlService,
  type ControlUnaryMethod,
  DaemonService,
} from '../proto/gen/control.js';
import type { Io } from './command.js';
import { hostSetting, onCommandEnd, setHost } from './host.js';

export const DEFAULT_SOCKET = '/run/tsswarm/tsswarm.sock';
export { setHost };

/** The socket path the CLI talks to. */
export function socketPath(env: NodeJS.ProcessEnv = process.env): string {
  const h = hostSetting() ?? env.TSSWARM_HOST ?? `unix://${DEFAULT_SOCKET}`;
  if (h.startsWith('unix://')) return h.slice('unix://'.length);
  if (h.startsWith('/')) return h;
  throw new UsageError(`--host must be unix:///path/to/tsswarm.sock (got "${h}")`, { field: '--host' });
}

const clients = new Map<string, grpc.Client>();
function client(def: grpc.ServiceDefinition, name: string): grpc.Client {
  const path = socketPath();
  const key = `${name}@${path}`;
  let c = clients.get(key);
  if (!c) {
    const Ctor = grpc.makeGenericClientConstructor(def, name);
    c = new Ctor(`unix://${path}`, grpc.credentials.createInsecure(), grpcChannelOptions());
    clients.set(key, c);
  }
  return c;
}

export function closeClients(): void {
  for (const c of clients.values()) c.close();
  clients.clear();
}
onCommandEnd(closeClients);

async function call<Res>(def: grpc.ServiceDefinition, name: string, method: string, req: object, timeoutMs: number): Promise<Res> {
  try {
    return await callUnary<object, Res>(client(def, name), method, req, timeoutMs, 'tsswarm daemon');
  } catch (e) {
    const err = e as TsswarmError;
    if (err.code === 'UNAVAILABLE' && /No connection established|ENOENT|ECONNREFUSED|connect/i.test(err.message)) {
      throw new TsswarmError(
        'UNAVAILABLE',
        `Cannot connect to the tsswarm daemon at unix://${socketPath()}. Is the tsswarm daemon running? (start it with \`tsswarm daemon\`, or point --host/TSSWARM_HOST at its socket)`,
      );
    }
    throw err;
  }
}

export const daemonApi = <Res>(method: string, req: object = {}, timeoutMs = 30_000): Promise<Res> =>
  call<Res>(DaemonService, 'Daemon', method, req, timeoutMs);
/** A Control API call, typed by method: fields left out of the request take their protobuf defaults. */
export const controlApi = <M extends ControlUnaryMethod>(
  method: M,
  req: Partial<ControlRequests[M]> = {},
  timeoutMs = 15_000,
): Promise<ControlResponses[M]> => call<ControlResponses[M]>(ControlService, 'Control', method, req, timeoutMs);

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
