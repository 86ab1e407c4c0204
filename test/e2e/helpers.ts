// Shared by the end-to-end tests: whether this machine can run them, and
// polling until the cluster shows what a test waits for.
import { execFileSync } from 'node:child_process';

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
