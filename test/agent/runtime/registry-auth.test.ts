// The registry client's authentication against registries served on
// loopback by the test: a login answering a Basic or a Bearer challenge, the
// Authorization header kept from blob storage on another host after a
// redirect, and a registry's own CA and client certificate read from a
// certs.d directory (made in a tss-named temp dir with the project's CA code).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLogin, RegistrySession, registryTls, tlsFetch } from '../../../agent/runtime/registry.js';
import { createCSR, createRootCA, generateNodeKey, signEngineServerCSR, signNodeCSR } from '../../../ca/index.js';

const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

function listen(s: Server | HttpsServer): Promise<number> {
  return new Promise((res) => s.listen(0, '127.0.0.1', () => res((s.address() as { port: number }).port)));
}

describe('logins and blob redirects over plain http', () => {
  const seen: { path: string; authorization?: string }[] = [];
  let storage: Server;
  let basicReg: Server;
  let bearerReg: Server;
  let storagePort = 0;
  let basicPort = 0;
  let bearerPort = 0;
  const tokenQueries: URLSearchParams[] = [];

  beforeAll(async () => {
    storage = createServer((q, r) => {
      seen.push({ path: q.url ?? '', authorization: q.headers.authorization });
      r.end('blob bytes');
    });
    storagePort = await listen(storage);
    basicReg = createServer((q: IncomingMessage, r: ServerResponse) => {
      if (q.headers.authorization !== basic('tss', 'pw')) {
        r.writeHead(401, { 'www-authenticate': 'Basic realm="tss"', 'content-type': 'application/json' });
        r.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      if (q.url?.startsWith('/v2/tss/app/blobs/')) {
        // Blob storage elsewhere, as S3 behind a registry: another origin (localhost, not 127.0.0.1).
        r.writeHead(307, { location: `http://localhost:${storagePort}/bucket/blob` });
        r.end();
        return;
      }
      r.end('{}');
    });
    basicPort = await listen(basicReg);
    bearerReg = createServer((q, r) => {
      const url = new URL(q.url ?? '/', 'http://x');
      if (url.pathname === '/token') {
        tokenQueries.push(url.searchParams);
        if (q.headers.authorization !== basic('tss', 'pw')) {
          r.writeHead(401);
          r.end();
          return;
        }
        r.end(JSON.stringify({ token: 'tok-1' }));
        return;
      }
      if (q.headers.authorization !== 'Bearer tok-1') {
        r.writeHead(401, {
          'www-authenticate': `Bearer realm="http://127.0.0.1:${bearerPort}/token",service="tss-registry"`,
        });
        r.end();
        return;
      }
      r.end('{}');
    });
    bearerPort = await listen(bearerReg);
  });

  afterAll(() => {
    for (const s of [storage, basicReg, bearerReg]) s.close();
  });

  it('a login answers a Basic challenge; wrong credentials are refused without the password in the message', async () => {
    await expect(checkLogin(`127.0.0.1:${basicPort}`, { username: 'tss', password: 'pw' })).resolves.toBeUndefined();
    const bad = await checkLogin(`127.0.0.1:${basicPort}`, { username: 'tss', password: 'wrong-secret' }).catch((e: Error) => e);
    expect(bad).toBeInstanceOf(Error);
    expect((bad as { status?: number }).status).toBe(401);
    expect((bad as Error).message).toMatch(/answered 401 .*the credentials given were refused.*authentication required/);
    expect((bad as Error).message).not.toContain('wrong-secret');
  });

  it('a login answers a Bearer challenge: a token from the realm, asked with the credentials and without a scope', async () => {
    await expect(checkLogin(`127.0.0.1:${bearerPort}`, { username: 'tss', password: 'pw' })).resolves.toBeUndefined();
    const q = tokenQueries.at(-1)!;
    expect(q.get('service')).toBe('tss-registry');
    expect(q.has('scope')).toBe(false);
    const bad = await checkLogin(`127.0.0.1:${bearerPort}`, { username: 'tss', password: 'nope' }).catch((e: Error) => e);
    expect((bad as { status?: number }).status).toBe(401);
    expect((bad as Error).message).toMatch(/token server .* answered 401/);
  });

  it('a login names a registry as HOST[:PORT] only: a path (which would name another certs.d directory) is refused before any request', async () => {
    const before = tokenQueries.length;
    for (const r of ['../../etc', `127.0.0.1:${bearerPort}/x`, 'a b', '', 'REG:5000'])
      await expect(checkLogin(r, { username: 'tss', password: 'pw' })).rejects.toThrow(/is not a registry: give HOST\[:PORT\]/);
    expect(tokenQueries.length).toBe(before);
  });

  it('a token server reached at a pinned address: the checked address is used, the name is not resolved again', async () => {
    // tss-rebind.invalid never resolves: only the pin can take the request to the loopback token server.
    const r = await tlsFetch(`http://tss-rebind.invalid:${bearerPort}/token?service=pinned`, {
      headers: { authorization: basic('tss', 'pw') },
      signal: AbortSignal.timeout(10_000),
      pin: { address: '127.0.0.1', family: 4 },
      redirect: 'error',
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ token: 'tok-1' });
    expect(tokenQueries.at(-1)!.get('service')).toBe('pinned');
  });

  it('a blob redirected to another host is fetched without the Authorization header', async () => {
    const s = new RegistrySession(
      { registry: `127.0.0.1:${basicPort}`, repo: 'tss/app', tag: 'v1', digest: '' },
      { plainHttp: true, auth: { username: 'tss', password: 'pw' }, maxJsonBytes: 1024, verb: 'pulling tss/app:v1' },
    );
    const r = await s.get(`${s.base}/blobs/sha256:${'a'.repeat(64)}`, undefined, AbortSignal.timeout(10_000));
    expect(await r.text()).toBe('blob bytes');
    expect(seen.at(-1)).toEqual({ path: '/bucket/blob', authorization: undefined });
  });
});

describe("a registry's own CA and client certificate from certs.d", () => {
  let dir = '';
  const now = Date.now();
  const ca = createRootCA({ now, commonName: 'tss-registry-ca' });
  const serverKey = generateNodeKey();
  const serverCert = signEngineServerCSR(ca, createCSR(serverKey.privateKeyPem), {
    nodeId: 'tss-registry',
    clusterId: 'tss',
    now,
    ips: ['127.0.0.1'],
    dnsNames: [],
  });
  const clientKey = generateNodeKey();
  const clientCert = signNodeCSR(ca, createCSR(clientKey.privateKeyPem), {
    nodeId: 'tss-client',
    role: 'worker',
    clusterId: 'tss',
    now,
  });
  let srv: HttpsServer;
  let storage: Server;
  let port = 0;
  let storagePort = 0;
  const clients: { authorized: boolean; authorization?: string }[] = [];
  const storageSeen: (string | undefined)[] = [];
  const oauthForms: URLSearchParams[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tss-certsd-'));
    storage = createServer((q, r) => {
      storageSeen.push(q.headers.authorization);
      r.end('stored');
    });
    storagePort = await listen(storage);
    srv = createHttpsServer(
      { cert: serverCert, key: serverKey.privateKeyPem, ca: [ca.certPem], requestCert: true, rejectUnauthorized: false },
      (q, r) => {
        clients.push({ authorized: (q.socket as TLSSocket).authorized, authorization: q.headers.authorization });
        if (q.url === '/oauth' && q.method === 'POST') {
          let body = '';
          q.on('data', (c: Buffer) => (body += c.toString()));
          q.on('end', () => {
            oauthForms.push(new URLSearchParams(body));
            r.end(JSON.stringify({ access_token: 'tok-oauth' }));
          });
          return;
        }
        if (q.url?.startsWith('/v2/oauth/') && q.headers.authorization !== 'Bearer tok-oauth') {
          r.writeHead(401, { 'www-authenticate': `Bearer realm="https://127.0.0.1:${port}/oauth",service="tss-oauth"` });
          r.end();
          return;
        }
        if (q.url?.includes('/blobs/')) {
          r.writeHead(302, { location: `http://localhost:${storagePort}/b` });
          r.end();
          return;
        }
        r.end('{}');
      },
    );
    port = await listen(srv);
  });

  afterAll(() => {
    srv?.close();
    storage?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads ca.crt, client.cert and client.key of HOST:PORT; nothing when the directory is absent', () => {
    const d = join(dir, `127.0.0.1:${port}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'ca.crt'), ca.certPem);
    writeFileSync(join(d, 'client.cert'), clientCert);
    writeFileSync(join(d, 'client.key'), clientKey.privateKeyPem);
    expect(registryTls(dir, `127.0.0.1:${port}`)).toEqual({ ca: [ca.certPem], cert: clientCert, key: clientKey.privateKeyPem });
    expect(registryTls(dir, 'other:5000')).toBeUndefined();
    expect(registryTls(dir, '..')).toBeUndefined();
  });

  it('a client certificate without its key is an error naming both files', () => {
    const d = join(dir, 'half:5000');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'client.cert'), clientCert);
    expect(() => registryTls(dir, 'half:5000')).toThrow(
      `${join(d, 'client.cert')}: the client certificate has no key: put it in ${join(d, 'client.key')}`,
    );
  });

  it('the registry is trusted through its CA and sees the client certificate; without certs.d the TLS check fails', async () => {
    const tls = registryTls(dir, `127.0.0.1:${port}`)!;
    const r = await tlsFetch(`https://127.0.0.1:${port}/v2/`, { headers: {}, signal: AbortSignal.timeout(10_000), tls });
    expect(r.status).toBe(200);
    expect(clients.at(-1)!.authorized).toBe(true);
    const s = new RegistrySession(
      { registry: `127.0.0.1:${port}`, repo: 'x', tag: 'v1', digest: '' },
      { plainHttp: false, maxJsonBytes: 1024, verb: 'pulling x:v1' },
    );
    await expect(s.get(`https://127.0.0.1:${port}/v2/`, undefined, AbortSignal.timeout(10_000))).rejects.toThrow(
      /cannot reach https:\/\/127\.0\.0\.1:\d+ \((SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO)/,
    );
  });

  it('an identity token is traded at a realm on the registry’s host through the same certs.d CA', async () => {
    const tls = registryTls(dir, `127.0.0.1:${port}`)!;
    const s = new RegistrySession(
      { registry: `127.0.0.1:${port}`, repo: '', tag: '', digest: '' },
      { plainHttp: false, tls, auth: { identityToken: 'refresh-1' }, maxJsonBytes: 1024, verb: 'logging in to it' },
    );
    // Only /v2/oauth/ challenges (the other tests see none); the realm is https on the registry's own host.
    const r = await s.get(`https://127.0.0.1:${port}/v2/oauth/ping`, undefined, AbortSignal.timeout(10_000));
    expect(r.status).toBe(200);
    await r.body?.cancel();
    const form = oauthForms.at(-1)!;
    expect([form.get('grant_type'), form.get('refresh_token'), form.get('service')]).toEqual(['refresh_token', 'refresh-1', 'tss-oauth']);
    expect(clients.at(-1)).toMatchObject({ authorized: true, authorization: 'Bearer tok-oauth' });
  });

  it('over TLS too, a redirect to another host carries neither the Authorization header nor the client certificate', async () => {
    const tls = registryTls(dir, `127.0.0.1:${port}`)!;
    const r = await tlsFetch(`https://127.0.0.1:${port}/v2/x/blobs/sha256:1`, {
      headers: { authorization: 'Bearer secret-token' },
      signal: AbortSignal.timeout(10_000),
      tls,
    });
    expect(await r.text()).toBe('stored');
    expect(clients.at(-1)!.authorization).toBe('Bearer secret-token');
    expect(storageSeen.at(-1)).toBeUndefined();
    await expect(
      tlsFetch(`https://127.0.0.1:${port}/v2/x/blobs/sha256:1`, {
        headers: {},
        signal: AbortSignal.timeout(10_000),
        tls,
        redirect: 'error',
      }),
    ).rejects.toThrow(/redirected to http:\/\/localhost:\d+/);
  });
});
