// Builds a container's OCI `linux.seccomp` from our default profile
// (default.json, kept as data so a review sees the syscall list itself): the
// rules that fit the container's capabilities, the host's architecture and
// kernel. Pure; the caller passes what it knows of the host.
import { TsswarmError } from '../../../lib/errors.js';
import data from './default.json' with { type: 'json' };

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: 'SCMP_CMP_EQ' | 'SCMP_CMP_NE' | 'SCMP_CMP_LT' | 'SCMP_CMP_LE' | 'SCMP_CMP_GT' | 'SCMP_CMP_GE' | 'SCMP_CMP_MASKED_EQ';
}

/** One rule of default.json: syscalls allowed (or failed with `errnoRet`), and when the rule applies. */
export interface ProfileRule {
  why: string;
  allow?: string[];
  errno?: string[];
  errnoRet?: number;
  args?: SeccompArg[];
  ifCap?: string;
  unlessCap?: string;
  arch?: string[];
  minKernel?: string;
}

export interface ProfileData {
  defaultAction: string;
  defaultErrnoRet: number;
  architectures: Record<string, string[]>;
  rules: ProfileRule[];
}

/** OCI runtime-spec `linux.seccomp`. */
export interface LinuxSeccomp {
  defaultAction: string;
  defaultErrnoRet: number;
  architectures: string[];
  syscalls: { names: string[]; action: string; errnoRet?: number; args?: SeccompArg[] }[];
}

export const DEFAULT_PROFILE = data as ProfileData;

/** `6.18.44-fc-v1300` ≥ `4.8`? Unparsable releases count as new (a rule behind minKernel is then kept). */
export function kernelAtLeast(release: string, min: string): boolean {
  const have = /^(\d+)\.(\d+)/.exec(release);
  const want = /^(\d+)\.(\d+)/.exec(min);
  if (!want) throw new TsswarmError('INTERNAL', `seccomp profile: minKernel ${JSON.stringify(min)} is not MAJOR.MINOR`);
  if (!have) return true;
  const [hM, hm, wM, wm] = [have[1], have[2], want[1], want[2]].map(Number) as [number, number, number, number];
  return hM > wM || (hM === wM && hm >= wm);
}

/**
 * The seccomp section for a container holding `caps` (its bounding set, as
 * Docker decides capability rules), on a host of Node architecture `arch`
 * (`x64`, `arm64`) running kernel `kernelRelease`.
 */
export function seccompFor(
  caps: readonly string[],
  arch: string,
  kernelRelease: string,
  profile: ProfileData = DEFAULT_PROFILE,
): LinuxSeccomp {
  const architectures = profile.architectures[arch];
  if (!architectures) {
    throw new TsswarmError(
      'FAILED_PRECONDITION',
      `the default seccomp profile has no rules for architecture ${arch} (it covers ${Object.keys(profile.architectures).join(', ')}): run the service with --security-opt seccomp=unconfined`,
    );
  }
  const held = new Set(caps);
  const syscalls: LinuxSeccomp['syscalls'] = [];
  for (const r of profile.rules) {
    if (r.ifCap && !held.has(r.ifCap)) continue;
    if (r.unlessCap && held.has(r.unlessCap)) continue;
    if (r.arch && !r.arch.includes(arch)) continue;
    if (r.minKernel && !kernelAtLeast(kernelRelease, r.minKernel)) continue;
    const args = r.args?.length ? { args: r.args.map((a) => ({ ...a })) } : {};
    if (r.allow?.length) syscalls.push({ names: [...r.allow], action: 'SCMP_ACT_ALLOW', ...args });
    if (r.errno?.length)
      syscalls.push({ names: [...r.errno], action: 'SCMP_ACT_ERRNO', errnoRet: r.errnoRet ?? profile.defaultErrnoRet, ...args });
  }
  return { defaultAction: profile.defaultAction, defaultErrnoRet: profile.defaultErrnoRet, architectures: [...architectures], syscalls };
}
