// What both ends of the Raft transport must agree on: the gRPC channel and
// server options (message size limit, keepalive), serializers, and the size
// estimate that bounds batches and queues.
import type * as grpc from '@grpc/grpc-js';
import { MAX_MESSAGE_BYTES, messageLimits } from '../../../lib/grpc.js';
import { BatchAck, type Message, MessageBatch, SnapshotAck, SnapshotChunk } from '../../../proto/gen/raft.js';
import { RaftError } from '../errors.js';

/**
 * The largest gRPC message either end accepts: the product-wide limit. A
 * transport may be given a smaller one (tests); batches and snapshot chunks
 * are kept below whichever applies.
 */
export const WIRE_MAX_BYTES = MAX_MESSAGE_BYTES;

/** Room a snapshot chunk needs besides its data (tags, offset and total varints). */
export const CHUNK_OVERHEAD_BYTES = 64;

/**
 * What a MessageBatch adds around its messages: the cluster field (tag,
 * length varint, at most 3 bytes per UTF-16 unit). Each message's own tag
 * and length are counted by approxSize.
 */
export function batchOverhead(cluster: string): number {
  return 6 + 3 * cluster.length;
}

// LAN keepalive: a ping after 2 s of silence, and a connection whose ping is
// not answered within 2 s is dead, so a crashed or cut-off peer is noticed in
// about 4 s rather than at the next TCP timeout (minutes).
const KEEPALIVE_TIME_MS = 2_000;
const KEEPALIVE_TIMEOUT_MS = 2_000;

/** A stream whose peer has not answered with headers by then is treated as failed (a black-holed address never refuses). */
export const CONNECT_TIMEOUT_MS = 5_000;

export const SEND_PATH = '/raftpb.RaftTransport/Send';
export const SEND_SNAPSHOT_PATH = '/raftpb.RaftTransport/SendSnapshot';

export class TransportError extends RaftError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'TransportError';
  }
}

export function channelOptions(backoff: { initialMs: number; maxMs: number }, maxMessageBytes = WIRE_MAX_BYTES): grpc.ChannelOptions {
  return {
    'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
    'grpc.keepalive_permit_without_calls': 1,
    ...messageLimits(maxMessageBytes),
    // Each connection attempt gets a fresh channel; the global subchannel pool
    // would hand it the old subchannel with its own (120 s max) backoff state.
    'grpc.use_local_subchannel_pool': 1,
    'grpc.initial_reconnect_backoff_ms': backoff.initialMs,
    'grpc.max_reconnect_backoff_ms': backoff.maxMs,
    // Transparent retries buffer every written message for replay; Raft
    // tolerates loss, and our own queue is the only buffer we want.
    'grpc.enable_retries': 0,
  };
}

export function serverOptions(maxMessageBytes = WIRE_MAX_BYTES): grpc.ServerOptions {
  return {
    'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
    ...messageLimits(maxMessageBytes),
  };
}

// protobufjs already returns a Buffer under Node; wrapping instead of
// Buffer.from(u) avoids copying every batch and snapshot chunk once more.
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export const serializeBatch = (b: MessageBatch): Buffer => asBuffer(MessageBatch.encode(b));
export const serializeChunk = (c: SnapshotChunk): Buffer => asBuffer(SnapshotChunk.encode(c));
export const deserializeBatchAck = (b: Buffer): BatchAck => BatchAck.decode(b);
export const deserializeSnapshotAck = (b: Buffer): SnapshotAck => SnapshotAck.decode(b);

/**
 * An upper bound of the bytes `m` takes inside a MessageBatch (its tag and
 * length included), without encoding it (the hot path would otherwise encode
 * every message twice). Varints are counted at their widest for JS numbers
 * (≤ 2^53); ids at 3 bytes per UTF-16 unit. A test checks the bound against
 * real encodings; batches are cut on it, so an encoded batch never exceeds
 * its cut plus batchOverhead().
 */
export function approxSize(m: Message): number {
  let n = 6 + 100 + 3 * (m.to.length + m.from.length) + m.context.length;
  for (const e of m.entries) n += 35 + e.data.length;
  if (m.snapshot) n += 6 + m.snapshot.data.length + 64 + 3 * confStateChars(m);
  return n;
}

function confStateChars(m: Message): number {
  const cs = m.snapshot?.metadata?.confState;
  if (!cs) return 0;
  let n = 0;
  for (const list of [cs.voters, cs.learners, cs.votersOutgoing, cs.learnersNext]) for (const id of list) n += id.length + 6;
  return n;
}
