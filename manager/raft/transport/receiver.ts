// The receiving half of the Raft transport: the RaftTransport gRPC service.
// Batches are checked against the cluster id and delivered message by
// message; snapshots are reassembled into one buffer before delivery.
import * as grpc from '@grpc/grpc-js';
import { constants as bufferConstants } from 'node:buffer';
import type pino from 'pino';
import {
  BatchAck,
  type Message,
  type MessageBatch,
  MessageType,
  Snapshot,
  SnapshotAck,
  type SnapshotChunk,
} from '../../../proto/gen/raft.js';

/** What authorize() may look at: who is calling (address, and the TLS peer certificate). */
export type RaftCall = Pick<grpc.ServerReadableStream<unknown, unknown>, 'getPeer' | 'getAuthContext'>;

export interface ReceiverEnv {
  readonly id: string;
  readonly cluster: string;
  readonly log: pino.Logger;
  count(what: 'received' | 'dropped' | 'batchesReceived', n: number): void;
  deliver(m: Message): void;
  /** Checks the caller of a stream (e.g. its mTLS certificate); an error refuses the stream. */
  authorize?(call: RaftCall): grpc.ServiceError | null;
  /** Once per accepted stream: which `from` ids its caller may send as; a message from any other is dropped. */
  senders?(call: RaftCall): (from: string) => boolean;
}

/** Drops (and counts) a message whose sender the caller may not speak for: debug each, warn at most every 10 s per stream. */
function senderFilter(env: ReceiverEnv, call: RaftCall): (m: Message) => boolean {
  const may = env.senders?.(call);
  if (!may) return () => true;
  let warned = 0;
  let since = 0;
  return (m) => {
    if (may(m.from)) return true;
    env.count('dropped', 1);
    since++;
    env.log.debug(
      { from: m.from, type: MessageType[m.type], peer: call.getPeer() },
      'raft message from a sender the caller may not speak for dropped',
    );
    if (Date.now() - warned >= 10_000) {
      env.log.warn(
        { from: m.from, peer: call.getPeer(), dropped: since },
        'raft messages dropped: their sender is not (or no longer) a member, or not the calling node',
      );
      warned = Date.now();
      since = 0;
    }
    return false;
  };
}

function status(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

function wrongCluster(theirs: string, ours: string): grpc.ServiceError {
  return status(
    grpc.status.FAILED_PRECONDITION,
    `raft transport: sender belongs to cluster "${theirs}" but this member belongs to cluster "${ours}"; ` +
      'the peer address probably points at a member of another cluster: fix the member list',
  );
}

/** The service implementation to register with `server.addService(RaftTransportService, ...)`. */
export function receiverHandlers(env: ReceiverEnv): grpc.UntypedServiceImplementation {
  const refused = (call: RaftCall, cb: (e: grpc.ServiceError) => void): boolean => {
    const err = env.authorize?.(call) ?? null;
    if (!err) return false;
    env.log.warn({ peer: call.getPeer(), err: err.details }, 'raft stream refused');
    cb(err);
    return true;
  };
  return {
    send: (call: grpc.ServerReadableStream<MessageBatch, BatchAck>, cb: grpc.sendUnaryData<BatchAck>) => {
      if (!refused(call, cb)) receiveBatches(env, call, cb);
    },
    sendSnapshot: (call: grpc.ServerReadableStream<SnapshotChunk, SnapshotAck>, cb: grpc.sendUnaryData<SnapshotAck>) => {
      if (!refused(call, cb)) receiveSnapshot(env, call, cb);
    },
  };
}

function receiveBatches(env: ReceiverEnv, call: grpc.ServerReadableStream<MessageBatch, BatchAck>, cb: grpc.sendUnaryData<BatchAck>): void {
  // Headers at once tell the sender that the stream is open, so it can start
  // writing (it keeps messages in its own bounded queue until then).
  call.sendMetadata(new grpc.Metadata());
  const admit = senderFilter(env, call);
  let done = false;
  const finish = (err: grpc.ServiceError | null): void => {
    if (done) return;
    done = true;
    cb(err, err ? undefined : BatchAck.create());
  };
  call.on('data', (b: MessageBatch) => {
    if (done) return;
    if (b.cluster !== env.cluster) {
      env.log.warn({ theirs: b.cluster, peer: call.getPeer() }, 'raft batch from another cluster refused');
      finish(wrongCluster(b.cluster, env.cluster));
      return;
    }
    env.count('batchesReceived', 1);
    for (const m of b.messages) {
      if (m.to !== env.id) {
        // An address reused by another member, or a stale member list on the sender.
        env.log.debug({ to: m.to, from: m.from, type: MessageType[m.type] }, 'raft message for another member dropped');
        env.count('dropped', 1);
        continue;
      }
      if (!admit(m)) continue;
      env.count('received', 1);
      env.deliver(m);
    }
  });
  call.on('end', () => finish(null));
  call.on('error', () => (done = true));
  call.on('cancelled', () => (done = true));
}

function receiveSnapshot(
  env: ReceiverEnv,
  call: grpc.ServerReadableStream<SnapshotChunk, SnapshotAck>,
  cb: grpc.sendUnaryData<SnapshotAck>,
): void {
  const admit = senderFilter(env, call);
  let header: Message | null = null;
  let buf: Buffer | null = null;
  let total = 0;
  let received = 0;
  let done = false;
  const finish = (err: grpc.ServiceError | null, ack?: SnapshotAck): void => {
    if (done) return;
    done = true;
    buf = null;
    if (err) env.log.warn({ err: err.details, peer: call.getPeer() }, 'raft snapshot refused');
    cb(err, ack);
  };
  call.on('data', (c: SnapshotChunk) => {
    if (done) return;
    if (!header) {
      if (c.cluster !== env.cluster) return finish(wrongCluster(c.cluster, env.cluster));
      const m = c.message;
      if (!m || m.type !== MessageType.MSG_SNAP)
        return finish(status(grpc.status.INVALID_ARGUMENT, 'raft snapshot stream must start with a chunk carrying the MsgSnap message'));
      if (m.to !== env.id) {
        env.count('dropped', 1);
        return finish(null, SnapshotAck.create({ ok: false, error: `snapshot for member "${m.to}" reached member "${env.id}"` }));
      }
      if (!admit(m))
        return finish(null, SnapshotAck.create({ ok: false, error: `snapshot from "${m.from}", which the caller may not send as` }));
      if (c.total > bufferConstants.MAX_LENGTH) {
        return finish(
          status(
            grpc.status.RESOURCE_EXHAUSTED,
            `raft snapshot of ${c.total} bytes exceeds the largest buffer this process can hold (${bufferConstants.MAX_LENGTH})`,
          ),
        );
      }
      header = m;
      total = c.total;
      // The only full copy on this side: chunks are copied in as they arrive.
      // allocUnsafe is safe because delivery requires every byte to be written.
      buf = Buffer.allocUnsafe(total);
    }
    if (c.data.length === 0) return;
    if (!buf || c.offset !== received || received + c.data.length > total) {
      return finish(
        status(
          grpc.status.INVALID_ARGUMENT,
          `raft snapshot chunk at offset ${c.offset} (${c.data.length} bytes) does not continue the ${received} of ${total} bytes received`,
        ),
      );
    }
    buf.set(c.data, received);
    received += c.data.length;
  });
  call.on('end', () => {
    if (done) return;
    if (!header || !buf) return finish(status(grpc.status.INVALID_ARGUMENT, 'raft snapshot stream ended before its first chunk'));
    if (received !== total) return finish(status(grpc.status.DATA_LOSS, `raft snapshot stream ended after ${received} of ${total} bytes`));
    header.snapshot = Snapshot.create({ metadata: header.snapshot?.metadata ?? null, data: buf });
    env.count('received', 1);
    env.log.info({ from: header.from, bytes: total, index: header.snapshot.metadata?.index }, 'raft snapshot received');
    env.deliver(header);
    finish(null, SnapshotAck.create({ ok: true }));
  });
  call.on('error', () => {
    done = true;
    buf = null;
  });
  call.on('cancelled', () => {
    done = true;
    buf = null;
  });
}
