// The sending half of the Raft transport for one peer: its own bounded queue,
// one long-lived `Send` stream flushed once per event-loop turn, reconnection
// with jittered exponential backoff, and MsgSnap streamed in chunks.
import * as grpc from '@grpc/grpc-js';
import type pino from 'pino';
import { messageLimits } from '../../../lib/grpc.js';
import { Message, MessageBatch, MessageType, Snapshot, SnapshotChunk, type BatchAck, type SnapshotAck } from '../../../proto/gen/raft.js';
import {
  CONNECT_TIMEOUT_MS,
  SEND_PATH,
  SEND_SNAPSHOT_PATH,
  approxSize,
  batchOverhead,
  channelOptions,
  deserializeBatchAck,
  deserializeSnapshotAck,
  serializeBatch,
  serializeChunk,
} from './wire.js';

/** What a peer needs from the transport that owns it. */
export interface PeerEnv {
  readonly cluster: string;
  readonly credentials: grpc.ChannelCredentials;
  readonly channelOptions?: grpc.ChannelOptions;
  readonly log: pino.Logger;
  readonly limits: {
    /** The gRPC message limit of both ends; maxBatchBytes + batchOverhead(cluster) and snapshotChunkBytes + CHUNK_OVERHEAD_BYTES are within it. */
    readonly maxMessageBytes: number;
    readonly maxBatchBytes: number;
    readonly maxQueueMessages: number;
    readonly maxQueueBytes: number;
    readonly snapshotChunkBytes: number;
    readonly backoff: { readonly initialMs: number; readonly maxMs: number };
  };
  count(what: 'sent' | 'dropped' | 'batches', n: number): void;
  unreachable(peer: string): void;
  snapshotStatus(peer: string, ok: boolean): void;
}

// 'connecting': a stream exists but the peer has not answered yet, so
// messages wait in the queue; 'backoff': the last stream failed and messages
// are dropped until the retry timer opens a new one.
type State = 'connecting' | 'ready' | 'backoff' | 'closed';

interface Queued {
  m: Message;
  size: number;
}

/** FIFO with O(1) shift: a head index into an array compacted now and then. */
class MessageQueue {
  private items: (Queued | undefined)[] = [];
  private head = 0;
  bytes = 0;

  get length(): number {
    return this.items.length - this.head;
  }
  push(q: Queued): void {
    this.items.push(q);
    this.bytes += q.size;
  }
  peekSize(): number {
    return this.items[this.head]?.size ?? 0;
  }
  shift(): Message | undefined {
    const q = this.items[this.head];
    if (!q) return undefined;
    this.items[this.head++] = undefined;
    this.bytes -= q.size;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return q.m;
  }
  clear(): number {
    const n = this.length;
    this.items = [];
    this.head = 0;
    this.bytes = 0;
    return n;
  }
}

const EMPTY = new Uint8Array(0);

// A snapshot stream may take long on a big snapshot, but not forever: a peer
// that reads nothing yet answers keepalive pings would otherwise hold the
// follower in StateSnapshot. Allow 30 s plus 1 s per MiB (≥ 1 MiB/s).
function snapshotDeadline(bytes: number): Date {
  return new Date(Date.now() + 30_000 + Math.ceil(bytes / (1 << 20)) * 1_000);
}

function errText(err: unknown): string {
  const e = err as Partial<grpc.ServiceError> | undefined;
  if (e && typeof e.code === 'number') return `${grpc.status[e.code] ?? e.code}: ${e.details ?? e.message ?? ''}`;
  return err instanceof Error ? err.message : String(err);
}

export class Peer {
  private state: State = 'backoff';
  private client: grpc.Client | null = null;
  private stream: grpc.ClientWritableStream<MessageBatch> | null = null;
  /** Messages written on the current stream: a failure after any of them lost a send. */
  private carried = 0;
  private draining = false;
  private readonly queue = new MessageQueue();
  private readonly snapshots: Message[] = [];
  private snapshotCall: grpc.ClientWritableStream<SnapshotChunk> | null = null;
  private snapshotPump: Promise<void> | null = null;
  private flushQueued = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  private delayMs: number;
  private readySince = 0;
  /** Unreachable is reported at most once per backoff period (or per stall of a ready stream). */
  private reported = false;
  private lastError = '';
  /** The queue overflowed since the last flush (a slow peer): reported as unreachable there, not inside send(). */
  private overflowed = false;
  private readonly log: pino.Logger;

  constructor(
    readonly id: string,
    private addr: string,
    private readonly env: PeerEnv,
  ) {
    this.log = env.log.child({ peer: id });
    this.delayMs = env.limits.backoff.initialMs;
    this.connect();
  }

  /** Queues `m`; nothing is written before the next event-loop turn. */
  enqueue(m: Message): void {
    if (this.state === 'closed') {
      this.env.count('dropped', 1);
      return;
    }
    if (m.type === MessageType.MSG_SNAP) {
      // Never dropped for room: the core waits for its status report.
      this.snapshots.push(m);
    } else {
      const size = approxSize(m);
      const limit = this.env.limits.maxMessageBytes - batchOverhead(this.env.cluster);
      if (size > limit) {
        // The peer would refuse it and tear down the stream carrying everything else.
        this.log.warn(
          { type: MessageType[m.type], bytes: size, limit },
          'raft message larger than the gRPC message limit dropped; lower the Raft MaxSizePerMsg',
        );
        this.env.count('dropped', 1);
        return;
      }
      this.queue.push({ m, size });
      let over = 0;
      while (this.queue.length > this.env.limits.maxQueueMessages || this.queue.bytes > this.env.limits.maxQueueBytes) {
        this.queue.shift();
        over++;
      }
      if (over > 0) {
        this.env.count('dropped', over);
        this.overflowed = true;
      }
    }
    this.scheduleFlush();
  }

  /** Points the peer at a new address: a fresh connection at once, queued messages kept. */
  update(addr: string): void {
    if (this.state === 'closed' || addr === this.addr) return;
    this.log.info({ from: this.addr, to: addr }, 'raft peer address changed');
    this.addr = addr;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.dropStream();
    this.snapshotCall?.cancel();
    this.delayMs = this.env.limits.backoff.initialMs;
    this.connect();
  }

  /** Cancels every stream and timer; pending snapshots are reported failed (unless the transport is stopping). */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.dropStream();
    this.snapshotCall?.cancel();
    this.env.count('dropped', this.queue.clear());
    await this.snapshotPump;
    for (const _ of this.snapshots.splice(0)) this.env.snapshotStatus(this.id, false);
  }

  private scheduleFlush(): void {
    if (this.flushQueued || this.state === 'closed') return;
    // A microtask: everything sent in this synchronous run (the driver hands
    // over a whole Ready at once) joins one batch, and it leaves before the
    // sender waits on anything. With setImmediate, a leader's appends sent
    // just before its fsync waited for that fsync to finish (the check phase
    // comes after the poll phase that sees the fsync complete), which put the
    // leader's and the followers' fsyncs in series: measured 1 ms more per put.
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.state === 'closed') return;
    if (this.snapshots.length > 0 && !this.snapshotPump) {
      this.snapshotPump = this.pumpSnapshots().finally(() => {
        this.snapshotPump = null;
        if (this.snapshots.length > 0) this.scheduleFlush();
      });
    }
    if (this.overflowed) {
      this.overflowed = false;
      this.reportUnreachable('send queue full');
    }
    if (this.queue.length === 0) return;
    if (this.state === 'backoff') {
      this.env.count('dropped', this.queue.clear());
      this.reportUnreachable('peer down');
      return;
    }
    // Connecting: the messages wait for the stream. Draining: for 'drain'.
    if (this.state !== 'ready' || this.draining || !this.stream) return;
    const s = this.stream;
    const { maxBatchBytes } = this.env.limits;
    while (this.queue.length > 0) {
      const messages: Message[] = [];
      let bytes = 0;
      while (this.queue.length > 0 && (messages.length === 0 || bytes + this.queue.peekSize() <= maxBatchBytes)) {
        bytes += this.queue.peekSize();
        messages.push(this.queue.shift()!);
      }
      const more = s.write(MessageBatch.create({ cluster: this.env.cluster, messages }));
      this.carried += messages.length;
      this.env.count('sent', messages.length);
      this.env.count('batches', 1);
      if (!more) {
        // grpc-js buffers what the socket cannot take; stop feeding it so a
        // slow peer's backlog stays in our bounded queue, not in its buffer.
        this.draining = true;
        s.once('drain', () => {
          if (this.stream !== s) return;
          this.draining = false;
          this.reported = false; // the peer made progress: a new stall may be reported
          this.flush();
        });
        return;
      }
    }
  }

  private connect(): void {
    if (this.state === 'closed') return;
    this.state = 'connecting';
    this.carried = 0;
    // A fresh channel per attempt: its connection starts now, governed by our
    // backoff rather than by the channel's own reconnect schedule.
    let client: grpc.Client;
    try {
      // The caller's options (TLS name override) cannot lift the message limit.
      const max = this.env.limits.maxMessageBytes;
      client = new grpc.Client(this.addr, this.env.credentials, {
        ...channelOptions(this.env.limits.backoff, max),
        ...this.env.channelOptions,
        ...messageLimits(max),
      });
    } catch (err) {
      // Only an unparsable target throws; retrying keeps the peer's state machine uniform.
      this.log.error({ err: errText(err), addr: this.addr }, 'cannot open a channel to raft peer');
      this.state = 'backoff';
      this.retryLater();
      return;
    }
    this.client = client;
    const s: grpc.ClientWritableStream<MessageBatch> = client.makeClientStreamRequest<MessageBatch, BatchAck>(
      SEND_PATH,
      serializeBatch,
      deserializeBatchAck,
      new grpc.Metadata(),
      {},
      (err) => this.failed(s, err ?? new Error('peer ended the stream')),
    );
    // Errors also arrive through the callback; an unhandled 'error' event would crash the process.
    s.on('error', () => {});
    // The receiver sends headers as soon as it accepts the stream: from then on writes go to a live peer.
    s.on('metadata', () => {
      if (this.stream !== s || this.state !== 'connecting') return;
      if (this.connectTimer) clearTimeout(this.connectTimer);
      this.connectTimer = null;
      this.state = 'ready';
      this.readySince = Date.now();
      if (this.lastError) this.log.info('raft peer reachable again');
      this.lastError = '';
      this.flush();
    });
    this.stream = s;
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null;
      this.failed(s, new Error(`no answer from ${this.addr} within ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
  }

  private failed(s: grpc.ClientWritableStream<MessageBatch>, err: unknown): void {
    if (this.stream !== s || this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    const lost = this.carried + this.queue.length;
    this.dropStream();
    this.env.count('dropped', this.queue.clear());
    this.state = 'backoff';
    // Only a stream that stayed up for a while resets the backoff: a peer that
    // accepts and then refuses each stream (wrong cluster) must not be hammered.
    if (wasReady && Date.now() - this.readySince >= this.env.limits.backoff.maxMs) this.delayMs = this.env.limits.backoff.initialMs;
    const reason = errText(err);
    const delay = this.retryLater();
    if (reason !== this.lastError) this.log.warn({ err: reason, retryMs: delay, addr: this.addr }, 'raft stream to peer failed');
    else this.log.debug({ err: reason, retryMs: delay }, 'raft stream to peer failed again');
    this.lastError = reason;
    if (lost > 0) this.reportUnreachable(reason);
  }

  /** Arms the reconnect timer for the current backoff step and doubles the next one. Returns the delay. */
  private retryLater(): number {
    const base = this.delayMs;
    this.delayMs = Math.min(this.env.limits.backoff.maxMs, base * 2);
    const delay = Math.round(base / 2 + (Math.random() * base) / 2); // "equal jitter": spreads peers' retries apart
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.reported = false; // a new backoff period
      this.connect();
    }, delay);
    return delay;
  }

  /** Forgets the current stream and its channel. The channel closes gracefully, so a snapshot still streaming on it completes. */
  private dropStream(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    const s = this.stream;
    this.stream = null;
    this.draining = false;
    s?.cancel();
    this.client?.close();
    this.client = null;
  }

  private reportUnreachable(why: string): void {
    if (this.reported || this.state === 'closed') return;
    this.reported = true;
    this.log.debug({ why }, 'raft peer reported unreachable');
    this.env.unreachable(this.id);
  }

  /** One snapshot at a time per peer, in the order the core sent them. */
  private async pumpSnapshots(): Promise<void> {
    for (let m = this.snapshots.shift(); m; m = this.snapshots.shift()) {
      const ok = await this.sendSnapshot(m);
      this.env.snapshotStatus(this.id, ok);
      if (this.state === 'closed') return;
    }
  }

  private async sendSnapshot(m: Message): Promise<boolean> {
    const client = this.client;
    if (this.state === 'backoff' || this.state === 'closed' || !client) {
      this.reportUnreachable('peer down');
      return false;
    }
    const data = m.snapshot?.data ?? EMPTY;
    const total = data.length;
    const started = Date.now();
    let finished = false;
    let settle!: (r: { ok: boolean; reason: string }) => void;
    const result = new Promise<{ ok: boolean; reason: string }>((resolve) => (settle = resolve));
    const c = client.makeClientStreamRequest<SnapshotChunk, SnapshotAck>(
      SEND_SNAPSHOT_PATH,
      serializeChunk,
      deserializeSnapshotAck,
      new grpc.Metadata(),
      { deadline: snapshotDeadline(total) },
      (err, ack) => {
        finished = true;
        if (err) settle({ ok: false, reason: errText(err) });
        else if (!ack?.ok) settle({ ok: false, reason: ack?.error || 'refused' });
        else settle({ ok: true, reason: '' });
      },
    );
    c.on('error', () => {});
    this.snapshotCall = c;
    const done = result.then(() => undefined);
    try {
      // The first chunk carries the message with the metadata only; the data
      // follows as views into the caller's buffer, one chunk serialized at a
      // time, so the snapshot is never copied whole.
      const header = Message.create({ ...m, snapshot: Snapshot.create({ metadata: m.snapshot?.metadata ?? null }) });
      let more = c.write(SnapshotChunk.create({ cluster: this.env.cluster, message: header, total }));
      const step = this.env.limits.snapshotChunkBytes;
      for (let offset = 0; offset < total && !finished; offset += step) {
        if (!more) await drained(c, done);
        if (finished) break;
        more = c.write(SnapshotChunk.create({ data: data.subarray(offset, offset + step), offset, total }));
      }
      if (!finished) c.end();
      const r = await result;
      if (r.ok) this.log.info({ bytes: total, index: m.snapshot?.metadata?.index, ms: Date.now() - started }, 'raft snapshot sent');
      else this.log.warn({ bytes: total, err: r.reason }, 'raft snapshot failed');
      return r.ok;
    } finally {
      if (this.snapshotCall === c) this.snapshotCall = null;
      if (!finished) c.cancel();
    }
  }
}

/** Resolves on the stream's next 'drain', or when the call is over (a finished call never drains). */
function drained(s: NodeJS.EventEmitter, done: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const on = (): void => {
      s.off('drain', on);
      resolve();
    };
    s.on('drain', on);
    void done.then(on);
  });
}
