// Standard input as the commands read it (`secret create NAME -`, `unlock`),
// swappable by tests, in a module of its own so that reading it loads nothing else.

/** Standard input as a stream of chunks (tests hand in their own). */
export type Stdin = AsyncIterable<Uint8Array | string>;
let stdinSource: () => Stdin = () => process.stdin;

/** For tests: where standard input is read from. */
export function setStdin(fn: () => Stdin): void {
  stdinSource = fn;
}

/** Standard input (or what a test handed in). */
export function stdin(): Stdin {
  return stdinSource();
}
