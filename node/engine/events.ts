// `GET /events`: the swarm events a manager sees in its own store (every
// manager applies every change, so a follower serves them too), streamed as
// dockerd streams them: recent ones replayed from a bounded ring for `since`,
// then each as it happens, one JSON line each, until the client leaves or
// `until` passes. Events are built and filtered by spec/docker/events.ts.
import type pino from 'pino';
import { TsswarmError } from '../../lib/errors.js';
import type { StoreEvent, TableName, WatchOptions } from '../../manager/store/index.js';
import {
  checkEventWindow,
  type DockerEvent,
  EVENT_TABLES,
  eventFilter,
  eventLine,
  NS_PER_MS,
  parseEventTime,
  replayEvents,
  swarmEventOf,
} from '../../spec/docker/events.js';
import { parseDockerFilters } from '../../spec/docker/filters.js';
import type { SwarmEventSource } from './backend.js';
import { get, type Route } from './route.js';

/** Recent events kept for `since` (dockerd keeps 256 of every kind; these are swarm events only). About 250 bytes each. */
export const EVENT_RING_SIZE = 1024;
/** Bytes a client may leave unread beyond the socket's own buffer before it is cut off. */
export const MAX_BEHIND_BYTES = 1 << 20;

type Subscriber = { include: (e: DockerEvent) => boolean; push(e: DockerEvent, line: string): void; end(): void };

/** The ring of recent swarm events and the open streams: one per daemon, fed by followStore while it is a manager. */
export class SwarmEventLog implements SwarmEventSource {
  private ring: DockerEvent[] = [];
  private readonly subs = new Set<Subscriber>();

  constructor(private readonly capacity = EVENT_RING_SIZE) {}

  /** Events held for replay. */
  get size(): number {
    return Math.min(this.ring.length, this.capacity);
  }

  /** The last `capacity` events, oldest first. */
  private recent(): DockerEvent[] {
    return this.ring.length > this.capacity ? this.ring.slice(-this.capacity) : this.ring;
  }

  /** Open streams. */
  get subscribers(): number {
    return this.subs.size;
  }

  publish(e: DockerEvent): void {
    this.ring.push(e);
    // Trimmed in batches, so a burst of changes does not copy the ring once per event.
    if (this.ring.length >= 2 * this.capacity) this.ring = this.ring.slice(-this.capacity);
    let line: string | undefined;
    for (const s of [...this.subs]) {
      if (!s.include(e)) continue;
      line ??= eventLine(e);
      s.push(e, line);
    }
  }

  subscribe(
    window: { since?: bigint; until?: bigint },
    include: (e: DockerEvent) => boolean,
    sub: { push(e: DockerEvent, line: string): void; end(): void },
  ): { buffered: DockerEvent[]; close(): void } {
    const s: Subscriber = { include, push: (e, l) => sub.push(e, l), end: () => sub.end() };
    const buffered = replayEvents(this.recent(), window.since, window.until, include);
    this.subs.add(s);
    return { buffered, close: () => this.subs.delete(s) };
  }

  /** Ends every open stream cleanly: what they were shown can no longer be vouched for. The ring stays. */
  endAll(): void {
    const all = [...this.subs];
    this.subs.clear();
    for (const s of all) s.end();
  }
}

/** What followStore needs of a manager's store (manager/store MemoryStore). */
export interface WatchableStore {
  watch(filter?: WatchOptions, signal?: AbortSignal): AsyncIterable<StoreEvent>;
}

/**
 * Feeds `log` with the events of `store`'s changes until close(). When the
 * store closes the watch (a snapshot replaced its state, or this loop fell
 * behind), the changes in between were never seen as events: open streams
 * are ended cleanly (a client re-reads and subscribes again, as after any
 * end of stream) and the watch starts over on the new state. close() ends
 * the open streams too (the node is no longer a manager).
 */
export function followStore(store: WatchableStore, log: SwarmEventLog, logger: pino.Logger, now = Date.now): { close(): void } {
  const ac = new AbortController();
  const tables = Object.keys(EVENT_TABLES) as TableName[];
  const run = async (): Promise<void> => {
    while (!ac.signal.aborted) {
      try {
        for await (const e of store.watch({ tables, commits: 'none' }, ac.signal)) {
          if (e.kind === 'commit') continue;
          const ev = swarmEventOf(e, now());
          if (ev) log.publish(ev);
        }
        return;
      } catch (err) {
        logger.info({ err }, 'the store watch behind GET /events was closed: ending open event streams and watching again');
        log.endAll();
      }
    }
  };
  void run().catch((err: unknown) => logger.error({ err }, 'the swarm event feed stopped'));
  return {
    close: () => {
      ac.abort();
      log.endAll();
    },
  };
}

/** setTimeout that also waits past 2^31-1 ms (Node would fire at once). */
function after(ms: number, f: () => void): () => void {
  const MAX = 2 ** 31 - 1;
  let t: NodeJS.Timeout;
  const arm = (left: number): void => {
    t = setTimeout(() => (left > MAX ? arm(left - MAX) : f()), Math.min(Math.max(left, 0), MAX));
  };
  arm(ms);
  return () => clearTimeout(t);
}

export interface EventsRouteOptions {
  /** Bytes a client may leave unread beyond the socket's buffer before its stream is cut (default MAX_BEHIND_BYTES). */
  maxBehindBytes?: number;
}

/**
 * `GET /events?since=&until=&filters=` on any node, as dockerd serves it: a
 * worker, a node outside a swarm or a locked manager has no swarm events and
 * streams nothing (dockerd would show its local events there), a manager its
 * store's. `until` in the past answers the replay and ends; otherwise the
 * stream stays open until the client leaves or `until` passes.
 */
export function eventsRoute(o: EventsRouteOptions = {}): Route {
  const maxBehind = o.maxBehindBytes ?? MAX_BEHIND_BYTES;
  return get('/events', 'any', async (r) => {
    const raw = { since: r.query.get('since') ?? '', until: r.query.get('until') ?? '' };
    const since = parseEventTime('since', raw.since);
    const until = parseEventTime('until', raw.until);
    checkEventWindow(since, until, raw);
    const include = eventFilter(parseDockerFilters(r.query.get('filters')));
    const source = r.backend.swarmEvents();
    return {
      status: 200,
      // dockerd's Content-Type below API 1.52, though the body is JSON lines.
      headers: { 'Content-Type': 'application/json' },
      stream: (write, signal) =>
        new Promise<void>((resolve, reject) => {
          let done = false;
          let behind = 0;
          let cancelTimer = (): void => {};
          const finish = (err?: Error): void => {
            if (done) return;
            done = true;
            cancelTimer();
            signal.removeEventListener('abort', onAbort);
            sub.close();
            if (err) reject(err);
            else resolve();
          };
          const onAbort = (): void => finish();
          // write() is false while the socket holds more than its high-water mark: what is written then waits in memory.
          const send = (line: string): void => {
            if (done) return;
            if (write(line)) behind = 0;
            else if ((behind += Buffer.byteLength(line)) > maxBehind) {
              finish(
                new TsswarmError(
                  'RESOURCE_EXHAUSTED',
                  `the events client left more than ${maxBehind} bytes unread and was cut off: read the stream as it comes, or narrow it with filters`,
                ),
              );
            }
          };
          // The headers go out now, as dockerd flushes them before any event: the client knows it is subscribed.
          write('');
          const sub = source.subscribe({ since, until }, include, { push: (_e, line) => send(line), end: () => finish() });
          for (const e of sub.buffered) send(eventLine(e));
          if (done) return;
          if (until !== undefined) {
            const left = until - BigInt(Date.now()) * NS_PER_MS;
            if (left < 0n) return finish();
            cancelTimer = after(Number(left / NS_PER_MS) + 1, () => finish());
          }
          if (signal.aborted) return finish();
          signal.addEventListener('abort', onAbort, { once: true });
        }),
    };
  });
}

export const eventRoutes: Route[] = [eventsRoute()];
