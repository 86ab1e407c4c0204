// Whether this machine can run a kernel or e2e test: root, and the tools it
// calls. Every root or tool probe in the tests goes through here.
import { execFileSync } from 'node:child_process';

export const isRoot = process.getuid?.() === 0;

/** Whether `bin args` runs and exits 0 (default: `bin --version`). */
export function have(bin: string, args = ['--version']): boolean {
  try {
    execFileSync(bin, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * The title marker of a kernel or e2e test skipped because this host's kernel
 * lacks `feature` (e.g. `needs('ipvs')` gives ` [needs ipvs]`). Run as root,
 * `.ci/run` fails on any skipped kernel or e2e test except those whose title
 * (or a describe's) carries this marker, so use it only for a kernel feature
 * setup cannot install, never for root or a package scripts/setup.sh installs.
 */
export function needs(feature: string): string {
  return ` [needs ${feature}]`;
}
