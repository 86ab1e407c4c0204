// The Raft benchmark: a 3-member tsswarm raftkv cluster (real gRPC transport
// on loopback, WAL with fsync) against a 3-member etcd 3.4, measured the same
// way in the same run: puts of 256-byte values from a Node gRPC client at
// concurrency 1, 16 and 128, to the leader. tsswarm's figures use its
// pipelined Write stream (etcd's API has only unary Put); tsswarm's unary Put
// is measured too and printed as unary_* metrics. Also the WAL's fsyncs per
// committed entry at concurrency 128 (group commit).
//
// BENCH_ENCRYPTION=on|off|both: tsswarm's WAL and snapshots sealed with a data key as a manager's
// are (on, the default), in plaintext (off), or both in one run, printed as `tsswarm` and
// `tsswarm-plain`, with the cost target (c128 throughput ≥ 0.9×, c1 p50 ≤ 1.1× of plaintext).
// BENCH_ROUNDS=N (with both): N rounds, plain and sealed alternating (their order swapped each
// round, a fresh cluster each time), each figure the median of its N values: on 2 cores the
// spread between two runs of the same setting is larger than the cost measured.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster, freePort } from '../examples/raftkv/cluster.js';
import { Report, percentile } from './report.js';

const SECS = Number(process.env.BENCH_SECS ?? 8);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,16,128').split(',').map(Number);
const VALUE = new Uint8Array(256).fill(120);
/** `BENCH_SYSTEMS=tsswarm` runs one side only (profiling); the default runs both. */
const SYSTEMS = (process.env.BENCH_SYSTEMS ?? 'tsswarm,etcd').split(',');
const ENCRYPTION = process.env.BENCH_ENCRYPTION ?? 'on';
if (!['on', 'off', 'both'].includes(ENCRYPTION)) throw new Error(`BENCH_ENCRYPTION must be on, off or both (got "${ENCRYPTION}")`);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
if (!(Number.isInteger(ROUNDS) && ROUNDS >= 1))
  throw new Error(`BENCH_ROUNDS must be a whole number ≥ 1 (got "${process.env.BENCH_ROUNDS}")`);

/** Where a run's figures go: the report, or the collector of the rounds. */
interface Sink {
  add(system: string, c: string, metric: string, value: number, unit: string): void;
}

/** Figures of several rounds, reported as the median of each (the values of every round printed on stderr). */
class Rounds implements Sink {
  private readonly seen = new Map<string, { system: string; c: string; metric: string; unit: string; values: number[] }>();
  add(system: string, c: string, metric: string, value: number, unit: string): void {
    const k = `${system}\0${c}\0${metric}`;
    const e = this.seen.get(k) ?? { system, c, metric, unit, values: [] };
    e.values.push(value);
    this.seen.set(k, e);
  }
  reportMedians(report: Report): void {
    for (const e of this.seen.values()) {
      const sorted = [...e.values].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
      process.stderr.write(
        `${e.system} ${e.c} ${e.metric}: ${e.values.map((v) => (Math.round(v * 100) / 100).toString()).join(' / ')} → median ${Math.round(median * 100) / 100}\n`,
      );
      report.add(e.system, e.c, e.metric, median, e.unit);
    }
  }
}

interface Result {
  writesPerS: number;
  p50: number;
  p99: number;
  writes: number;
  errors: number;
}

async function drive(conc: number, secs: number, put: (key: string) => Promise<unknown>): Promise<Result> {
  const lat: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + secs * 1000;
  const worker = async (w: number): Promise<void> => {
    let i = 0;
    while (performance.now() < end) {
      const t = performance.now();
      try {
        await put(`k/${w}/${i++ % 1000}`);
        lat.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: conc }, (_, w) => worker(w)));
  const elapsed = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return { writesPerS: lat.length / elapsed, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), writes: lat.length, errors };
}

async function benchTsswarm(report: Sink, system = 'tsswarm', encrypt = true): Promise<void> {
  // The members are child processes: they read it from the environment they inherit.
  process.env.RAFTKV_ENCRYPTION = encrypt ? '1' : '0';
  process.stderr.write(`${system}: WAL and snapshots ${encrypt ? 'encrypted (AES-256-GCM)' : 'in plaintext'}\n`);
  const cluster = new LocalCluster(3, { prefix: 'tss-bench-raft-' });
  try {
    await cluster.start();
    const leader = await cluster.leader();
    const c = leader.client;
    await drive(8, 1, (k) => c.put(k, VALUE)); // warm-up: JIT, connections
    await drive(8, 1, (k) => c.write(k, VALUE));
    for (const conc of CONCURRENCY) {
      const before = await c.status();
      const r = await drive(conc, SECS, (k) => c.write(k, VALUE));
      const after = await c.status();
      report.add(system, `c${conc}`, 'writes_per_s', r.writesPerS, '1/s');
      report.add(system, `c${conc}`, 'p50_ms', r.p50, 'ms');
      report.add(system, `c${conc}`, 'p99_ms', r.p99, 'ms');
      if (r.errors > 0) process.stderr.write(`${system} c${conc}: ${r.errors} failed writes\n`);
      if (conc === 128) {
        const entries = after.commit - before.commit;
        report.add(system, 'c128', 'fsyncs_per_entry', (after.fsyncs - before.fsyncs) / Math.max(1, entries), 'fsyncs/entry');
        process.stderr.write(
          `${system} c128: leader batched ${after.proposals - before.proposals} proposals into ${after.proposeBatches - before.proposeBatches} MsgProps\n`,
        );
      }
    }
    // The same writes through unary Put, the shape of etcd's API, for comparison.
    for (const conc of CONCURRENCY.filter((x) => x === 1 || x === 128)) {
      const r = await drive(conc, SECS, (k) => c.put(k, VALUE));
      report.add(system, `c${conc}`, 'unary_writes_per_s', r.writesPerS, '1/s');
      report.add(system, `c${conc}`, 'unary_p50_ms', r.p50, 'ms');
    }
  } finally {
    await cluster.close();
  }
}

function haveEtcd(): boolean {
  try {
    execFileSync('etcd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function benchEtcd(report: Report): Promise<void> {
  if (!haveEtcd()) {
    try {
      execFileSync('apt-get', ['install', '-y', 'etcd-server'], {
        stdio: 'ignore',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    } catch {
      // reported below
    }
  }
  if (!haveEtcd()) {
    for (const conc of CONCURRENCY) report.error('etcd', `c${conc}`, 'etcd not installed and apt-get install etcd-server failed');
    return;
  }
  const { Etcd3 } = await import('etcd3');
  const dir = mkdtempSync(join(tmpdir(), 'tss-bench-etcd-'));
  const procs: ChildProcess[] = [];
  const ports: number[] = [];
  for (let i = 0; i < 6; i++) ports.push(await freePort());
  const peerUrl = (i: number): string => `http://127.0.0.1:${ports[2 * i + 1]}`;
  const clientUrl = (i: number): string => `http://127.0.0.1:${ports[2 * i]}`;
  const initial = [0, 1, 2].map((i) => `e${i}=${peerUrl(i)}`).join(',');
  try {
    for (const i of [0, 1, 2]) {
      procs.push(
        spawn(
          'etcd',
          [
            '--name',
            `e${i}`,
            '--data-dir',
            join(dir, `e${i}`),
            '--listen-peer-urls',
            peerUrl(i),
            '--initial-advertise-peer-urls',
            peerUrl(i),
            '--listen-client-urls',
            clientUrl(i),
            '--advertise-client-urls',
            clientUrl(i),
            '--initial-cluster',
            initial,
            '--initial-cluster-state',
            'new',
            '--log-level',
            'error',
          ],
          { stdio: 'ignore' },
        ),
      );
    }
    // Find the leader, to send every put there as the tsswarm client does.
    let leaderUrl = '';
    const end = Date.now() + 20_000;
    while (!leaderUrl && Date.now() < end) {
      for (const i of [0, 1, 2]) {
        const c = new Etcd3({ hosts: clientUrl(i) });
        try {
          const st = await c.maintenance.status();
          if (st.leader === st.header.member_id) leaderUrl = clientUrl(i);
        } catch {
          // not up yet
        } finally {
          c.close();
        }
        if (leaderUrl) break;
      }
      if (!leaderUrl) await new Promise((r) => setTimeout(r, 200));
    }
    if (!leaderUrl) {
      for (const conc of CONCURRENCY) report.error('etcd', `c${conc}`, 'etcd cluster elected no leader within 20 s');
      return;
    }
    const client = new Etcd3({ hosts: leaderUrl });
    const value = Buffer.from(VALUE);
    await drive(8, 1, (k) => client.put(k).value(value).exec());
    for (const conc of CONCURRENCY) {
      const r = await drive(conc, SECS, (k) => client.put(k).value(value).exec());
      report.add('etcd', `c${conc}`, 'writes_per_s', r.writesPerS, '1/s');
      report.add('etcd', `c${conc}`, 'p50_ms', r.p50, 'ms');
      report.add('etcd', `c${conc}`, 'p99_ms', r.p99, 'ms');
      if (r.errors > 0) process.stderr.write(`etcd c${conc}: ${r.errors} failed writes\n`);
    }
    client.close();
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function main(): Promise<void> {
  const report = new Report('raft');
  process.stderr.write(
    `raft: 3 members on loopback, 256-byte puts to the leader, ${SECS} s per case, concurrency ${CONCURRENCY.join('/')}\n`,
  );
  if (SYSTEMS.includes('tsswarm')) {
    const sink: Sink = ROUNDS > 1 ? new Rounds() : report;
    for (let round = 0; round < ROUNDS; round++) {
      if (ROUNDS > 1) process.stderr.write(`round ${round + 1} of ${ROUNDS}\n`);
      const plain = async (): Promise<void> => {
        if (ENCRYPTION !== 'on') await benchTsswarm(sink, ENCRYPTION === 'both' ? 'tsswarm-plain' : 'tsswarm', false);
      };
      const sealed = async (): Promise<void> => {
        if (ENCRYPTION !== 'off') await benchTsswarm(sink, 'tsswarm', true);
      };
      // The order swaps every round, so neither setting always runs on a warmer (or more loaded) machine.
      if (round % 2 === 0) {
        await plain();
        await sealed();
      } else {
        await sealed();
        await plain();
      }
    }
    if (sink instanceof Rounds) sink.reportMedians(report);
  }
  if (SYSTEMS.includes('etcd')) await benchEtcd(report);
  report.table();
  const get = (s: string, c: string, m: string): number | undefined =>
    report.figures.find((f) => f.system === s && f.case === c && f.metric === m)?.value;
  const t128 = get('tsswarm', 'c128', 'writes_per_s');
  const e128 = get('etcd', 'c128', 'writes_per_s');
  const t1 = get('tsswarm', 'c1', 'p50_ms');
  const e1 = get('etcd', 'c1', 'p50_ms');
  if (t128 && e128)
    process.stderr.write(`target: c128 throughput ≥ 1.5× etcd: ${(t128 / e128).toFixed(2)}× ${t128 >= 1.5 * e128 ? 'MET' : 'NOT MET'}\n`);
  if (t1 && e1) process.stderr.write(`target: c1 p50 ≤ etcd: ${t1} ms vs ${e1} ms ${t1 <= e1 ? 'MET' : 'NOT MET'}\n`);
  const p128 = get('tsswarm-plain', 'c128', 'writes_per_s');
  const p1 = get('tsswarm-plain', 'c1', 'p50_ms');
  if (t128 && p128) {
    const r = t128 / p128;
    process.stderr.write(
      `target: encrypted c128 throughput ≥ 0.9× plaintext: ${t128.toFixed(0)} vs ${p128.toFixed(0)} writes/s, ${r.toFixed(3)}× ${r >= 0.9 ? 'MET' : 'NOT MET'}\n`,
    );
  }
  if (t1 && p1) {
    const r = t1 / p1;
    process.stderr.write(
      `target: encrypted c1 p50 ≤ 1.1× plaintext: ${t1} ms vs ${p1} ms, ${r.toFixed(3)}× ${r <= 1.1 ? 'MET' : 'NOT MET'}\n`,
    );
  }
}
