// Linux capability names as services carry them (`--cap-add`, `--cap-drop`):
// the names the CLI, the Control API's validation and the agent's OCI config
// all agree on, Docker's default set, and Docker's rule for add/drop/ALL.
import { TsswarmError } from './errors.js';

/** Every capability Linux defines, in bit order (bit n is the n-th entry). */
export const ALL_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const;

/** Docker's default set for a container (moby's caps.DefaultCapabilities). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const KNOWN = new Set<string>(ALL_CAPABILITIES);

/**
 * `net_admin`, `CAP_NET_ADMIN`, ` Net_Admin ` → `CAP_NET_ADMIN`; `all` → `ALL`.
 * An unknown name is refused naming `field` (a flag or a spec field) and the value.
 */
export function normalizeCapability(field: string, value: string): string {
  const up = value.trim().toUpperCase();
  if (up === 'ALL') return 'ALL';
  const name = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!KNOWN.has(name)) {
    throw new TsswarmError(
      'INVALID_ARGUMENT',
      `${field}: unknown capability ${JSON.stringify(value)}: give a Linux capability name such as NET_ADMIN or CAP_SYS_PTRACE (with or without CAP_), or ALL`,
    );
  }
  return name;
}

/** Normalized, duplicates removed, sorted; a list holding ALL is just [ALL] (as the docker CLI stores it). */
export function normalizeCapabilities(field: string, values: readonly string[]): string[] {
  const set = new Set(values.map((v) => normalizeCapability(field, v)));
  return set.has('ALL') ? ['ALL'] : [...set].sort();
}

/**
 * The capabilities a container gets, by Docker's rule: with ALL added, every
 * capability but those dropped; with ALL dropped, only those added; otherwise
 * the defaults less those dropped, plus those added. Bit order, no duplicates.
 */
export function effectiveCapabilities(add: readonly string[] = [], drop: readonly string[] = []): string[] {
  const a = new Set(add.map((c) => normalizeCapability('capabilityAdd', c)));
  const d = new Set(drop.map((c) => normalizeCapability('capabilityDrop', c)));
  let out: Set<string>;
  if (a.has('ALL')) out = new Set(ALL_CAPABILITIES.filter((c) => !d.has(c)));
  else if (d.has('ALL')) out = a;
  else out = new Set([...DEFAULT_CAPABILITIES.filter((c) => !d.has(c)), ...a]);
  return ALL_CAPABILITIES.filter((c) => out.has(c));
}

/** The capability set as the hexadecimal mask /proc/<pid>/status shows (`CapEff:\t00000000a80425fb`). */
export function capabilityMask(caps: readonly string[]): string {
  let m = 0n;
  for (const c of caps) {
    const bit = ALL_CAPABILITIES.indexOf(c as (typeof ALL_CAPABILITIES)[number]);
    if (bit >= 0) m |= 1n << BigInt(bit);
  }
  return m.toString(16).padStart(16, '0');
}
