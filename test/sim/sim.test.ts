// The deterministic cluster simulation in CI: a range of seeds, each checking
// safety after every event, the durability of every vote and ack across
// crashes, a decided linearizable history, and liveness once faults heal; and
// the mutation harness on a few mutants, which the same checks must kill.
// A failure names the seed and how to replay it.
import { describe, expect, it } from 'vitest';
import { MUTANT_NAMES, type MutantName, activeMutant } from '../../manager/raft/mutants.js';
import { hunt } from './mutation.js';
import { runSeed } from './sim.js';

const FROM = Number(process.env.SIM_FROM ?? 1);
const SEEDS = Number(process.env.SIM_SEEDS ?? 100);
const CHUNK = 25;

describe('raft cluster simulation', () => {
  for (let c = FROM; c < FROM + SEEDS; c += CHUNK) {
    const last = Math.min(c + CHUNK, FROM + SEEDS) - 1;
    it(`seeds ${c}..${last} keep Raft's safety properties, every durable promise, a linearizable history, and liveness after healing`, async () => {
      const failures: string[] = [];
      let committed = 0;
      let crashes = 0;
      for (let s = c; s <= last; s++) {
        const r = await runSeed({ seed: s });
        committed += r.committed;
        crashes += r.crashes;
        if (!r.ok) failures.push(`seed ${s}: ${r.error}\n  replay: npm run sim -- --seeds 1 --from ${s} --verbose`);
      }
      expect(failures.join('\n')).toBe('');
      // The runs did real work under faults: entries were committed, members crashed.
      expect(committed).toBeGreaterThan(0);
      expect(crashes).toBeGreaterThan(0);
    }, 120_000);
  }
});

it('the same seed replays the same run', async () => {
  const a = await runSeed({ seed: 7, faultMs: 2000 });
  const b = await runSeed({ seed: 7, faultMs: 2000 });
  expect({ ...a, elapsedMs: 0 }).toEqual({ ...b, elapsedMs: 0 });
});

describe('mutation harness', () => {
  // Each of these dies within a few seeds (the full run, `npm run sim -- --mutants`, takes all of them).
  const cases: [MutantName, string][] = [
    ['commit-by-counting', 'leader completeness'],
    ['ack-before-fsync', 'durability'],
    ['vote-not-durable', 'durability'],
  ];
  for (const [name, check] of cases) {
    it(`the simulation kills the ${name} mutant through its ${check} check`, async () => {
      const r = await hunt(name, { seeds: 10 });
      expect(r.killedBy, `${name} survived 10 seeds`).toBeDefined();
      expect(r.error).toContain(check);
      expect(activeMutant).toBeNull();
    }, 60_000);
  }

  it('lists at least ten mutants', () => {
    expect(MUTANT_NAMES.length).toBeGreaterThanOrEqual(10);
  });
});
