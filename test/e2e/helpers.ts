// Shared by the end-to-end tests: whether this machine can run them, and
// polling until the cluster shows what a test waits for.
import { execFileSync } from 'node:child_process';
import { DAEMON_PORT, type Sandbox } from '../../deploy/sandbox/index.js';

/** Sandboxes need root and nsenter; elsewhere the e2e tests are skipped. */
export const canRunSandbox: boolean =
  process.getuid?.() === 0 &&
  (() => {
    try {
      execFileSync('nsenter', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

/** Calls `f` every `everyMs` until it returns something truthy; on timeout the error names what was awaited and the last failure. */
export async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 30_000, everyMs = 300): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

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
  for (const h of all.slice(1, all.length - holdBack)) await run(h.name, ['tsswarm', 'join', '--token', h.role === 'manager' ? mt : wt, `${first.addr}:${DAEMON_PORT}`]);
}
