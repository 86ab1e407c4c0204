// Runs every scenario in testdata/: each command's output must equal the
// golden output below it. REWRITE=1 rewrites the files (review the diff!).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InteractionEnv, parseScenario, renderScenario } from './interaction.js';

const dir = join(import.meta.dirname, 'testdata');
const rewrite = process.env.REWRITE === '1';

describe('raft scenarios', () => {
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort()) {
    it(file.replace(/\.txt$/, '').replace(/_/g, ' '), () => {
      const text = readFileSync(join(dir, file), 'utf8');
      const blocks = parseScenario(text);
      const env = new InteractionEnv();
      const outputs: string[] = [];
      for (const b of blocks) {
        const got = env.run(b.cmd);
        outputs.push(got);
        if (!rewrite) expect(got, `${file}:${b.line}: ${b.cmdLine}`).toBe(b.expected);
      }
      if (rewrite) writeFileSync(join(dir, file), renderScenario(blocks, outputs));
      expect(blocks.length).toBeGreaterThan(0);
    });
  }
});
