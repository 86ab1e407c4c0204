// deploy/install.sh refuses bad options before touching anything: no root,
// no sandbox. The install on sandbox hosts is in install.kernel.test.ts.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../..', import.meta.url));

describe('deploy/install.sh refuses bad options before touching anything', () => {
  const script = join(repo, 'deploy', 'install.sh');
  const run = (...args: string[]) => spawnSync('bash', [script, ...args], { encoding: 'utf8' });

  it('an unknown --lb-backend is refused, naming the flag and the choices', () => {
    const r = run('--lb-backend', 'pf');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('--lb-backend must be auto, nftables, iptables or ipvs (got "pf")');
  });

  it('--init and --join together are refused', () => {
    const r = run('--init', '--join', 'SWMTKN-1-x', '10.0.0.1:4242');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('--init and --join exclude each other');
  });

  it('a relative --prefix is refused', () => {
    const r = run('--prefix', 'usr/local');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('--prefix must be an absolute path (got "usr/local")');
  });
});
