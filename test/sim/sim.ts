// A deterministic simulation of a Raft cluster: the real RaftNode driver and
// the real WAL over a simulated disk, a simulated network, virtual time, and
// one seeded random source for everything (delays, loss, duplication,
// reordering, one-way partitions, pauses, clock skew, crashes at any point of
// the I/O path with torn writes, membership changes, leader transfers, and
// Figure 8 schedules). Raft's safety properties are checked after every event,
// every promise a member sends (vote, ack) is checked against what it loads
// after a crash, the clients' history must be decided linearizable, and
// liveness (a commit, and every open client operation settled, within a bound
// once faults heal) is checked last.
import {
  ConfChange,
  ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  type ConfState,
  type Entry,
  type HardState,
  Message,
  MessageType,
  type Snapshot,
} from '../../proto/gen/raft.js';
import { RaftNode, type StateMachine } from '../../manager/raft/node.js';
import { StateType } from '../../manager/raft/raft.js';
import { DiskStorage } from '../../manager/raft/storage/index.js';
import { type Operation, checkLinearizable, kvModel, type KvInput, type KvOutput } from '../lib/linearizability.js';
import { Rng } from '../lib/rng.js';
import { SimDisk } from './simdisk.js';

export interface SimOptions {
  seed: number;
  /** Virtual milliseconds of faults and client load. */
  faultMs?: number;
  /** Virtual milliseconds allowed for recovery after faults heal (the liveness bound). */
  recoverMs?: number;
  clients?: number;
  keys?: number;
  verbose?: boolean;
  log?: (line: string) => void;
}

/** What a member promised over the wire in its latest term: it must still hold it after a crash. */
interface Promise_ {
  term: number;
  /** The candidate it granted its vote to in `term`. */
  vote?: string;
  /** The highest index it acknowledged (MsgAppResp) in `term`. */
  ack: number;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  error?: string;
  events: number;
  ops: number;
  committed: number;
  leaders: number;
  crashes: number;
  confChanges: number;
  transfers: number;
  elapsedMs: number;
}

const TICK_MS = 10;
const ELECTION_TICK = 10;

class SimFailure extends Error {}

interface Figure8 {
  step: 'await-successor' | 'await-return' | 'await-commit' | 'done';
  old: string;
  successor: string;
  term: number;
  applied: number;
  deadline: number;
}

class KvMachine implements StateMachine {
  data = new Map<string, string>();
  constructor(private readonly onApply: (data: Uint8Array, index: number) => void) {}
  apply(data: Uint8Array, index: number): void {
    this.onApply(data, index);
    const op = JSON.parse(new TextDecoder().decode(data)) as { k: string; v: string };
    this.data.set(op.k, op.v);
  }
  restore(data: Uint8Array): void {
    this.data = data.length === 0 ? new Map() : new Map(JSON.parse(new TextDecoder().decode(data)) as [string, string][]);
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify([...this.data]));
  }
}

interface SimNode {
  id: string;
  disk: SimDisk;
  raft?: RaftNode;
  kv?: KvMachine;
  /** Member of the cluster (not yet removed). */
  member: boolean;
  /** Highest commit index seen durable in a hard state (must never regress across restarts). */
  durableCommit: number;
  nextTickAt: number;
  tickSkew: number;
  lastApplied: number;
  booting: boolean;
  /** Seen in an applied configuration: only then can its absence mean it was removed. */
  joined: boolean;
  /** Bumped by every start and crash: messages and callbacks of a dead incarnation are ignored. */
  incarnation: number;
  promise: Promise_;
  /** Virtual time until which the member is paused (no ticks, nothing delivered). */
  pausedUntil: number;
  /** When a committed configuration first left it out (it keeps running until it learns or gives up). */
  removedAt: number;
}

interface Flight {
  at: number;
  seq: number;
  from: string;
  to: string;
  bytes: Uint8Array;
}

export class Simulation {
  readonly rng: Rng;
  now = 0;
  private nodes = new Map<string, SimNode>();
  private flights: Flight[] = [];
  private flightSeq = 0;
  private cut = new Set<string>(); // "a>b" pairs that cannot talk
  private dropP = 0;
  private dupP = 0;
  private history: Operation<KvInput, KvOutput>[] = [];
  /** index -> data (hex) of every entry applied anywhere: state machine safety. */
  private appliedAt = new Map<number, string>();
  /** index -> highest leader term seen when the entry was first applied (it was committed in a term ≤ that). */
  private appliedTerm = new Map<number, number>();
  private maxLeaderTerm = 0;
  /** index -> the configuration reached by applying the conf change there. */
  private configAt = new Map<number, string>();
  /** term -> leader id: election safety. */
  private leaderOf = new Map<number, string>();
  private events = 0;
  private crashes = 0;
  private confChanges = 0;
  private transfers = 0;
  private nextNodeNum = 4;
  private faulty = true;
  private opSeq = 0;
  private readonly o: Required<Omit<SimOptions, 'log' | 'verbose'>> & Pick<SimOptions, 'log' | 'verbose'>;

  /** Per-seed shape of the cluster and its flow control, drawn once. */
  private readonly founders: number;
  private readonly maxSizePerMsg: number;
  private readonly maxInflight: number;
  private readonly segmentBytes: number;
  /** Chance that a member crashes right as it sends a vote or an ack (the promise has left; is it durable?). */
  private readonly crashOnPromiseP: number;
  /** Chance that a leader is cut off right after its first commit of a new term (part of a Figure 8 schedule). */
  private figure8: Figure8 | null = null;

  constructor(o: SimOptions) {
    // `??`, not a spread: an option passed as undefined takes its default too.
    this.o = { ...o, faultMs: o.faultMs ?? 6_000, recoverMs: o.recoverMs ?? 5_000, clients: o.clients ?? 4, keys: o.keys ?? 4 };
    this.rng = new Rng(o.seed);
    this.founders = this.rng.chance(0.3) ? 5 : 3;
    // Small messages split a catch-up into several appends, so a quorum can hold an old-term prefix of it.
    this.maxSizePerMsg = this.rng.pick([128, 256, 512, 4096]);
    this.maxInflight = 1 + this.rng.int(16);
    // Small segments, so that compaction really releases WAL files (and a crash can land in it).
    this.segmentBytes = this.rng.pick([2048, 8192, 65536]);
    this.crashOnPromiseP = this.rng.pick([0, 0.002, 0.01]);
  }

  private log(s: string): void {
    if (this.o.verbose) (this.o.log ?? console.error)(`[${this.now.toString().padStart(6)}] ${s}`);
  }

  // -------------------------------------------------------------- nodes

  private async startNode(n: SimNode, bootstrap?: string[]): Promise<void> {
    const inc = ++n.incarnation;
    const { storage, state } = await DiskStorage.open(n.disk.session(), '/wal', { segmentBytes: this.segmentBytes, preallocBytes: 512 });
    if (n.incarnation !== inc) return; // crashed while loading
    if (state.hardState.commit < n.durableCommit) {
      throw new SimFailure(`${n.id}: durable commit regressed from ${n.durableCommit} to ${state.hardState.commit} after restart`);
    }
    this.checkPromises(n, state);
    const kv = new KvMachine((data, index) => {
      if (n.incarnation === inc) this.onApply(n, data, index);
    });
    n.lastApplied = 0;
    const nonce = BigInt(this.rng.int(0x7fffffff)) * 0x100000000n + BigInt(this.rng.int(0x7fffffff));
    let written = state.hardState.commit;
    const persistence = {
      persist: async (b: { hardState?: HardState | null; entries: Entry[]; snapshot?: Snapshot | null; mustSync: boolean }) => {
        await storage.persist(b);
        if (b.hardState) written = b.hardState.commit;
        // A synced write makes every earlier write durable too.
        if (b.mustSync) n.durableCommit = Math.max(n.durableCommit, written);
      },
      compact: (snap: Snapshot, releaseTo: number) => {
        // Crash in the middle of saving the snapshot or releasing the WAL, now and then.
        if (this.faulty && !n.disk.crashArmed && this.rng.chance(0.15)) this.armCrash(n, this.rng.int(8));
        return storage.compact(snap, releaseTo);
      },
    };
    const raft = await RaftNode.open({
      id: n.id,
      loaded: state,
      persistence,
      transport: { send: (msgs) => this.sendAll(n, inc, msgs) },
      stateMachine: kv,
      bootstrap,
      electionTick: ELECTION_TICK,
      heartbeatTick: 1,
      preVote: true,
      checkQuorum: true,
      maxSizePerMsg: this.maxSizePerMsg,
      maxInflightMsgs: this.maxInflight,
      snapshotEntries: 40 + this.rng.int(40),
      keepEntries: this.rng.int(20),
      rand: (k) => this.rng.int(k),
      nonce,
      schedule: (fn) => queueMicrotask(fn),
      onConfChange: (cs, _cc, index) => {
        if (n.incarnation === inc) this.onConfChange(n, cs, index);
      },
      onFatal: (e) => {
        if (n.incarnation === inc) this.failure ??= new SimFailure(`${n.id}: raft loop died: ${e.stack ?? e.message}`);
      },
    });
    if (n.incarnation !== inc) return;
    n.raft = raft;
    n.kv = kv;
  }

  /** A restarted member must hold what it promised before the crash: its term, its vote, the entries it acknowledged. */
  private checkPromises(n: SimNode, state: { hardState: HardState; snapshot: Snapshot | null; entries: Entry[] }): void {
    const p = n.promise;
    const hs = state.hardState;
    if (hs.term < p.term) throw new SimFailure(`durability: ${n.id} sent a message of term ${p.term} but restarted at term ${hs.term}`);
    if (hs.term > p.term) return;
    if (p.vote !== undefined && hs.vote !== p.vote) {
      throw new SimFailure(`durability: ${n.id} granted its vote in term ${p.term} to ${p.vote} but restarted with vote "${hs.vote}"`);
    }
    const last = state.entries.length > 0 ? state.entries[state.entries.length - 1]!.index : (state.snapshot?.metadata?.index ?? 0);
    if (last < p.ack)
      throw new SimFailure(
        `durability: ${n.id} acknowledged index ${p.ack} in term ${p.term} but restarted with its log ending at ${last}`,
      );
  }

  /** Every member that applies the conf change at an index must reach the same configuration. */
  private onConfChange(n: SimNode, cs: ConfState, index: number): void {
    // The founders' bootstrap entries are applied over a configuration the core already holds.
    if (index <= this.founders) return;
    const key = JSON.stringify([
      [...cs.voters].sort(),
      [...cs.learners].sort(),
      [...cs.votersOutgoing].sort(),
      [...cs.learnersNext].sort(),
      cs.autoLeave,
    ]);
    const prev = this.configAt.get(index);
    if (prev !== undefined && prev !== key) {
      this.failure ??= new SimFailure(
        `configuration safety: ${n.id} reached configuration ${key} at index ${index}, another member ${prev}`,
      );
    }
    this.configAt.set(index, key);
  }

  private armCrash(n: SimNode, ops: number): void {
    this.log(`arm crash of ${n.id} in ${ops} disk operations`);
    n.disk.armCrash(
      ops,
      () => this.rng.next(),
      () => this.crashed(n),
    );
  }

  private onApply(n: SimNode, data: Uint8Array, index: number): void {
    const hex = Buffer.from(data).toString('hex');
    const prev = this.appliedAt.get(index);
    if (prev !== undefined && prev !== hex) {
      throw new SimFailure(`state machine safety: ${n.id} applied a different entry at index ${index}`);
    }
    if (prev === undefined) this.appliedTerm.set(index, this.maxLeaderTerm);
    this.appliedAt.set(index, hex);
    if (index <= n.lastApplied) throw new SimFailure(`${n.id} applied index ${index} after ${n.lastApplied}`);
    n.lastApplied = index;
  }

  private newNode(id: string): SimNode {
    const n: SimNode = {
      id,
      disk: new SimDisk(),
      member: true,
      durableCommit: 0,
      nextTickAt: this.now + this.rng.int(TICK_MS),
      // Clock skew: a member's ticks run from 0.7x to 1.5x the others' pace while faults last, so
      // its election timeout can drift by up to an election timeout against theirs.
      tickSkew: this.rng.chance(0.5) ? this.rng.int(3) - 1 : this.rng.int(9) - 3,
      lastApplied: 0,
      booting: false,
      joined: false,
      incarnation: 0,
      promise: { term: 0, ack: 0 },
      pausedUntil: 0,
      removedAt: -1,
    };
    this.nodes.set(id, n);
    return n;
  }

  private crash(n: SimNode): void {
    if (!n.raft) return;
    n.disk.disarm();
    n.disk.crash(() => this.rng.next());
    this.crashed(n);
  }

  /** The member's process is gone (its disk crashed, maybe in the middle of a call). */
  private crashed(n: SimNode): void {
    this.log(`crash ${n.id}`);
    this.crashes++;
    n.incarnation++;
    n.raft = undefined;
    n.kv = undefined;
    n.pausedUntil = 0;
  }

  // -------------------------------------------------------------- network

  private sendAll(n: SimNode, inc: number, msgs: Message[]): void {
    for (const m of msgs) {
      if (n.incarnation !== inc) return; // a dead process sends nothing, even part-way through a batch
      this.notePromise(n, m);
      this.sendOne(n.id, m);
      if (
        this.faulty &&
        n.raft &&
        this.isPromise(m) &&
        this.rng.chance(m.type === MessageType.MSG_VOTE_RESP ? this.crashOnPromiseP * 20 : this.crashOnPromiseP)
      ) {
        // The promise has left: a crash now must not lose what it promised.
        this.log(`crash ${n.id} right after it sent ${MessageType[m.type]} (term ${m.term}, index ${m.index}) to ${m.to}`);
        this.crash(n);
        return;
      }
    }
  }

  private isPromise(m: Message): boolean {
    return (m.type === MessageType.MSG_VOTE_RESP || m.type === MessageType.MSG_APP_RESP) && !m.reject;
  }

  /** Records what a message promises is durable: its term always; a granted vote; an acknowledged index. */
  private notePromise(n: SimNode, m: Message): void {
    if (m.type !== MessageType.MSG_VOTE_RESP && m.type !== MessageType.MSG_APP_RESP) return;
    const p = n.promise;
    if (m.term > p.term) n.promise = { term: m.term, ack: 0 };
    if (m.term < n.promise.term || m.reject) return;
    if (m.type === MessageType.MSG_VOTE_RESP) n.promise.vote = m.to;
    else n.promise.ack = Math.max(n.promise.ack, m.index);
  }

  private sendOne(from: string, m: Message): void {
    const bytes = Message.encode(m);
    if (this.faulty && this.rng.chance(this.dropP)) return;
    const copies = this.faulty && this.rng.chance(this.dupP) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      // Delays of 1-20 ms reorder messages between the same pair as well.
      const delay = 1 + this.rng.int(this.faulty ? 20 : 5);
      this.flights.push({ at: this.now + delay, seq: this.flightSeq++, from, to: m.to, bytes });
    }
  }

  private deliver(f: Flight): void {
    const n = this.nodes.get(f.to);
    if (n?.raft && n.pausedUntil > this.now) {
      // A paused member reads its socket when it wakes up.
      this.flights.push({ ...f, at: n.pausedUntil + this.rng.int(3), seq: this.flightSeq++ });
      return;
    }
    const m = Message.decode(f.bytes);
    const sender = this.nodes.get(f.from);
    if (this.cut.has(`${f.from}>${f.to}`) || !n?.raft) {
      // Lost on the wire; the sender's transport notices an unreachable peer now and then.
      if (sender?.raft && this.rng.chance(0.3)) sender.raft.reportUnreachable(f.to);
      if (m.type === MessageType.MSG_SNAP && sender?.raft) sender.raft.reportSnapshot(f.to, false);
      return;
    }
    n.raft.step(m);
    if (m.type === MessageType.MSG_SNAP && sender?.raft) sender.raft.reportSnapshot(f.to, true);
  }

  // -------------------------------------------------------------- clients

  private clientBusy: boolean[] = [];

  /** Client operations whose promise from Raft has not settled yet (liveness: each must, once faults heal). */
  private open = new Set<{ desc: string; node: SimNode; inc: number; call: number }>();

  /** Starts one client operation, on a random member unless `on` is given; clients ≥ o.clients are one-shot. */
  private startOp(client: number, on?: SimNode, put?: boolean): void {
    // Clients use members that have joined (a committed configuration named them).
    const live = [...this.nodes.values()].filter((n) => n.raft && n.member && n.joined);
    if (live.length === 0) return;
    const node = on ?? this.rng.pick(live);
    const key = `k${this.rng.int(this.o.keys)}`;
    const isPut = put ?? this.rng.chance(0.6);
    const call = this.now;
    const timeout = call + 2000;
    this.clientBusy[client] = true;
    const raft = node.raft!;
    const kv = node.kv!;
    const pending = { desc: `${isPut ? 'put' : 'get'} ${key} by client ${client} on ${node.id}`, node, inc: node.incarnation, call };
    this.open.add(pending);
    const settled = (): void => void this.open.delete(pending);
    let done = false;
    // Ends the operation once: on its answer, its failure, or its timeout (after which a late answer
    // is ignored and a put's outcome stays unknown).
    const finish = (record?: () => void): void => {
      if (done) return;
      done = true;
      record?.();
      this.clientBusy[client] = false;
    };
    this.timers.push({ at: timeout, fn: () => finish() });
    if (isPut) {
      const value = `v${++this.opSeq}`;
      const op: Operation<KvInput, KvOutput> = {
        clientId: client,
        input: { op: 'put', key, value },
        call,
        output: { ok: true },
        ret: Infinity,
      };
      this.history.push(op);
      const p = raft.propose(new TextEncoder().encode(JSON.stringify({ k: key, v: value })));
      p.then(settled, settled);
      p.then(
        () => finish(() => (op.ret = this.now)),
        (e: Error & { code?: string }) =>
          // A dropped proposal was never appended: it did not happen. Any other failure (a stop)
          // leaves the outcome unknown, which the checker allows either way.
          finish(() => {
            if (e.code === 'PROPOSAL_DROPPED') this.history.splice(this.history.indexOf(op), 1);
          }),
      );
    } else {
      const p = raft.readBarrier();
      p.then(settled, settled);
      p.then(
        () =>
          finish(() => {
            const v = kv.data.get(key);
            this.history.push({ clientId: client, input: { op: 'get', key }, call, output: { value: v ?? null }, ret: this.now });
          }),
        () => finish(),
      );
    }
  }

  private timers: { at: number; fn: () => void }[] = [];

  // -------------------------------------------------------------- faults

  private injectFault(): void {
    if (this.figure8) return; // a Figure 8 schedule owns the network until it ends
    const ids = [...this.nodes.keys()].sort();
    const r = this.rng.int(130);
    if (r >= 100) {
      this.extraFault(r - 100);
    } else if (r < 15) {
      // Partition: a random group against the rest, possibly one-way.
      const a = ids.filter(() => this.rng.chance(0.4));
      const oneWay = this.rng.chance(0.2);
      for (const x of a) {
        for (const y of ids) {
          if (a.includes(y)) continue;
          this.cut.add(`${x}>${y}`);
          if (!oneWay) this.cut.add(`${y}>${x}`);
        }
      }
      this.log(`partition [${a.join(' ')}] | rest${oneWay ? ' (one-way)' : ''}`);
    } else if (r < 30) {
      this.cut.clear();
      this.log('heal partitions');
    } else if (r < 42) {
      const live = ids.map((id) => this.nodes.get(id)!).filter((n) => n.raft);
      if (live.length > 0) {
        const n = this.rng.pick(live);
        // Half the crashes land inside the member's next few disk operations rather than between them.
        if (this.rng.chance(0.5)) this.crash(n);
        else if (!n.disk.crashArmed) this.armCrash(n, this.rng.int(10));
      }
    } else if (r < 58) {
      const down = ids.map((id) => this.nodes.get(id)!).filter((n) => !n.raft && n.member && !n.booting);
      if (down.length > 0) this.restart(this.rng.pick(down));
    } else if (r < 66) {
      this.dropP = this.rng.chance(0.5) ? 0 : this.rng.next() * 0.2;
      this.dupP = this.rng.chance(0.5) ? 0 : this.rng.next() * 0.1;
      this.log(`network drop=${this.dropP.toFixed(2)} dup=${this.dupP.toFixed(2)}`);
    } else if (r < 78) {
      this.membershipChange();
    } else if (r < 86) {
      const leader = this.leader();
      if (leader) {
        const voters = leader.raft!.status().config.voters.filter((v) => v !== leader.id);
        if (voters.length > 0) {
          const to = this.rng.pick(voters);
          this.log(`transfer leadership ${leader.id} -> ${to}`);
          this.transfers++;
          leader.raft!.transferLeadership(to);
        }
      }
    }
  }

  /** The faults that reach Raft's hard paths: Figure 8 schedules, a leader cut off with a minority, a long pause. */
  private extraFault(r: number): void {
    const leader = this.leader();
    if (r < 8 && leader) {
      this.log(`figure 8: cut off leader ${leader.id} (term ${leader.raft!.status().term})`);
      this.isolate(leader.id);
      // Its clients still reach it: a tail of entries only it holds.
      for (let i = 2 + this.rng.int(10); i > 0; i--) this.startOp(this.o.clients + this.opSeq, leader, true);
      this.figure8 = {
        step: 'await-successor',
        old: leader.id,
        successor: '',
        term: leader.raft!.status().term,
        applied: 0,
        deadline: this.now + 2000,
      };
    } else if (r < 14 && leader) {
      // The leader keeps a minority (maybe nobody) and replicates to it alone for a while.
      const others = [...this.nodes.keys()].filter((id) => id !== leader.id);
      const keep = new Set(others.filter(() => this.rng.chance(0.3)).slice(0, Math.max(0, Math.floor((others.length + 1) / 2) - 1)));
      const pairs: string[] = [];
      for (const id of others) {
        if (keep.has(id)) continue;
        pairs.push(`${leader.id}>${id}`, `${id}>${leader.id}`);
      }
      for (const p of pairs) this.cut.add(p);
      const until = this.now + 100 + this.rng.int(700);
      this.log(`cut leader ${leader.id} off with [${[...keep].join(' ')}] until ${until}`);
      this.timers.push({ at: until, fn: () => pairs.forEach((p) => this.cut.delete(p)) });
    } else {
      const live = [...this.nodes.values()].filter((n) => n.raft && n.pausedUntil <= this.now);
      if (live.length === 0) return;
      const n = leader && this.rng.chance(0.7) ? leader : this.rng.pick(live);
      n.pausedUntil = this.now + 50 + this.rng.int(ELECTION_TICK * TICK_MS * 6);
      this.log(`pause ${n.id} until ${n.pausedUntil}`);
    }
  }

  /** Cuts every link to and from `id`. */
  private isolate(id: string): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  /** Restores every link to and from `id`, except those with a member in `except`. */
  private reconnect(id: string, except: string[] = []): void {
    for (const other of this.nodes.keys()) {
      if (other === id || except.includes(other)) continue;
      this.cut.delete(`${id}>${other}`);
      this.cut.delete(`${other}>${id}`);
    }
  }

  /**
   * Drives a Figure 8 schedule (Raft paper §5.4.2): the leader is cut off with entries only it
   * holds; its successor is cut off as soon as it is elected, before its own entry spreads; the old
   * leader returns, wins again and is cut off again right after its first commit; the successor
   * returns. A leader that commits an old term's entry by counting replicas then loses it.
   */
  private stepFigure8(): void {
    const f = this.figure8;
    if (!f) return;
    const end = (why: string): void => {
      this.log(`figure 8: ${why}`);
      if (f.successor) this.reconnect(f.successor, f.step === 'done' ? [f.old] : []);
      if (f.step !== 'done') this.reconnect(f.old);
      else this.timers.push({ at: this.now + 200 + this.rng.int(800), fn: () => this.reconnect(f.old) });
      this.figure8 = null;
    };
    if (this.now > f.deadline) return end(`gave up at step ${f.step}`);
    const old = this.nodes.get(f.old)!;
    const leaders = [...this.nodes.values()].filter((n) => n.raft?.isLeader && n.raft.status().term > f.term);
    if (f.step === 'await-successor') {
      const s = leaders.find((n) => n.id !== f.old);
      if (!s) return;
      this.log(`figure 8: cut off successor ${s.id} (term ${s.raft!.status().term}); ${f.old} returns`);
      f.successor = s.id;
      f.term = s.raft!.status().term;
      this.isolate(s.id);
      this.reconnect(f.old, [s.id]);
      f.step = 'await-return';
      f.deadline = this.now + 2000;
    } else if (f.step === 'await-return') {
      if (leaders.some((n) => n.id !== f.old)) return end('another member won instead');
      if (!old.raft?.isLeader || leaders.length === 0) return;
      f.applied = old.raft.appliedIndex;
      f.term = old.raft.status().term;
      f.step = 'await-commit';
      f.deadline = this.now + 1000;
    } else if (f.step === 'await-commit') {
      if (!old.raft?.isLeader) return end(`${f.old} lost leadership`);
      if (old.raft.appliedIndex <= f.applied) return;
      this.log(`figure 8: ${f.old} applied ${old.raft.appliedIndex} in term ${f.term}; cut it off, ${f.successor} returns`);
      this.isolate(f.old);
      f.step = 'done';
      end('done');
    }
  }

  private restart(n: SimNode): void {
    n.booting = true;
    this.log(`restart ${n.id}`);
    void this.startNode(n).then(
      () => {
        n.booting = false;
      },
      (e: Error) => {
        this.failure ??= e;
      },
    );
  }

  private failure: Error | undefined;

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.raft?.isLeader && (!best || n.raft.status().term > best.raft!.status().term)) best = n;
    }
    return best;
  }

  private membershipChange(): void {
    const leader = this.leader();
    if (!leader) return;
    const cs = leader.raft!.status().config;
    if (cs.votersOutgoing.length > 0) return;
    const members = [...cs.voters, ...cs.learners];
    const r = this.rng.int(4);
    let cc: ConfChange | undefined;
    let desc = '';
    if (r === 0 && members.length < 6) {
      const id = `n${this.nextNodeNum++}`;
      const n = this.newNode(id);
      n.booting = true;
      void this.startNode(n).then(() => {
        n.booting = false;
      });
      cc = ConfChange.create({ changes: [ConfChangeSingle.create({ type: ConfChangeType.CONF_ADD_LEARNER_NODE, nodeId: id })] });
      desc = `add learner ${id}`;
    } else if (r === 1 && cs.learners.length > 0) {
      const id = this.rng.pick(cs.learners);
      cc = ConfChange.create({ changes: [ConfChangeSingle.create({ type: ConfChangeType.CONF_ADD_NODE, nodeId: id })] });
      desc = `promote ${id}`;
    } else if (r === 2 && cs.voters.length > 3) {
      const id = this.rng.pick(cs.voters);
      cc = ConfChange.create({ changes: [ConfChangeSingle.create({ type: ConfChangeType.CONF_REMOVE_NODE, nodeId: id })] });
      desc = `remove ${id}`;
    } else if (r === 3 && cs.learners.length > 0 && cs.voters.length > 3) {
      // Swap a voter for a learner in one joint change.
      const add = this.rng.pick(cs.learners);
      const rm = this.rng.pick(cs.voters);
      cc = ConfChange.create({
        transition: this.rng.chance(0.5) ? ConfChangeTransition.TRANSITION_AUTO : ConfChangeTransition.TRANSITION_JOINT_IMPLICIT,
        changes: [
          ConfChangeSingle.create({ type: ConfChangeType.CONF_ADD_NODE, nodeId: add }),
          ConfChangeSingle.create({ type: ConfChangeType.CONF_REMOVE_NODE, nodeId: rm }),
        ],
      });
      desc = `joint: add ${add}, remove ${rm}`;
    }
    if (!cc) return;
    this.log(`conf change on ${leader.id}: ${desc}`);
    this.confChanges++;
    // A new member whose join fails stays idle (clients use joined members only); its change may still commit later.
    leader.raft!.proposeConfChange(cc).then(
      () => undefined,
      () => undefined,
    );
  }

  /**
   * A member whose removal is committed keeps running (and campaigning, if it can) until it learns
   * of its removal from its own log, as a removed manager does; then it is shut down, as SwarmKit
   * stops it. One that never learns (no leader replicates to it any more) is shut down after a while.
   */
  private retireRemoved(): void {
    const leader = this.leader();
    if (leader) {
      const cs = leader.raft!.status().config;
      const inConfig = new Set([...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext]);
      for (const n of this.nodes.values()) {
        if (inConfig.has(n.id)) n.joined = true;
        if (!n.member || n.booting || !n.joined) continue;
        if (!inConfig.has(n.id) && n.id !== leader.id) {
          // The leader's configuration is applied state: the removal is committed.
          n.member = false;
          n.removedAt = this.now;
          this.log(`${n.id} removed; it runs on until it learns`);
        }
      }
    }
    for (const n of this.nodes.values()) {
      if (n.member || !n.raft) continue;
      const own = n.raft.status().config;
      const knows = ![...own.voters, ...own.learners, ...own.votersOutgoing, ...own.learnersNext].includes(n.id);
      if (knows || this.now - n.removedAt > 3000 || !this.faulty) {
        this.log(`retire ${n.id}${knows ? '' : ' (it never learned of its removal)'}`);
        void n.raft.stop();
        n.raft = undefined;
        n.incarnation++;
      }
    }
  }

  // -------------------------------------------------------------- invariants

  private check(): void {
    const live = [...this.nodes.values()].filter((n) => n.raft);
    for (const n of live) {
      const r = n.raft!.rn.raft;
      if (r.state === StateType.Leader) {
        const prev = this.leaderOf.get(r.term);
        if (prev !== undefined && prev !== n.id) throw new SimFailure(`election safety: ${prev} and ${n.id} both leader in term ${r.term}`);
        this.leaderOf.set(r.term, n.id);
        this.maxLeaderTerm = Math.max(this.maxLeaderTerm, r.term);
        // Leader completeness: every entry applied anywhere is in this leader's log (unless compacted).
        const log = r.raftLog;
        const first = log.firstIndex();
        const last = log.lastIndex();
        for (const [idx, hex] of this.appliedAt) {
          // Only entries committed before this leader's term must be in its log (a stale leader of
          // an older term may lack what a newer one committed).
          if (idx < first || this.appliedTerm.get(idx)! >= r.term) continue;
          if (idx > last)
            throw new SimFailure(`leader completeness: leader ${n.id} (term ${r.term}) lacks committed index ${idx} (last ${last})`);
          const e = log.slice(idx, idx + 1, Number.MAX_SAFE_INTEGER)[0]!;
          const dataHex = Buffer.from(e.data).toString('hex');
          // The applied payload is the entry data without the driver's 12-byte proposal header.
          if (!dataHex.endsWith(hex) || dataHex.length !== hex.length + 24) {
            throw new SimFailure(`leader completeness: leader ${n.id} (term ${r.term}) has another entry at committed index ${idx}`);
          }
        }
      }
    }
    // Log matching: if two logs hold an entry with the same index and term, they are identical up to it.
    for (let i = 0; i < live.length; i++) {
      for (let j = i + 1; j < live.length; j++) this.checkLogMatching(live[i]!, live[j]!);
    }
  }

  private checkLogMatching(a: SimNode, b: SimNode): void {
    const la = a.raft!.rn.raft.raftLog;
    const lb = b.raft!.rn.raft.raftLog;
    const lo = Math.max(la.firstIndex(), lb.firstIndex());
    const hi = Math.min(la.lastIndex(), lb.lastIndex());
    if (hi < lo) return;
    const ea = la.slice(lo, hi + 1, Number.MAX_SAFE_INTEGER);
    const eb = lb.slice(lo, hi + 1, Number.MAX_SAFE_INTEGER);
    // Highest index where the terms agree; everything below must agree too.
    let k = hi - lo;
    while (k >= 0 && ea[k]!.term !== eb[k]!.term) k--;
    for (let x = k; x >= 0; x--) {
      const p = ea[x]!;
      const q = eb[x]!;
      if (p.term !== q.term || Buffer.compare(p.data, q.data) !== 0 || p.type !== q.type) {
        throw new SimFailure(`log matching: ${a.id} and ${b.id} agree at index ${lo + k} but differ at index ${lo + x}`);
      }
    }
  }

  // -------------------------------------------------------------- run

  async run(): Promise<SimResult> {
    const start = Date.now();
    let error: string | undefined;
    try {
      await this.runInner();
    } catch (e) {
      error = e instanceof SimFailure ? e.message : ((e as Error).stack ?? String(e));
    }
    const result: SimResult = {
      seed: this.o.seed,
      ok: error === undefined,
      error,
      events: this.events,
      ops: this.history.length,
      committed: this.appliedAt.size,
      leaders: this.leaderOf.size,
      crashes: this.crashes,
      confChanges: this.confChanges,
      transfers: this.transfers,
      elapsedMs: Date.now() - start,
    };
    await this.shutdown();
    return result;
  }

  private async shutdown(): Promise<void> {
    for (const n of this.nodes.values()) {
      const r = n.raft;
      n.raft = undefined;
      if (r) await Promise.race([r.stop(), settle()]);
    }
  }

  private async runInner(): Promise<void> {
    const founders = Array.from({ length: this.founders }, (_, i) => `n${i + 1}`);
    this.nextNodeNum = this.founders + 1;
    for (const id of founders) this.newNode(id).joined = true;
    for (const id of founders) await this.startNode(this.nodes.get(id)!, founders);
    this.clientBusy = new Array<boolean>(this.o.clients).fill(false);
    const nextOp = Array.from({ length: this.o.clients }, () => this.rng.int(50));
    let nextFault = 200 + this.rng.int(300);
    const faultEnd = this.o.faultMs;
    const end = faultEnd + this.o.recoverMs;
    let healedAt = -1;
    let committedAt = -1;
    let nextProbe = 0;
    while (this.now < end) {
      // Jump to the next thing that happens.
      let t = end;
      for (const n of this.nodes.values()) if (n.raft) t = Math.min(t, n.nextTickAt);
      for (const f of this.flights) t = Math.min(t, f.at);
      for (const x of this.timers) t = Math.min(t, x.at);
      if (this.now < faultEnd) {
        t = Math.min(t, nextFault, faultEnd);
        for (let c = 0; c < this.o.clients; c++) if (!this.clientBusy[c]) t = Math.min(t, Math.max(nextOp[c]!, this.now + 1));
      } else if (committedAt < 0) {
        t = Math.min(t, Math.max(nextProbe, this.now + 1));
      }
      this.now = Math.max(t, this.now + 1);
      if (this.failure) throw this.failure;
      if (healedAt < 0 && this.now >= faultEnd) {
        healedAt = this.now;
        this.heal();
      }
      for (const n of [...this.nodes.values()]) {
        if (n.raft && this.now >= n.nextTickAt) {
          n.nextTickAt = this.now + TICK_MS + (this.faulty ? n.tickSkew : 0);
          if (n.pausedUntil > this.now) n.nextTickAt = n.pausedUntil;
          else n.raft.tick();
        }
      }
      if (this.flights.length > 0) {
        const due = this.flights.filter((f) => f.at <= this.now);
        if (due.length > 0) {
          this.flights = this.flights.filter((f) => f.at > this.now);
          due.sort((x, y) => x.at - y.at || x.seq - y.seq);
          for (const f of due) this.deliver(f);
        }
      }
      if (this.timers.length > 0) {
        const due = this.timers.filter((x) => x.at <= this.now);
        if (due.length > 0) {
          this.timers = this.timers.filter((x) => x.at > this.now);
          for (const x of due) x.fn();
        }
      }
      if (this.now < faultEnd) {
        for (let c = 0; c < this.o.clients; c++) {
          if (!this.clientBusy[c] && this.now >= nextOp[c]!) {
            this.startOp(c);
            nextOp[c] = this.now + 1 + this.rng.int(40);
          }
        }
        if (this.now >= nextFault) {
          this.injectFault();
          nextFault = this.now + 100 + this.rng.int(500);
        }
      } else if (committedAt < 0 && this.now >= nextProbe) {
        // Liveness probe: propose on whoever leads now; retry every 300 ms until one commits.
        nextProbe = this.now + 300;
        const l = this.leader();
        if (l) {
          l.raft!.propose(new TextEncoder().encode(JSON.stringify({ k: 'liveness', v: String(this.now) }))).then(
            () => {
              if (committedAt < 0) {
                committedAt = this.now;
                this.log(`liveness: a proposal committed ${committedAt - healedAt} ms after healing`);
              }
            },
            () => undefined,
          );
        }
      }
      await settle();
      this.events++;
      if (this.failure) throw this.failure;
      this.retireRemoved();
      this.check();
      this.stepFigure8();
      if (committedAt >= 0 && this.now - committedAt > 200 && this.openOps().length === 0) break;
    }
    if (committedAt < 0) {
      this.dumpState();
      throw new SimFailure(
        `liveness: no proposal committed within ${this.o.recoverMs} ms (${this.o.recoverMs / TICK_MS} ticks) after faults healed`,
      );
    }
    const stuck = this.openOps();
    if (stuck.length > 0) {
      this.dumpState();
      throw new SimFailure(
        `liveness: ${stuck.length} client operation(s) never settled within ${this.o.recoverMs} ms after faults healed, first: ${stuck[0]!.desc} (called at ${stuck[0]!.call})`,
      );
    }
    const res = checkLinearizable(
      kvModel,
      this.history.filter((h) => !(h.input.op === 'get' && h.ret === Infinity)),
    );
    if (res.ok === false) throw new SimFailure(`linearizability: ${res.explanation}`);
    // An undecided verdict proves nothing: it fails the seed (the histories are kept small enough to decide).
    if (res.ok === 'unknown') throw new SimFailure(`linearizability: undecided (${res.reason})`);
  }

  /** Logs every member's Raft state (with --verbose), to explain a liveness failure. */
  private dumpState(): void {
    for (const n of this.nodes.values()) {
      const st = n.raft?.status();
      if (n.raft?.isLeader)
        for (const [id, pr] of n.raft.rn.raft.trk.progress)
          this.log(`  progress ${id}: ${pr.describe()} first=${n.raft.rn.raft.raftLog.firstIndex()}`);
      if (n.raft)
        this.log(
          `  ${n.id} inReady=${n.raft.rn.inProgress} hasReady=${n.raft.rn.hasReady()} unstable=${n.raft.rn.raft.raftLog.unstableEntries().length} snap=${n.raft.rn.raft.raftLog.hasPendingSnapshot()}`,
        );
      this.log(
        `${n.id}: member=${n.member} ${st ? `${st.raftState} term=${st.term} lead=${st.lead} commit=${st.commit} applied=${st.applied} voters=${st.config.voters} out=${st.config.votersOutgoing} learners=${st.config.learners}` : 'down'}`,
      );
    }
    for (const o of this.openOps()) this.log(`  open: ${o.desc} (called at ${o.call})`);
  }

  /** Client operations still waiting on a member that is alive (a crashed member's callers see the connection drop). */
  private openOps(): { desc: string; call: number }[] {
    return [...this.open].filter((o) => o.node.raft && o.node.incarnation === o.inc);
  }

  private heal(): void {
    this.log('heal everything: no partitions, no loss, restart crashed members');
    this.faulty = false;
    this.figure8 = null;
    this.cut.clear();
    for (const n of this.nodes.values()) {
      n.disk.disarm();
      n.pausedUntil = 0;
    }
    this.dropP = 0;
    this.dupP = 0;
    for (const n of this.nodes.values()) if (!n.raft && n.member && !n.booting) this.restart(n);
  }
}

/** Lets every queued microtask (driver loops, simulated disk) run to completion. */
function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

export async function runSeed(o: SimOptions): Promise<SimResult> {
  return new Simulation(o).run();
}
