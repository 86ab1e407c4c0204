// deploy/install.sh for real, on two sandbox hosts (network namespaces) with no
// systemd: installed into a temporary prefix with --no-systemd --offline, one
// host inits and the other joins with its token, and `tsswarm node ls` shows
// both READY. Nothing lands in the machine's /etc, /usr or /var. The option
// checks that need no root are in install.test.ts.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox, type SandboxHost } from '../../deploy/sandbox/index.js';
import { kernelBlocker } from './sandbox/helpers.js';
import { until as waitUntil } from '../lib/wait.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const blocker = kernelBlocker() || (existsSync(join(repo, 'node_modules', 'tsx')) ? '' : 'node_modules is not installed (npm ci)');
if (blocker) console.log(`install.sh end-to-end test skipped: ${blocker}`);

const dir = `/tmp/tss-insttest-${process.pid}`;
const src = join(dir, 'src');
const tokens = join(dir, 'tokens');

/**
 * The hosts' daemons are whatever install.sh starts; the sandbox's own
 * "daemon" is a stand-in that only holds the socket the sandbox waits for.
 */
const sb = new Sandbox({
  root: join(dir, 'sb'),
  prefix: `tss-i${randomBytes(2).toString('hex')}-`,
  daemonCommand: (h) => ({ argv: [process.execPath, '-e', "require('net').createServer().listen(process.argv[1])", h.socketPath] }),
});

/** Where install.sh puts everything for one host. */
function paths(host: string) {
  const base = join(dir, host);
  return {
    prefix: join(base, 'usr'),
    configDir: join(base, 'etc'),
    stateDir: join(base, 'state'),
    runDir: join(base, 'run'),
    logFile: join(base, 'log', 'daemon.log'),
    bin: join(base, 'usr', 'bin', 'tsswarm'),
    socket: join(base, 'run', 'tsswarm.sock'),
  };
}

async function install(h: SandboxHost, ...extra: string[]): Promise<string> {
  const p = paths(h.name);
  const argv = [
    'bash',
    join(src, 'deploy', 'install.sh'),
    '--no-systemd',
    '--offline',
    '--prefix',
    p.prefix,
    '--config-dir',
    p.configDir,
    '--state-dir',
    p.stateDir,
    '--run-dir',
    p.runDir,
    '--log-file',
    p.logFile,
    '--advertise-addr',
    h.addr,
    '--listen-addr',
    `${h.addr}:4242`,
    '--node-name',
    h.name.slice(sb.prefix.length),
    ...extra,
  ];
  const r = await sb.execCapture(h.name, argv, { timeoutMs: 90_000 });
  if (r.code !== 0) throw new Error(`install.sh on ${h.name} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
  return r.stderr + r.stdout;
}

/** The installed command on a host, against the installed daemon. */
async function ts(h: SandboxHost, ...args: string[]): Promise<string> {
  const p = paths(h.name);
  const r = await sb.execCapture(h.name, [p.bin, ...args], { env: { TSSWARM_HOST: `unix://${p.socket}` }, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${h.name}: tsswarm ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

interface NodeJson {
  Spec: { Name: string; Role: string };
  Status: { State: string };
}

/** The node list once `n` nodes are ready, or the last list read after 30 s (the caller's assertion shows it). */
async function untilReady(h: SandboxHost, n: number): Promise<NodeJson[]> {
  let nodes: NodeJson[] = [];
  const ready = async (): Promise<boolean> => {
    nodes = JSON.parse(await ts(h, 'node', 'ls', '--format', 'json')) as NodeJson[];
    return nodes.length === n && nodes.every((x) => x.Status.State === 'ready');
  };
  await waitUntil(`${n} nodes ready`, ready, { timeoutMs: 30_000, everyMs: 300 }).catch(() => undefined);
  return nodes;
}

const pidOf = (host: string): number => Number(readFileSync(join(paths(host).runDir, 'tsswarm.pid'), 'utf8').trim());

describe.skipIf(!!blocker)('deploy/install.sh on sandbox hosts without systemd', () => {
  let h1: SandboxHost;
  let h2: SandboxHost;
  let h2FirstOutput = '';

  beforeAll(async () => {
    // A snapshot of the checkout, so that edits made meanwhile do not change what
    // is installed between two runs; node_modules is the checkout's own (--offline copies it).
    mkdirSync(src, { recursive: true });
    execFileSync('bash', [
      '-c',
      `tar -C "$1" --exclude=./node_modules --exclude=./.git --exclude=./.tmp* -cf - . | tar -C "$2" -xf -`,
      'copy',
      repo,
      src,
    ]);
    symlinkSync(join(repo, 'node_modules'), join(src, 'node_modules'));
    await sb.up({ managers: 1, workers: 1, preloadImages: false });
    [h1, h2] = sb.hosts() as [SandboxHost, SandboxHost];
    await install(h1, '--init', '--token-dir', tokens);
    const token = readFileSync(join(tokens, 'worker.token'), 'utf8').trim();
    const addr = readFileSync(join(tokens, 'manager.addr'), 'utf8').trim();
    // nogroup exists on Debian and Ubuntu, so no group is created on this machine.
    h2FirstOutput = await install(h2, '--join', token, addr, '--socket-group', 'nogroup');
  }, 150_000);

  afterAll(async () => {
    // Every process in the hosts' namespaces (the installed daemons among them) is stopped here.
    try {
      await sb.down();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('--init on one host and --join on the other give a cluster of two READY nodes', async () => {
    expect(h2FirstOutput).toContain('This node joined a swarm as a worker.');
    const nodes = await untilReady(h1, 2);
    expect(nodes.map((n) => [n.Spec.Name, n.Spec.Role, n.Status.State]).sort()).toEqual([
      ['h1', 'manager', 'ready'],
      ['h2', 'worker', 'ready'],
    ]);
    // The worker's own command reaches its own daemon, which knows it is in the cluster.
    expect(JSON.parse(await ts(h2, 'info', '--format', 'json'))).toMatchObject({ state: 'active', nodeName: 'h2', role: 'worker' });
  });

  it('--token-dir holds both join tokens and the manager address', () => {
    expect(readFileSync(join(tokens, 'manager.token'), 'utf8')).toMatch(/^SWMTKN-1-\S+\n$/);
    expect(readFileSync(join(tokens, 'worker.token'), 'utf8')).toMatch(/^SWMTKN-1-\S+\n$/);
    expect(readFileSync(join(tokens, 'manager.addr'), 'utf8')).toBe(`${h1.addr}:4242\n`);
  });

  it('writes daemon.json with the given settings, and the daemon runs from it with a pid file and a log', () => {
    const p = paths(h2.name);
    expect(JSON.parse(readFileSync(join(p.configDir, 'daemon.json'), 'utf8'))).toEqual({
      advertiseAddr: h2.addr,
      listenAddr: `${h2.addr}:4242`,
      stateDir: p.stateDir,
      socket: p.socket,
      socketGroup: 'nogroup',
      nodeName: 'h2',
      metricsAddr: null,
      logLevel: 'info',
      lbBackend: 'auto',
    });
    const cmdline = readFileSync(`/proc/${pidOf(h2.name)}/cmdline`, 'utf8')
      .split('\0')
      .filter(Boolean);
    expect(cmdline.slice(-3)).toEqual(['daemon', '--config', join(p.configDir, 'daemon.json')]);
    expect(readFileSync(p.logFile, 'utf8')).toContain('"msg":"daemon ready"');
  });

  it('--socket-group gives the socket to that group, read-write (0660)', () => {
    const st = statSync(paths(h2.name).socket);
    expect(st.isSocket()).toBe(true);
    expect(st.gid).toBe(Number(execFileSync('getent', ['group', 'nogroup'], { encoding: 'utf8' }).split(':')[2]));
    expect(st.mode & 0o777).toBe(0o660);
    // Without the flag the socket stays root's alone.
    expect(statSync(paths(h1.name).socket).gid).toBe(0);
  });

  it('a second run with the same flags changes nothing: same daemon, no second join', async () => {
    const before = pidOf(h2.name);
    const token = readFileSync(join(tokens, 'worker.token'), 'utf8').trim();
    const out = await install(h2, '--join', token, `${h1.addr}:4242`, '--socket-group', 'nogroup');
    expect(out).toContain('is up to date');
    expect(out).toContain(`the daemon is running (pid ${before}) and up to date`);
    expect(out).toContain('in a cluster already: not joining');
    expect(pidOf(h2.name)).toBe(before);
    expect((await untilReady(h1, 2)).length).toBe(2);
  });

  it('a changed setting rewrites daemon.json and restarts the daemon, which keeps its cluster membership', async () => {
    const before = pidOf(h2.name);
    const token = readFileSync(join(tokens, 'worker.token'), 'utf8').trim();
    const out = await install(h2, '--join', token, `${h1.addr}:4242`, '--socket-group', 'nogroup', '--log-level', 'debug');
    expect(out).toContain('restarting the daemon (its files changed)');
    expect(pidOf(h2.name)).not.toBe(before);
    expect(JSON.parse(readFileSync(join(paths(h2.name).configDir, 'daemon.json'), 'utf8')).logLevel).toBe('debug');
    expect(JSON.parse(await ts(h2, 'info', '--format', 'json'))).toMatchObject({ state: 'active', nodeName: 'h2' });
  });
});
