// lib/metrics.ts: a registry with the process metrics, served over HTTP at
// /metrics on an ephemeral loopback port, and stopped by close().
import { request } from 'node:http';
import { Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createRegistry, parseHostPort, serveMetrics } from '../../lib/metrics.js';

function get(url: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('serveMetrics', () => {
  it('serves the registry in the Prometheus text format at /metrics on 127.0.0.1:0', async () => {
    const registry = createRegistry({ labels: { node: 'n1' } });
    const proposals = new Counter({ name: 'tsswarm_raft_proposals_total', help: 'Proposals', registers: [registry] });
    proposals.inc(3);
    const server = await serveMetrics(registry, '127.0.0.1:0');
    try {
      expect(server.address).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
      const r = await get(`http://${server.address}/metrics`);
      expect(r.status).toBe(200);
      expect(r.type).toBe(registry.contentType);
      expect(r.body).toContain('tsswarm_raft_proposals_total{node="n1"} 3');
      expect(r.body).toContain('tsswarm_process_cpu_seconds_total');
      expect((await get(`http://${server.address}/other`)).status).toBe(404);
      expect((await get(`http://${server.address}/metrics`, 'POST')).status).toBe(405);
    } finally {
      await server.close();
    }
  });

  it('after close() the port no longer answers', async () => {
    const server = await serveMetrics(createRegistry({ defaultMetrics: false }), '127.0.0.1:0');
    await get(`http://${server.address}/metrics`);
    await server.close();
    await expect(get(`http://${server.address}/metrics`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('a malformed address is a UsageError saying what to write', async () => {
    await expect(serveMetrics(createRegistry({ defaultMetrics: false }), 'localhost')).rejects.toThrow(
      'metrics address must be HOST:PORT, e.g. 127.0.0.1:9323 or [::1]:9323 (port 0 picks a free one) (got "localhost")',
    );
    expect(() => parseHostPort('1.2.3.4:70000', '--metrics-addr')).toThrow(/^--metrics-addr must be HOST:PORT/);
    expect(parseHostPort('[::1]:9323')).toEqual({ host: '::1', port: 9323 });
    expect(parseHostPort(':9323')).toEqual({ host: '', port: 9323 });
  });
});
