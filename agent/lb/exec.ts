// Runs one command inside a network namespace (`nsenter --net=PATH cmd`), or
// in the agent's own namespace when none is given, feeding a program on
// stdin; the error quotes the command's stderr.
import { spawn } from 'node:child_process';
import { TsswarmError } from '../../lib/errors.js';

/** `/run/netns/NAME` for a bare name; a path is used as given. */
export function netnsPath(netns: string): string {
  return netns.includes('/') ? netns : `/run/netns/${netns}`;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class LbCommandError extends TsswarmError {
  constructor(
    readonly command: string,
    readonly result: RunResult,
  ) {
    super('INTERNAL', `${command} exited ${result.code}: ${result.stderr.trim().slice(0, 2000) || '(no output)'}`);
  }
}

/** Runs `cmd args` (in `netns` when given), writing `stdin` to it; resolves whatever the exit code. */
export function runIn(netns: string | undefined, cmd: string, args: string[], stdin = '', timeoutMs = 120_000): Promise<RunResult> {
  const [file, argv] = netns === undefined ? [cmd, args] : ['nsenter', [`--net=${netnsPath(netns)}`, cmd, ...args]];
  return new Promise((resolve, reject) => {
    const p = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => out.push(b));
    p.stderr.on('data', (b: Buffer) => err.push(b));
    p.on('error', reject);
    // EPIPE when the command exits without reading stdin; its exit code tells.
    p.stdin.on('error', () => undefined);
    p.on('close', (code, signal) =>
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    p.stdin.end(stdin);
  });
}

/** Like runIn, but throws LbCommandError unless the command exits 0. */
export async function mustRunIn(netns: string | undefined, cmd: string, args: string[], stdin = ''): Promise<string> {
  const r = await runIn(netns, cmd, args, stdin);
  if (r.code !== 0) throw new LbCommandError([cmd, ...args].join(' '), r);
  return r.stdout;
}
