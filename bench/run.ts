// `npm run bench -- NAME`: runs one benchmark by name.
const benches: Record<string, () => Promise<void>> = {
  raft: async () => (await import('./raft.js')).main(),
  failover: async () => (await import('./failover.js')).main(),
  schedule: async () => (await import('./schedule.js')).main(),
  converge: async () => (await import('./converge.js')).main(),
  lb: async () => (await import('./lb.js')).main(),
  overlay: async () => (await import('./overlay.js')).main(),
  cli: async () => (await import('./cli.js')).main(),
  memory: async () => (await import('./cli.js')).memoryMain(),
  reads: async () => (await import('./reads.js')).main(),
  hollow: async () => (await import('./hollow.js')).main(),
};

const name = process.argv[2];
if (!name || !benches[name]) {
  console.error(`usage: npm run bench -- NAME, where NAME is one of: ${Object.keys(benches).join(', ')}${name ? ` (got "${name}")` : ''}`);
  process.exit(2);
}
await benches[name]!();
