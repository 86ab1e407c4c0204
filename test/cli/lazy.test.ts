// The top-level commands load their modules lazily: what `tsswarm --help` lists
// without loading them must be what each module says of itself, and help for
// a lazy command works once `tsswarm help` has loaded it.
import { describe, expect, it } from 'vitest';
import type { LazyCommand } from '../../cli/command.js';
import { commands, main } from '../../cli/main.js';

function capture() {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => void (out += s) }, stderr: { write: (s: string) => void (err += s) } },
    out: () => out,
    err: () => err,
  };
}

describe('lazy top-level commands', () => {
  it('list the same name and summary as the command their module builds', async () => {
    const lazy = commands.filter((c): c is LazyCommand => 'load' in c);
    expect(lazy.map((c) => c.name)).toEqual([
      'daemon',
      'init',
      'join',
      'join-token',
      'leave',
      'info',
      'unlock',
      'unlock-key',
      'swarm',
      'node',
      'service',
      'network',
      'secret',
      'config',
      'stack',
      'image',
      'login',
      'logout',
      'ca',
      'sandbox',
    ]);
    for (const c of lazy) {
      const real = await c.load();
      expect({ name: real.name, summary: real.summary }).toEqual({ name: c.name, summary: c.summary });
    }
  });

  it('`tsswarm help service` and `tsswarm service --help` print the loaded command’s help', async () => {
    const a = capture();
    expect(await main(['help', 'service'], a.io)).toBe(0);
    const b = capture();
    expect(await main(['service', '--help'], b.io)).toBe(0);
    expect(a.out()).toContain('Usage:  tsswarm service [OPTIONS] COMMAND');
    expect(a.out()).toBe(b.out());
  });
});
