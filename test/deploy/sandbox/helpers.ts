// Shared by the sandbox tests: names that cannot collide with a real sandbox
// (prefix tss-t<rand>-, directory /tmp/tss-sbtest-<pid>-<tag>), the stand-in
// daemon, and a check of what a test left behind, with a last-resort cleanup.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DaemonCommand, Sandbox } from '../../../deploy/sandbox/index.js';
import { have, isRoot } from '../../have.js';

export const fakeDaemon = fileURLToPath(new URL('./fixtures/fake-daemon.mjs', import.meta.url));

/** Why the real-kernel tests cannot run here, or '' when they can. */
export function kernelBlocker(): string {
  if (!isRoot) return 'network namespaces need root';
  if (!have('ip', ['-V'])) return 'the ip command (iproute2) is missing';
  if (!have('nsenter')) return 'the nsenter command (util-linux) is missing';
  if (!have('nft')) return 'the nft command (nftables) is missing';
  return '';
}

export interface TestNames {
  /** `tss-t1a2b-`: namespaces tss-t1a2b-ul, tss-t1a2b-h1, ... */
  prefix: string;
  root: string;
}

export function testNames(tag: string): TestNames {
  return {
    prefix: `tss-t${randomBytes(2).toString('hex')}-`,
    root: `/tmp/tss-sbtest-${process.pid}-${tag}`,
  };
}

/** The stand-in daemon; hosts named in `ignoreTerm` ignore SIGTERM. */
export function fakeDaemonCommand(ignoreTerm: readonly number[] = []): DaemonCommand {
  return (h) => ({
    argv: [process.execPath, fakeDaemon, 'serve', h.name, h.socketPath, h.addr, '4242'],
    env: ignoreTerm.includes(h.index) ? { FAKE_IGNORE_TERM: '1' } : undefined,
  });
}

/** What `from` gets when it connects to `to`'s daemon port over the underlay. */
export async function connect(sb: Sandbox, from: string, to: string, timeoutMs = 1500): Promise<string> {
  const r = await sb.execCapture(from, [process.execPath, fakeDaemon, 'connect', sb.host(to).addr, '4242', String(timeoutMs)]);
  return r.stdout.trim();
}

export interface Leftovers {
  namespaces: string[];
  /** Processes whose command line mentions the test directory (the stand-in daemons do). */
  processes: number[];
  rootExists: boolean;
}

export function leftovers({ prefix, root }: TestNames): Leftovers {
  const namespaces = existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(prefix)) : [];
  const processes = readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(root);
      } catch {
        return false;
      }
    });
  return { namespaces, processes, rootExists: existsSync(root) };
}

/** For afterAll, after the code under test had its chance: removes whatever is still there. */
export function forceCleanup(names: TestNames): void {
  const left = leftovers(names);
  for (const pid of left.processes) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (const ns of left.namespaces) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // reported by the test's own assertions
    }
  }
  rmSync(names.root, { recursive: true, force: true });
}
