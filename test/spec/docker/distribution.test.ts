// X-Registry-Auth and the reference of GET /distribution/{name}/json, read as dockerd reads them.
import { describe, expect, it } from 'vitest';
import {
  credentialsFitImage,
  decodeRegistryAuth,
  distributionRef,
  EMPTY_REGISTRY_AUTH,
  HUB_REGISTRY,
  imageRegistry,
  keepsPullAuth,
  MAX_REGISTRY_AUTH_CHARS,
  serverRegistry,
} from '../../../spec/docker/distribution.js';

const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('X-Registry-Auth', () => {
  it('decodes base64url JSON AuthConfig, padded or not; empty and {} mean no credentials', () => {
    expect(decodeRegistryAuth(enc({ username: 'alice', password: 'pw', serveraddress: 'reg:5000' }))).toEqual({
      username: 'alice',
      password: 'pw',
      serverAddress: 'reg:5000',
    });
    // A serveraddress alone is no credentials.
    expect(decodeRegistryAuth(enc({ serveraddress: 'reg:5000' }))).toBeUndefined();
    const padded = Buffer.from(JSON.stringify({ username: 'bob', password: 'x' }))
      .toString('base64')
      .replace(/\+/g, '-')
      .replace(/\//g, '_');
    expect(decodeRegistryAuth(padded)).toEqual({ username: 'bob', password: 'x' });
    expect(decodeRegistryAuth(undefined)).toBeUndefined();
    expect(decodeRegistryAuth('')).toBeUndefined();
    expect(decodeRegistryAuth('e30=')).toBeUndefined(); // {} as the CLI sends it without a login
    expect(decodeRegistryAuth(enc({ username: '', password: '' }))).toBeUndefined();
  });

  it('takes the combined auth field and the tokens', () => {
    expect(decodeRegistryAuth(enc({ auth: Buffer.from('carol:p:w').toString('base64') }))).toEqual({ username: 'carol', password: 'p:w' });
    expect(decodeRegistryAuth(enc({ identitytoken: 'refresh' }))).toEqual({ identityToken: 'refresh' });
    expect(decodeRegistryAuth(enc({ registrytoken: 'bearer' }))).toEqual({ registryToken: 'bearer' });
  });

  it('a malformed header is ignored, as dockerd does for this route; a huge one is refused without echoing it', () => {
    expect(decodeRegistryAuth('%%%not base64')).toBeUndefined();
    expect(decodeRegistryAuth(enc(['a']))).toBeUndefined();
    expect(decodeRegistryAuth(enc({ username: 7 }))).toBeUndefined();
    const huge = 'A'.repeat(MAX_REGISTRY_AUTH_CHARS + 1);
    expect(() => decodeRegistryAuth(huge)).toThrow(/X-Registry-Auth is 16385 characters long: at most 16384/);
    try {
      decodeRegistryAuth(huge);
    } catch (e) {
      expect((e as Error).message).not.toContain('AAAA');
    }
  });

  it('a field longer than 8 KiB is refused, naming the field, never cut (a cut token is another credential)', () => {
    expect(decodeRegistryAuth(enc({ username: 'u', password: 'p'.repeat(8192) }))?.password).toHaveLength(8192);
    expect(() => decodeRegistryAuth(enc({ username: 'u', password: 'p'.repeat(8193) }))).toThrow(
      /X-Registry-Auth: its "password" is 8193 characters long: at most 8192/,
    );
    expect(() => decodeRegistryAuth(enc({ identitytoken: 't'.repeat(9000) }))).toThrow(/its "identitytoken"/);
  });
});

describe('which registry credentials are for', () => {
  const hub = enc({ username: 'u', password: 'p', serveraddress: 'https://index.docker.io/v1/' });
  const regA = enc({ username: 'u', password: 'p', serveraddress: 'rega.example:5000' });
  const bare = enc({ username: 'u', password: 'p' });

  it('the registry of a serveraddress and of an image, Docker Hub by any of its names', () => {
    expect(serverRegistry('https://index.docker.io/v1/')).toBe(HUB_REGISTRY);
    expect(serverRegistry('')).toBe(HUB_REGISTRY);
    expect(serverRegistry('https://Reg:5000/v2/')).toBe('reg:5000');
    expect(() => serverRegistry('a b')).toThrow(/serveraddress is not a registry/);
    for (const i of ['busybox', 'user/app:v1', 'docker.io/library/busybox', 'index.docker.io/x/y', 'registry-1.docker.io/x/y@sha256:ab'])
      expect(imageRegistry(i)).toBe(HUB_REGISTRY);
    expect(imageRegistry('RegA.example:5000/app:v1')).toBe('rega.example:5000');
    expect(imageRegistry('localhost/app')).toBe('localhost');
  });

  it('credentials are sent only to the registry their serveraddress names', () => {
    expect(credentialsFitImage(decodeRegistryAuth(regA)!, 'rega.example:5000/app:v1')).toBe(true);
    expect(credentialsFitImage(decodeRegistryAuth(regA)!, 'other.reg/x')).toBe(false);
    expect(credentialsFitImage(decodeRegistryAuth(regA)!, 'busybox')).toBe(false);
    expect(credentialsFitImage(decodeRegistryAuth(hub)!, 'docker.io/library/busybox')).toBe(true);
    expect(credentialsFitImage(decodeRegistryAuth(hub)!, 'rega.example:5000/app')).toBe(false);
    // Without a serveraddress they are for the image they came with.
    expect(credentialsFitImage(decodeRegistryAuth(bare)!, 'other.reg/x')).toBe(true);
  });

  it('an update that sends none keeps them only while they are for the new image’s registry', () => {
    expect(keepsPullAuth(regA, 'rega.example:5000/app:v1', 'rega.example:5000/app:v2')).toBe(true);
    expect(keepsPullAuth(regA, 'rega.example:5000/app:v1', 'other.reg/x')).toBe(false);
    expect(keepsPullAuth(hub, 'busybox', 'docker.io/library/alpine')).toBe(true);
    expect(keepsPullAuth(hub, 'busybox', 'ghcr.io/o/r')).toBe(false);
    expect(keepsPullAuth(bare, 'rega.example:5000/app:v1', 'rega.example:5000/other')).toBe(true);
    expect(keepsPullAuth(bare, 'rega.example:5000/app:v1', 'other.reg/x')).toBe(false);
    expect(keepsPullAuth('%%%', 'a', 'a')).toBe(false);
    expect(keepsPullAuth(EMPTY_REGISTRY_AUTH, 'a', 'a')).toBe(false);
  });
});

describe('the reference', () => {
  it('accepts names with a registry, a tag and/or a digest', () => {
    const d = `sha256:${'c'.repeat(64)}`;
    for (const r of ['busybox', 'busybox:1.36', `busybox@${d}`, `10.77.0.11:5000/tss/bb:v1@${d}`, 'localhost/a/b/c:x', 'ghcr.io/o/r'])
      expect(distributionRef(r)).toBe(r);
  });

  it('refuses what dockerd refuses, with its words', () => {
    expect(() => distributionRef('c'.repeat(64))).toThrow('no manifest found for full image ID');
    expect(() => distributionRef('Busybox')).toThrow('invalid reference format: repository name (library/Busybox) must be lowercase');
    expect(() => distributionRef('reg:5000/Team/app:v1')).toThrow('invalid reference format: repository name (Team/app) must be lowercase');
    expect(() => distributionRef('busybox:')).toThrow(/^invalid reference format$/);
    expect(() => distributionRef('busybox@sha256:abc')).toThrow(/invalid reference format/);
    expect(() => distributionRef(`a/${'b'.repeat(300)}`)).toThrow(/not be more than 255 characters/);
  });
});
