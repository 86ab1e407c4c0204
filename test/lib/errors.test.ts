// lib/errors.ts: stable codes, their gRPC statuses, and messages that name the
// field and the fix.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { GrpcStatus, NotFoundError, SyscallError, TsswarmError, UsageError, errnoName, grpcStatusOf } from '../../lib/errors.js';

describe('errors', () => {
  it('our gRPC status numbers are those of @grpc/grpc-js', () => {
    for (const [name, n] of Object.entries(GrpcStatus)) expect(status[name as keyof typeof status], name).toBe(n);
  });

  it('UsageError.invalid names the flag, the rule and the value given', () => {
    const e = UsageError.invalid('--replicas', 'a whole number ≥ 0', '-1');
    expect(e.message).toBe('--replicas must be a whole number ≥ 0 (got "-1")');
    expect(e).toBeInstanceOf(TsswarmError);
    expect(e).toMatchObject({ name: 'UsageError', code: 'USAGE', field: '--replicas', grpcStatus: status.INVALID_ARGUMENT });
  });

  it('each error travels as its gRPC status; anything else as UNKNOWN', () => {
    expect(grpcStatusOf(new NotFoundError('service "web" not found'))).toBe(status.NOT_FOUND);
    expect(grpcStatusOf(new TsswarmError('NOT_LEADER', 'no leader'))).toBe(status.UNAVAILABLE);
    expect(grpcStatusOf(new TsswarmError('CONFLICT', 'version 4 is stale'))).toBe(status.ABORTED);
    expect(grpcStatusOf(new Error('boom'))).toBe(status.UNKNOWN);
  });

  it('SyscallError names the call and the errno symbol', () => {
    const e = new SyscallError('setns(fd 3, CLONE_NEWNET)', 1, 'Operation not permitted');
    expect(e.message).toBe('setns(fd 3, CLONE_NEWNET) failed: EPERM (Operation not permitted)');
    expect(e).toMatchObject({ code: 'SYSCALL', errno: 1, errnoCode: 'EPERM', grpcStatus: status.INTERNAL });
    expect(errnoName(9)).toBe('EBADF');
    expect(errnoName(99999)).toBe('errno 99999');
  });
});
