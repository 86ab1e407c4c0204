// The dispatcher: runs on the leader, holds one Session stream per agent,
// and turns sessions and heartbeats into node states in the store (READY on
// hello, DOWN after the grace period, READY again on return). Followers refuse
// sessions with the leader's address, so agents find the leader in one hop.
// Managers are also judged by Raft: a manager whose Raft member has been
// silent for two election timeouts and that has no session is DOWN at once,
// so losing the old leader shows in seconds, not after a heartbeat grace.
import type * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import type pino from 'pino';
import { TsswarmError } from '../../lib/errors.js';
import { nodeAddrError } from '../../lib/addr.js';
import { resetServerCall, toServiceError } from '../../lib/grpc.js';
import { PART_BYTES, splitMessage } from '../../lib/parts.js';
import type { AgentMessage, ManagerMessage, RelayData, RelayRequest } from '../../proto/gen/control.js';
import { Node, NodeState } from '../../proto/gen/objects.js';
import type { MemoryStore } from '../store/index.js';
import { AssignmentFeed } from './assignments.js';
import { NetworkFeed } from './networks.js';
import { HeartbeatTracker } from './heartbeats.js';
import { StatusWriter } from './status.js';
import { Outbox } from './outbox.js';
import { boundHello, boundStatusUpdates } from './limits.js';

/**
 * What one session may hold unsent before its node counts as stalled (raised
 * to twice a node's full set when that is larger). 64 MiB: minutes of
 * ordinary changes, far more than a reading node ever has queued.
 */
export const SESSION_QUEUE_BYTES = 64 << 20;
/** Bytes handed to gRPC for one session and not yet flushed: more waits in its Outbox, where it is counted. */
const SESSION_WINDOW_BYTES = 2 << 20;
/**
 * The longest one node-state write may hold its node's write slot: past it
 * the write counts as failed and the state is written again (a stale write
 * that lands later is refused by its version check). Above the store's own bound.
 */
export const STATE_WRITE_TIMEOUT_MS = 45_000;
/** Pause before a failed node-state write is tried again. */
export const STATE_WRITE_RETRY_MS = 200;

export interface NodeLiveness {
  /** Marks a node READY (with what its hello said) or DOWN with a reason; idempotent. */
  setState(
    nodeId: string,
    state: 'ready' | 'down',
    info: { message: string; addr?: string; description?: AgentMessage['hello'] },
  ): Promise<void>;
  /** Node ids known to the store. */
  nodeIds(): string[];
  /** The role the managers want the node to have. */
  desiredRole(nodeId: string): string;
  managerAddrs(): string[];
  /** Node ids of the current managers, which the agents pin managers' certificates to (absent: none sent). */
  managerNodeIds?(): string[];
  leaderAddr(): string;
  isLeader(): boolean;
  /** Manager nodes whose Raft member has been silent (unreachable) for a while. */
  silentManagers(): string[];
  /** The CA as nodes should hold it (trust bundle digest, signing root digest); absent: not known yet. */
  caDigests?(): { trustDigest: string; signingRootDigest: string } | undefined;
}

export interface DispatcherOptions {
  /** The period agents are told to beat at, until setHeartbeatPeriod() (the cluster's setting) changes it. */
  heartbeatPeriodMs: number;
  graceMultiplier: number;
  logger: pino.Logger;
  liveness: NodeLiveness;
  /** The store tasks are read from and their status written to (no store: sessions carry no tasks). */
  store?: MemoryStore;
  /** Bound on one node-state write (setState). Default STATE_WRITE_TIMEOUT_MS. */
  stateWriteTimeoutMs?: number;
  /** Pause before a failed node-state write is retried. Default STATE_WRITE_RETRY_MS. */
  stateWriteRetryMs?: number;
  /** Bytes one session may hold unsent before the node is disconnected as stalled. Default SESSION_QUEUE_BYTES. */
  maxSessionQueueBytes?: number;
  /** Largest assignments or networks message sent whole; larger ones go in parts. Default PART_BYTES (lib/parts.ts). */
  partBytes?: number;
}

interface Session {
  id: string;
  nodeId: string;
  stream: grpc.ServerDuplexStream<AgentMessage, ManagerMessage>;
  out: Outbox;
  detach?: () => void;
}

/** A relayed stream's receiver: data until `end`. */
export type RelayHandler = (d: RelayData) => void;

export class Dispatcher {
  private readonly sessions = new Map<string, Session>();
  private readonly tracker: HeartbeatTracker;
  private timer: NodeJS.Timeout | null = null;
  private leaderSince = 0;
  private readonly log: pino.Logger;
  /** What each node's state should be, by the latest evidence; writes converge the store to it. */
  private readonly want = new Map<string, { state: 'ready' | 'down'; info: Parameters<NodeLiveness['setState']>[2] }>();
  private readonly writing = new Set<string>();
  private closed = false;
  /** Pending retry pauses, so close() ends them. */
  private readonly retryTimers = new Set<{ timer: NodeJS.Timeout; done: () => void }>();
  /** Nodes heard from (hello or heartbeat) since this manager became leader. */
  private readonly heard = new Set<string>();
  private readonly feed: AssignmentFeed | null;
  private readonly netFeed: NetworkFeed | null;
  private readonly statuses: StatusWriter | null;
  /** request id → its receiver and the node serving it. */
  private readonly relays = new Map<string, { nodeId: string; fn: RelayHandler }>();
  /** Sessions dropped because their node stopped reading (tsswarm_dispatcher_stalled_sessions_total). */
  stalledDisconnects = 0;

  private periodMs: number;

  constructor(private readonly o: DispatcherOptions) {
    this.periodMs = o.heartbeatPeriodMs;
    this.tracker = new HeartbeatTracker({ periodMs: o.heartbeatPeriodMs, graceMultiplier: o.graceMultiplier });
    this.log = o.logger.child({ component: 'dispatcher' });
    this.feed = o.store ? new AssignmentFeed(o.store, o.logger) : null;
    this.netFeed = o.store ? new NetworkFeed(o.store, o.logger) : null;
    this.statuses = o.store ? new StatusWriter(o.store, o.logger) : null;
  }

  /**
   * Asks a node's agent for a task's logs or an exec in it; data arrives through `fn` until
   * a message with `end`. Returns a cancel function, or null when the node has no session.
   */
  relay(nodeId: string, req: Omit<RelayRequest, 'requestId' | 'cancel'>, fn: RelayHandler): (() => void) | null {
    const s = this.sessions.get(nodeId);
    if (!s) return null;
    const requestId = randomBytes(8).toString('hex');
    this.relays.set(requestId, { nodeId, fn });
    this.post(s, { relay: { ...req, requestId, cancel: false } } as ManagerMessage);
    return () => {
      if (!this.relays.delete(requestId)) return;
      const cur = this.sessions.get(nodeId);
      if (cur) this.post(cur, { relay: { requestId, taskId: req.taskId, cancel: true } } as ManagerMessage);
    };
  }

  /** Ends the relays a node was serving (its session is gone). */
  private endRelays(nodeId: string, why: string): void {
    for (const [id, r] of this.relays) {
      if (r.nodeId !== nodeId) continue;
      this.relays.delete(id);
      r.fn({ requestId: id, end: true, error: why } as RelayData);
    }
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  hasSession(nodeId: string): boolean {
    return this.sessions.has(nodeId);
  }

  /** Bytes the node's session holds unsent (0 without a session). */
  sessionQueueBytes(nodeId: string): number {
    return this.sessions.get(nodeId)?.out.bytes ?? 0;
  }

  /**
   * Records the state a node should have and converges the store to it, one write at a time per
   * node: evidence that arrives while a write is in flight (a heartbeat during a DOWN write) is
   * applied after it, never lost to a race.
   */
  private request(nodeId: string, state: 'ready' | 'down', info: Parameters<NodeLiveness['setState']>[2]): void {
    const prev = this.want.get(nodeId);
    // A READY with a description (hello) keeps its description if a bare heartbeat follows.
    this.want.set(nodeId, {
      state,
      info: state === 'ready' && prev?.state === 'ready' && prev.info.description && !info.description ? prev.info : info,
    });
    if (this.writing.has(nodeId) || this.closed) return;
    this.writing.add(nodeId);
    void (async () => {
      try {
        for (;;) {
          const w = this.want.get(nodeId);
          if (!w || this.closed) break;
          this.want.delete(nodeId);
          try {
            await this.boundedSetState(nodeId, w);
          } catch (err) {
            this.log.warn({ err, node: nodeId }, `could not mark node ${w.state}; trying again`);
            // Not lost: the same evidence is written again unless newer evidence came meanwhile.
            await this.pause(this.o.stateWriteRetryMs ?? STATE_WRITE_RETRY_MS);
            if (!this.want.has(nodeId) && !this.closed && this.o.liveness.isLeader()) this.want.set(nodeId, w);
          }
        }
      } finally {
        // Cleared on every outcome: a write that failed, hung or was refused never keeps the node's slot.
        this.writing.delete(nodeId);
      }
    })();
  }

  /** One node-state write, given up after the bound: a proposal that never answers must not hold the node's slot. */
  private boundedSetState(nodeId: string, w: { state: 'ready' | 'down'; info: Parameters<NodeLiveness['setState']>[2] }): Promise<void> {
    const ms = this.o.stateWriteTimeoutMs ?? STATE_WRITE_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TsswarmError('DEADLINE_EXCEEDED', `marking node ${nodeId} ${w.state} took over ${ms} ms (stateWriteTimeoutMs)`)),
        ms,
      );
    });
    return Promise.race([Promise.resolve().then(() => this.o.liveness.setState(nodeId, w.state, w.info)), bound]).finally(() =>
      clearTimeout(timer),
    );
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = {
        timer: setTimeout(() => {
          this.retryTimers.delete(t);
          resolve();
        }, ms),
        done: resolve,
      };
      this.retryTimers.add(t);
    });
  }

  /** The heartbeat period agents are told (welcome and every heartbeat ack). */
  get heartbeatPeriodMs(): number {
    return this.periodMs;
  }

  /**
   * The cluster's heartbeat period changed (`swarm update --dispatcher-heartbeat`): the next ack
   * to each agent carries it, and the agent re-arms with it. A node's grace runs from its last
   * beat; when the period grows, nodes still on the old period keep at least the new grace, so
   * none is marked DOWN while it learns the new period.
   */
  setHeartbeatPeriod(ms: number): void {
    if (!(ms > 0) || ms === this.periodMs) return;
    this.periodMs = ms;
    this.tracker.configure({ periodMs: ms, graceMultiplier: this.o.graceMultiplier });
    this.tracker.extend(Date.now());
    this.log.info({ periodMs: ms, graceMs: this.tracker.graceMs }, 'heartbeat period changed');
  }

  /** Nodes whose state write is under way (for tests and diagnostics). */
  get stateWritesInFlight(): number {
    return this.writing.size;
  }

  /** Leadership gained: every node gets a fresh grace period; the liveness loop starts. */
  becameLeader(): void {
    this.leaderSince = Date.now();
    this.heard.clear();
    this.tracker.reset(this.o.liveness.nodeIds(), this.leaderSince);
    if (!this.timer) this.timer = setInterval(() => void this.check(), 250);
    this.log.info(
      { nodes: this.o.liveness.nodeIds().length, graceMs: this.tracker.graceMs },
      'dispatcher started: every node has a fresh grace period',
    );
  }

  /** Leadership lost: sessions are closed with the new leader's address so agents move there. */
  lostLeadership(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const hint = this.o.liveness.leaderAddr();
    for (const s of this.sessions.values()) {
      s.out.close();
      s.detach?.();
      this.endRelays(s.nodeId, 'the manager lost the leadership');
      s.stream.emit(
        'error',
        toServiceError(
          new TsswarmError(
            'NOT_LEADER',
            hint ? `this manager is no longer the leader; the leader is at ${hint}` : 'this manager is no longer the leader',
          ),
        ),
      );
    }
    this.sessions.clear();
    // Agents report again to the next leader when their session reopens.
    this.statuses?.clear();
  }

  forget(nodeId: string): void {
    this.tracker.forget(nodeId);
    const s = this.sessions.get(nodeId);
    if (s) {
      this.sessions.delete(nodeId);
      s.out.close();
      s.detach?.();
      this.endRelays(nodeId, 'the node was removed');
      s.stream.end();
    }
  }

  private async check(): Promise<void> {
    if (!this.o.liveness.isLeader()) return;
    const now = Date.now();
    for (const n of this.tracker.expired(now)) {
      if (this.sessions.has(n)) continue; // a live stream that is slow to beat is still judged by the tracker next time
      this.log.warn({ node: n }, 'node missed its heartbeats: DOWN');
      this.request(n, 'down', { message: 'heartbeat failure' });
    }
    // Two election timeouts after we took over, Raft's view of the managers is fresh.
    if (now - this.leaderSince < 2500) return;
    for (const n of this.o.liveness.silentManagers()) {
      // Only managers not heard from since we took over: one that had a session is judged by its heartbeats.
      if (this.sessions.has(n) || this.heard.has(n) || this.tracker.isDown(n)) continue;
      this.tracker.markDown(n);
      this.log.warn({ node: n }, 'manager unreachable over Raft and without a session: DOWN');
      this.request(n, 'down', { message: 'manager unreachable' });
    }
  }

  /** The Dispatcher.Session handler; `nodeId` is the caller's, from its certificate. */
  session(stream: grpc.ServerDuplexStream<AgentMessage, ManagerMessage>, nodeId: string): void {
    const liveness = this.o.liveness;
    if (!liveness.isLeader()) {
      const hint = liveness.leaderAddr();
      // grpc-js ends a server stream with a status when it emits 'error' (destroy() would leave the client hanging).
      stream.emit(
        'error',
        toServiceError(
          new TsswarmError(
            'NOT_LEADER',
            hint ? `this manager is not the leader; the leader is at ${hint}` : 'there is no leader at the moment',
          ),
        ),
      );
      return;
    }
    const s: Session = {
      id: randomBytes(8).toString('hex'),
      nodeId,
      stream,
      out: new Outbox(
        stream,
        { maxBytes: this.o.maxSessionQueueBytes ?? SESSION_QUEUE_BYTES, windowBytes: SESSION_WINDOW_BYTES },
        (bytes, cap) => this.stalled(s, bytes, cap),
      ),
    };
    const old = this.sessions.get(nodeId);
    if (old) {
      // The node reconnected: its old stream is dead or about to be.
      old.out.close();
      old.detach?.();
      this.endRelays(nodeId, 'the node reconnected');
      old.stream.end();
    }
    this.sessions.set(nodeId, s);
    const ca = (): { trustDigest: string; signingRootDigest: string } =>
      liveness.caDigests?.() ?? { trustDigest: '', signingRootDigest: '' };
    const ack = (): ManagerMessage =>
      ({
        heartbeatAck: {
          heartbeatPeriodMs: this.periodMs,
          managerAddrs: liveness.managerAddrs(),
          desiredRole: liveness.desiredRole(nodeId),
          managerNodeIds: liveness.managerNodeIds?.() ?? [],
          ...ca(),
        },
      }) as ManagerMessage;
    stream.on('data', (m: AgentMessage) => {
      if (m.hello) {
        const badAddr = nodeAddrError("hello.addr (the node's advertise address)", m.hello.addr) ?? boundHello(nodeId, m.hello, this.log);
        if (badAddr) {
          this.log.warn({ node: nodeId, err: badAddr }, 'session refused: the hello gives no usable address');
          stream.emit('error', toServiceError(badAddr));
          return;
        }
        this.tracker.beat(nodeId, Date.now());
        this.heard.add(nodeId);
        this.request(nodeId, 'ready', { message: '', addr: m.hello.addr, description: m.hello });
        this.post(s, {
          welcome: {
            sessionId: s.id,
            heartbeatPeriodMs: this.periodMs,
            managerAddrs: liveness.managerAddrs(),
            desiredRole: liveness.desiredRole(nodeId),
            managerNodeIds: liveness.managerNodeIds?.() ?? [],
            ...ca(),
          },
        } as ManagerMessage);
        if (this.feed && !s.detach) {
          // Networks first: a task's overlay is known before the task arrives to use it.
          const offNets = this.netFeed?.attach(nodeId, (n) => this.post(s, { networks: n } as ManagerMessage, n.reset));
          const offTasks = this.feed.attach(nodeId, (a) => this.post(s, { assignments: a } as ManagerMessage, a.full));
          s.detach = () => {
            offTasks();
            offNets?.();
          };
        }
      } else if (m.taskStatus) {
        this.statuses?.push(nodeId, boundStatusUpdates(nodeId, m.taskStatus.updates, this.log));
      } else if (m.relay) {
        const r = this.relays.get(m.relay.requestId);
        if (r && r.nodeId === nodeId) {
          if (m.relay.end) this.relays.delete(m.relay.requestId);
          r.fn(m.relay);
        }
      } else if (m.heartbeat) {
        this.heard.add(nodeId);
        if (this.tracker.beat(nodeId, Date.now())) this.request(nodeId, 'ready', { message: '' });
        this.post(s, ack());
      }
    });
    const done = (): void => {
      s.out.close();
      s.detach?.();
      s.detach = undefined;
      if (this.sessions.get(nodeId) === s) {
        this.sessions.delete(nodeId);
        this.endRelays(nodeId, "the node's session ended");
      }
    };
    stream.on('end', () => {
      done();
      stream.end();
    });
    stream.on('error', done);
    stream.on('cancelled', done);
  }

  /**
   * Sends through the session's bounded queue, in parts when too large for
   * one message. A full set raises the session's cap to twice its size: a
   * node must always be able to receive its whole set.
   */
  private post(s: Session, m: ManagerMessage, fullSet = false): void {
    if (s.out.isClosed) return;
    const parts = splitMessage(m, this.o.partBytes ?? PART_BYTES);
    if (fullSet) s.out.allow(2 * parts.reduce((n, p) => n + p.bytes, 0));
    for (const p of parts) s.out.send(p.message, p.bytes);
  }

  /** The node stopped reading and its queue passed the cap: drop the session (the agent reconnects and gets a fresh full set). */
  private stalled(s: Session, bytes: number, cap: number): void {
    this.stalledDisconnects++;
    this.log.warn(
      { node: s.nodeId, session: s.id, queuedBytes: bytes, capBytes: cap },
      'node stopped reading its session: disconnected, its queued messages dropped',
    );
    s.detach?.();
    s.detach = undefined;
    if (this.sessions.get(s.nodeId) === s) {
      this.sessions.delete(s.nodeId);
      this.endRelays(s.nodeId, 'the node stopped reading its session');
    }
    // A status would queue behind the unread data (and keep it in memory): reset the stream instead.
    if (!resetServerCall(s.stream)) {
      s.stream.emit(
        'error',
        toServiceError(
          new TsswarmError(
            'UNAVAILABLE',
            `the node read nothing while ${bytes} bytes were queued for it (cap ${cap}): session closed; reconnect`,
          ),
        ),
      );
    }
  }

  close(): void {
    this.closed = true;
    for (const t of this.retryTimers) {
      clearTimeout(t.timer);
      t.done();
    }
    this.retryTimers.clear();
    this.want.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const s of this.sessions.values()) {
      s.out.close();
      s.detach?.();
      this.endRelays(s.nodeId, 'the manager is shutting down');
      s.stream.end();
    }
    this.sessions.clear();
    this.feed?.close();
    this.netFeed?.close();
    this.statuses?.close();
  }
}

/** What a node-state write changes: the state, and what a hello said. */
export type NodeStateInfo = { message: string; addr?: string; description?: { description?: unknown; addr?: string } | null };

/**
 * Writes a node's state (READY or DOWN) to the store, read fresh on each try.
 * A write that conflicts with another (a heartbeat's, an update's) is tried
 * again; one that still conflicts, or fails otherwise, throws, so that the
 * dispatcher keeps the evidence and writes it later. Resolves without writing
 * when the store already says so, or when the node is gone.
 */
export async function writeNodeState(
  store: MemoryStore,
  id: string,
  state: 'ready' | 'down',
  info: NodeStateInfo,
  o: { isLeader: () => boolean; log?: pino.Logger; missingWaitMs?: number },
): Promise<void> {
  let conflict: unknown;
  for (let attempt = 0, missing = 0; attempt < 3; attempt++) {
    const n = store.view((tx) => tx.nodes.get(id));
    if (!n) {
      // The first manager's own agent can say hello before the bootstrap transaction that
      // creates its node has applied: wait for it (a READY lost here was never sent again).
      if (++missing > 100 || !o.isLeader()) return;
      attempt--;
      await new Promise((r) => setTimeout(r, o.missingWaitMs ?? 50));
      continue;
    }
    const want = state === 'ready' ? NodeState.READY : NodeState.DOWN;
    const desc = info.description?.description as Node['description'] | undefined;
    if (n.status?.state === want && !desc && (!info.addr || info.addr === n.status?.addr)) return;
    const next = Node.create({
      ...n,
      status: { ...n.status, state: want, message: info.message, addr: info.addr || n.status?.addr || '' },
    });
    if (desc) next.description = { ...desc, hostname: desc.hostname || n.description?.hostname || '' };
    try {
      await store.update((tx) => tx.nodes.update(next));
      o.log?.info({ node: id, name: n.spec?.name, state }, `node ${state === 'ready' ? 'READY' : 'DOWN'}`);
      return;
    } catch (e) {
      if ((e as TsswarmError).code !== 'CONFLICT') throw e;
      conflict = e;
    }
  }
  throw conflict;
}
