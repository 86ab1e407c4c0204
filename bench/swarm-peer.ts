// The Docker Swarm peer shared by the benchmarks (failover, converge): a real
// Docker Swarm 20.10 (Debian docker.io), one dockerd per network namespace
// tssdk-hK, brought up and torn down by bench/peers/swarm-peer.sh (a copy of
// the recipe in ../shared/peers), plus the checks that keep us from touching
// anything that is not ours: no stale tssdk-* namespaces or /run/tssdk before
// we start, and a dockerd pid is only trusted if it is /usr/sbin/dockerd
// living in its node's namespace.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';

export const SWARM_SCRIPT = fileURLToPath(new URL('./peers/swarm-peer.sh', import.meta.url));
export const SWARM_STATE = '/run/tssdk';

export interface Out {
  code: number;
  out: string;
  err: string;
}

/** `timeout -k 1 S cmd...`: exit code 124 when the attempt was cut off. */
export function bounded(args: string[], timeoutS: number): Promise<Out> {
  return new Promise((resolve) => {
    execFile('timeout', ['-k', '1', String(timeoutS), ...args], { encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, out: stdout, err: stderr });
    });
  });
}

/** The socket of node K's dockerd. */
export const dockerSock = (k: number): string => `${SWARM_STATE}/h${k}.sock`;

/** `docker -H <node K> args...`, bounded. */
export const dk = (k: number, args: string[], timeoutS = 2): Promise<Out> =>
  bounded(['docker', '-H', `unix://${dockerSock(k)}`, ...args], timeoutS);

export const firstLine = (r: Out, timeoutS = 2): string =>
  r.code === 124 ? `timed out after ${timeoutS} s` : (r.err.trim() || r.out.trim()).split('\n')[0]!.slice(0, 160);

/** GET on node K's Docker Engine API (JSON), without spawning a docker CLI: the light query for polling. */
export function dockerGet<T>(k: number, path: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: dockerSock(k), path, method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 500) >= 300) reject(new Error(`GET ${path} on h${k}: ${res.statusCode} ${body.trim().slice(0, 160)}`));
        else {
          try {
            resolve(JSON.parse(body) as T);
          } catch (e) {
            reject(e as Error);
          }
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} on h${k}: timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

function haveDockerd(): boolean {
  try {
    execFileSync('dockerd', ['--version'], { stdio: 'ignore' });
    execFileSync('docker', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function ensureDocker(log: (l: string) => void): boolean {
  if (haveDockerd()) return true;
  log('installing docker.io (Debian) for the peer');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const pre of [[], [['apt-get', 'update']]] as string[][][]) {
    try {
      for (const [cmd, ...a] of pre) execFileSync(cmd!, a, { stdio: 'ignore', env });
      execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'docker.io'], { stdio: 'ignore', env });
    } catch {
      // retried after apt-get update, then reported by the caller
    }
    if (haveDockerd()) return true;
  }
  return false;
}

export function tssdkNamespaces(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter((n) => n.startsWith('tssdk-'));
  } catch {
    return [];
  }
}

/** Why the Swarm peer cannot run here, or undefined when it can. */
export function swarmPreflight(log: (l: string) => void): string | undefined {
  if (!ensureDocker(log)) return 'dockerd not installed and apt-get install docker.io failed';
  if (process.getuid?.() !== 0) return 'the Docker Swarm peer needs root (network namespaces, dockerd)';
  // Someone else's cluster (another run) is never ours to tear down.
  const stale = tssdkNamespaces();
  if (stale.length > 0 || existsSync(SWARM_STATE)) {
    return `tssdk-* namespaces or ${SWARM_STATE} already exist (${stale.join(' ') || SWARM_STATE}); not touching them; run bench/peers/swarm-peer.sh down if they are stale`;
  }
  return undefined;
}

/** The pid in hK's pidfile, checked to be /usr/sbin/dockerd living in netns tssdk-hK (never a root-netns dockerd). */
export function nodeDockerdPid(k: number): number {
  const pid = Number(readFileSync(`${SWARM_STATE}/h${k}.dockerd.pid`, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`bad pid in ${SWARM_STATE}/h${k}.dockerd.pid`);
  if (readlinkSync(`/proc/${pid}/exe`) !== '/usr/sbin/dockerd') throw new Error(`pid ${pid} of h${k} is not /usr/sbin/dockerd`);
  if (statSync(`/proc/${pid}/ns/net`).ino !== statSync(`/run/netns/tssdk-h${k}`).ino)
    throw new Error(`pid ${pid} is not in netns tssdk-h${k}`);
  return pid;
}

/** Starts N dockerds in namespaces tssdk-h1..N and forms a swarm with M managers (h1 initialises). Throws on failure (the script cleans up after itself then). */
export function swarmUp(n: number, managers: number): void {
  execFileSync('bash', [SWARM_SCRIPT, 'up', String(n), '--managers', String(managers)], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Removes everything swarm-peer.sh created: dockerds, containers, cgroups, namespaces, mounts, /run/tssdk, /var/lib/tssdk. */
export function swarmDown(log: (l: string) => void): void {
  try {
    execFileSync('bash', [SWARM_SCRIPT, 'down'], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    log(`teardown reported an error; run: bash ${SWARM_SCRIPT} down`);
  }
}

/** SIGINT/SIGTERM tear the cluster down before exiting; returns the function that removes the handlers. */
export function teardownOnSignal(log: (l: string) => void): () => void {
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`${sig}: tearing down`);
    swarmDown(log);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

/** Node number K of each "tssdk-hK <rest>" line. */
export function parseNodes(out: string): { k: number; rest: string }[] {
  return out
    .split('\n')
    .map((l) => /^tssdk-h(\d+)\s*(.*)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ k: Number(m[1]), rest: m[2]! }));
}
