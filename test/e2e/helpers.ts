// Shared by the end-to-end tests: polling until the cluster shows what a test waits for.

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
