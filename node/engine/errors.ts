// How a failure reaches a Docker client: `{"message": ...}` with
// `Content-Type: application/json` and the status dockerd would give. Our
// errors' stable codes map to statuses in one table, as moby's httpstatus
// maps gRPC codes; the docker CLI decides what to do by the status alone.
import { type ErrorCode, TsswarmError } from '../../lib/errors.js';
import { SWARM_LOCKED_MESSAGE } from '../../spec/docker/system.js';

/** An error with the HTTP status it is answered with. */
export class DockerError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'DockerError';
  }
}

/**
 * Each TsswarmError code as dockerd's status for the gRPC code it travels
 * as (moby daemon/server/httpstatus): a failed precondition is a bad request
 * there too, and a stale version ("update out of sequence") an internal error.
 */
export const STATUS_OF_CODE: Record<ErrorCode, number> = {
  USAGE: 400,
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  CONFLICT: 500,
  PERMISSION_DENIED: 403,
  UNAUTHENTICATED: 401,
  NOT_LEADER: 503,
  UNAVAILABLE: 503,
  UNIMPLEMENTED: 501,
  RESOURCE_EXHAUSTED: 500,
  DEADLINE_EXCEEDED: 500,
  CANCELLED: 500,
  SYSCALL: 500,
  INTERNAL: 500,
};

/** The status and message any thrown value is answered with. */
export function dockerErrorOf(err: unknown): { status: number; message: string } {
  if (err instanceof DockerError) return { status: err.status, message: err.message };
  if (err instanceof TsswarmError) return { status: STATUS_OF_CODE[err.code] ?? 500, message: err.message };
  return { status: 500, message: err instanceof Error ? err.message : String(err) };
}

/** dockerd's words for a node that cannot serve a swarm route (moby daemon/cluster/errors.go), all 503. */
export const NOT_MANAGER =
  "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";
export const NO_SWARM = 'This node is not part of a swarm';
export const SWARM_LOCKED = SWARM_LOCKED_MESSAGE;
export const SWARM_EXISTS = 'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.';

export const notManager = (): DockerError => new DockerError(503, NOT_MANAGER);
export const noSwarm = (): DockerError => new DockerError(503, NO_SWARM);
export const swarmLocked = (): DockerError => new DockerError(503, SWARM_LOCKED);
