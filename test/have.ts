// Whether this machine can run a kernel test: root, and the tools it calls.
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
