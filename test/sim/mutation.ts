// The mutation harness: turns one mutant of manager/raft/mutants.ts on, runs
// the simulation seed after seed until one fails (the mutant is killed) or the
// budget runs out (it survived), and turns it off again whatever happens.
import { type MutantName, setActiveMutant } from '../../manager/raft/mutants.js';
import { runSeed } from './sim.js';

export interface HuntResult {
  mutant: MutantName;
  /** The first seed whose run failed, if any. */
  killedBy?: number;
  error?: string;
  seedsRun: number;
  elapsedMs: number;
}

export async function hunt(
  mutant: MutantName,
  o: { from?: number; seeds: number; faultMs?: number; verbose?: boolean },
): Promise<HuntResult> {
  const from = o.from ?? 1;
  const t0 = Date.now();
  setActiveMutant(mutant);
  try {
    for (let s = from; s < from + o.seeds; s++) {
      const r = await runSeed({ seed: s, faultMs: o.faultMs, verbose: o.verbose });
      if (!r.ok) return { mutant, killedBy: s, error: r.error, seedsRun: s - from + 1, elapsedMs: Date.now() - t0 };
    }
    return { mutant, seedsRun: o.seeds, elapsedMs: Date.now() - t0 };
  } finally {
    setActiveMutant(null);
  }
}
