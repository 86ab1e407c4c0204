// `npm run sim -- --seeds N --from S [--verbose] [--fault-ms MS]`: runs the
// Raft simulation over a range of seeds and prints one line per failing seed
// with the command that replays it.
// `npm run sim -- --mutants [--seeds N] [--only NAME]`: the mutation harness;
// runs the simulation on each mutant of manager/raft/mutants.ts until a seed
// fails (killed) or N seeds pass (survived), and prints the score killed/total.
import { MUTANTS, MUTANT_NAMES, type MutantName } from '../../manager/raft/mutants.js';
import { hunt } from './mutation.js';
import { runSeed } from './sim.js';

function flag(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0) {
    console.error(`--${name} must be a whole number ≥ 0 (got "${process.argv[i + 1] ?? ''}")`);
    process.exit(2);
  }
  return v;
}

function only(): MutantName[] {
  const i = process.argv.indexOf('--only');
  if (i < 0) return MUTANT_NAMES;
  const names = (process.argv[i + 1] ?? '').split(',');
  for (const n of names) {
    if (!(n in MUTANTS)) {
      console.error(`--only must name mutants, comma-separated (got "${n}"); they are: ${MUTANT_NAMES.join(', ')}`);
      process.exit(2);
    }
  }
  return names as MutantName[];
}

const faultMs = flag('fault-ms', 6000);
const verbose = process.argv.includes('--verbose');

if (process.argv.includes('--mutants')) {
  const seeds = flag('seeds', 300);
  const from = flag('from', 1);
  const t0 = Date.now();
  let killed = 0;
  const names = only();
  for (const name of names) {
    const r = await hunt(name, { from, seeds, faultMs });
    if (r.killedBy !== undefined) {
      killed++;
      console.log(
        `${name}: killed by seed ${r.killedBy} after ${r.seedsRun} seed(s), ${(r.elapsedMs / 1000).toFixed(1)} s: ${r.error!.split('\n')[0]}`,
      );
      console.log(`  replay: npm run sim -- --mutants --only ${name} --from ${r.killedBy} --seeds 1`);
    } else {
      console.log(`${name}: SURVIVED ${seeds} seeds (${(r.elapsedMs / 1000).toFixed(1)} s): ${MUTANTS[name]}`);
    }
  }
  console.log(`mutation score: ${killed}/${names.length} killed within ${seeds} seeds each (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  process.exit(killed === names.length ? 0 : 1);
}

const seeds = flag('seeds', 100);
const from = flag('from', 1);
let failed = 0;
const t0 = Date.now();
let events = 0;
let ops = 0;
for (let s = from; s < from + seeds; s++) {
  const r = await runSeed({ seed: s, faultMs, verbose });
  events += r.events;
  ops += r.ops;
  if (!r.ok) {
    failed++;
    console.log(`seed ${s} FAILED: ${r.error}`);
    console.log(`  replay: npm run sim -- --seeds 1 --from ${s} --fault-ms ${faultMs} --verbose`);
  } else if (verbose || seeds <= 10) {
    console.log(
      `seed ${s} ok: ${r.events} events, ${r.ops} client ops, ${r.committed} entries committed, ${r.leaders} terms with a leader, ${r.crashes} crashes, ${r.confChanges} conf changes, ${r.transfers} transfers (${r.elapsedMs} ms)`,
    );
  }
}
console.log(
  `${seeds - failed}/${seeds} seeds passed (${from}..${from + seeds - 1}), ${events} events, ${ops} client ops, ${((Date.now() - t0) / 1000).toFixed(1)} s`,
);
process.exit(failed > 0 ? 1 : 0);
