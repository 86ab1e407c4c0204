// The leader's bounded send queue to one session. It feeds the gRPC stream
// only while the stream keeps up (its write() backpressure, and a small
// window of bytes written but not yet flushed), holds the rest itself, and
// declares the node stalled once that exceeds a cap: the dispatcher then
// drops the session, so a node that stops reading costs bounded memory.
import type { ManagerMessage } from '../../proto/gen/control.js';

/** What the outbox needs of a server stream (grpc-js's ServerDuplexStream is one). */
export interface OutboxStream {
  write(m: ManagerMessage, cb: (err?: Error | null) => void): boolean;
  once(ev: 'drain', fn: () => void): unknown;
}

export interface OutboxLimits {
  /** Bytes queued plus in flight beyond which the node counts as stalled. */
  maxBytes: number;
  /** Bytes handed to the stream and not yet flushed to the connection; more waits here. */
  windowBytes: number;
}

/** FIFO with O(1) shift (a head index, compacted now and then). */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(x: T): void {
    this.items.push(x);
  }
  shift(): T | undefined {
    const x = this.items[this.head];
    if (x === undefined) return undefined;
    this.items[this.head++] = undefined;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }
  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

export class Outbox {
  private readonly queue = new Fifo<{ m: ManagerMessage; bytes: number }>();
  private queued = 0;
  private inflight = 0;
  private blocked = false;
  private closed = false;
  private cap: number;

  constructor(
    private readonly stream: OutboxStream,
    private readonly limits: OutboxLimits,
    /** Called once, when the cap is passed; the outbox is closed by then and its queue freed. */
    private readonly overflow: (bytes: number, cap: number) => void,
  ) {
    this.cap = limits.maxBytes;
  }

  /** Bytes held for this session: queued here, plus written to the stream and not yet flushed. */
  get bytes(): number {
    return this.queued + this.inflight;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Lets the session hold `bytes` more than it holds now (the dispatcher
   * gives twice a full set about to be queued): a node with a large
   * assignment set must be able to receive it, and the set is already
   * bounded by the store that holds it. Never lowers the cap.
   */
  allow(bytes: number): void {
    this.cap = Math.max(this.cap, this.bytes + bytes);
  }

  send(m: ManagerMessage, bytes: number): void {
    if (this.closed) return;
    if (this.queue.length === 0 && this.canWrite()) {
      this.write(m, bytes);
      return;
    }
    this.queue.push({ m, bytes });
    this.queued += bytes;
    if (this.bytes > this.cap) {
      const held = this.bytes;
      this.close();
      this.overflow(held, this.cap);
    }
  }

  /** Stops sending and frees the queue (the session is over). */
  close(): void {
    this.closed = true;
    this.queue.clear();
    this.queued = 0;
  }

  private canWrite(): boolean {
    return !this.blocked && this.inflight < this.limits.windowBytes;
  }

  private write(m: ManagerMessage, bytes: number): void {
    this.inflight += bytes;
    const more = this.stream.write(m, () => {
      this.inflight -= bytes;
      this.pump();
    });
    if (!more && !this.blocked) {
      this.blocked = true;
      this.stream.once('drain', () => {
        this.blocked = false;
        this.pump();
      });
    }
  }

  private pump(): void {
    while (!this.closed && this.queue.length > 0 && this.canWrite()) {
      const q = this.queue.shift()!;
      this.queued -= q.bytes;
      this.write(q.m, q.bytes);
    }
  }
}
