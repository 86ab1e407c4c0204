// The Swarm half of the failover benchmark: a 3-manager Docker Swarm 20.10,
// one dockerd per network namespace (bench/peers/swarm-peer.sh, a copy of the
// recipe in ../shared/peers), leader's dockerd SIGKILLed, then the same two
// figures as tsswarm's, polled through a surviving manager. Every docker call
// is bounded by `timeout`, because Swarm's commands hang while there is no
// leader. The cluster is always torn down.
//
// The write probe and the node-ls probe run as two independent loops, so a
// hung attempt of one never delays the other. A write attempt starts every
// POLL_MS even while earlier ones still hang (at most ATTEMPT_S / POLL_MS in
// flight), so the first successful write is seen within about POLL_MS of the
// moment Swarm can take it, not up to ATTEMPT_S later.
//
// Run alone: `npx tsx bench/failover-swarm.ts` (prints the JSON lines on
// stdout and the table on stderr).
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Report } from './report.js';
import {
  type Out,
  dk as dkB,
  firstLine as firstLineB,
  nodeDockerdPid,
  parseNodes,
  swarmDown,
  swarmPreflight,
  swarmUp,
  teardownOnSignal,
} from './swarm-peer.js';

const CAP_S = 120;
const POLL_MS = 200;
const ATTEMPT_S = 2;
const MAX_INFLIGHT = Math.ceil((ATTEMPT_S * 1000) / POLL_MS);

const log = (l: string): void => void process.stderr.write(`swarm: ${l}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const dk = (k: number, args: string[], timeoutS = ATTEMPT_S): Promise<Out> => dkB(k, args, timeoutS);
const firstLine = (r: Out): string => firstLineB(r, ATTEMPT_S);
const down = (): void => swarmDown(log);

export async function swarmFailover(report: Report): Promise<void> {
  const why = swarmPreflight(log);
  if (why) {
    report.error('swarm', 'm3', why);
    return;
  }
  const untrap = teardownOnSignal(log);
  const started = performance.now();
  try {
    log('starting 3 dockerds (all managers) in namespaces tssdk-h1..3');
    swarmUp(3, 3);

    // All three managers in the Raft group (Leader + 2 Reachable) before the kill.
    let leader = 0;
    const readyBy = performance.now() + 60_000;
    for (;;) {
      const r = await dk(1, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'], 10);
      const nodes = parseNodes(r.out);
      const ok = nodes.length === 3 && nodes.every((n) => /^Ready (Leader|Reachable)$/.test(n.rest));
      leader = nodes.find((n) => /Leader/.test(n.rest))?.k ?? 0;
      if (ok && leader) break;
      if (performance.now() > readyBy)
        throw new Error(`the 3 managers were not Ready/Reachable within 60 s: ${r.out.trim().replace(/\n/g, ' | ') || firstLine(r)}`);
      await sleep(POLL_MS);
    }
    const survivor = [1, 2, 3].find((k) => k !== leader)!;
    const pid = nodeDockerdPid(leader);
    log(
      `cluster ready after ${((performance.now() - started) / 1000).toFixed(1)} s; leader tssdk-h${leader}, polling through tssdk-h${survivor}`,
    );

    log(`SIGKILL of the leader's dockerd (tssdk-h${leader}, pid ${pid})`);
    process.kill(pid, 'SIGKILL');
    const t0 = performance.now();
    const deadline = t0 + CAP_S * 1000;
    const since = (): number => (performance.now() - t0) / 1000;
    const st: { write?: number; down?: number; newLeader?: number; attempts: number; lastWriteErr: string; lastLsErr: string } = {
      attempts: 0,
      lastWriteErr: '',
      lastLsErr: '',
    };

    const writeLoop = async (): Promise<void> => {
      const inflight = new Set<Promise<void>>();
      while (st.write === undefined && performance.now() < deadline) {
        if (inflight.size < MAX_INFLIGHT) {
          const n = st.attempts++;
          const p: Promise<void> = dk(survivor, ['node', 'update', '--label-add', `tssbench=${n}`, `tssdk-h${survivor}`]).then((r) => {
            inflight.delete(p);
            if (r.code === 0) {
              if (st.write === undefined) {
                st.write = since();
                log(`a write (node update, attempt ${n}) succeeded after ${st.write.toFixed(2)} s`);
              }
            } else st.lastWriteErr = firstLine(r);
          });
          inflight.add(p);
        }
        await sleep(POLL_MS);
      }
      await Promise.all(inflight); // each one ends within ATTEMPT_S + 1
    };

    const downLoop = async (): Promise<void> => {
      while (st.down === undefined && performance.now() < deadline) {
        const r = await dk(survivor, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}']);
        if (r.code === 0) {
          st.lastLsErr = '';
          const nodes = parseNodes(r.out);
          const nl = nodes.find((x) => x.k !== leader && /Leader/.test(x.rest));
          if (st.newLeader === undefined && nl) {
            st.newLeader = since();
            log(`node ls shows a new leader (tssdk-h${nl.k}) after ${st.newLeader.toFixed(2)} s`);
          }
          if (nodes.some((x) => x.k === leader && /^Down\b/.test(x.rest))) {
            st.down = since();
            log(`node ls shows the old leader tssdk-h${leader} Down after ${st.down.toFixed(2)} s`);
          }
        } else st.lastLsErr = firstLine(r);
        if (st.down === undefined) await sleep(POLL_MS);
      }
    };

    const progress = setInterval(() => {
      log(
        `t=${since().toFixed(0)} s: write ${st.write === undefined ? `not yet (${st.attempts} attempts; last: ${st.lastWriteErr || '-'})` : `ok at ${st.write.toFixed(2)} s`}, ` +
          `old leader Down ${st.down === undefined ? `not yet${st.lastLsErr ? ` (node ls: ${st.lastLsErr})` : ''}` : `at ${st.down.toFixed(2)} s`}`,
      );
    }, 5000);
    try {
      await Promise.all([writeLoop(), downLoop()]);
    } finally {
      clearInterval(progress);
    }

    if (st.write !== undefined) report.add('swarm', 'm3', 'write_recovery_s', st.write, 's');
    else report.error('swarm', 'm3', `no write succeeded within ${CAP_S} s of the leader's SIGKILL (last: ${st.lastWriteErr})`);
    if (st.down !== undefined) report.add('swarm', 'm3', 'leader_down_seen_s', st.down, 's');
    else report.error('swarm', 'm3', `old leader not shown Down within ${CAP_S} s of its SIGKILL`);
  } catch (e) {
    report.error('swarm', 'm3', (e as Error).message.split('\n')[0]!);
  } finally {
    log('tearing down');
    down();
    untrap();
    log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
}

// `npx tsx bench/failover-swarm.ts`: the Swarm side alone.
const self = fileURLToPath(import.meta.url);
const invoked = process.argv[1];
const isMain =
  invoked !== undefined &&
  (() => {
    try {
      return realpathSync(invoked) === realpathSync(self);
    } catch {
      return false;
    }
  })();
if (isMain) {
  const report = new Report('failover');
  process.stderr.write("failover (swarm only): 3 managers, SIGKILL of the leader's dockerd\n");
  await swarmFailover(report);
  report.table();
}
