// The agent's one session with the managers: a bidirectional Dispatcher
// stream to the leader, a heartbeat every period, and failover. When the
// stream fails the agent tries the next manager it knows (a follower points
// it at the leader), backing off up to 2 s; it never gives up on its own.
import * as grpc from '@grpc/grpc-js';
import type pino from 'pino';
import { grpcChannelOptions } from '../lib/grpc.js';
import { PartAssembler } from '../lib/parts.js';
import { type AgentMessage, DispatcherService, type ManagerMessage } from '../proto/gen/control.js';
import type { NodeDescription } from '../proto/gen/objects.js';

export interface SessionOptions {
  nodeId: string;
  addr: string;
  description: NodeDescription;
  credentials: () => grpc.ChannelCredentials;
  managers: () => string[];
  logger: pino.Logger;
  /**
   * Called with what the managers tell us: manager list, desired role, heartbeat period, and the
   * CA as nodes should hold it (digests of the trust bundle and of the root that signs; '' unknown).
   */
  onWelcome?: (w: {
    managerAddrs: string[];
    managerNodeIds: string[];
    desiredRole: string;
    heartbeatPeriodMs: number;
    trustDigest: string;
    signingRootDigest: string;
  }) => void;
  onAssignments?: (m: ManagerMessage) => void;
  /** The overlay networks this node's tasks use (agent/network-agent.ts). */
  onNetworks?: (m: ManagerMessage) => void;
  /** A session opened (after the welcome): queued reports can go. */
  onOpen?: () => void;
  /** The managers relay a log or exec request for one of our tasks. */
  onRelay?: (r: NonNullable<ManagerMessage['relay']>) => void;
  /** Timers for the retry backoff, so tests can step it; default: the process's timers. */
  timers?: { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(handle: unknown): void };
}

const LEADER_HINT = /leader is at (\S+?)(?:[;,\s]|$)/;

export class AgentSession {
  private stopped = false;
  private stream: grpc.ClientDuplexStream<AgentMessage, ManagerMessage> | null = null;
  private client: grpc.Client | null = null;
  private beat: NodeJS.Timeout | null = null;
  private retry: unknown = null;
  private periodMs = 5000;
  private next = 0;
  private hint = '';
  private backoffMs = 100;
  /** host:port of the manager the session is open with, '' when none. */
  connectedTo = '';
  private readonly Ctor = grpc.makeGenericClientConstructor(DispatcherService, 'Dispatcher');
  /** The period the heartbeat timer is armed with: the managers' (welcome, then each ack), 0 before the first session. */
  armedPeriodMs = 0;
  private readonly timers: NonNullable<SessionOptions['timers']>;

  constructor(private readonly o: SessionOptions) {
    this.timers = o.timers ?? { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };
  }

  start(): void {
    this.connect();
  }

  private pick(): string {
    if (this.hint) {
      const h = this.hint;
      this.hint = '';
      return h;
    }
    const ms = this.o.managers();
    if (ms.length === 0) return '';
    const a = ms[this.next % ms.length]!;
    this.next++;
    return a;
  }

  private connect(): void {
    if (this.stopped) return;
    const addr = this.pick();
    if (!addr) {
      this.scheduleRetry('no manager address known');
      return;
    }
    this.o.logger.debug({ manager: addr }, 'opening a session');
    const client = new this.Ctor(
      addr,
      this.o.credentials(),
      grpcChannelOptions({
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
        'grpc.keepalive_time_ms': 2000,
        'grpc.keepalive_timeout_ms': 2000,
      }),
    );
    this.client = client;
    const stream = (client as unknown as { session(): grpc.ClientDuplexStream<AgentMessage, ManagerMessage> }).session();
    this.stream = stream;
    let welcomed = false;
    // Parts of a large assignments or networks message are applied only once all have come (lib/parts.ts).
    const parts = new PartAssembler();
    stream.on('data', (raw: ManagerMessage) => {
      // A stream given up on (failed, or replaced by restart()) may still deliver what it had
      // buffered; its orders are older than the full set the next session starts with.
      if (this.stream !== stream) return;
      const m = parts.push(raw);
      if (!m) return;
      if (m.welcome) {
        welcomed = true;
        this.connectedTo = addr;
        this.backoffMs = 100;
        this.periodMs = m.welcome.heartbeatPeriodMs || this.periodMs;
        this.o.logger.info({ manager: addr, session: m.welcome.sessionId }, 'session with the managers open');
        this.o.onWelcome?.({
          managerAddrs: m.welcome.managerAddrs,
          managerNodeIds: m.welcome.managerNodeIds ?? [],
          desiredRole: m.welcome.desiredRole,
          heartbeatPeriodMs: this.periodMs,
          trustDigest: m.welcome.trustDigest ?? '',
          signingRootDigest: m.welcome.signingRootDigest ?? '',
        });
        this.armHeartbeat();
        this.o.onOpen?.();
      } else if (m.heartbeatAck) {
        if (m.heartbeatAck.heartbeatPeriodMs && m.heartbeatAck.heartbeatPeriodMs !== this.periodMs) {
          this.periodMs = m.heartbeatAck.heartbeatPeriodMs;
          this.armHeartbeat();
        }
        this.o.onWelcome?.({
          managerAddrs: m.heartbeatAck.managerAddrs,
          managerNodeIds: m.heartbeatAck.managerNodeIds ?? [],
          desiredRole: m.heartbeatAck.desiredRole,
          heartbeatPeriodMs: this.periodMs,
          trustDigest: m.heartbeatAck.trustDigest ?? '',
          signingRootDigest: m.heartbeatAck.signingRootDigest ?? '',
        });
      } else if (m.networks) {
        this.o.onNetworks?.(m);
      } else if (m.assignments) {
        this.o.onAssignments?.(m);
      } else if (m.relay) {
        this.o.onRelay?.(m.relay);
      }
    });
    const fail = (why: string, code?: number): void => {
      if (this.stream !== stream) return;
      this.stream = null;
      this.connectedTo = '';
      if (this.beat) clearInterval(this.beat);
      this.beat = null;
      client.close();
      const hint = LEADER_HINT.exec(why)?.[1];
      if (hint && hint !== addr) {
        this.hint = hint;
        this.backoffMs = 0;
      }
      if (welcomed) this.o.logger.warn({ manager: addr, why }, 'session with the managers lost; trying another manager');
      else if (code === grpc.status.PERMISSION_DENIED || code === grpc.status.UNAUTHENTICATED)
        this.o.logger.warn({ manager: addr, why }, 'the managers refused this node');
      else this.o.logger.debug({ manager: addr, why }, 'session refused');
      this.scheduleRetry(why);
    };
    stream.on('error', (e: grpc.ServiceError) => fail(e.details || e.message, e.code));
    stream.on('end', () => fail('the manager ended the session'));
    stream.write({ hello: { description: this.o.description, addr: this.o.addr } } as AgentMessage);
  }

  private armHeartbeat(): void {
    if (this.beat) clearInterval(this.beat);
    this.beat = setInterval(() => this.stream?.write({ heartbeat: {} } as AgentMessage), this.periodMs);
    this.armedPeriodMs = this.periodMs;
  }

  private scheduleRetry(why: string): void {
    if (this.stopped) return;
    const d = this.backoffMs;
    this.backoffMs = Math.min(2000, Math.max(100, this.backoffMs * 2));
    this.retry = this.timers.setTimeout(() => this.connect(), d);
    this.o.logger.trace({ why, inMs: d }, 'session retry scheduled');
  }

  /** Sends a message on the open session (e.g. task status); false when no session is open. */
  send(m: AgentMessage): boolean {
    if (!this.stream || !this.connectedTo) return false;
    this.stream.write(m);
    return true;
  }

  /** Re-opens the session (e.g. after a new certificate). */
  restart(): void {
    const s = this.stream;
    this.stream = null;
    if (this.beat) clearInterval(this.beat);
    this.beat = null;
    s?.cancel();
    this.client?.close();
    if (this.retry) this.timers.clearTimeout(this.retry);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.connectedTo = '';
    if (this.beat) clearInterval(this.beat);
    if (this.retry) this.timers.clearTimeout(this.retry);
    this.stream?.cancel();
    this.stream = null;
    this.client?.close();
  }
}
