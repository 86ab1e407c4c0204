// The Docker Engine API server: HTTP/1.1 on a unix socket (node:http), the
// version prefix and dockerd's version checks, bounded JSON bodies, the 503s
// of a node that cannot serve a route, errors as dockerd writes them, and a
// debug line and a counter per request. Routes are data (./index.ts). The
// same handler serves TCP with TLS (./tls.ts).
import { chmodSync, chownSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { dirname } from 'node:path';
import type pino from 'pino';
import { UsageError } from '../../lib/errors.js';
import { MAX_MESSAGE_BYTES } from '../../lib/limits.js';
import type { EngineBackend } from './backend.js';
import { DockerError, dockerErrorOf, noSwarm, notManager, swarmLocked } from './errors.js';
import type { EngineReply, EngineRequest, Method, Route } from './route.js';
import { RouteTable } from './route.js';
import { API_VERSION, checkVersion, splitVersion } from './version.js';

/** What the request handler needs: shared by the unix socket and the TLS listener. */
export interface EngineHandlerOptions {
  backend: EngineBackend;
  routes: readonly Route[];
  logger: pino.Logger;
  /** The group that may use the socket besides root (mode 0660 either way). */
  gid?: number;
  /** The largest request body accepted; default the 16 MiB every tsswarm channel allows. */
  maxBodyBytes?: number;
  /** Called once per answered request with the route's template ('' when none matched). */
  count?: (route: string, method: string, status: number) => void;
  /** Runs before anything else of a request; throws (a DockerError) to refuse it. */
  authorize?: (req: IncomingMessage) => void;
}

export interface EngineServerOptions extends EngineHandlerOptions {
  socketPath: string;
}

/** The HTTP server limits both listeners share: headers and request line at most 16 KiB. */
export const MAX_HEADER_BYTES = 16 * 1024;

export interface EngineServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

const METHODS: readonly string[] = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'];

/** Headers on every answer, as moby's version middleware sets them. */
function commonHeaders(version: string): Record<string, string> {
  return { 'Api-Version': API_VERSION, Ostype: 'linux', Server: `tsswarm/${version} (linux)` };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

const sizeText = (n: number): string => (n % (1 << 20) === 0 ? `${n >> 20} MiB` : `${n} bytes`);

/** The request body, at most `max` bytes; a larger one is refused before it is all read. */
async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > max) throw new DockerError(400, `request body of ${declared} bytes is over the ${sizeText(max)} limit`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) throw new DockerError(400, `request body is over the ${sizeText(max)} limit`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The body as JSON (dockerd's ReadJSON): empty is undefined, a Content-Type other than application/json or bad JSON a 400. */
function parseJsonBody(req: IncomingMessage, body: Buffer): unknown {
  if (body.length === 0) return undefined;
  const ct = req.headers['content-type'] ?? '';
  const mime = ct.split(';')[0]!.trim().toLowerCase();
  if (mime !== 'application/json') throw new UsageError(`unsupported Content-Type header (${ct}): must be 'application/json'`);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new UsageError(`invalid JSON: ${(e as Error).message}`);
  }
}

/** dockerd's 503 for a node that cannot serve a manager route, checked before the route runs. */
function checkServes(route: Route, backend: EngineBackend): void {
  if (route.serves === 'any') return;
  const i = backend.localInfo();
  if (i.state === 'locked') throw swarmLocked();
  if (i.state !== 'active') throw noSwarm();
  if (!i.isManager) throw notManager();
}

/** The request handler of the Engine API (routes, versions, bodies, errors, counting). */
export function engineHandler(o: EngineHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const table = new RouteTable(o.routes);
  const log = o.logger.child({ component: 'engine' });
  const max = o.maxBodyBytes ?? MAX_MESSAGE_BYTES;
  const version = (): string => {
    try {
      return o.backend.host().version;
    } catch {
      return '';
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = Date.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const split = splitVersion(rawPath);
    const method = (req.method ?? 'GET').toUpperCase();
    const found = METHODS.includes(method) ? table.match(method, split.path) : undefined;
    const base = commonHeaders(version());
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    let status = 500;
    try {
      o.authorize?.(req);
      if (!found) throw new DockerError(404, 'page not found');
      const apiVersion = checkVersion(split.version);
      checkServes(found.route, o.backend);
      let bodyRead: Promise<unknown> | undefined;
      const r: EngineRequest = {
        method: method as Method,
        path: split.path,
        params: found.params,
        query,
        apiVersion,
        headers: req.headers,
        json: () => {
          bodyRead ??= readBody(req, max).then((b) => parseJsonBody(req, b));
          return bodyRead;
        },
        signal: abort.signal,
        backend: o.backend,
        log,
      };
      const reply: EngineReply = await found.route.handle(r);
      status = reply.status ?? 200;
      const headers = { ...base, ...(reply.headers ?? {}) };
      if (reply.stream) {
        res.writeHead(status, headers);
        await reply.stream((chunk) => res.write(chunk), abort.signal);
        res.end();
      } else if (reply.json !== undefined) sendJson(res, status, reply.json, headers);
      else if (reply.text !== undefined) {
        res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers, 'Content-Length': Buffer.byteLength(reply.text) });
        res.end(reply.text);
      } else {
        res.writeHead(status, { ...headers, 'Content-Length': 0 });
        res.end();
      }
    } catch (err) {
      const e = dockerErrorOf(err);
      status = e.status;
      if (res.headersSent) res.destroy();
      else {
        // A body left unread (too large) is not drained: the connection closes instead.
        const unread = !req.complete && (Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined);
        sendJson(res, status, { message: e.message }, unread ? { ...base, Connection: 'close' } : base);
        if (unread) res.on('finish', () => req.destroy());
      }
      if (status >= 500) log.warn({ err, method, path: rawPath, status }, 'engine API request failed');
    } finally {
      log.debug({ method, path: rawPath, route: found?.route.path ?? '', status, ms: Date.now() - started }, 'engine API request');
      o.count?.(found?.route.path ?? '', method, status);
    }
  };

  return (req, res) => void handle(req, res);
}

/** A request the HTTP parser refuses (a request line or headers over 16 KiB, bad framing) still gets dockerd's JSON shape. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const big = err.code === 'HPE_HEADER_OVERFLOW';
  const body = `${JSON.stringify({ message: big ? 'request line and headers are over the 16 KiB limit' : `bad request: ${err.message}` })}\n`;
  socket.end(
    `HTTP/1.1 ${big ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export async function serveEngine(o: EngineServerOptions): Promise<EngineServer> {
  const log = o.logger.child({ component: 'engine' });
  const server: Server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, engineHandler(o));
  server.on('clientError', answerClientError);

  mkdirSync(dirname(o.socketPath), { recursive: true });
  if (existsSync(o.socketPath)) {
    if (!statSync(o.socketPath).isSocket())
      throw new UsageError(`--docker-socket ${o.socketPath} exists and is not a socket: remove it or choose another path`);
    rmSync(o.socketPath);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Root (and the socket's group) only: whoever can write here can do anything the daemon can.
  chmodSync(o.socketPath, 0o660);
  if (o.gid !== undefined) chownSync(o.socketPath, statSync(o.socketPath).uid, o.gid);
  log.info({ socket: o.socketPath }, 'serving the Docker Engine API');
  return {
    socketPath: o.socketPath,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      rmSync(o.socketPath, { force: true });
    },
  };
}
