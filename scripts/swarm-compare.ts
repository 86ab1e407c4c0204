// Side by side with Docker Swarm (issue 17): brings up the Swarm peer
// (../shared/peers/swarm-peer.sh, real dockerd 20.10) and a tsswarm sandbox of
// the same shape, runs one list of docker CLI commands against each through
// DOCKER_HOST, compares them (scripts/swarm-compare-lib.ts), prints a line per
// command and records the report in docs/swarm-compare.md. Both clusters are
// torn down at the end, pass or fail. Needs root; run it under the heavy lock:
//
//   flock /tmp/tss-heavy.lock npx tsx scripts/swarm-compare.ts [--use-running] [--keep] [--no-docs]
//   npx tsx scripts/swarm-compare.ts --replay RUN.json
//
// --use-running: the clusters are up already (swarm-peer.sh up 3; the sandbox at
// TSSWARM_SANDBOX_DIR), and are left up; --keep: leave up what this run started;
// --replay: compare a run recorded with TSS_COMPARE_RAW=RUN.json again, no clusters.
// Exit 1 when a difference is not one docs/swarm-compare.md explains (KNOWN), 2
// when a cluster could not be set up (one already up is never taken down) or
// something was left behind.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type ClusterLiterals,
  COMMANDS,
  type CompareCommand,
  compareAll,
  composeFile,
  label,
  type Outcome,
  type Recorded,
  type Row,
  renderReport,
} from './swarm-compare-lib.js';

const repo = resolve(dirname(new URL(import.meta.url).pathname), '..');
const { values: opts } = parseArgs({
  options: { 'use-running': { type: 'boolean' }, keep: { type: 'boolean' }, 'no-docs': { type: 'boolean' }, replay: { type: 'string' } },
});

const NODES = 3;
const MANAGERS = 1;
const PEER = [process.env.TSS_SWARM_PEER, join(repo, '../shared/peers/swarm-peer.sh'), '/work/shared/peers/swarm-peer.sh'].find(
  (p): p is string => !!p && existsSync(p),
);
const PEER_SOCKET = 'unix:///run/tssdk/h1.sock';
const PEER_IMAGE = 'bb:latest'; // what swarm-peer.sh imports on every node (IMG)
const PEER_HOSTS = Array.from({ length: NODES }, (_, i) => `tssdk-h${i + 1}`);
const SB_DIR = process.env.TSSWARM_SANDBOX_DIR || '/tmp/tss-cmp-sandbox';
const SB_PREFIX = process.env.TSSWARM_SANDBOX_PREFIX || 'tsscmp-';
const SB_HOSTS = Array.from({ length: NODES }, (_, i) => `${SB_PREFIX}h${i + 1}`);
const SB_SOCKET = `unix://${SB_DIR}/${SB_HOSTS[0]}/docker.sock`;
const SB_IMAGE = 'tsswarm/busybox:latest'; // deploy/sandbox/images.ts SANDBOX_IMAGE
const sbEnv = { ...process.env, TSSWARM_SANDBOX_DIR: SB_DIR, TSSWARM_SANDBOX_PREFIX: SB_PREFIX };

const say = (line: string): void => void process.stderr.write(`swarm-compare: ${line}\n`);

function run(argv: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 600_000): { code: number; out: string; err: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  return { code: r.status ?? 128, out: r.stdout ?? '', err: r.stderr ?? '' };
}

function mustRun(what: string, argv: string[], env?: NodeJS.ProcessEnv): string {
  say(what);
  const r = run(argv, env);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${(r.err || r.out).trim().split('\n').slice(-15).join('\n')}`);
  return r.out;
}

const tsswarm = (...args: string[]): string[] => [process.execPath, join(repo, 'bin/tsswarm.mjs'), ...args];

/** What this run brought up, and so must take down: never a cluster someone else left running. */
const started = { peer: false, sandbox: false };

function up(): void {
  if (!PEER) throw new Error('the Swarm peer script is missing: set TSS_SWARM_PEER to swarm-peer.sh (../shared/peers)');
  const peerNetns = run(['ip', 'netns', 'list'])
    .out.split('\n')
    .some((l) => l.startsWith('tssdk-'));
  if (peerNetns || existsSync('/run/tssdk'))
    throw new Error(`a Swarm peer is up already: compare against it with --use-running, or remove it first (bash ${PEER} down)`);
  if (existsSync(SB_DIR))
    throw new Error(
      `a sandbox is at ${SB_DIR} already: compare against it with --use-running, or remove it first (TSSWARM_SANDBOX_DIR=${SB_DIR} tsswarm sandbox down)`,
    );
  started.peer = true;
  mustRun(`Swarm: ${PEER} up ${NODES} --managers ${MANAGERS}`, ['bash', PEER, 'up', String(NODES), '--managers', String(MANAGERS)]);
  started.sandbox = true;
  mustRun(
    `tsswarm: sandbox up --managers ${MANAGERS} --workers ${NODES - MANAGERS} (${SB_DIR})`,
    tsswarm('sandbox', 'up', '--managers', String(MANAGERS), '--workers', String(NODES - MANAGERS)),
    sbEnv,
  );
}

function down(): void {
  if (started.peer && PEER) {
    const r = run(['bash', PEER, 'down']);
    say(`Swarm: down (exit ${r.code})`);
  }
  if (started.sandbox) {
    const r = run(tsswarm('sandbox', 'down'), sbEnv);
    say(`tsswarm: sandbox down (exit ${r.code}) ${r.out.trim()}`);
  }
}

/** What a torn-down run must not leave: namespaces, mounts or processes of either cluster. */
function leftovers(): string[] {
  const found: string[] = [];
  const ns = run(['ip', 'netns', 'list']).out.split('\n');
  for (const l of ns) if (l.startsWith('tssdk-') || l.startsWith(SB_PREFIX)) found.push(`netns ${l.split(' ')[0]}`);
  for (const l of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const point = l.split(' ')[4] ?? '';
    if (/^\/(run|var\/lib)\/tssdk/.test(point) || point.startsWith(SB_DIR)) found.push(`mount ${point}`);
  }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    if (cmd.includes('/var/lib/tssdk') || cmd.includes('/run/tssdk/') || cmd.includes(`${SB_DIR}/`))
      found.push(`process ${pid}: ${cmd.slice(0, 120)}`);
  }
  return found;
}

interface Cluster {
  name: 'Swarm' | 'tsswarm';
  host: string;
  lit: ClusterLiterals;
  files: Record<string, string>;
  version: string;
}

/** Writes the files the commands read (a secret, a config, the compose file) into a directory of its own. */
function clusterFiles(dir: string, image: string): Record<string, string> {
  writeFileSync(join(dir, 'secret.txt'), 'tsscmp secret value\n');
  writeFileSync(join(dir, 'config.txt'), 'tsscmp config value\n');
  writeFileSync(join(dir, 'stack-secret.txt'), 'tsscmp stack secret\n');
  writeFileSync(join(dir, 'compose.yml'), composeFile(image));
  return {
    '{SECRET_FILE}': join(dir, 'secret.txt'),
    '{CONFIG_FILE}': join(dir, 'config.txt'),
    '{COMPOSE}': join(dir, 'compose.yml'),
    '{IMAGE}': image,
  };
}

function docker(c: Cluster, args: readonly string[], timeoutMs = 180_000): Outcome {
  const argv = ['docker', ...args.map((a) => c.files[a] ?? a)];
  const r = spawnSync(argv[0]!, argv.slice(1), {
    env: { ...process.env, DOCKER_HOST: c.host, DOCKER_CLI_HINTS: 'false' },
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 16 << 20,
  });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  return { code: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ...(timedOut ? { timedOut } : {}) };
}

/** Polls (a condition, with a deadline) until every service of the stack runs all its replicas. */
function waitStack(c: Cluster, stack: string, deadlineMs = 120_000): void {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const r = docker(c, ['stack', 'services', stack, '--format', '{{.Replicas}}']);
    const reps = r.stdout.split('\n').filter(Boolean);
    if (r.code === 0 && reps.length > 0 && reps.every((x) => /^(\d+)\/\1\b/.test(x))) return;
    if (Date.now() > end) {
      say(`${c.name}: stack ${stack} not converged after ${deadlineMs / 1000} s (${reps.join(', ')}); comparing anyway`);
      return;
    }
    spawnSync('sleep', ['0.5']);
  }
}

/** Polls until no task of the service is still running with desired state shutdown; answers the seconds it took. */
function settle(c: Cluster, service: string, deadlineMs = 120_000): number {
  const t0 = Date.now();
  for (;;) {
    const r = docker(c, ['service', 'ps', service, '--filter', 'desired-state=shutdown', '--format', '{{.CurrentState}}']);
    if (r.code === 0 && !r.stdout.split('\n').some((l) => /^(Running|Starting)/.test(l))) return (Date.now() - t0) / 1000;
    if (Date.now() - t0 > deadlineMs) {
      say(`${c.name}: old tasks of ${service} still running after ${deadlineMs / 1000} s; comparing anyway`);
      return deadlineMs / 1000;
    }
    spawnSync('sleep', ['0.5']);
  }
}

function runOne(c: Cluster, cmd: CompareCommand): Outcome {
  if (cmd.waitStack) waitStack(c, cmd.waitStack);
  const settled = cmd.settle ? settle(c, cmd.settle) : undefined;
  let o = docker(c, cmd.args);
  let attempts = 1;
  const end = Date.now() + 60_000;
  while (cmd.retryUntilOk && o.code !== 0 && !o.timedOut && Date.now() < end) {
    spawnSync('sleep', ['0.5']);
    o = docker(c, cmd.args);
    attempts++;
  }
  return { ...o, ...(cmd.retryUntilOk ? { attempts } : {}), ...(settled !== undefined ? { settledSeconds: settled } : {}) };
}

function report(rows: readonly Row[], swarm: Cluster, tss: Cluster, client: string): { text: string; md: string; unexplained: number } {
  const { text, summary, unexplained } = renderReport(rows);
  const md = [
    `Recorded ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} by \`flock /tmp/tss-heavy.lock npx tsx scripts/swarm-compare.ts\` (as root):`,
    `docker CLI ${client}; Swarm: dockerd ${swarm.version} (swarm-peer.sh, ${NODES} nodes, ${MANAGERS} manager); tsswarm ${tss.version} (sandbox, ${NODES} nodes, ${MANAGERS} manager).`,
    `${summary}.`,
    '',
    '```',
    text,
    '```',
  ].join('\n');
  return { text, md, unexplained };
}

const BEGIN = '<!-- swarm-compare: recorded output begins (scripts/swarm-compare.ts rewrites it) -->';
const END = '<!-- swarm-compare: recorded output ends -->';

function recordInDocs(md: string): void {
  const path = join(repo, 'docs/swarm-compare.md');
  const old = existsSync(path) ? readFileSync(path, 'utf8') : `# Side by side with Docker Swarm\n\n${BEGIN}\n${END}\n`;
  const a = old.indexOf(BEGIN);
  const b = old.indexOf(END);
  if (a < 0 || b < a) throw new Error(`docs/swarm-compare.md lacks the markers ${BEGIN} ... ${END}`);
  writeFileSync(path, `${old.slice(0, a + BEGIN.length)}\n${md}\n${old.slice(b)}`);
  say(`recorded in ${path}`);
}

/** --replay FILE: the comparison again on a recorded run (TSS_COMPARE_RAW), without clusters. */
function replay(path: string): number {
  const rec = JSON.parse(readFileSync(path, 'utf8')) as { swarm: Recorded; tsswarm: Recorded };
  const { text, unexplained } = renderReport(compareAll(COMMANDS, rec.swarm, rec.tsswarm));
  process.stdout.write(`${text}\n`);
  return unexplained === 0 ? 0 : 1;
}

function main(): number {
  if (opts.replay) return replay(opts.replay);
  if (process.getuid?.() !== 0) {
    say('needs root (network namespaces and daemons)');
    return 2;
  }
  const work = mkdtempSync('/tmp/tss-cmp-files-');
  let torn = false;
  const tearDown = (): void => {
    if (torn) return;
    torn = true;
    if (!opts.keep) down();
    rmSync(work, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(sig, () => {
      tearDown();
      process.exit(130);
    });
  try {
    if (!opts['use-running']) up();
    const client = run(['docker', 'version', '--format', '{{.Client.Version}}'], { ...process.env, DOCKER_HOST: SB_SOCKET }).out.trim();
    const mk = (name: Cluster['name'], host: string, image: string, hosts: readonly string[]): Cluster => {
      const dir = join(work, name);
      spawnSync('mkdir', ['-p', dir]);
      const files = clusterFiles(dir, image);
      const version = run(['docker', 'version', '--format', '{{.Server.Version}}'], { ...process.env, DOCKER_HOST: host }).out.trim();
      return { name, host, files, version, lit: { image, versions: [version], hosts, paths: [dir] } };
    };
    const swarm = mk('Swarm', PEER_SOCKET, PEER_IMAGE, PEER_HOSTS);
    const tss = mk('tsswarm', SB_SOCKET, SB_IMAGE, SB_HOSTS);
    say(`docker ${client}; Swarm ${swarm.version}; tsswarm ${tss.version}`);
    const outcomes = (c: Cluster): Outcome[] =>
      COMMANDS.map((cmd) => {
        say(`${c.name}: ${label(cmd)}`);
        return runOne(c, cmd);
      });
    // All of Swarm's first, then all of tsswarm's: each list runs on a quiet machine.
    const s = outcomes(swarm);
    const t = outcomes(tss);
    const rows = compareAll(COMMANDS, { lit: swarm.lit, outcomes: s }, { lit: tss.lit, outcomes: t });
    const { text, md, unexplained } = report(rows, swarm, tss, client);
    process.stdout.write(`${text}\n`);
    if (!opts['no-docs']) recordInDocs(md);
    if (process.env.TSS_COMPARE_RAW)
      writeFileSync(
        process.env.TSS_COMPARE_RAW,
        JSON.stringify({ swarm: { lit: swarm.lit, outcomes: s }, tsswarm: { lit: tss.lit, outcomes: t } }, null, 1),
      );
    return unexplained === 0 ? 0 : 1;
  } catch (e) {
    say((e as Error).message);
    return 2;
  } finally {
    tearDown();
    const left = opts.keep || !(started.peer || started.sandbox) ? [] : leftovers();
    for (const l of left) say(`left behind: ${l}`);
    if (left.length) process.exitCode = 2;
  }
}

process.exitCode = Math.max(main(), Number(process.exitCode ?? 0));
