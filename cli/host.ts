// The daemon socket the CLI talks to (--host, else TSSWARM_HOST), and what to
// close when a command ends. Apart from client.ts, so a command that never
// talks to the daemon (version, help) does not load gRPC.
let hostFlag: string | undefined;

/** --host of this command line (undefined: TSSWARM_HOST or the default socket). */
export function setHost(h: string | undefined): void {
  hostFlag = h;
}

export function hostSetting(): string | undefined {
  return hostFlag;
}

const closers = new Set<() => void>();

/** Runs `f` when a command ends (the client registers closing its channels). */
export function onCommandEnd(f: () => void): void {
  closers.add(f);
}

export function commandEnded(): void {
  for (const f of closers) f();
}
