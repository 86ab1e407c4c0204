// Errors of the certificate authority and join tokens. `code` is the shared
// tsswarm code (it decides the gRPC status); `reason` is the CA's own stable
// code, for callers that must tell an expired certificate from a revoked one.
import { type ErrorCode, TsswarmError } from '../lib/errors.js';

export type CAErrorReason =
  | 'INVALID_TOKEN'
  | 'CA_MISMATCH'
  | 'BAD_CSR'
  | 'BAD_CERT'
  | 'BAD_CA'
  | 'CERT_EXPIRED'
  | 'CERT_NOT_YET_VALID'
  | 'CERT_UNTRUSTED'
  | 'CERT_REVOKED'
  | 'WRONG_CLUSTER'
  | 'NOT_OPERATOR';

export class CAError extends TsswarmError {
  readonly reason: CAErrorReason;

  constructor(reason: CAErrorReason, code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.reason = reason;
  }
}

/**
 * A join token that is malformed (the message says which part), or one that
 * is well formed but not current (the message says nothing more, on purpose).
 */
export class InvalidJoinTokenError extends CAError {
  constructor(message: string, code: ErrorCode = 'INVALID_ARGUMENT') {
    super('INVALID_TOKEN', code, message);
  }
}

/** The manager's root CA is not the one the join token pins. */
export class CAMismatchError extends CAError {
  readonly expectedDigest: string;
  readonly presentedDigest: string;

  constructor(expectedDigest: string, presentedDigest: string) {
    super(
      'CA_MISMATCH',
      'FAILED_PRECONDITION',
      `the manager's root CA (digest ${presentedDigest}) does not match the CA digest in the join token (${expectedDigest}): ` +
        'the token may be from another cluster, or this address is not one of its managers. ' +
        'Get a current token with `tsswarm swarm join-token worker|manager` on a manager of the cluster you mean to join, and check the manager address',
    );
    this.expectedDigest = expectedDigest;
    this.presentedDigest = presentedDigest;
  }
}

export class BadCSRError extends CAError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(
      'BAD_CSR',
      'INVALID_ARGUMENT',
      `invalid certificate signing request: ${detail}; create a new one with createCSR() from a fresh node key`,
      options,
    );
  }
}

export class BadCertificateError extends CAError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('BAD_CERT', 'INVALID_ARGUMENT', `invalid node certificate: ${detail}`, options);
  }
}

/** The CA's certificate or key cannot be used to sign. */
export class BadCAError extends CAError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('BAD_CA', 'FAILED_PRECONDITION', `the cluster root CA cannot be used: ${detail}`, options);
  }
}

export class CertificateExpiredError extends CAError {
  readonly notAfter: Date;

  constructor(subject: string, notAfter: Date) {
    super(
      'CERT_EXPIRED',
      'UNAUTHENTICATED',
      `the certificate of ${subject} expired at ${notAfter.toISOString()}: renew it before it expires, or leave and join the cluster again`,
    );
    this.notAfter = notAfter;
  }
}

export class CertificateNotYetValidError extends CAError {
  readonly notBefore: Date;

  constructor(subject: string, notBefore: Date) {
    super(
      'CERT_NOT_YET_VALID',
      'UNAUTHENTICATED',
      `the certificate of ${subject} is not valid before ${notBefore.toISOString()}: check that the clocks of the nodes are synchronised (NTP)`,
    );
    this.notBefore = notBefore;
  }
}

export class UntrustedCertificateError extends CAError {
  constructor(subject: string, fix = 'make it leave and join this cluster again') {
    super(
      'CERT_UNTRUSTED',
      'UNAUTHENTICATED',
      `the certificate of ${subject} was not issued by this cluster's root CA: it belongs to another cluster (or the CA was rotated); ${fix}`,
    );
  }
}

export class CertificateRevokedError extends CAError {
  readonly serial: string;

  constructor(subject: string, serial: string) {
    super(
      'CERT_REVOKED',
      'PERMISSION_DENIED',
      `the certificate of ${subject} (serial ${serial}) is revoked: the node was removed from the cluster; join it again with a token`,
    );
    this.serial = serial;
  }
}

export class WrongClusterError extends CAError {
  constructor(subject: string, got: string, want: string) {
    super(
      'WRONG_CLUSTER',
      'UNAUTHENTICATED',
      `${subject} belongs to cluster ${JSON.stringify(got)}, not to this cluster (${JSON.stringify(want)}): make it leave and join this cluster`,
    );
  }
}

/** A certificate of this cluster's CA that is not an operator's client certificate (a node's, say), where only an operator's is accepted. */
export class NotOperatorError extends CAError {
  constructor(detail: string) {
    super(
      'NOT_OPERATOR',
      'PERMISSION_DENIED',
      `${detail}: only an operator's client certificate is accepted here (get one with \`tsswarm ca client-cert\` on a manager)`,
    );
  }
}
