// The node's TLS key at rest (node/state.ts): sealed as encrypted PKCS#8
// under the node key secret while autolock is on, opened with that secret
// only, and left as it is when it was never sealed.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateNodeKey, keyMatchesCert, createRootCA } from '../../ca/index.js';
import { isSealedKeyPem, openKeyPem, sealKeyPem } from '../../node/state.js';

describe('the TLS key sealed for autolock', () => {
  it('seals to an encrypted PEM holding nothing of the key in clear, and opens to the same key', () => {
    const { privateKeyPem } = generateNodeKey();
    const secret = new Uint8Array(randomBytes(32));
    const sealed = sealKeyPem(privateKeyPem, secret);
    expect(isSealedKeyPem(sealed)).toBe(true);
    expect(isSealedKeyPem(privateKeyPem)).toBe(false);
    const body = (pem: string): string => pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    expect(sealed).not.toContain(body(privateKeyPem).slice(40, 80));
    const opened = openKeyPem(sealed, secret);
    // The same key: a certificate of the original key matches the opened one.
    const ca = createRootCA({ commonName: 'tss-test', now: Date.now() });
    expect(keyMatchesCert(ca.keyPem, ca.certPem)).toBe(true);
    expect(keyMatchesCert(openKeyPem(sealKeyPem(ca.keyPem, secret), secret), ca.certPem)).toBe(true);
    expect(isSealedKeyPem(opened)).toBe(false);
  });

  it('refuses to open without the secret or with another one; a key in clear opens as it is', () => {
    const { privateKeyPem } = generateNodeKey();
    const sealed = sealKeyPem(privateKeyPem, new Uint8Array(randomBytes(32)));
    expect(() => openKeyPem(sealed, null)).toThrow('the TLS key is encrypted, and no key secret is known to open it');
    expect(() => openKeyPem(sealed, new Uint8Array(randomBytes(32)))).toThrow();
    expect(openKeyPem(privateKeyPem, null)).toBe(privateKeyPem);
    expect(openKeyPem(privateKeyPem, new Uint8Array(32))).toBe(privateKeyPem);
  });
});
