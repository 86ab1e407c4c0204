// `tsswarm sandbox ...` (cli/sandbox.ts) without the kernel: its help and the
// flag checks made before anything is touched. The verbs on the real kernel
// are in cli.kernel.test.ts.
import { describe, expect, it } from 'vitest';
import type { Io } from '../../../cli/command.js';
import { sandboxCommand } from '../../../cli/sandbox.js';

function capture(): Io & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, out: () => out, err: () => err };
}

describe('tsswarm sandbox help', () => {
  it('lists every sandbox verb', async () => {
    const io = capture();
    expect(await sandboxCommand.run(['--help'], io, 'tsswarm sandbox')).toBe(0);
    for (const verb of ['up', 'down', 'ls', 'stop', 'start', 'cut', 'heal', 'exec'])
      expect(io.out()).toMatch(new RegExp(`^  ${verb} `, 'm'));
  });

  it('up --help shows the defaults and the environment variables', async () => {
    const io = capture();
    await sandboxCommand.run(['up', '--help'], io, 'tsswarm sandbox');
    expect(io.out()).toContain('Number of manager hosts (default 3)');
    expect(io.out()).toContain('Number of worker hosts (default 2)');
    expect(io.out()).toContain('TSSWARM_SANDBOX_DIR');
  });

  it('up refuses a bad --managers before touching anything', async () => {
    await expect(sandboxCommand.run(['up', '--managers', 'x'], capture(), 'tsswarm sandbox')).rejects.toThrow(
      '--managers must be a whole number ≥ 0 (got "x")',
    );
  });
});
