// `npm run sim -- --seeds N --from S [--verbose] [--fault-ms MS]`: runs the
// Raft simulation over a range of seeds and prints one line per failing seed
// with the command that replays it.
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

const seeds = flag('seeds', 100);
const from = flag('from', 1);
const faultMs = flag('fault-ms', 6000);
const verbose = process.argv.includes('--verbose');
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
console.log(`${seeds - failed}/${seeds} seeds passed (${from}..${from + seeds - 1}), ${events} events, ${ops} client ops, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(failed > 0 ? 1 : 0);
