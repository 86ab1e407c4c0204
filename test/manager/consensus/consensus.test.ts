// The manager's Raft member on real WALs and a real gRPC server on loopback:
// a one-manager cluster grows by learners that are promoted once caught up,
// every manager learns every other one's address from the log, and a
// restarted manager rejoins from its own disk.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { Consensus, type MemberRecord, NotLeaderError } from '../../../manager/consensus/index.js';
import type { StateMachine } from '../../../manager/raft/node.js';
import { until as waitUntil } from '../../lib/wait.js';

class ListSM implements StateMachine {
  items: string[] = [];
  apply(d: Uint8Array): void {
    this.items.push(new TextDecoder().decode(d));
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.items));
  }
  restore(d: Uint8Array): void {
    this.items = d.length ? (JSON.parse(new TextDecoder().decode(d)) as string[]) : [];
  }
}

const until = (what: string, f: () => boolean, ms = 30_000): Promise<unknown> => waitUntil(what, f, { timeoutMs: ms, everyMs: 25 });

/**
 * The leader, once exactly one member leads and every member names its
 * address; undefined before. Leadership may move on a loaded machine, so
 * tests wait for agreement instead of reading one moment.
 */
function agreedLeader(ms: M[]): M | undefined {
  const leaders = ms.filter((m) => m.c.isLeader);
  if (leaders.length !== 1) return undefined;
  const lead = leaders[0]!;
  return ms.every((m) => m.c.leaderAddr === lead.rec.addr) ? lead : undefined;
}

async function waitForLeader(ms: M[]): Promise<M> {
  await until('one leader whose address every member names', () => agreedLeader(ms) !== undefined);
  return agreedLeader(ms)!;
}

const root = mkdtempSync(join(tmpdir(), 'tss-test-consensus-'));
const log = pino({ level: 'silent' });

interface M {
  c: Consensus;
  sm: ListSM;
  server: grpc.Server;
  rec: MemberRecord;
}

async function start(rec: MemberRecord, opts: { bootstrap?: boolean; members?: MemberRecord[] }): Promise<M> {
  const server = new grpc.Server();
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync(rec.addr, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  const addr = `127.0.0.1:${port}`;
  const r = { ...rec, addr };
  const sm = new ListSM();
  const c = await Consensus.open({
    dir: join(root, r.nodeId),
    raftId: r.raftId,
    nodeId: r.nodeId,
    advertiseAddr: addr,
    clusterId: 'c1',
    server,
    credentials: { server: grpc.ServerCredentials.createInsecure(), client: grpc.credentials.createInsecure() },
    store: sm,
    logger: log,
    // 10 ticks of 100 ms to an election: a 20 ms tick let a loaded machine's
    // event-loop stalls pass for a dead leader and move leadership mid-test.
    tickMs: 100,
    ...opts,
  });
  return { c, sm, server, rec: r };
}

async function stop(m: M): Promise<void> {
  await m.c.close();
  m.server.forceShutdown();
}

describe('manager consensus', () => {
  const all: M[] = [];
  afterAll(async () => {
    for (const m of all) await stop(m).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  it('grows from one manager to three: learners are promoted once caught up, and writes reach all', async () => {
    const m1 = await start({ raftId: 'r1', nodeId: 'n1', addr: '127.0.0.1:0' }, { bootstrap: true });
    all.push(m1);
    await until('m1 leads', () => m1.c.isLeader);
    for (let i = 0; i < 20; i++) await m1.c.proposeStore(new TextEncoder().encode(`a${i}`));
    for (const [raftId, nodeId] of [
      ['r2', 'n2'],
      ['r3', 'n3'],
    ] as const) {
      const m = await start({ raftId, nodeId, addr: '127.0.0.1:0' }, { members: m1.c.memberList() });
      all.push(m);
      await m1.c.addLearner(m.rec);
      await until(`${raftId} promoted`, () => m1.c.status().config.voters.includes(raftId));
    }
    await m1.c.proposeStore(new TextEncoder().encode('last'));
    for (const m of all) await until(`${m.rec.raftId} applied everything`, () => m.sm.items.length === 21);
    expect(all.map((m) => m.sm.items)).toEqual([m1.sm.items, m1.sm.items, m1.sm.items]);
    for (const m of all)
      expect(
        m.c
          .memberList()
          .map((x) => x.raftId)
          .sort(),
      ).toEqual(['r1', 'r2', 'r3']);
    // Everyone knows where the leader is (learned from the log: m1's address for
    // m2 and m3, theirs for m1 should leadership have moved).
    const lead = await waitForLeader(all);
    for (const m of all) expect(m.c.leaderAddr).toBe(lead.rec.addr);
  });

  it('a follower refuses a store write with NotLeaderError naming the leader address', async () => {
    const leader = await waitForLeader(all);
    const follower = all.find((m) => m !== leader)!;
    await expect(follower.c.proposeStore(new Uint8Array([1]))).rejects.toBeInstanceOf(NotLeaderError);
    await expect(follower.c.proposeStore(new Uint8Array([1]))).rejects.toThrow(leader.rec.addr);
  });

  it('after the leader stops, the others elect a new one; the old leader restarts from disk and catches up', async () => {
    const old = await waitForLeader(all);
    await stop(old);
    const rest = all.filter((m) => m !== old);
    await until('new leader', () => rest.some((m) => m.c.isLeader));
    const lead = rest.find((m) => m.c.isLeader)!;
    await lead.c.proposeStore(new TextEncoder().encode('after-failover'));
    const again = await start({ ...old.rec, addr: old.rec.addr }, {});
    all[all.indexOf(old)] = again;
    await until('restarted member caught up', () => again.sm.items.includes('after-failover'));
    expect(again.sm.items.length).toBe(22);
    // The restarted member learns where the leader is (whoever leads by then).
    const now = await waitForLeader(all);
    expect(again.c.leaderAddr).toBe(now.rec.addr);
  });

  it('moveLeader hands leadership to the member named and resolves with its term once it leads; a member that no longer leads, or a non-member, is refused', async () => {
    const lead = await waitForLeader(all);
    const to = all.find((m) => m !== lead)!;
    await until('the leader hears from every member', () =>
      all.every((m) => m === lead || lead.c.status().progress[m.rec.raftId]?.recentActive),
    );
    const before = lead.c.status().term;
    const term = await lead.c.moveLeader(to.rec.raftId, 10_000);
    expect(term).toBeGreaterThan(before);
    expect(to.c.isLeader).toBe(true);
    expect(lead.c.isLeader).toBe(false);
    // The new leader takes writes; the old one refuses them and, asked to move leadership, says who leads.
    await expect(to.c.proposeStore(new TextEncoder().encode('after-transfer'))).resolves.toBeGreaterThan(0);
    await expect(lead.c.moveLeader(lead.rec.raftId, 1_000)).rejects.toBeInstanceOf(NotLeaderError);
    await expect(to.c.moveLeader('nobody', 1_000)).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: expect.stringMatching(/raft member nobody: it is not in the configuration/),
    });
    // Asking the leader to hand leadership to itself is a no-op.
    await expect(to.c.moveLeader(to.rec.raftId, 1_000)).resolves.toBe(to.c.status().term);
  });

  it('a removed member leaves the configuration of every remaining member', async () => {
    const lead = await waitForLeader(all);
    const victim = all.find((m) => m !== lead)!;
    await lead.c.removeMember(victim.rec.raftId);
    for (const m of all.filter((x) => x !== victim))
      await until('conf without victim', () => !m.c.status().config.voters.includes(victim.rec.raftId));
    expect(lead.c.memberList().map((x) => x.raftId)).not.toContain(victim.rec.raftId);
  });
});
