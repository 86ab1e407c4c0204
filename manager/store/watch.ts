// Change events the store emits after each applied transaction, and the two
// ways to receive them: an async iterable with a bounded queue (a consumer
// that falls too far behind is closed with an error), and a synchronous callback.
import { WatchOverflowError } from './errors.js';
import type { TableName, Tables } from './schema.js';

export type ChangeKind = 'create' | 'update' | 'delete';

type ChangeOf<T extends TableName> =
  | { kind: 'create'; table: T; object: Tables[T]; old?: undefined; index: number }
  /** `old` is the object as it was before this transaction. */
  | { kind: 'update'; table: T; object: Tables[T]; old: Tables[T]; index: number }
  /** `object` is the object as it was when removed. */
  | { kind: 'delete'; table: T; object: Tables[T]; old?: undefined; index: number };

/** One object changed; `index` is the Raft index of the transaction (the object's new version). */
export type ChangeEvent = { [T in TableName]: ChangeOf<T> }[TableName];

/** Ends the events of one transaction: consumers that batch act here. */
export interface CommitEvent {
  kind: 'commit';
  index: number;
}

export type StoreEvent = ChangeEvent | CommitEvent;

export interface WatchFilter {
  /** Only these tables (default all). */
  tables?: readonly TableName[];
  /** Only these kinds of change (default all). */
  kinds?: readonly ChangeKind[];
  /** A further test; if it throws, the watcher is closed with that error. */
  match?: (e: ChangeEvent) => boolean;
  /**
   * Commit markers: after each transaction that delivered a change to this
   * watcher ('relevant', the default), after every log entry ('all'), or never.
   */
  commits?: 'relevant' | 'all' | 'none';
}

export interface WatchOptions extends WatchFilter {
  /** Events a watcher may hold unread before it is closed with WatchOverflowError (default 10,000). */
  maxQueue?: number;
}

export const DEFAULT_MAX_QUEUE = 10_000;

/** Whether a change passes a filter; throws what `match` throws. */
export function passes(f: WatchFilter, e: ChangeEvent): boolean {
  if (f.tables && !f.tables.includes(e.table)) return false;
  if (f.kinds && !f.kinds.includes(e.kind)) return false;
  return f.match ? f.match(e) : true;
}

/** How the store feeds one watcher. */
export interface Sink {
  readonly filter: WatchFilter;
  push(e: StoreEvent): void;
  /** Closes the watcher with an error (overflow, reset, a throwing filter). */
  fail(err: Error): void;
}

/** Registers a sink with the store; returns what detaches it. */
export type Register = (sink: Sink) => () => void;

/**
 * A stream of store events: `for await (const e of watch)`. Ends when closed
 * (close(), the AbortSignal, or leaving the loop); throws once if the store
 * closed it (WatchOverflowError, WatchResetError), after which it is done.
 */
export class Watch implements AsyncIterableIterator<StoreEvent> {
  #queue: StoreEvent[] = [];
  #head = 0;
  #waiter: { resolve: (r: IteratorResult<StoreEvent>) => void; reject: (e: Error) => void } | null = null;
  #closed = false;
  #error: Error | null = null;
  #errorDelivered = false;
  readonly #detach: () => void;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.close();

  constructor(register: Register, options: WatchOptions = {}, signal?: AbortSignal) {
    const max = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    const self = this;
    this.#detach = register({
      filter: options,
      push(e) {
        if (self.#closed) return;
        if (self.#waiter) {
          const w = self.#waiter;
          self.#waiter = null;
          w.resolve({ value: e, done: false });
        } else if (self.#queue.length - self.#head >= max) {
          this.fail(new WatchOverflowError(max));
        } else {
          self.#queue.push(e);
        }
      },
      fail(err) {
        if (self.#closed) return;
        self.#error = err;
        self.#finish();
      },
    });
    this.#signal = signal;
    if (signal?.aborted) this.close();
    else signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Events queued and not yet read. */
  get pending(): number {
    return this.#queue.length - this.#head;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Why the store closed this watcher, if it did. */
  get error(): Error | null {
    return this.#error;
  }

  /** Stops the stream; unread events are dropped and the iteration ends. */
  close(): void {
    if (!this.#closed) this.#finish();
  }

  #finish(): void {
    this.#closed = true;
    // The queue goes at once: a closed watcher must not hold memory.
    this.#queue = [];
    this.#head = 0;
    this.#detach();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    const w = this.#waiter;
    this.#waiter = null;
    if (!w) return;
    if (this.#error) {
      this.#errorDelivered = true;
      w.reject(this.#error);
    } else {
      w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<StoreEvent>> {
    if (this.#head < this.#queue.length) {
      const value = this.#queue[this.#head++]!;
      // Drop the read prefix now and then, so a long-lived queue does not keep it.
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#closed) {
      if (this.#error && !this.#errorDelivered) {
        this.#errorDelivered = true;
        return Promise.reject(this.#error);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.#waiter) return Promise.reject(new Error('Watch.next() called again before the previous call settled'));
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<StoreEvent>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** A callback subscription: the callback runs synchronously after each apply; if it throws, the subscription closes. */
export class Subscription {
  #closed = false;
  #error: Error | null = null;
  readonly #detach: () => void;

  constructor(register: Register, fn: (e: StoreEvent) => void, filter: WatchFilter = {}) {
    const self = this;
    this.#detach = register({
      filter,
      push(e) {
        if (self.#closed) return;
        try {
          fn(e);
        } catch (err) {
          this.fail(err instanceof Error ? err : new Error(String(err)));
        }
      },
      fail(err) {
        if (self.#closed) return;
        self.#error = err;
        self.close();
      },
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Why the subscription closed itself (its callback threw, or the store was reset), if it did. */
  get error(): Error | null {
    return this.#error;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#detach();
  }
}
