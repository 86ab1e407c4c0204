// One daemon per sandbox host: launched with nsenter into the host's network
// namespace, in its own session (so a process-group signal reaches it and its
// children and nothing else), output appended to the host's log.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { TsswarmError } from '../../lib/errors.js';
import { groupMembers, procInfo, signal as sendSignal, sleep } from './kernel.js';
import type { DaemonRecord, HostRecord } from './state.js';

export interface Launched {
  pid: number;
  startTime: string;
}

/** Whether the recorded daemon is the live process with that pid (not a zombie, not a reused pid). */
export function daemonAlive(d: Pick<DaemonRecord, 'pid' | 'startTime'>): boolean {
  if (!d.pid) return false;
  const p = procInfo(d.pid);
  return p !== undefined && p.state !== 'Z' && p.startTime === d.startTime;
}

export async function launchDaemon(host: HostRecord): Promise<Launched> {
  const fd = openSync(host.logFile, 'a');
  try {
    writeSync(
      fd,
      `--- tsswarm sandbox: starting the daemon of ${host.name} at ${new Date().toISOString()}: ${host.daemon.argv.join(' ')}\n`,
    );
    const child = spawn('nsenter', [`--net=${host.netnsPath}`, '--', ...host.daemon.argv], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...host.daemon.env },
    });
    await new Promise<void>((resolvePromise, reject) => {
      child.once('spawn', resolvePromise);
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'ENOENT'
            ? new TsswarmError('FAILED_PRECONDITION', 'the nsenter command is missing: install it with apt-get install util-linux', {
                cause: err,
              })
            : new TsswarmError('INTERNAL', `cannot start the daemon of ${host.name}: ${err.message}`, { cause: err }),
        ),
      );
    });
    child.unref();
    const pid = child.pid!;
    // nsenter execs the daemon in place (it enters no pid namespace), so this
    // pid and its start time are the daemon's.
    return { pid, startTime: procInfo(pid)?.startTime ?? '' };
  } finally {
    closeSync(fd);
  }
}

/** The last lines of a host's log, for error messages. */
export function logTail(file: string, lines = 15): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    const tail = text.split('\n').slice(-lines);
    return tail.length && tail[0] !== '' ? tail.map((l) => `  | ${l}`).join('\n') : '  (the log is empty)';
  } catch {
    return '  (no log file)';
  }
}

/**
 * Waits until the daemon's unix socket exists; fails early, quoting the log, if
 * the daemon exits. `fix` ends the message: what the user does next.
 */
export async function waitForSocket(host: HostRecord, opts: { timeoutMs: number; fix: string; signal?: AbortSignal }): Promise<void> {
  const { timeoutMs, signal } = opts;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (isSocket(host.socketPath)) return;
    signal?.throwIfAborted();
    if (!daemonAlive(host.daemon)) {
      throw new TsswarmError(
        'UNAVAILABLE',
        `the daemon of ${host.name} exited before creating its socket ${host.socketPath}; last lines of ${host.logFile}:\n${logTail(host.logFile)}\n${opts.fix}`,
      );
    }
    if (Date.now() >= deadline) {
      throw new TsswarmError(
        'DEADLINE_EXCEEDED',
        `the daemon of ${host.name} (pid ${host.daemon.pid}) did not create its socket ${host.socketPath} within ${timeoutMs / 1000} s; last lines of ${host.logFile}:\n${logTail(host.logFile)}\n${opts.fix}`,
      );
    }
    await sleep(50);
  }
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
}

/**
 * Stops the daemon's whole process group: SIGTERM (SIGKILL with `kill`), then
 * SIGKILL after `graceMs`. Returns false when it was not running.
 */
export async function stopDaemon(host: HostRecord, opts: { kill?: boolean; graceMs: number }): Promise<boolean> {
  const pid = host.daemon.pid;
  if (!pid || !daemonAlive(host.daemon)) return false;
  const gone = (): boolean => !daemonAlive(host.daemon) && groupMembers(pid).length === 0;
  sendSignal(-pid, opts.kill ? 'SIGKILL' : 'SIGTERM');
  if (await waitUntil(gone, opts.kill ? 3000 : opts.graceMs)) return true;
  sendSignal(-pid, 'SIGKILL');
  if (await waitUntil(gone, 3000)) return true;
  throw new TsswarmError('INTERNAL', `the daemon of ${host.name} (process group ${pid}) survived SIGKILL: see ps -g ${pid}`);
}
