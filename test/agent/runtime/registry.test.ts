import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkInsecureRegistry,
  describeManifest,
  registryErrorText,
  registryIsInsecure,
  registryRef,
  resolveDescriptor,
} from '../../../agent/runtime/registry.js';

const sha = (b: string | Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('registry references and settings', () => {
  it('a tag beside a digest is kept apart from it; a bare name is latest', () => {
    const d = `sha256:${'b'.repeat(64)}`;
    expect(registryRef(`localhost:5000/a/b:v1@${d}`)).toEqual({ registry: 'localhost:5000', repo: 'a/b', tag: 'v1', digest: d });
    expect(registryRef(`busybox@${d}`)).toEqual({ registry: 'registry-1.docker.io', repo: 'library/busybox', tag: '', digest: d });
    expect(registryRef('docker.io/user/app')).toEqual({ registry: 'registry-1.docker.io', repo: 'user/app', tag: 'latest', digest: '' });
  });

  it('loopback is always plain http; others only when listed by host, host:port or CIDR', () => {
    expect(registryIsInsecure('localhost:5000')).toBe(true);
    expect(registryIsInsecure('127.0.0.2:80')).toBe(true);
    expect(registryIsInsecure('10.77.0.11:5000')).toBe(false);
    expect(registryIsInsecure('10.77.0.11:5000', ['10.77.0.11:5000'])).toBe(true);
    expect(registryIsInsecure('10.77.0.11:5000', ['10.77.0.11'])).toBe(true);
    expect(registryIsInsecure('10.77.0.11:5000', ['10.77.0.0/24'])).toBe(true);
    expect(registryIsInsecure('10.78.0.11:5000', ['10.77.0.0/24'])).toBe(false);
    expect(registryIsInsecure('reg.example:5000', ['reg.example:443'])).toBe(false);
  });

  it('insecure-registry entries are checked for form, naming the setting', () => {
    expect(checkInsecureRegistry(' Reg.Example:5000 ', 'f')).toBe('reg.example:5000');
    expect(checkInsecureRegistry('10.0.0.0/8', 'f')).toBe('10.0.0.0/8');
    expect(checkInsecureRegistry('http://10.0.0.1:5000', 'f')).toBe('10.0.0.1:5000');
    expect(() => checkInsecureRegistry('10.0.0.0/40', '--insecure-registry')).toThrow(
      /--insecure-registry "10.0.0.0\/40" is not a registry/,
    );
    expect(() => checkInsecureRegistry('a b', 'f')).toThrow(/not a registry/);
    expect(() => checkInsecureRegistry('host:0', 'f')).toThrow(/not a registry/);
  });

  it("a registry's error document reads as the docker CLI prints it", () => {
    expect(registryErrorText('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}')).toBe(
      'manifest unknown: manifest unknown',
    );
    expect(registryErrorText('not json')).toBeUndefined();
    expect(registryErrorText('{"errors":[]}')).toBeUndefined();
  });
});

describe('describeManifest', () => {
  it('an index lists its entries’ platforms and is described by its own digest, size and media type', async () => {
    const doc = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { digest: sha('a'), platform: { os: 'linux', architecture: 'amd64' } },
        { digest: sha('b'), platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
        { digest: sha('c'), platform: { os: 'unknown', architecture: 'unknown' }, annotations: {} },
      ],
    };
    const buf = Buffer.from(JSON.stringify(doc));
    let asked = false;
    const d = await describeManifest({ buf, digest: sha(buf), mediaType: doc.mediaType, doc }, async () => {
      asked = true;
      return {};
    });
    expect(asked).toBe(false);
    expect(d).toEqual({
      Descriptor: { mediaType: doc.mediaType, digest: sha(buf), size: buf.length },
      Platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm', variant: 'v7' },
        { os: 'unknown', architecture: 'unknown' },
      ],
    });
  });

  it("a single manifest's platform comes from its config; an unreadable config gives none", async () => {
    const doc = { schemaVersion: 2, config: { digest: sha('cfg') }, layers: [] };
    const buf = Buffer.from(JSON.stringify(doc));
    const m = { buf, digest: sha(buf), mediaType: 'application/vnd.oci.image.manifest.v1+json', doc };
    expect((await describeManifest(m, async () => ({ os: 'linux', architecture: 'amd64', config: {} }))).Platforms).toEqual([
      { os: 'linux', architecture: 'amd64' },
    ]);
    expect((await describeManifest(m, () => Promise.reject(new Error('gone')))).Platforms).toEqual([]);
  });
});

describe('resolveDescriptor against a registry with token auth', () => {
  const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [],
    }),
  );
  let srv: Server;
  let port = 0;
  const seen: string[] = [];
  beforeAll(async () => {
    srv = createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      seen.push(`${req.method} ${url.pathname}${url.search}`);
      if (url.pathname === '/token') {
        // The token server wants the credentials, in Basic.
        if (req.headers.authorization !== `Basic ${Buffer.from('alice:s3cret').toString('base64')}`) {
          res.writeHead(401).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'T0K' }));
        return;
      }
      if (req.headers.authorization !== 'Bearer T0K') {
        res
          .writeHead(401, {
            'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="tss-test",scope="repository:team/app:pull"`,
            'content-type': 'application/json',
          })
          .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      // Any digest gets this manifest: a registry that lies about content.
      if (url.pathname === '/v2/team/app/manifests/v1' || url.pathname.startsWith('/v2/team/app/manifests/sha256:')) {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest);
        return;
      }
      if (url.pathname === `/v2/team/app/blobs/${sha(config)}`) {
        res.writeHead(200).end(config);
        return;
      }
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    port = (srv.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => srv.close(() => r())));

  it('fetches a token with the credentials, then answers the manifest digest, size and platform', async () => {
    const d = await resolveDescriptor(`127.0.0.1:${port}/team/app:v1`, { auth: { username: 'alice', password: 's3cret' } });
    expect(d).toEqual({
      Descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length },
      Platforms: [{ os: 'linux', architecture: 'amd64' }],
    });
    expect(seen.find((s) => s.startsWith('GET /token'))).toMatch(/scope=repository%3Ateam%2Fapp%3Apull/);
    // Pinned by digest (with the tag beside it), the same answer.
    const byDigest = await resolveDescriptor(`127.0.0.1:${port}/team/app:v1@${sha(manifest)}`, {
      auth: { username: 'alice', password: 's3cret' },
    });
    expect(byDigest.Descriptor.digest).toBe(sha(manifest));
  });

  it('refusals keep the registry status: 401 without credentials, 404 for a missing tag; no secret in a message', async () => {
    await expect(resolveDescriptor(`127.0.0.1:${port}/team/app:v1`, {})).rejects.toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    const wrong = await resolveDescriptor(`127.0.0.1:${port}/team/app:v1`, { auth: { username: 'alice', password: 'nope' } }).catch(
      (e: Error) => e,
    );
    expect(wrong).toMatchObject({ status: 401 });
    expect((wrong as Error).message).not.toMatch(/nope/);
    await expect(
      resolveDescriptor(`127.0.0.1:${port}/team/app:v9`, { auth: { username: 'alice', password: 's3cret' } }),
    ).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND', registryText: 'manifest unknown: manifest unknown' });
  });

  it('a digest the content does not match is refused as corrupt', async () => {
    await expect(
      resolveDescriptor(`127.0.0.1:${port}/team/app@${sha('other')}`, { auth: { username: 'alice', password: 's3cret' } }),
    ).rejects.toThrow(/arrived corrupt \(its content does not match sha256:/);
  });
});
