// `<root>/state.json`: the sandbox as planned (hosts, names, daemon commands)
// and as running (daemon pids). Written before anything is created and after
// every daemon start, atomically, so `down` from a fresh process finds it all.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsswarmError } from '../../lib/errors.js';
import type { SandboxHost } from './layout.js';

export interface DaemonRecord {
  argv: string[];
  /** Added to the sandbox process's environment (TSSWARM_HOST among them). */
  env: Record<string, string>;
  /** The last daemon started, or null before the first start. */
  pid: number | null;
  /** /proc/PID/stat starttime: a recorded pid names our daemon only while it matches. */
  startTime: string | null;
  startedAt: string | null;
}

export interface HostRecord extends SandboxHost {
  daemon: DaemonRecord;
}

export interface SandboxState {
  version: 1;
  root: string;
  prefix: string;
  subnet: string;
  underlay: { namespace: string; bridge: string };
  createdAt: string;
  hosts: HostRecord[];
}

export const stateFile = (root: string): string => join(root, 'state.json');

/** The recorded state, or undefined when there is no state file. */
export function readState(root: string): SandboxState | undefined {
  let text: string;
  try {
    text = readFileSync(stateFile(root), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let doc: Partial<SandboxState>;
  try {
    doc = JSON.parse(text) as Partial<SandboxState>;
  } catch (err) {
    throw new TsswarmError(
      'FAILED_PRECONDITION',
      `${stateFile(root)} is not valid JSON (${(err as Error).message}): run \`tsswarm sandbox down\` to remove the sandbox`,
    );
  }
  if (doc.version !== 1 || !Array.isArray(doc.hosts) || typeof doc.prefix !== 'string' || !doc.underlay) {
    throw new TsswarmError(
      'FAILED_PRECONDITION',
      `${stateFile(root)} is not a version 1 sandbox state file: run \`tsswarm sandbox down\` to remove the sandbox`,
    );
  }
  return doc as SandboxState;
}

export function writeState(state: SandboxState): void {
  mkdirSync(state.root, { recursive: true });
  const tmp = `${stateFile(state.root)}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, stateFile(state.root));
}
