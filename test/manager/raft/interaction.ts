// A scripted environment for the Raft core, in the spirit of etcd-io/raft's
// interaction tests: real RawNodes over MemoryStorage, a shared list of
// in-flight messages, and a transcript of every Ready, message and log line.
// Scenario files (testdata/*.txt) hold commands and their golden output.
import {
  ConfChange,
  ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  ConfState,
  type Entry,
  EntryType,
  type HardState,
  Message,
  Snapshot,
  SnapshotMetadata,
} from '../../../proto/gen/raft.js';
import { msgType } from '../../../manager/raft/raft.js';
import { MemoryStorage, RawNode, type RaftLogger, type Ready, snapIndex } from '../../../manager/raft/index.js';

export interface Command {
  name: string;
  args: string[];
  kv: Map<string, string>;
  /** Lines after the command line and before `----`. */
  body: string[];
}

interface EnvNode {
  id: string;
  storage: MemoryStorage;
  rn: RawNode;
  opts: NodeOpts;
  applied: string[];
}

interface NodeOpts {
  preVote: boolean;
  checkQuorum: boolean;
  readOnly: 'safe' | 'lease-based';
  maxInflight: number;
  maxSizePerMsg: number;
  maxUncommitted: number;
}

const td = new TextDecoder();

export function fmtData(e: Entry): string {
  if (e.type === EntryType.ENTRY_CONF_CHANGE) {
    const cc = ConfChange.decode(e.data);
    if (cc.changes.length === 0) return '';
    const t = { [ConfChangeType.CONF_ADD_NODE]: 'v', [ConfChangeType.CONF_ADD_LEARNER_NODE]: 'l', [ConfChangeType.CONF_REMOVE_NODE]: 'r' };
    return cc.changes.map((c) => `${t[c.type]}${c.nodeId}`).join(' ');
  }
  const s = td.decode(e.data);
  return /^[\x20-\x7e]*$/.test(s) ? JSON.stringify(s) : Buffer.from(e.data).toString('hex');
}

export function fmtEntry(e: Entry): string {
  const t = e.type === EntryType.ENTRY_CONF_CHANGE ? 'EntryConfChangeV2' : 'EntryNormal';
  const d = fmtData(e);
  return `${e.term}/${e.index} ${t}${d ? ' ' + d : ''}`;
}

const msgName = msgType;

export function fmtMsg(m: Message): string {
  let s = `${m.from}->${m.to} ${msgName(m.type)} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.entries.length > 0) s += ` Entries:[${m.entries.map(fmtEntry).join(', ')}]`;
  if (m.snapshot && snapIndex(m.snapshot) > 0) {
    const md = m.snapshot.metadata!;
    s += ` Snapshot: Index:${md.index} Term:${md.term} ConfState:${fmtConfState(md.confState ?? ConfState.create())}`;
  }
  if (m.context.length > 0) s += ` Context:${JSON.stringify(td.decode(m.context))}`;
  return s;
}

export function fmtConfState(cs: ConfState): string {
  let s = `Voters:[${cs.voters.join(' ')}]`;
  if (cs.votersOutgoing.length > 0) s += ` VotersOutgoing:[${cs.votersOutgoing.join(' ')}]`;
  s += ` Learners:[${cs.learners.join(' ')}]`;
  if (cs.learnersNext.length > 0) s += ` LearnersNext:[${cs.learnersNext.join(' ')}]`;
  if (cs.autoLeave) s += ' AutoLeave:true';
  return s;
}

function fmtHardState(hs: HardState): string {
  return `HardState Term:${hs.term} Vote:${hs.vote || '0'} Commit:${hs.commit}`;
}

export function fmtReady(rd: Ready): string[] {
  const out: string[] = [];
  if (rd.softState) out.push(`Lead:${rd.softState.lead || '0'} State:${rd.softState.raftState}`);
  if (rd.hardState) out.push(fmtHardState(rd.hardState));
  if (rd.readStates.length > 0)
    out.push('ReadStates:', ...rd.readStates.map((r) => `Index:${r.index} RequestCtx:${JSON.stringify(td.decode(r.requestCtx))}`));
  if (rd.entries.length > 0) out.push('Entries:', ...rd.entries.map(fmtEntry));
  if (rd.snapshot) {
    const md = rd.snapshot.metadata!;
    out.push(`Snapshot Index:${md.index} Term:${md.term} ConfState:${fmtConfState(md.confState ?? ConfState.create())}`);
  }
  if (rd.committedEntries.length > 0) out.push('CommittedEntries:', ...rd.committedEntries.map(fmtEntry));
  if (rd.messages.length > 0) out.push('Messages:', ...rd.messages.map(fmtMsg));
  if (rd.messagesAfterPersist.length > 0) out.push('OnSync:', ...rd.messagesAfterPersist.map(fmtMsg));
  return out;
}

function parseList(v: string | undefined): string[] {
  if (!v) return [];
  return v.replace(/[()]/g, '').split(/[ ,]+/).filter(Boolean);
}

function parseBool(v: string | undefined, dflt: boolean): boolean {
  return v === undefined ? dflt : v === 'true';
}

export class InteractionEnv {
  nodes: EnvNode[] = [];
  messages: Message[] = [];
  isolated = new Set<string>();
  private out: string[] = [];
  private logLevel: 'none' | 'info' | 'debug' = 'info';

  private logger(_id: string): RaftLogger {
    return {
      debug: (m) => {
        if (this.logLevel === 'debug') this.out.push(`DEBUG ${m}`);
      },
      info: (m) => {
        if (this.logLevel !== 'none') this.out.push(`INFO ${m}`);
      },
      warn: (m) => {
        if (this.logLevel !== 'none') this.out.push(`WARN ${m}`);
      },
    };
  }

  node(id: string): EnvNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private makeRawNode(id: string, storage: MemoryStorage, opts: NodeOpts, applied?: number): RawNode {
    return new RawNode({
      id,
      electionTick: 3,
      heartbeatTick: 1,
      storage,
      applied,
      preVote: opts.preVote,
      checkQuorum: opts.checkQuorum,
      readOnlyOption: opts.readOnly,
      maxInflightMsgs: opts.maxInflight,
      maxSizePerMsg: opts.maxSizePerMsg,
      maxUncommittedEntriesSize: opts.maxUncommitted,
      rand: () => 0,
      logger: this.logger(id),
    });
  }

  run(cmd: Command): string {
    this.out = [];
    try {
      this.dispatch(cmd);
    } catch (e) {
      this.out.push(`error: ${(e as Error).message}`);
    }
    return this.out.join('\n').replace(/\n+$/, '') || 'ok';
  }

  private ids(cmd: Command): string[] {
    const ids = cmd.args.filter((a) => !a.includes('='));
    return ids.length > 0 ? ids : this.nodes.map((n) => n.id);
  }

  private dispatch(cmd: Command): void {
    switch (cmd.name) {
      case 'add-nodes':
        return this.addNodes(cmd);
      case 'log-level':
        this.logLevel = cmd.args[0] as 'none' | 'info' | 'debug';
        return;
      case 'campaign':
        return this.node(cmd.args[0]!).rn.campaign();
      case 'tick-heartbeat':
        for (const id of this.ids(cmd)) for (let i = 0; i < this.node(id).rn.raft.heartbeatTimeout; i++) this.node(id).rn.tick();
        return;
      case 'tick-election':
        for (const id of this.ids(cmd)) {
          const r = this.node(id).rn.raft;
          // Enough ticks to pass the (randomized) election timeout from zero.
          for (let i = 0; i < r.randomizedElectionTimeout; i++) this.node(id).rn.tick();
        }
        return;
      case 'tick': {
        const n = Number(cmd.kv.get('n') ?? '1');
        for (const id of this.ids(cmd)) for (let i = 0; i < n; i++) this.node(id).rn.tick();
        return;
      }
      case 'set-randomized-election-timeout':
        this.node(cmd.args[0]!).rn.raft.randomizedElectionTimeout = Number(cmd.kv.get('timeout'));
        return;
      case 'propose':
        this.node(cmd.args[0]!).rn.propose(new TextEncoder().encode(cmd.args[1] ?? ''));
        return;
      case 'propose-conf-change':
        return this.proposeConfChange(cmd);
      case 'read-index':
        this.node(cmd.args[0]!).rn.readIndex(new TextEncoder().encode(cmd.args[1] ?? ''));
        return;
      case 'transfer-leadership':
        this.node(cmd.kv.get('from')!).rn.transferLeadership(cmd.kv.get('to')!);
        return;
      case 'report-unreachable':
        this.node(cmd.args[0]!).rn.reportUnreachable(cmd.args[1]!);
        return;
      case 'report-snapshot':
        this.node(cmd.args[0]!).rn.reportSnapshot(cmd.args[1]!, parseBool(cmd.kv.get('ok'), true));
        return;
      case 'process-ready':
        for (const id of this.ids(cmd)) this.processReady(id);
        return;
      case 'deliver-msgs':
        for (const id of this.ids(cmd)) this.deliver(id, cmd.kv.get('drop') === 'true', cmd.kv.get('type'));
        return;
      case 'stabilize':
        return this.stabilize(this.ids(cmd));
      case 'isolate':
        this.isolated.add(cmd.args[0]!);
        return;
      case 'heal':
        this.isolated.clear();
        return;
      case 'compact':
        return this.compact(cmd.args[0]!, Number(cmd.args[1]));
      case 'restart':
        return this.restart(cmd.args[0]!);
      case 'status':
        return this.status(cmd.args[0]!);
      case 'raft-log':
        return this.raftLog(cmd.args[0]!);
      case 'raft-state':
        for (const n of this.nodes) {
          const st = n.rn.status();
          this.out.push(
            `${n.id}: ${st.raftState} (${n.rn.raft.isLearner ? 'Learner' : n.rn.raft.trk.config.voters[0].has(n.id) || n.rn.raft.trk.config.voters[1].has(n.id) ? 'Voter' : 'Non-Voter'}) Term:${st.term} Lead:${st.lead || '0'}`,
          );
        }
        return;
      case 'applied':
        for (const id of this.ids(cmd)) this.out.push(`${id}: ${this.node(id).applied.join(' ')}`);
        return;
      default:
        throw new Error(`unknown command ${cmd.name}`);
    }
  }

  private addNodes(cmd: Command): void {
    const n = Number(cmd.args[0]);
    const voters = parseList(cmd.kv.get('voters'));
    const learners = parseList(cmd.kv.get('learners'));
    const index = Number(cmd.kv.get('index') ?? '0');
    const opts: NodeOpts = {
      preVote: parseBool(cmd.kv.get('prevote'), false),
      checkQuorum: parseBool(cmd.kv.get('checkquorum'), false),
      readOnly: (cmd.kv.get('read-only') as 'safe' | 'lease-based' | undefined) ?? 'safe',
      maxInflight: Number(cmd.kv.get('max-inflight') ?? '256'),
      maxSizePerMsg: Number(cmd.kv.get('max-size') ?? String(1 << 20)),
      maxUncommitted: Number(cmd.kv.get('max-uncommitted') ?? '0'),
    };
    for (let i = 0; i < n; i++) {
      const id = String(this.nodes.length + 1);
      const cs = ConfState.create({ voters, learners });
      const storage = new MemoryStorage(index > 0 ? undefined : cs);
      if (index > 0) {
        // Start from a snapshot at `index` (term 1) holding the configuration, as etcd's tests do.
        storage.applySnapshot(Snapshot.create({ metadata: SnapshotMetadata.create({ index, term: 1, confState: cs }) }));
      }
      const rn = this.makeRawNode(id, storage, opts, index > 0 ? index : undefined);
      this.nodes.push({ id, storage, rn, opts, applied: [] });
    }
  }

  private proposeConfChange(cmd: Command): void {
    const id = cmd.args[0]!;
    const tr = cmd.kv.get('transition') ?? 'auto';
    const transition = {
      auto: ConfChangeTransition.TRANSITION_AUTO,
      implicit: ConfChangeTransition.TRANSITION_JOINT_IMPLICIT,
      explicit: ConfChangeTransition.TRANSITION_JOINT_EXPLICIT,
    }[tr];
    if (transition === undefined) throw new Error(`bad transition ${tr}`);
    const changes: ConfChangeSingle[] = [];
    for (const tok of cmd.body.join(' ').split(/\s+/).filter(Boolean)) {
      const t = { v: ConfChangeType.CONF_ADD_NODE, l: ConfChangeType.CONF_ADD_LEARNER_NODE, r: ConfChangeType.CONF_REMOVE_NODE }[tok[0]!];
      if (t === undefined) throw new Error(`bad conf change ${tok}`);
      changes.push(ConfChangeSingle.create({ type: t, nodeId: tok.slice(1) }));
    }
    this.node(id).rn.proposeConfChange(ConfChange.create({ transition, changes }));
  }

  processReady(id: string): void {
    const n = this.node(id);
    if (!n.rn.hasReady()) return;
    const rd = n.rn.ready();
    this.out.push(`> ${id} handling Ready`);
    const mark = this.out.length;
    // Persist: snapshot, entries, hard state (what the driver does with one fsync).
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    for (const m of rd.messages) this.messages.push(m);
    for (const m of rd.messagesAfterPersist) this.messages.push(m);
    const body = fmtReady(rd);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ENTRY_CONF_CHANGE) {
        const cs = n.rn.applyConfChange(ConfChange.decode(e.data));
        void cs;
      } else if (e.data.length > 0) {
        n.applied.push(td.decode(e.data));
      }
    }
    const logs = this.out.splice(mark);
    this.out.push(...body.map((l) => `  ${l}`));
    for (const l of logs) this.out.push(l);
    n.rn.advance();
  }

  deliver(id: string, drop: boolean, type?: string): number {
    const keep: Message[] = [];
    const take: Message[] = [];
    for (const m of this.messages) {
      if (m.to === id && (!type || msgName(m.type) === type)) take.push(m);
      else keep.push(m);
    }
    this.messages = keep;
    for (const m of take) {
      if (drop || this.isolated.has(m.to) || this.isolated.has(m.from)) {
        this.out.push(`dropped: ${fmtMsg(m)}`);
        continue;
      }
      this.out.push(fmtMsg(m));
      try {
        // Round-trip through the wire format, as the transport does.
        this.node(id).rn.step(Message.decode(Message.encode(m)));
      } catch (e) {
        this.out.push(`  error: ${(e as Error).message}`);
      }
    }
    return take.length;
  }

  private stabilize(ids: string[]): void {
    for (;;) {
      let done = true;
      for (const id of ids) {
        if (this.node(id).rn.hasReady()) {
          done = false;
          this.processReady(id);
        }
      }
      for (const id of ids) {
        if (this.messages.some((m) => m.to === id)) {
          done = false;
          this.out.push(`> ${id} receiving messages`);
          const mark = this.out.length;
          this.deliver(id, false);
          for (let i = mark; i < this.out.length; i++) this.out[i] = `  ${this.out[i]}`;
        }
      }
      if (done) return;
    }
  }

  private compact(id: string, index: number): void {
    const n = this.node(id);
    const cs = n.rn.raft.trk.confState();
    n.storage.createSnapshot(index, cs, new TextEncoder().encode(`snap@${index}`));
    n.storage.compact(index);
    this.raftLog(id);
  }

  private restart(id: string): void {
    const n = this.node(id);
    // The durable state is what was persisted: storage (entries, hard state, snapshot).
    const applied = snapIndex(n.storage.snapshot());
    n.rn = this.makeRawNode(id, n.storage, n.opts, applied > 0 ? applied : undefined);
    n.applied = [];
  }

  private status(id: string): void {
    const st = this.node(id).rn.status();
    for (const pid of Object.keys(st.progress).sort()) {
      this.out.push(`${pid}: ${this.node(id).rn.raft.trk.progress.get(pid)!.describe()}`);
    }
    if (Object.keys(st.progress).length === 0)
      this.out.push(`${st.raftState} term=${st.term} lead=${st.lead || '0'} commit=${st.commit} applied=${st.applied}`);
  }

  private raftLog(id: string): void {
    const n = this.node(id);
    const log = n.rn.raft.raftLog;
    const ents = log.allEntries();
    if (ents.length === 0) this.out.push(`log is empty: first index=${log.firstIndex()}, last index=${log.lastIndex()}`);
    for (const e of ents) this.out.push(fmtEntry(e));
  }
}

// ---------------------------------------------------------------- scenario files
// A file is a sequence of blocks: optional `#` comment lines, a command line,
// optional body lines, `----`, then the expected output up to a blank line
// (output never contains blank lines).

export interface Block {
  comments: string[];
  cmdLine: string;
  cmd: Command;
  expected: string;
  line: number;
}

export function parseScenario(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let i = 0;
  let comments: string[] = [];
  while (i < lines.length) {
    const l = lines[i]!;
    if (l.trim() === '') {
      i++;
      continue;
    }
    if (l.startsWith('#')) {
      comments.push(l);
      i++;
      continue;
    }
    const start = i;
    const toks = l.trim().split(/\s+/);
    const args = toks.slice(1);
    const kv = new Map<string, string>();
    for (const t of args) {
      const eq = t.indexOf('=');
      if (eq > 0) kv.set(t.slice(0, eq), t.slice(eq + 1));
    }
    i++;
    const body: string[] = [];
    while (i < lines.length && lines[i] !== '----') body.push(lines[i++]!);
    if (i >= lines.length) throw new Error(`line ${start + 1}: command without ---- separator`);
    i++;
    const exp: string[] = [];
    while (i < lines.length && lines[i] !== '') exp.push(lines[i++]!);
    blocks.push({ comments, cmdLine: l, cmd: { name: toks[0]!, args, kv, body }, expected: exp.join('\n'), line: start + 1 });
    comments = [];
  }
  return blocks;
}

export function renderScenario(blocks: Block[], outputs: string[]): string {
  return blocks.map((b, k) => [...b.comments, b.cmdLine, ...b.cmd.body, '----', outputs[k]!].join('\n')).join('\n\n') + '\n';
}
