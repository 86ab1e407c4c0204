// Public surface of the Raft transport: gRPC streams between members, one per
// peer, with batching, bounded queues, reconnect backoff and chunked snapshots.
export { GrpcTransport, type TransportHandler, type TransportOptions, type TransportStats } from './grpc.js';
export { TransportError, WIRE_MAX_BYTES } from './wire.js';
export type { RaftCall } from './receiver.js';
