// `npm run chaos -- --minutes M --seed S [--clients N] [--keep]`: one chaos run
// on a fresh sandbox (run.ts); prints ops, faults, violations and the seed
// that replays the same nemesis schedule. Exit status 1 on any violation.
import { parseArgs } from 'node:util';
import { Sandbox } from '../../deploy/sandbox/index.js';
import { runChaos, summary } from './run.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '2' },
      seed: { type: 'string' },
      clients: { type: 'string' },
      keep: { type: 'boolean', default: false },
    },
  });
  const minutes = Number(values.minutes);
  if (!(minutes > 0)) throw new Error(`--minutes must be a number > 0 (got "${values.minutes}")`);
  const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a whole number ≥ 0 (got "${values.seed}")`);
  const clients = values.clients === undefined ? undefined : Number(values.clients);
  if (clients !== undefined && !(Number.isInteger(clients) && clients >= 1))
    throw new Error(`--clients must be a whole number ≥ 1 (got "${values.clients}")`);
  const root = `/tmp/tss-chaos-${process.pid}`;
  // Interrupted: the sandbox goes too (its namespaces, daemons and containers), unless --keep.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`chaos: ${sig}: removing the sandbox at ${root} (seed ${seed})`);
      const done = (): never => process.exit(130);
      if (values.keep) done();
      new Sandbox({ root }).down().then(done, done);
    });
  }
  const r = await runChaos({ minutes, seed, clients, keep: values.keep, root });
  console.log(summary(r));
  process.exitCode = r.violations.length ? 1 : 0;
}

main().catch((e: unknown) => {
  console.error((e as Error).message);
  process.exit(2);
});
