// The thin shell under the sandbox: runs `ip` and `nft` programs (inside a
// namespace when asked), lists network namespaces, and finds the processes
// living in one by comparing /proc/PID/ns/net with /run/netns/NAME.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { TsswarmError } from '../../lib/errors.js';

export const NETNS_DIR = '/run/netns';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const packageOf: Record<string, string> = { ip: 'iproute2', nsenter: 'util-linux', nft: 'nftables' };

/** Runs a command to completion; a missing program is an error naming its Debian package. */
export function run(
  argv: readonly string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new TsswarmError('INTERNAL', 'run: empty argv');
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env: opts.env, stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        const pkg = packageOf[cmd];
        reject(
          new TsswarmError('FAILED_PRECONDITION', `the ${cmd} command is missing${pkg ? `: install it with apt-get install ${pkg}` : ''}`, {
            cause: err,
          }),
        );
      } else reject(err);
    });
    child.on('close', (code, signal) => resolvePromise({ code: code ?? 128 + signalNumber(signal), stdout, stderr }));
    // A child that exits before reading its input closes the pipe: not our error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

export function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (osConstants.signals[signal] ?? 0) : 0;
}

/** Runs and throws, quoting the command and its stderr, when it fails. */
export async function mustRun(argv: readonly string[], what: string, opts: { input?: string } = {}): Promise<RunResult> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    const detail = r.stderr.trim() || r.stdout.trim() || `exit status ${r.code}`;
    throw new TsswarmError('INTERNAL', `${what}: ${argv.join(' ')} failed: ${detail}`);
  }
  return r;
}

/** `ip -batch -` with the given lines, in the root namespace or inside `netns`. */
export async function ipBatch(lines: readonly string[], what: string, netns?: string, opts: { force?: boolean } = {}): Promise<RunResult> {
  const argv = ['ip', ...(netns ? ['-n', netns] : []), ...(opts.force ? ['-force'] : []), '-batch', '-'];
  const r = await run(argv, { input: lines.join('\n') + '\n' });
  if (r.code !== 0 && !opts.force) {
    throw new TsswarmError(
      'INTERNAL',
      `${what}: ip${netns ? ` -n ${netns}` : ''} -batch failed: ${r.stderr.trim() || `exit status ${r.code}`}`,
    );
  }
  return r;
}

/** argv that runs `argv` inside a namespace's network stack only (not `ip netns exec`, which remounts /sys). */
export function inNetns(netns: string, argv: readonly string[]): string[] {
  return ['nsenter', `--net=${NETNS_DIR}/${netns}`, '--', ...argv];
}

/** The names under /run/netns (what `ip netns list` shows). */
export function listNetns(): string[] {
  try {
    return readdirSync(NETNS_DIR).sort();
  } catch {
    return [];
  }
}

export function netnsExists(name: string): boolean {
  try {
    statSync(`${NETNS_DIR}/${name}`);
    return true;
  } catch {
    return false;
  }
}

/** `dev:ino` of a network namespace, comparable with /proc/PID/ns/net. */
function nsKey(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

export function netnsKey(name: string): string | undefined {
  return nsKey(`${NETNS_DIR}/${name}`);
}

export interface ProcInfo {
  pid: number;
  /** R, S, D, Z, ... */
  state: string;
  pgrp: number;
  /** Clock ticks since boot: with the pid, names one process across pid reuse. */
  startTime: string;
}

/** /proc/PID/stat, or undefined when the process is gone. */
export function procInfo(pid: number): ProcInfo | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may hold anything, spaces and ')' too.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, state: f[0] ?? '?', pgrp: Number(f[2]), startTime: f[19] ?? '' };
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** Live (not zombie) processes whose network namespace is one of `keys` (from netnsKey). */
export function pidsInNetns(keys: ReadonlySet<string>): number[] {
  if (keys.size === 0) return [];
  return allPids().filter((pid) => {
    if (pid === process.pid) return false;
    const k = nsKey(`/proc/${pid}/ns/net`);
    return k !== undefined && keys.has(k) && procInfo(pid)?.state !== 'Z';
  });
}

/** Live members of process group `pgrp`. */
export function groupMembers(pgrp: number): number[] {
  return allPids().filter((pid) => {
    const p = procInfo(pid);
    return p !== undefined && p.pgrp === pgrp && p.state !== 'Z';
  });
}

/** Sends a signal, ignoring a process (or group, for a negative pid) that is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Every mount point at or under `dir`, deepest first (from this process's mountinfo). */
export function mountsUnder(dir: string): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const unescapeOctal = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map(unescapeOctal)
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
