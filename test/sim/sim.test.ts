// The deterministic cluster simulation in CI: a range of seeds, each checking
// safety after every event, linearizability of the clients' history, and
// liveness once faults heal. A failure names the seed and how to replay it.
import { describe, expect, it } from 'vitest';
import { runSeed } from './sim.js';

const FROM = Number(process.env.SIM_FROM ?? 1);
const SEEDS = Number(process.env.SIM_SEEDS ?? 300);
const CHUNK = 25;

describe('raft cluster simulation', () => {
  for (let c = FROM; c < FROM + SEEDS; c += CHUNK) {
    const last = Math.min(c + CHUNK, FROM + SEEDS) - 1;
    it(`seeds ${c}..${last} keep Raft's safety properties, a linearizable history, and liveness after healing`, async () => {
      const failures: string[] = [];
      let committed = 0;
      for (let s = c; s <= last; s++) {
        const r = await runSeed({ seed: s });
        committed += r.committed;
        if (!r.ok) failures.push(`seed ${s}: ${r.error}\n  replay: npm run sim -- --seeds 1 --from ${s} --verbose`);
      }
      expect(failures.join('\n')).toBe('');
      // The runs did real work: entries were committed.
      expect(committed).toBeGreaterThan(0);
    });
  }
});

it('the same seed replays the same run', async () => {
  const a = await runSeed({ seed: 7, faultMs: 2000 });
  const b = await runSeed({ seed: 7, faultMs: 2000 });
  expect({ ...a, elapsedMs: 0 }).toEqual({ ...b, elapsedMs: 0 });
});
