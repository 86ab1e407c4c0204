// Error classes shared by every part of tsswarm. Each has a stable `code` that
// scripts and the CLI can match on, and the gRPC status it maps to when it
// crosses the Control API; user-facing messages name the field and the fix.
import { constants as osConstants } from 'node:os';

/**
 * gRPC status codes (the numbers are fixed by the gRPC spec and equal to
 * `status` in @grpc/grpc-js; a test checks that). Kept here so that modules
 * that only need an error class do not load the gRPC library.
 */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatus = (typeof GrpcStatus)[keyof typeof GrpcStatus];

/** Stable error codes and the gRPC status each one travels as. */
export const errorCodes = {
  USAGE: GrpcStatus.INVALID_ARGUMENT,
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  ALREADY_EXISTS: GrpcStatus.ALREADY_EXISTS,
  /** An optimistic version check failed: re-read and retry. */
  CONFLICT: GrpcStatus.ABORTED,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  /** This manager is not the leader, or there is no leader right now. */
  NOT_LEADER: GrpcStatus.UNAVAILABLE,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  /** A rate or size limit: the message says how long to wait or what to shrink. */
  RESOURCE_EXHAUSTED: GrpcStatus.RESOURCE_EXHAUSTED,
  DEADLINE_EXCEEDED: GrpcStatus.DEADLINE_EXCEEDED,
  CANCELLED: GrpcStatus.CANCELLED,
  UNIMPLEMENTED: GrpcStatus.UNIMPLEMENTED,
  /** A system call failed (see SyscallError). */
  SYSCALL: GrpcStatus.INTERNAL,
  INTERNAL: GrpcStatus.INTERNAL,
} as const satisfies Record<string, GrpcStatus>;
export type ErrorCode = keyof typeof errorCodes;

export class TsswarmError extends Error {
  readonly code: ErrorCode;
  readonly grpcStatus: GrpcStatus;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.grpcStatus = errorCodes[code];
  }
}

/**
 * A command line or API request that cannot be carried out as written. The
 * message names the flag or field and says what a valid value looks like.
 */
export class UsageError extends TsswarmError {
  /** The flag or field at fault (`--replicas`, `spec.mode.replicas`), when there is one. */
  readonly field: string | undefined;

  constructor(message: string, options?: { field?: string; cause?: unknown }) {
    super('USAGE', message, options);
    this.field = options?.field;
  }

  /** `--replicas must be a whole number ≥ 0 (got "-1")` */
  static invalid(field: string, expected: string, got: unknown): UsageError {
    return new UsageError(`${field} must be ${expected} (got ${JSON.stringify(String(got))})`, { field });
  }
}

export class NotFoundError extends TsswarmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOT_FOUND', message, options);
  }
}

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** The symbolic name of an errno value (`9` → `EBADF`), or `errno N`. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** A libc call made through native/ failed; `errno` is the raw value. */
export class SyscallError extends TsswarmError {
  readonly syscall: string;
  readonly errno: number;
  /** `EBADF`, `EPERM`, ... */
  readonly errnoCode: string;

  constructor(syscall: string, errno: number, detail?: string) {
    const name = errnoName(errno);
    super('SYSCALL', `${syscall} failed: ${name}${detail ? ` (${detail})` : ''}`);
    this.syscall = syscall;
    this.errno = errno;
    this.errnoCode = name;
  }
}

/** The gRPC status any thrown value should travel as. */
export function grpcStatusOf(err: unknown): GrpcStatus {
  return err instanceof TsswarmError ? err.grpcStatus : GrpcStatus.UNKNOWN;
}

const byStatus: Partial<Record<number, ErrorCode>> = {
  [GrpcStatus.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [GrpcStatus.NOT_FOUND]: 'NOT_FOUND',
  [GrpcStatus.ALREADY_EXISTS]: 'ALREADY_EXISTS',
  [GrpcStatus.PERMISSION_DENIED]: 'PERMISSION_DENIED',
  [GrpcStatus.UNAUTHENTICATED]: 'UNAUTHENTICATED',
  [GrpcStatus.FAILED_PRECONDITION]: 'FAILED_PRECONDITION',
  [GrpcStatus.ABORTED]: 'CONFLICT',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'DEADLINE_EXCEEDED',
  [GrpcStatus.UNAVAILABLE]: 'UNAVAILABLE',
  [GrpcStatus.UNIMPLEMENTED]: 'UNIMPLEMENTED',
};

/**
 * A call's failure as a TsswarmError: the stable code the server named (the
 * `tsswarm-code` metadata) with its message as it is, else a code derived
 * from the gRPC status, with the message prefixed by `what`.
 */
export function errorFromStatus(status: number, message: string, named: string | undefined, what: string): TsswarmError {
  if (named !== undefined && named in errorCodes) return new TsswarmError(named as ErrorCode, message);
  return new TsswarmError(byStatus[status] ?? 'INTERNAL', `${what}: ${message}`);
}
