// Shared by the end-to-end tests: whether this machine can run them, and
// polling until the cluster shows what a test waits for.
import { DAEMON_PORT, type Sandbox } from '../../deploy/sandbox/index.js';
import { have, isRoot } from '../have.js';
import { until as waitUntil } from '../lib/wait.js';

/** Sandboxes need root and nsenter; elsewhere the e2e tests are skipped. */
export const canRunSandbox: boolean = isRoot && have('nsenter');

/** test/lib/wait.ts's `until` with the e2e defaults: a 30 s deadline, polled every 300 ms (each poll may run a CLI command). */
export const until = <T>(what: string, f: () => Promise<T | undefined | false>, ms = 30_000, everyMs = 300): Promise<T> =>
  waitUntil(what, f, { timeoutMs: ms, everyMs }) as Promise<T>;

/**
 * Forms the cluster the way a user would, through the CLI on each host: init on
 * the first host, then join the others with the manager or worker token. The
 * last `holdBack` hosts stay out (a test joins them later).
 */
export async function joinByCli(s: Sandbox, holdBack = 0): Promise<void> {
  const all = s.hosts();
  const first = all[0]!;
  const run = async (h: string, argv: string[]): Promise<string> => {
    const r = await s.execCapture(h, argv, { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`${h}: ${argv.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  await run(first.name, ['tsswarm', 'init', '--advertise-addr', first.addr]);
  const mt = await run(first.name, ['tsswarm', 'join-token', '-q', 'manager']);
  const wt = await run(first.name, ['tsswarm', 'join-token', '-q', 'worker']);
  for (const h of all.slice(1, all.length - holdBack))
    await run(h.name, ['tsswarm', 'join', '--token', h.role === 'manager' ? mt : wt, `${first.addr}:${DAEMON_PORT}`]);
}

/** What a command run on a sandbox host gave. */
export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/**
 * `PROGRAM ARGS` on sandbox hosts, each call bounded by `timeoutMs`: `run` answers whatever
 * happened, `runIn` the same with `input` on standard input, and `ok` the output, or throws
 * naming the host, the command and what it printed.
 */
export function commandOn(
  s: Sandbox,
  program: string,
  timeoutMs = 60_000,
): {
  run: (host: string, ...args: string[]) => Promise<CliResult>;
  runIn: (host: string, input: string, ...args: string[]) => Promise<CliResult>;
  ok: (host: string, ...args: string[]) => Promise<string>;
} {
  const runIn = async (host: string, input: string | undefined, ...args: string[]): Promise<CliResult> => {
    const r = await s.execCapture(host, [program, ...args], { timeoutMs, input });
    return { code: r.code, out: r.stdout, err: r.stderr };
  };
  const run = (host: string, ...args: string[]): Promise<CliResult> => runIn(host, undefined, ...args);
  const ok = async (host: string, ...args: string[]): Promise<string> => {
    const r = await run(host, ...args);
    if (r.code !== 0) throw new Error(`${host}: ${program} ${args.join(' ')} failed (${r.code}): ${r.err || r.out}`);
    return r.out;
  };
  return { run, runIn, ok };
}

/** `tsswarm ARGS` on sandbox hosts (commandOn): `ts`, `tsIn`, `ok`. */
export function tsswarmOn(s: Sandbox, timeoutMs = 60_000) {
  const c = commandOn(s, 'tsswarm', timeoutMs);
  return { ts: c.run, tsIn: c.runIn, ok: c.ok };
}

/** The docker CLI on sandbox hosts, against each host's docker socket (commandOn): `docker`, `dockerIn`, `ok`. */
export function dockerOn(s: Sandbox, timeoutMs = 60_000) {
  const c = commandOn(s, 'docker', timeoutMs);
  return { docker: c.run, dockerIn: c.runIn, ok: c.ok };
}
