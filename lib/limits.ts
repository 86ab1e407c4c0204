// Size limits shared by every gRPC channel, kept apart from lib/grpc.ts so that
// the CLI's own client (cli/rpc.ts) enforces them without loading grpc-js.

/**
 * The largest gRPC message any tsswarm server or client sends or accepts, on
 * every channel: the manager port, the Raft transport, agent sessions, the
 * local socket and the CLI. 16 MiB because:
 * - it is above the largest message the leader ever sends: a Raft batch is
 *   at most 4 MiB (transport default) or one message alone, a MsgApp carries
 *   at most maxSizePerMsg (1 MiB) or one entry, and an entry is at most the
 *   store's 1.5 MiB cap plus framing; snapshot and assignment chunks are 1 MiB;
 * - grpc-js's default receive limit (4 MiB) is what `service ps` on a large
 *   cluster already hit: 16 MiB holds about 80,000 tasks in one reply;
 * - it stays small enough that a caller not yet authenticated (a join) makes
 *   a manager buffer at most 16 MiB per call, not the 2 GiB grpc-js allows
 *   for sends by default.
 */
export const MAX_MESSAGE_BYTES = 16 << 20;
