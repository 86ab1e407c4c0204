// X-Registry-Auth and the reference of GET /distribution/{name}/json, read as dockerd reads them.
import { describe, expect, it } from 'vitest';
import { decodeRegistryAuth, distributionRef, MAX_REGISTRY_AUTH_CHARS } from '../../../spec/docker/distribution.js';

const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('X-Registry-Auth', () => {
  it('decodes base64url JSON AuthConfig, padded or not; empty and {} mean no credentials', () => {
    expect(decodeRegistryAuth(enc({ username: 'alice', password: 'pw', serveraddress: 'reg:5000' }))).toEqual({
      username: 'alice',
      password: 'pw',
    });
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

  it('every field is capped', () => {
    const a = decodeRegistryAuth(enc({ username: 'u', password: 'p'.repeat(10_000) }));
    expect(a?.password).toHaveLength(8192);
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
