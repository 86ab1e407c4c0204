// Prometheus metrics for daemons: a registry per process (or per test), and a
// small HTTP server answering GET /metrics, owned by whoever starts it and
// stopped by its close().
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { UsageError } from './errors.js';

export { Counter, Gauge, Registry } from 'prom-client';

export interface RegistryOptions {
  /** Process metrics (CPU, memory, event loop lag, GC); on by default. */
  defaultMetrics?: boolean;
  /** Labels on every series, e.g. `{ node: 'n1' }`. */
  labels?: Record<string, string>;
  /** Prefix of the default metrics' names; default `tsswarm_`. */
  prefix?: string;
}

export function createRegistry(options: RegistryOptions = {}): Registry {
  const registry = new Registry();
  if (options.labels) registry.setDefaultLabels(options.labels);
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: options.prefix ?? 'tsswarm_' });
  }
  return registry;
}

export interface MetricsServer {
  /** `host:port` actually bound (the real port when 0 was asked for); IPv6 hosts in brackets. */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Splits `host:port` (`127.0.0.1:9323`, `[::1]:9323`, `:9323` for every
 * interface). `field` names the flag the address came from, for the error.
 */
export function parseHostPort(addr: string, field = 'metrics address'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw UsageError.invalid(field, 'HOST:PORT, e.g. 127.0.0.1:9323 or [::1]:9323 (port 0 picks a free one)', addr);
  }
  return { host: m[1] ?? m[2] ?? '', port };
}

export async function serveMetrics(registry: Registry, addr: string): Promise<MetricsServer> {
  const { host, port } = parseHostPort(addr);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void handle(registry, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: host === '' ? undefined : host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const shown = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  let closing: Promise<void> | undefined;
  return {
    address: shown,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Scrapers keep connections alive; do not wait for them to go away.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handle(registry: Registry, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics') {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('use GET /metrics\n');
    return;
  }
  try {
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${(err as Error).message}\n`);
  }
}
