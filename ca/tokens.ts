// Join tokens, in Swarm's format: `SWMTKN-1-<CA digest>-<secret>`. The digest
// pins the root CA (a joining node refuses a manager whose CA does not match);
// the secret says which role the node joins as. Workers and managers have
// different secrets; rotating one makes the old token useless.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { UsageError } from '../lib/errors.js';
import * as asn1 from './asn1.js';
import { BadCAError, CAMismatchError, InvalidJoinTokenError } from './errors.js';
import type { NodeRole } from './x509.js';

export const JOIN_TOKEN_PREFIX = 'SWMTKN';
export const JOIN_TOKEN_VERSION = 1;
/** SHA-256 in base 36, zero-padded (as Swarm's `%050s`). */
export const CA_DIGEST_LENGTH = 50;
/** 128 random bits in base 36, zero-padded (as Swarm). */
export const JOIN_SECRET_LENGTH = 25;
const SECRET_BYTES = 16;

export interface JoinToken {
  version: 1;
  /** The root CA digest, 50 lowercase base-36 characters. */
  caDigest: string;
  /** 25 lowercase base-36 characters. */
  secret: string;
}

const base36 = /^[0-9a-z]+$/;
const howToGet = 'get the current one with `tsswarm swarm join-token worker|manager` on a manager';

/**
 * The digest a join token pins: SHA-256 of the root CA certificate's DER,
 * written in base 36 (lowercase) and zero-padded to 50 characters. Hashing
 * the DER (not the PEM text, as Swarm does) makes it independent of PEM line
 * breaks and of text around the block.
 */
export function caDigest(caCertPem: string): string {
  let der: Buffer;
  try {
    der = asn1.pemToDer(caCertPem, 'CERTIFICATE');
  } catch (cause) {
    throw new BadCAError(`the CA certificate cannot be read: ${(cause as Error).message}`, { cause });
  }
  return BigInt(`0x${createHash('sha256').update(der).digest('hex')}`)
    .toString(36)
    .padStart(CA_DIGEST_LENGTH, '0');
}

/** A new join token for `role` (each role has its own; the format is the same). */
export function makeJoinToken(caCertPem: string, role: NodeRole, rand: (n: number) => Buffer = randomBytes): string {
  if (role !== 'worker' && role !== 'manager') throw UsageError.invalid('role', 'worker or manager', role);
  const bytes = rand(SECRET_BYTES);
  if (bytes.length !== SECRET_BYTES) throw new UsageError(`makeJoinToken: rand(${SECRET_BYTES}) returned ${bytes.length} bytes`);
  const secret = BigInt(`0x${bytes.toString('hex')}`)
    .toString(36)
    .padStart(JOIN_SECRET_LENGTH, '0');
  return `${JOIN_TOKEN_PREFIX}-${JOIN_TOKEN_VERSION}-${caDigest(caCertPem)}-${secret}`;
}

/**
 * Splits a join token and checks its shape; the error names the part that is
 * wrong (never echoing the secret). Says nothing about whether it is current.
 */
export function parseJoinToken(token: string): JoinToken {
  if (typeof token !== 'string' || token.trim() === '') throw new InvalidJoinTokenError(`the join token is empty: ${howToGet}`);
  const parts = token.trim().split('-');
  const [prefix, version, digest, secret] = parts;
  if (prefix !== JOIN_TOKEN_PREFIX) {
    throw new InvalidJoinTokenError(
      `a join token starts with "${JOIN_TOKEN_PREFIX}-" (got ${JSON.stringify(prefix!.slice(0, 8))}): ${howToGet}`,
    );
  }
  if (version !== String(JOIN_TOKEN_VERSION)) {
    throw new InvalidJoinTokenError(
      `join token version ${JSON.stringify(version ?? '')} is not supported (want ${JOIN_TOKEN_VERSION}): ${howToGet}`,
    );
  }
  if (parts.length !== 4) {
    throw new InvalidJoinTokenError(
      `a join token has 4 parts separated by "-" (${JOIN_TOKEN_PREFIX}-${JOIN_TOKEN_VERSION}-<CA digest>-<secret>), this one has ${parts.length}: copy the whole token`,
    );
  }
  if (digest!.length !== CA_DIGEST_LENGTH) {
    throw new InvalidJoinTokenError(
      `the CA digest in the join token must be ${CA_DIGEST_LENGTH} characters (got ${digest!.length}): the token was cut or changed when copied; ${howToGet}`,
    );
  }
  if (!base36.test(digest!))
    throw new InvalidJoinTokenError(`the CA digest in the join token must be lowercase letters and digits: ${howToGet}`);
  if (secret!.length !== JOIN_SECRET_LENGTH) {
    throw new InvalidJoinTokenError(
      `the secret in the join token must be ${JOIN_SECRET_LENGTH} characters (got ${secret!.length}): the token was cut or changed when copied; ${howToGet}`,
    );
  }
  if (!base36.test(secret!))
    throw new InvalidJoinTokenError(`the secret in the join token must be lowercase letters and digits: ${howToGet}`);
  return { version: 1, caDigest: digest!, secret: secret! };
}

/**
 * The joining node's check of the manager it reached: the root CA the manager
 * presents must be the one the token pins. Returns the parsed token.
 */
export function checkCAPin(token: string | JoinToken, presentedCaCertPem: string): JoinToken {
  const t = typeof token === 'string' ? parseJoinToken(token) : token;
  const presented = caDigest(presentedCaCertPem);
  const a = Buffer.from(t.caDigest);
  const b = Buffer.from(presented);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new CAMismatchError(t.caDigest, presented);
  return t;
}

/** Equal-length hashes compared in constant time: neither length nor content leaks through timing. */
function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/**
 * The role a presented join token grants, comparing it (CA digest and secret)
 * with the current tokens in constant time. Anything else — malformed,
 * rotated out, from another cluster — gets the same "invalid join token".
 */
export function roleForToken(token: string, current: { workerToken: string; managerToken: string }): NodeRole {
  const presented = typeof token === 'string' ? token.trim() : '';
  // Both comparisons always run, so timing does not tell which role was tried.
  const worker = sameSecret(presented, current.workerToken);
  const manager = sameSecret(presented, current.managerToken);
  if (presented !== '' && worker) return 'worker';
  if (presented !== '' && manager) return 'manager';
  throw new InvalidJoinTokenError(`invalid join token: ${howToGet}`, 'UNAUTHENTICATED');
}
