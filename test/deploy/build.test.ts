// `npm run build` for real: the bundle runs on its own (no tsx), prints the
// version without loading gRPC (commands load their modules lazily), and
// serves help for a lazily loaded command.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Inside the checkout, so the bundle's packages (kept external) resolve from node_modules.
const out = mkdtempSync(join(process.cwd(), '.tmp-tss-build-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

// Run from an empty directory: a command must not leave files where it runs (a bundled module
// that ran its own script main once wrote an image tarball named after the first argument).
const cwd = mkdtempSync(join(tmpdir(), 'tss-build-cwd-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));
const run = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [join(out, 'tsswarm.mjs'), ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });

describe('the build', () => {
  beforeAll(() => {
    const r = spawnSync(process.execPath, ['scripts/build.mjs', '--outdir', out], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
  }, 60_000);

  it('is one entry and a chunk per lazily loaded module', () => {
    expect(existsSync(join(out, 'tsswarm.mjs'))).toBe(true);
    expect(readdirSync(join(out, 'chunks')).filter((f) => f.endsWith('.mjs')).length).toBeGreaterThan(5);
  });

  it('prints the version without loading gRPC', () => {
    const r = run(['version'], { NODE_DEBUG: 'module' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^tsswarm version \d+\.\d+\.\d+\n/);
    // NODE_DEBUG=module traces every CommonJS load (grpc-js is one): none of it may happen for `version`.
    expect(r.stderr).not.toMatch(/grpc-js/);
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('loads a command module when the command runs: help for `service`', () => {
    const r = run(['service', '--help'], { NODE_DEBUG: 'module' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage:  tsswarm service [OPTIONS] COMMAND');
    expect(r.stderr).toMatch(/grpc-js/);
  });

  it('refuses an unknown command with the list of known ones', () => {
    const r = run(['servce']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown command "servce".*Did you mean "service"\?/);
  });
});
