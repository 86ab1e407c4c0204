// The Raft transport over gRPC: delivers the messages the Raft core emits to
// peers addressed by string id, and hands arriving ones back. Each peer has
// its own queue and streams (peer.ts); the server side is receiver.ts.
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { type Message, RaftTransportService } from '../../../proto/gen/raft.js';
import { serverNoDelay } from '../../../lib/grpc.js';
import { Peer, type PeerEnv } from './peer.js';
import { type RaftCall, receiverHandlers } from './receiver.js';
import { CHUNK_OVERHEAD_BYTES, TransportError, WIRE_MAX_BYTES, batchOverhead, serverOptions } from './wire.js';

export interface TransportHandler {
  /** A message for the local node arrived. A MsgSnap arrives reassembled: `snapshot.data` is complete. */
  onMessage(m: Message): void;
  /** Sending to `peer` failed or its queue overflowed (for the core's ReportUnreachable). At most once per backoff period. */
  onUnreachable(peer: string): void;
  /** A MsgSnap to `peer` was delivered (`ok`) or failed (for the core's ReportSnapshot). */
  onSnapshotStatus(peer: string, ok: boolean): void;
}

export interface TransportOptions {
  /** The local member's id: arriving messages addressed to anyone else are dropped. */
  id: string;
  /** Cluster id carried by every batch; a member of another cluster refuses our streams. */
  cluster: string;
  /** host:port to listen on; port 0 picks a free one (start() returns it). */
  listen: string;
  /** Credentials of our server and of the streams we open; insecure by default. */
  credentials?: { server: grpc.ServerCredentials; client: grpc.ChannelCredentials };
  /**
   * A server owned by the caller (who binds and shuts it down), to share one
   * port with other services; `listen` is then only reported by start().
   */
  server?: grpc.Server;
  /** Channel options for the streams we open (e.g. grpc.ssl_target_name_override for mTLS). */
  channelOptions?: grpc.ChannelOptions;
  /** Checks who opened a stream to us (e.g. its mTLS certificate's role); an error refuses it. */
  authorize?: (call: RaftCall) => grpc.ServiceError | null;
  /**
   * Once per accepted stream: the `from` ids its caller may send as (e.g. the
   * member whose node id is in its certificate). Messages from any other
   * sender are dropped and counted, so a manager cannot speak for another
   * member, nor a removed member for itself.
   */
  senders?: (call: RaftCall) => (from: string) => boolean;
  logger?: pino.Logger;
  /**
   * The gRPC message limit of this transport's server and streams. Default
   * (and most) MAX_MESSAGE_BYTES of lib/grpc.ts; smaller only in tests. A
   * shared `server` must have been built with the same limit.
   */
  maxMessageBytes?: number;
  /** Bytes of snapshot data per SnapshotChunk. Default 1 MiB (less when maxMessageBytes is small). */
  snapshotChunkBytes?: number;
  /** Upper bound of one MessageBatch (a single larger message goes alone). Default 4 MiB (less when maxMessageBytes is small). */
  maxBatchBytes?: number;
  /** Per-peer queue bound, in messages; beyond it the oldest are dropped. Default 4096. */
  maxQueueMessages?: number;
  /** Per-peer queue bound, in (estimated) bytes. Default 64 MiB. */
  maxQueueBytes?: number;
  /** Reconnect backoff after a stream fails, jittered. Default 100 ms doubling to 5 s. */
  backoff?: { initialMs: number; maxMs: number };
}

/** Counters since start; a copy is returned on each read. */
export interface TransportStats {
  /** Messages written to peers' streams (snapshots not included). */
  sent: number;
  /** Messages delivered to onMessage. */
  received: number;
  /** Messages dropped: peer down, queue overflow, unknown peer, addressed to another member, stopped. */
  dropped: number;
  /** Batches written to peers' streams. */
  batches: number;
  /** Batches accepted from peers. */
  batchesReceived: number;
}

const SILENT = pino({ level: 'silent' });

function positive(name: string, v: number | undefined, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v <= 0 || v > max) {
    throw new TransportError('INVALID_OPTION', `${name} must be a whole number between 1 and ${max} (got ${v})`);
  }
  return v;
}

export class GrpcTransport {
  private readonly log: pino.Logger;
  private readonly peers = new Map<string, Peer>();
  private readonly counters: TransportStats = { sent: 0, received: 0, dropped: 0, batches: 0, batchesReceived: 0 };
  private readonly credentials: { server: grpc.ServerCredentials; client: grpc.ChannelCredentials };
  private readonly peerEnv: PeerEnv;
  private readonly maxMessageBytes: number;
  private server: grpc.Server | null = null;
  private starting: Promise<string> | null = null;
  private stopping: Promise<void> | null = null;
  /** Set first thing in stop(), before any stream is cancelled, so no handler call slips through. */
  private stopped = false;

  constructor(
    private readonly opts: TransportOptions,
    private readonly handler: TransportHandler,
  ) {
    if (opts.id === '') throw new TransportError('INVALID_OPTION', 'id must not be empty: give the local member id');
    if (!/^.+:\d+$/.test(opts.listen))
      throw new TransportError('INVALID_OPTION', `listen must be host:port, e.g. 127.0.0.1:0 (got "${opts.listen}")`);
    const initialMs = positive('backoff.initialMs', opts.backoff?.initialMs, 100, 60_000);
    const maxMs = positive('backoff.maxMs', opts.backoff?.maxMs, Math.max(5_000, initialMs), 600_000);
    if (maxMs < initialMs)
      throw new TransportError('INVALID_OPTION', `backoff.maxMs must be ≥ backoff.initialMs (got ${maxMs} < ${initialMs})`);
    this.log = (opts.logger ?? SILENT).child({ component: 'raft-transport', node: opts.id });
    this.credentials = opts.credentials ?? { server: grpc.ServerCredentials.createInsecure(), client: grpc.credentials.createInsecure() };
    // Whatever the options, a batch (≤ maxBatchBytes + the batch's own
    // framing, or one message checked against the limit) and a snapshot chunk
    // fit in one gRPC message: the peer never refuses what we send for size.
    const maxMessageBytes = positive('maxMessageBytes', opts.maxMessageBytes, WIRE_MAX_BYTES, WIRE_MAX_BYTES);
    if (maxMessageBytes < 64 << 10)
      throw new TransportError('INVALID_OPTION', `maxMessageBytes must be at least 65536 (got ${maxMessageBytes})`);
    const batchRoom = maxMessageBytes - batchOverhead(opts.cluster);
    const chunkRoom = maxMessageBytes - CHUNK_OVERHEAD_BYTES;
    this.maxMessageBytes = maxMessageBytes;
    const env: PeerEnv = {
      cluster: opts.cluster,
      credentials: this.credentials.client,
      channelOptions: opts.channelOptions,
      log: this.log,
      limits: {
        maxMessageBytes,
        snapshotChunkBytes: positive('snapshotChunkBytes', opts.snapshotChunkBytes, Math.min(1 << 20, chunkRoom), chunkRoom),
        maxBatchBytes: positive('maxBatchBytes', opts.maxBatchBytes, Math.min(4 << 20, batchRoom), batchRoom),
        maxQueueMessages: positive('maxQueueMessages', opts.maxQueueMessages, 4096, 1 << 24),
        maxQueueBytes: positive('maxQueueBytes', opts.maxQueueBytes, 64 << 20, 2 ** 40),
        backoff: { initialMs, maxMs },
      },
      count: (what, n) => void (this.counters[what] += n),
      unreachable: (peer) => this.notify(() => this.handler.onUnreachable(peer)),
      snapshotStatus: (peer, ok) => this.notify(() => this.handler.onSnapshotStatus(peer, ok)),
    };
    this.peerEnv = env;
  }

  get stats(): Readonly<TransportStats> {
    return { ...this.counters };
  }

  /** Binds the server; resolves with the bound host:port. */
  start(): Promise<string> {
    if (this.stopped) return Promise.reject(new TransportError('STOPPED', 'the Raft transport was stopped; create a new one'));
    this.starting ??= this.listen();
    return this.starting;
  }

  private async listen(): Promise<string> {
    const handlers = receiverHandlers({
      id: this.opts.id,
      cluster: this.opts.cluster,
      log: this.log,
      count: (what, n) => void (this.counters[what] += n),
      deliver: (m) => this.notify(() => this.handler.onMessage(m)),
      authorize: this.opts.authorize,
      senders: this.opts.senders,
    });
    if (this.opts.server) {
      this.opts.server.addService(RaftTransportService, handlers);
      return this.opts.listen;
    }
    const server = new grpc.Server(serverOptions(this.maxMessageBytes));
    server.addService(RaftTransportService, handlers);
    this.server = server;
    let port: number;
    try {
      port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(this.opts.listen, this.credentials.server, (err, p) => (err ? reject(err) : resolve(p))),
      );
    } catch (err) {
      server.forceShutdown();
      this.server = null;
      throw new TransportError('LISTEN_FAILED', `cannot listen for Raft traffic on ${this.opts.listen}: ${(err as Error).message}`);
    }
    serverNoDelay(server);
    const addr = `${this.opts.listen.slice(0, this.opts.listen.lastIndexOf(':'))}:${port}`;
    this.log.info({ addr }, 'raft transport listening');
    return addr;
  }

  /** Starts connecting to `id` at once. Adding a known id updates its address. Throws only on an empty id or address. */
  addPeer(id: string, addr: string): void {
    if (this.stopped) return;
    if (id === '' || addr === '')
      throw new TransportError('INVALID_OPTION', `a peer needs an id and an address (got id "${id}", address "${addr}")`);
    if (id === this.opts.id) return; // the core never sends to itself
    const p = this.peers.get(id);
    if (p) {
      p.update(addr);
      return;
    }
    this.log.info({ peer: id, addr }, 'raft peer added');
    this.peers.set(id, new Peer(id, addr, this.peerEnv));
  }

  updatePeer(id: string, addr: string): void {
    this.addPeer(id, addr);
  }

  /** Closes the peer's streams; its queued messages are dropped and a snapshot in flight is reported failed. */
  removePeer(id: string): void {
    const p = this.peers.get(id);
    if (!p) return;
    this.peers.delete(id);
    this.log.info({ peer: id }, 'raft peer removed');
    void p.close();
  }

  /** Queues messages by peer; they leave on the next event-loop turn. Never blocks, never throws. */
  send(msgs: Message[]): void {
    for (const m of msgs) {
      const p = this.stopped ? undefined : this.peers.get(m.to);
      if (p) {
        p.enqueue(m);
        continue;
      }
      this.counters.dropped++;
      if (!this.stopped) this.log.debug({ to: m.to }, 'raft message for an unknown peer dropped');
    }
  }

  /** Cancels every stream and timer and closes the server. Handlers are not called once stop() has begun. */
  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopped = true;
      this.stopping = this.shutdown();
    }
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const peers = [...this.peers.values()];
    this.peers.clear();
    await Promise.all(peers.map((p) => p.close()));
    await this.starting?.catch(() => undefined);
    const server = this.server;
    this.server = null;
    if (server) {
      // tryShutdown's callback fires once the listener and every session are
      // closed; forceShutdown cancels the peers' streams so that is now.
      await new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        server.forceShutdown();
      });
    }
    this.log.info('raft transport stopped');
  }

  /** Calls into the handler, never after stop() and never letting its exception unwind into gRPC. */
  private notify(f: () => void): void {
    if (this.stopped) return;
    try {
      f();
    } catch (err) {
      this.log.error({ err }, 'raft transport handler threw');
    }
  }
}
