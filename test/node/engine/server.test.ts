// The Engine API server on an in-process unix socket with a fake backend:
// version negotiation as dockerd's, error shapes and statuses, the 503s of a
// node that cannot serve a route, bounded bodies, and hostile requests.
import { MAX_FILTER_VALUES } from '../../../spec/docker/filters.js';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { UsageError } from '../../../lib/errors.js';
import { dockerErrorOf, get, json, STATUS_OF_CODE } from '../../../node/engine/index.js';
import { compareVersions, splitVersion } from '../../../node/engine/version.js';
import { TsswarmError, errorCodes } from '../../../lib/errors.js';
import { baseInfo, call, fakeBackend, serve, type Served } from './fake.js';

let s: Served | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

describe('version negotiation', () => {
  it('HEAD and GET /_ping answer OK with dockerd headers, the Swarm header as moby computes it', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    const head = await call(s.socket, 'HEAD', '/_ping');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(head.headers['api-version']).toBe('1.41');
    expect(head.headers.ostype).toBe('linux');
    expect(head.headers['docker-experimental']).toBe('false');
    expect(head.headers['cache-control']).toBe('no-cache, no-store, must-revalidate');
    expect(head.headers.pragma).toBe('no-cache');
    expect(head.headers.swarm).toBe('active/manager');
    const g = await call(s.socket, 'GET', '/_ping');
    expect(g.text).toBe('OK');
    expect(g.headers['content-type']).toBe('text/plain; charset=utf-8');
    f.info.isManager = false;
    f.info.role = 'worker';
    expect((await call(s.socket, 'HEAD', '/_ping')).headers.swarm).toBe('active/worker');
    f.info.state = 'locked';
    expect((await call(s.socket, 'HEAD', '/_ping')).headers.swarm).toBe('locked');
    f.info.state = 'inactive';
    expect((await call(s.socket, 'GET', '/v1.41/_ping')).headers.swarm).toBe('inactive');
  });

  it('serves versioned and unversioned paths alike, between 1.24 and 1.41', async () => {
    s = await serve(fakeBackend().backend);
    for (const p of ['/version', '/v1.41/version', '/v1.24/version', '/v1.30/version']) {
      const r = await call(s.socket, 'GET', p);
      expect(r.status, p).toBe(200);
      expect((r.json as { ApiVersion: string }).ApiVersion).toBe('1.41');
      expect((r.json as { MinAPIVersion: string }).MinAPIVersion).toBe('1.24');
    }
  });

  it('refuses a version above the maximum or below the minimum with dockerd messages and 400', async () => {
    s = await serve(fakeBackend().backend);
    const hi = await call(s.socket, 'GET', '/v1.50/info');
    expect(hi.status).toBe(400);
    expect(hi.headers['content-type']).toBe('application/json');
    expect(hi.json).toEqual({ message: 'client version 1.50 is too new. Maximum supported API version is 1.41' });
    const lo = await call(s.socket, 'GET', '/v1.12/info');
    expect(lo.status).toBe(400);
    expect((lo.json as { message: string }).message).toMatch(/^client version 1\.12 is too old\. Minimum supported API version is 1\.24/);
    // The headers still advertise what we speak, so a client can negotiate down.
    expect(hi.headers['api-version']).toBe('1.41');
  });

  it('compares versions part by part (1.9 < 1.24 < 1.41 < 1.100)', () => {
    expect(compareVersions('1.9', '1.24')).toBe(-1);
    expect(compareVersions('1.41', '1.41')).toBe(0);
    expect(compareVersions('1.100', '1.41')).toBe(1);
    expect(splitVersion('/v1.41/nodes/x')).toEqual({ version: '1.41', path: '/nodes/x' });
    expect(splitVersion('/nodes')).toEqual({ version: undefined, path: '/nodes' });
  });
});

describe('errors', () => {
  it('an unknown route is 404 page not found in JSON, versioned or not, and for a known path with another method', async () => {
    s = await serve(fakeBackend().backend);
    for (const [m, p] of [
      ['GET', '/nope'],
      ['GET', '/v1.41/nope/deeper'],
      ['DELETE', '/info'],
      ['PATCH', '/nodes'],
      ['GET', '/vx.y/info'],
    ] as const) {
      const r = await call(s.socket, m, p);
      expect(r.status, `${m} ${p}`).toBe(404);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.json).toEqual({ message: 'page not found' });
      // Nothing was left unread: the connection stays usable.
      expect(r.headers.connection).not.toBe('close');
    }
    expect(s.counted).toContain('GET  404');
  });

  it('maps every error code once: not found 404, conflict 409, bad input 400, unavailable 503, the rest 500', () => {
    expect(Object.keys(STATUS_OF_CODE).sort()).toEqual(Object.keys(errorCodes).sort());
    expect(dockerErrorOf(new TsswarmError('NOT_FOUND', 'x')).status).toBe(404);
    expect(dockerErrorOf(new TsswarmError('ALREADY_EXISTS', 'x')).status).toBe(409);
    expect(dockerErrorOf(new UsageError('x')).status).toBe(400);
    expect(dockerErrorOf(new TsswarmError('FAILED_PRECONDITION', 'x')).status).toBe(400);
    expect(dockerErrorOf(new TsswarmError('NOT_LEADER', 'x')).status).toBe(503);
    expect(dockerErrorOf(new TsswarmError('CONFLICT', 'x')).status).toBe(500);
    expect(dockerErrorOf(new Error('boom'))).toEqual({ status: 500, message: 'boom' });
  });

  it('a worker answers manager routes with 503 and dockerd message; outside a swarm and locked likewise', async () => {
    const f = fakeBackend(baseInfo({ isManager: false, role: 'worker' }));
    s = await serve(f.backend);
    for (const p of ['/nodes', '/v1.41/nodes/x', '/swarm', '/swarm/unlockkey']) {
      const r = await call(s.socket, 'GET', p);
      expect(r.status, p).toBe(503);
      expect((r.json as { message: string }).message).toMatch(/^This node is not a swarm manager\. Worker nodes can't be used/);
    }
    expect((await call(s.socket, 'GET', '/info')).status).toBe(200);
    f.info.state = 'inactive';
    expect((await call(s.socket, 'GET', '/nodes')).json).toEqual({ message: 'This node is not part of a swarm' });
    f.info.state = 'locked';
    const locked = await call(s.socket, 'GET', '/nodes');
    expect(locked.status).toBe(503);
    expect((locked.json as { message: string }).message).toMatch(/^Swarm is encrypted and needs to be unlocked/);
  });

  it('a handler error reaches the client as {"message"} with the mapped status', async () => {
    const routes = [
      get('/a', 'any', async () => {
        throw new TsswarmError('NOT_FOUND', 'node zz not found');
      }),
      get('/b', 'any', async () => json({ ok: 1 }, 201)),
    ];
    s = await serve(fakeBackend().backend, { routes });
    const a = await call(s.socket, 'GET', '/a');
    expect(a.status).toBe(404);
    expect(a.text).toBe('{"message":"node zz not found"}\n');
    const b = await call(s.socket, 'GET', '/v1.41/b');
    expect(b.status).toBe(201);
    expect(b.json).toEqual({ ok: 1 });
  });
});

describe('hostile input', () => {
  it('refuses a body over the limit with 400 before reading it all, and closes the connection', async () => {
    const f = fakeBackend();
    s = await serve(f.backend, { maxBodyBytes: 1024 });
    const big = `{"Labels":{"a":"${'x'.repeat(4096)}"},"Role":"worker","Availability":"active"}`;
    const r = await call(s.socket, 'POST', '/nodes/w1/update?version=7', big);
    expect(r.status).toBe(400);
    expect((r.json as { message: string }).message).toMatch(/^request body of \d+ bytes is over the 1024 bytes limit$/);
    expect(f.calls.some((c) => c.method === 'updateNode')).toBe(false);
  });

  it('refuses bad JSON, a wrong Content-Type and a body that is not an object, naming the problem', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    const bad = await call(s.socket, 'POST', '/nodes/w1/update?version=7', '{"Role": ');
    expect(bad.status).toBe(400);
    expect((bad.json as { message: string }).message).toMatch(/^invalid JSON: /);
    const ct = await call(s.socket, 'POST', '/nodes/w1/update?version=7', '{}', { 'Content-Type': 'text/plain' });
    expect(ct.status).toBe(400);
    expect((ct.json as { message: string }).message).toBe("unsupported Content-Type header (text/plain): must be 'application/json'");
    const arr = await call(s.socket, 'POST', '/nodes/w1/update?version=7', '[1,2]');
    expect(arr.status).toBe(400);
    expect((arr.json as { message: string }).message).toMatch(/must be a JSON object \(got an array\)/);
    expect(f.calls.some((c) => c.method === 'updateNode')).toBe(false);
  });

  it('a reference that would walk the path, or is empty, names nothing: 404 page not found', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    for (const p of ['/nodes/..', '/nodes/%2E%2E', '/nodes/a%2Fb', '/nodes//update', '/nodes/%zz', '/v1.41/nodes/../swarm']) {
      const r = await call(s.socket, 'GET', p);
      expect(r.status, p).toBe(404);
    }
    expect(f.calls.filter((c) => c.method === 'getNode')).toEqual([]);
  });

  it('filters: unknown keys and malformed JSON are 400, huge ones are refused quickly', async () => {
    s = await serve(fakeBackend().backend);
    const unknown = await call(s.socket, 'GET', `/nodes?filters=${encodeURIComponent('{"colour":{"red":true}}')}`);
    expect(unknown.status).toBe(400);
    expect(unknown.json).toEqual({ message: "invalid filter 'colour'" });
    const malformed = await call(s.socket, 'GET', `/nodes?filters=${encodeURIComponent('{"name":')}`);
    expect(malformed.json).toEqual({ message: 'invalid filter' });
    // More values than a filter may carry (spec/docker/filters.ts), in the short legacy form to stay under the header limit.
    const many = Array.from({ length: MAX_FILTER_VALUES + 1 }, (_, i) => i.toString(36));
    const r = await call(s.socket, 'GET', `/nodes?filters=${encodeURIComponent(JSON.stringify({ name: many }))}`);
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ message: `invalid filter: more than ${MAX_FILTER_VALUES} filter values` });
    // A query over the 16 KiB header limit is refused by the parser, still as JSON.
    const huge = await call(s.socket, 'GET', `/nodes?filters=${'x'.repeat(20_000)}`);
    expect(huge.status).toBe(431);
    expect(huge.headers['content-type']).toBe('application/json');
  });

  it('garbage on the socket gets a JSON 400 and the server keeps serving', async () => {
    s = await serve(fakeBackend().backend);
    const reply = await new Promise<string>((resolve) => {
      const c = connect(s!.socket, () => c.write('NOT HTTP AT ALL\r\n\r\n'));
      let out = '';
      c.on('data', (d) => {
        out += d.toString();
      });
      c.on('close', () => resolve(out));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(reply).toMatch(/\{"message":"bad request: /);
    expect((await call(s.socket, 'GET', '/_ping')).status).toBe(200);
  });
});
