// The Swarm half of the failover benchmark: a 3-manager Docker Swarm 20.10,
// one dockerd per network namespace (bench/peers/swarm-peer.sh, a copy of the
// recipe in ../shared/peers), leader's dockerd SIGKILLed, then the same two
// figures as tsswarm's, polled through a surviving manager. Every docker call
// is bounded by `timeout`, because Swarm's commands hang while there is no
// leader. The cluster is always torn down.
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Report } from './report.js';

const script = fileURLToPath(new URL('./peers/swarm-peer.sh', import.meta.url));
const CAP_S = 120;

function sh(args: string[], timeoutS: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('timeout', [String(timeoutS), ...args], { encoding: 'utf8' }, (err, stdout) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout });
    });
  });
}

const dk = (k: number, args: string[], timeoutS = 2): Promise<{ code: number; out: string }> => sh(['docker', '-H', `unix:///run/tssdk/h${k}.sock`, ...args], timeoutS);

function haveDockerd(): boolean {
  try {
    execFileSync('dockerd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function swarmFailover(report: Report): Promise<void> {
  if (!haveDockerd()) {
    process.stderr.write('swarm: installing docker.io (Debian) for the peer\n');
    try {
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'docker.io'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    } catch {
      // reported below
    }
  }
  if (!haveDockerd()) {
    report.error('swarm', 'm3', 'dockerd not installed and apt-get install docker.io failed');
    return;
  }
  try {
    process.stderr.write('swarm: starting 3 dockerds (all managers) in namespaces tssdk-h1..3\n');
    execFileSync('bash', [script, 'up', '3', '--managers', '3'], { stdio: ['ignore', 'ignore', 'inherit'] });
    const ls = await dk(1, ['node', 'ls', '--format', '{{.Hostname}} {{.ManagerStatus}}'], 10);
    const leaderLine = ls.out.split('\n').find((l) => /Leader/.test(l));
    const leader = Number(/tssdk-h(\d+)/.exec(leaderLine ?? '')?.[1]);
    if (!leader) throw new Error(`no leader in docker node ls: ${ls.out.trim()}`);
    const survivor = [1, 2, 3].find((k) => k !== leader)!;
    const pid = Number(readFileSync(`/run/tssdk/h${leader}.dockerd.pid`, 'utf8').trim());
    process.stderr.write(`swarm: SIGKILL of the leader's dockerd (tssdk-h${leader}, pid ${pid})\n`);
    process.kill(pid, 'SIGKILL');
    const t0 = performance.now();
    let write: number | undefined;
    let down: number | undefined;
    let i = 0;
    while ((write === undefined || down === undefined) && performance.now() - t0 < CAP_S * 1000) {
      if (write === undefined) {
        const r = await dk(survivor, ['node', 'update', '--label-add', `tssbench=${i++}`, `tssdk-h${survivor}`]);
        if (r.code === 0) {
          write = (performance.now() - t0) / 1000;
          process.stderr.write(`swarm: a write succeeded after ${write.toFixed(2)} s\n`);
        }
      }
      if (down === undefined) {
        const r = await dk(survivor, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}']);
        if (r.code === 0 && r.out.split('\n').some((l) => l.startsWith(`tssdk-h${leader} `) && /Down/.test(l))) {
          down = (performance.now() - t0) / 1000;
          process.stderr.write(`swarm: the old leader shows Down after ${down.toFixed(2)} s\n`);
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    if (write === undefined || down === undefined) throw new Error(`not recovered within ${CAP_S} s (write ${write ?? 'never'}, down ${down ?? 'never'})`);
    report.add('swarm', 'm3', 'write_recovery_s', Number(write.toFixed(2)), 's');
    report.add('swarm', 'm3', 'leader_down_seen_s', Number(down.toFixed(2)), 's');
  } catch (e) {
    report.error('swarm', 'm3', (e as Error).message);
  } finally {
    try {
      execFileSync('bash', [script, 'down'], { stdio: ['ignore', 'ignore', 'inherit'] });
    } catch {
      process.stderr.write('swarm: teardown reported an error; run bench/peers/swarm-peer.sh down\n');
    }
  }
}
