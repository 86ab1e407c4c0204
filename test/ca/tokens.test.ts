// Join tokens: Swarm's format, parse errors that name the broken part, CA
// pinning by the joining node, role by token, and rotation.
import { createHash, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CA_DIGEST_LENGTH,
  CAError,
  CAMismatchError,
  caDigest,
  checkCAPin,
  createRootCA,
  InvalidJoinTokenError,
  JOIN_SECRET_LENGTH,
  makeJoinToken,
  parseJoinToken,
  roleForToken,
} from '../../ca/index.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const root = createRootCA({ now: NOW });
const otherRoot = createRootCA({ now: NOW });

/** Deterministic "random" bytes: the same fill each time. */
const fixedBytes = (fill: number) => (n: number) => Buffer.alloc(n, fill);

function errorOf(fn: () => unknown): CAError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CAError) return e;
    throw e;
  }
  throw new Error('expected a CAError');
}

describe('join token format', () => {
  it('is SWMTKN-1-<50 base-36 CA digest>-<25 base-36 secret>', () => {
    const t = makeJoinToken(root.certPem, 'worker');
    expect(t).toMatch(/^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    expect(CA_DIGEST_LENGTH).toBe(50);
    expect(JOIN_SECRET_LENGTH).toBe(25);
    expect(parseJoinToken(t)).toEqual({ version: 1, caDigest: caDigest(root.certPem), secret: t.slice(-25) });
  });

  it('the digest is the SHA-256 of the CA certificate DER in base 36, zero-padded', () => {
    const der = new X509Certificate(root.certPem).raw;
    const hex = createHash('sha256').update(der).digest('hex');
    const d = caDigest(root.certPem);
    expect(d).toHaveLength(50);
    expect(BigInt(`0x${hex}`).toString(36).padStart(50, '0')).toBe(d);
    // PEM line breaks and surrounding text do not change it.
    expect(caDigest(`# comment\n${root.certPem.replace(/\n/g, '\r\n')}`)).toBe(d);
    expect(caDigest(otherRoot.certPem)).not.toBe(d);
  });

  it('the secret is 128 random bits in base 36, deterministic for injected randomness', () => {
    expect(makeJoinToken(root.certPem, 'worker', fixedBytes(0)).slice(-25)).toBe('0'.repeat(25));
    const max = makeJoinToken(root.certPem, 'manager', fixedBytes(0xff)).slice(-25);
    expect(max).toBe((2n ** 128n - 1n).toString(36).padStart(25, '0'));
    expect(makeJoinToken(root.certPem, 'worker')).not.toBe(makeJoinToken(root.certPem, 'worker'));
  });

  it('parse errors name the part that is wrong and never echo the secret', () => {
    const good = makeJoinToken(root.certPem, 'worker');
    const [, , digest, secret] = good.split('-') as [string, string, string, string];
    const cases: [string, RegExp][] = [
      ['', /join token is empty/],
      [good.replace('SWMTKN', 'SWMTKX'), /starts with "SWMTKN-" \(got "SWMTKX"\)/],
      [good.replace('SWMTKN-1', 'SWMTKN-2'), /version "2" is not supported \(want 1\)/],
      [`SWMTKN-1-${digest.slice(1)}-${secret}`, /CA digest in the join token must be 50 characters \(got 49\)/],
      [`SWMTKN-1-${digest}-${secret.slice(0, 20)}`, /secret in the join token must be 25 characters \(got 20\)/],
      [`SWMTKN-1-${digest.toUpperCase()}-${secret}`, /CA digest .* lowercase letters and digits/],
      [`SWMTKN-1-${digest}-${secret.slice(0, 24)}_`, /secret .* lowercase letters and digits/],
      [`SWMTKN-1-${digest}`, /has 4 parts .* this one has 3/],
      [`${good}-f`, /has 4 parts .* this one has 5/],
    ];
    for (const [token, msg] of cases) {
      const e = errorOf(() => parseJoinToken(token));
      expect(e).toBeInstanceOf(InvalidJoinTokenError);
      expect(e.reason).toBe('INVALID_TOKEN');
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.message).toMatch(msg);
      expect(e.message).not.toContain(secret);
    }
    // Surrounding whitespace from copy and paste is fine.
    expect(parseJoinToken(`  ${good}\n`).secret).toBe(secret);
  });
});

describe('CA pinning', () => {
  it('accepts the manager whose CA the token pins', () => {
    const t = makeJoinToken(root.certPem, 'worker');
    expect(checkCAPin(t, root.certPem).caDigest).toBe(caDigest(root.certPem));
    expect(() => checkCAPin(parseJoinToken(t), root.certPem)).not.toThrow();
  });

  it('refuses a manager presenting another CA and says the token may be from another cluster', () => {
    const t = makeJoinToken(root.certPem, 'manager');
    const e = errorOf(() => checkCAPin(t, otherRoot.certPem));
    expect(e).toBeInstanceOf(CAMismatchError);
    expect(e.reason).toBe('CA_MISMATCH');
    expect(e.message).toMatch(/does not match the CA digest in the join token/);
    expect(e.message).toMatch(/token may be from another cluster/);
    expect((e as CAMismatchError).expectedDigest).toBe(caDigest(root.certPem));
    expect((e as CAMismatchError).presentedDigest).toBe(caDigest(otherRoot.certPem));
  });

  it('a garbled CA answer is BAD_CA, a garbled token is INVALID_TOKEN', () => {
    expect(errorOf(() => checkCAPin(makeJoinToken(root.certPem, 'worker'), 'garbage')).reason).toBe('BAD_CA');
    expect(errorOf(() => checkCAPin('SWMTKN-1-abc', root.certPem)).reason).toBe('INVALID_TOKEN');
  });
});

describe('role by token', () => {
  const current = { workerToken: makeJoinToken(root.certPem, 'worker'), managerToken: makeJoinToken(root.certPem, 'manager') };

  it('the worker secret joins a worker, the manager secret a manager', () => {
    expect(roleForToken(current.workerToken, current)).toBe('worker');
    expect(roleForToken(current.managerToken, current)).toBe('manager');
    expect(roleForToken(` ${current.managerToken}\n`, current)).toBe('manager');
  });

  it('a rotated-out token is refused with "invalid join token", and the new one works', () => {
    const old = current.workerToken;
    const rotated = { ...current, workerToken: makeJoinToken(root.certPem, 'worker') };
    const e = errorOf(() => roleForToken(old, rotated));
    expect(e.message).toMatch(/^invalid join token/);
    expect(e.code).toBe('UNAUTHENTICATED');
    expect(roleForToken(rotated.workerToken, rotated)).toBe('worker');
    // Rotating the worker token leaves the manager token valid.
    expect(roleForToken(current.managerToken, rotated)).toBe('manager');
  });

  it('every wrong token gets the same message, whatever part is wrong', () => {
    const [, , digest, secret] = current.workerToken.split('-') as [string, string, string, string];
    const wrongs = [
      '',
      'nonsense',
      `SWMTKN-1-${digest}-${'0'.repeat(25)}`, // right CA, wrong secret
      `SWMTKN-1-${caDigest(otherRoot.certPem)}-${secret}`, // right secret, other CA
      makeJoinToken(otherRoot.certPem, 'worker'),
      current.workerToken.slice(0, -1),
    ];
    const messages = new Set(wrongs.map((w) => errorOf(() => roleForToken(w, current)).message));
    expect(messages.size).toBe(1);
    expect([...messages][0]).toMatch(/^invalid join token: get the current one with `tsswarm swarm join-token worker\|manager`/);
  });

  it('an unset token never matches an empty one', () => {
    expect(errorOf(() => roleForToken('', { workerToken: '', managerToken: '' })).reason).toBe('INVALID_TOKEN');
  });
});
