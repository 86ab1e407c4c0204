// The token server a registry names (tokenRealmUrl): pure checks that an image
// pull never sends a token in clear or to this host or a link-local address.
// ImageStore against hostile archives and registries is in images.kernel.test.ts.
import { describe, expect, it } from 'vitest';
import { tokenRealmUrl } from '../../../agent/runtime/images.js';

describe('the token realm a registry names', () => {
  const check = (realm: string, registry: string, plainHttp = false): string => {
    try {
      return tokenRealmUrl(realm, { registry, plainHttp, reference: `${registry}/tss/app:1` }).href;
    } catch (e) {
      return `refused: ${(e as Error).message}`;
    }
  };

  it("an https registry's http realm is refused: the token would travel in clear, and the registry chose where", () => {
    expect(check('http://auth.example.com/token', 'registry.example.com')).toMatch(
      /^refused: pulling registry\.example\.com\/tss\/app:1: the registry registry\.example\.com names the token server "http:\/\/auth\.example\.com\/token", which is not https \(only a registry reached over plain http may name an http token server\)/,
    );
    expect(check('http://auth.example.com/token', 'registry.example.com', true)).toBe('http://auth.example.com/token');
    for (const realm of ['ftp://auth.example.com/t', 'file:///tmp/tss-token', 'not a url'])
      expect(check(realm, 'registry.example.com', true), realm).toMatch(/^refused: /);
  });

  it('a registry elsewhere cannot aim the agent at this host or at link-local (cloud metadata) addresses', () => {
    for (const realm of [
      'https://127.0.0.1/token',
      'https://127.9.9.9:5000/token',
      'https://localhost/token',
      'https://tss.localhost/token',
      'https://[::1]/token',
      'https://[::ffff:127.0.0.1]/token',
      'https://2130706433/token', // 127.0.0.1 as one number; the URL parser normalizes it
      'https://169.254.169.254/latest/meta-data',
      'https://[fe80::1]/token',
      'https://0.0.0.0/token',
    ]) {
      expect(check(realm, 'registry.example.com'), realm).toMatch(
        /which is a (loopback|link-local|unspecified) address while the registry is not on this host/,
      );
    }
  });

  it("Docker Hub's token server passes, and a registry on this host may use a token server on this host", () => {
    expect(check('https://auth.docker.io/token', 'registry-1.docker.io')).toBe('https://auth.docker.io/token');
    expect(check('https://auth.example.com/token?x=1', 'registry.example.com:5000')).toBe('https://auth.example.com/token?x=1');
    expect(check('http://127.0.0.1:5001/token', '127.0.0.1:5000', true)).toBe('http://127.0.0.1:5001/token');
    expect(check('http://localhost:5001/token', 'localhost:5000', true)).toBe('http://localhost:5001/token');
  });
});
