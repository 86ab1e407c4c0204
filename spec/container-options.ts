// The container options Docker users reach for: --sysctl, --ulimit, --dns*,
// --host, --group, --oom-score-adj and --generic-resource. One parser and one
// check per option, shared by the CLI, the Control API's validation, the
// Engine API and compose, so every way in refuses the same values with the
// same words. Pure.
import { isIP } from 'node:net';
import { UsageError } from '../lib/errors.js';
import type { ContainerSpec, GenericResource, Ulimit } from '../proto/gen/objects.js';

/** Bounds of what these options hold (also in SPEC_LIMITS). */
export const OPTION_LIMITS = {
  sysctls: 100,
  sysctlKeyLength: 256,
  sysctlValueLength: 4096,
  ulimits: 32,
  /** glibc reads three nameservers; more would be stored and never used. */
  dnsServers: 3,
  /** glibc before 2.26 read six search domains; we keep to that. */
  dnsSearch: 6,
  dnsOptions: 16,
  dnsOptionLength: 64,
  hosts: 1000,
  hostEntryLength: 1024,
  groups: 100,
  groupLength: 256,
  oomScoreAdj: 1000,
  genericResources: 32,
  genericKindLength: 64,
  /** A discrete generic resource count (a node's or a task's). */
  genericValue: 1_000_000,
} as const;

const bad = (field: string, message: string): UsageError => new UsageError(`${field}: ${message}`, { field });

// ------------------------------------------------------------------ sysctl

/** The sysctls Docker lets a container set: those the kernel keeps per IPC, network or mqueue namespace. */
const NAMESPACED_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);
const NAMESPACED_PREFIXES = ['net.', 'fs.mqueue.'];
const SYSCTL_KEY_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_@:+-]+)+$/;

/** Whether a sysctl lives in a namespace of the container's own (so setting it leaves the host alone). */
export function isNamespacedSysctl(key: string): boolean {
  return NAMESPACED_SYSCTLS.has(key) || NAMESPACED_PREFIXES.some((p) => key.startsWith(p));
}

export function checkSysctl(field: string, key: string, value: string): void {
  if (key.length > OPTION_LIMITS.sysctlKeyLength)
    throw bad(field, `the key is ${key.length} characters long: at most ${OPTION_LIMITS.sysctlKeyLength} are allowed`);
  if (!SYSCTL_KEY_RE.test(key))
    throw bad(field, `"${key}" is not a sysctl name: write it with dots, e.g. net.ipv4.ip_local_port_range=1024 65000`);
  if (!isNamespacedSysctl(key))
    throw bad(
      field,
      `"${key}" is not namespaced: it would change the whole host, so only net.*, fs.mqueue.*, kernel.shm*, kernel.msg* and kernel.sem can be set`,
    );
  const iface = /^net\.ipv[46]\.(?:conf|neigh)\.([^.]+)\./.exec(key)?.[1];
  if (iface !== undefined && !['all', 'default', 'lo'].includes(iface))
    throw bad(
      field,
      `"${key}" names the interface ${iface}, which does not exist yet when the container is made (a task's interfaces are added after): use all or default in its place, e.g. ${key.replace(`.${iface}.`, '.all.')}`,
    );
  if (value.length > OPTION_LIMITS.sysctlValueLength)
    throw bad(field, `the value of ${key} is ${value.length} characters long: at most ${OPTION_LIMITS.sysctlValueLength} are allowed`);
  if (/[\n\0]/.test(value)) throw bad(field, `the value of ${key} holds a newline or NUL: give one line`);
}

/** `KEY=VALUE` → the pair, checked. */
export function parseSysctl(field: string, v: string): [string, string] {
  const eq = v.indexOf('=');
  if (eq <= 0) throw bad(field, `"${v}" is not KEY=VALUE: write e.g. ${field} net.core.somaxconn=1024`);
  const key = v.slice(0, eq).trim();
  const value = v.slice(eq + 1);
  checkSysctl(field, key, value);
  return [key, value];
}

export function checkSysctls(field: string, m: Readonly<Record<string, string>>): void {
  const keys = Object.keys(m);
  if (keys.length > OPTION_LIMITS.sysctls) throw bad(field, `has ${keys.length} entries: at most ${OPTION_LIMITS.sysctls} are allowed`);
  for (const k of keys) checkSysctl(`${field}.${k}`, k, m[k]!);
}

// ------------------------------------------------------------------ ulimit

/** Docker's ulimit names and the rlimit each one sets. */
export const ULIMIT_RESOURCES: Readonly<Record<string, string>> = {
  core: 'RLIMIT_CORE',
  cpu: 'RLIMIT_CPU',
  data: 'RLIMIT_DATA',
  fsize: 'RLIMIT_FSIZE',
  locks: 'RLIMIT_LOCKS',
  memlock: 'RLIMIT_MEMLOCK',
  msgqueue: 'RLIMIT_MSGQUEUE',
  nice: 'RLIMIT_NICE',
  nofile: 'RLIMIT_NOFILE',
  nproc: 'RLIMIT_NPROC',
  rss: 'RLIMIT_RSS',
  rtprio: 'RLIMIT_RTPRIO',
  rttime: 'RLIMIT_RTTIME',
  sigpending: 'RLIMIT_SIGPENDING',
  stack: 'RLIMIT_STACK',
};
/** -1 stands for unlimited (RLIM_INFINITY), as in Docker's `memlock=-1:-1`. */
export const ULIMIT_UNLIMITED = -1;

const limitOrder = (n: number): number => (n === ULIMIT_UNLIMITED ? Number.POSITIVE_INFINITY : n);

export function checkUlimit(field: string, u: Ulimit): void {
  if (!(u.name in ULIMIT_RESOURCES))
    throw bad(field, `"${u.name}" is not a ulimit name: use one of ${Object.keys(ULIMIT_RESOURCES).join(', ')}`);
  for (const [k, n] of [
    ['soft', u.soft],
    ['hard', u.hard],
  ] as const) {
    if (!(Number.isSafeInteger(n) && (n >= 0 || n === ULIMIT_UNLIMITED)))
      throw bad(field, `the ${k} limit of ${u.name} must be a whole number ≥ 0, or -1 for unlimited (got ${n})`);
  }
  if (limitOrder(u.soft) > limitOrder(u.hard))
    throw bad(
      field,
      `the soft limit of ${u.name} (${u.soft}) is above its hard limit (${u.hard}): write ${u.name}=SOFT:HARD with SOFT ≤ HARD`,
    );
}

/** `NAME=SOFT[:HARD]` (HARD defaults to SOFT). */
export function parseUlimit(field: string, v: string): Ulimit {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(v.trim());
  if (!m) throw bad(field, `"${v}" is not NAME=SOFT[:HARD]: write e.g. ${field} nofile=1024:2048`);
  const u: Ulimit = { name: m[1]!, soft: Number(m[2]), hard: Number(m[3] ?? m[2]) };
  checkUlimit(field, u);
  return u;
}

export const formatUlimit = (u: Ulimit): string => `${u.name}=${u.soft}:${u.hard}`;

export function checkUlimits(field: string, us: readonly Ulimit[]): void {
  if (us.length > OPTION_LIMITS.ulimits) throw bad(field, `has ${us.length} entries: at most ${OPTION_LIMITS.ulimits} are allowed`);
  const seen = new Set<string>();
  us.forEach((u, i) => {
    checkUlimit(`${field}[${i}]`, u);
    if (seen.has(u.name)) throw bad(`${field}[${i}]`, `${u.name} is given twice: give each ulimit once`);
    seen.add(u.name);
  });
}

// ------------------------------------------------------------------ dns

export function checkDnsServer(field: string, v: string): void {
  if (!isIP(v)) throw bad(field, `"${v}" is not an IP address: give a nameserver's address, e.g. 192.0.2.53`);
}

const DOMAIN_RE = /^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;

/** A search domain; `.` alone means no search domain, as in Docker. */
export function checkDnsSearch(field: string, v: string): void {
  if (v === '.') return;
  if (v.length > 253 || !DOMAIN_RE.test(v))
    throw bad(field, `"${v}" is not a domain name: give e.g. example.com (letters, digits and "-" in dot-separated labels)`);
}

/** A resolv.conf option (`ndots:2`, `timeout:1`, `edns0`): one word. */
export function checkDnsOption(field: string, v: string): void {
  if (!v || v.length > OPTION_LIMITS.dnsOptionLength || !/^[A-Za-z0-9_.:-]+$/.test(v))
    throw bad(field, `"${v}" is not a resolver option: give one word such as ndots:2, timeout:1 or edns0`);
}

export function checkDnsConfig(field: string, d: { nameservers: string[]; search: string[]; options: string[] }): void {
  const L = OPTION_LIMITS;
  const count = (k: string, n: number, max: number, why: string): void => {
    if (n > max) throw bad(`${field}.${k}`, `has ${n} entries: at most ${max} are allowed (${why})`);
  };
  count('nameservers', d.nameservers.length, L.dnsServers, 'the resolver reads three');
  count('search', d.search.length, L.dnsSearch, 'resolvers read six');
  count('options', d.options.length, L.dnsOptions, 'a resolv.conf line');
  d.nameservers.forEach((x, i) => checkDnsServer(`${field}.nameservers[${i}] (--dns)`, x));
  d.search.forEach((x, i) => checkDnsSearch(`${field}.search[${i}] (--dns-search)`, x));
  d.options.forEach((x, i) => checkDnsOption(`${field}.options[${i}] (--dns-option)`, x));
}

// ------------------------------------------------------------------ hosts

const HOSTNAME_RE = /^[^\s#:]+$/;

/**
 * Docker's `--host HOST:IP` (or `HOST=IP`; an IPv6 address may be in
 * brackets) → the stored entry, a hosts(5) line `IP HOST` as the Engine API
 * keeps it.
 */
export function parseExtraHost(field: string, v: string): string {
  let eq = v.indexOf('=');
  if (eq < 0) eq = v.indexOf(':');
  const host = eq < 0 ? '' : v.slice(0, eq).trim();
  let ip = eq < 0 ? '' : v.slice(eq + 1).trim();
  if (!host || !HOSTNAME_RE.test(host)) throw bad(field, `"${v}" is not HOST:IP: write e.g. ${field} db.local:10.0.0.5`);
  if (ip === 'host-gateway')
    throw bad(field, `host-gateway is not supported (a service's tasks have no fixed gateway address): give the address itself`);
  if (ip.length > 2 && ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (!isIP(ip)) throw bad(field, `"${ip}" in "${v}" is not an IP address: write HOST:IP, e.g. db.local:10.0.0.5`);
  return `${ip} ${host}`;
}

/** One stored hosts line: `IP NAME [ALIAS...]`. */
export function checkHostEntry(field: string, entry: string): void {
  if (entry.length > OPTION_LIMITS.hostEntryLength)
    throw bad(field, `is ${entry.length} characters long: at most ${OPTION_LIMITS.hostEntryLength} are allowed`);
  const [ip, ...names] = entry.trim().split(/[ \t]+/);
  if (!ip || !isIP(ip) || names.length === 0 || names.some((n) => !HOSTNAME_RE.test(n)) || /[\n\0]/.test(entry))
    throw bad(field, `"${entry}" is not a hosts line "IP HOSTNAME [ALIAS...]": give --host HOST:IP`);
}

/** `--host-rm HOST` (every entry of that name) or `HOST:IP` (that mapping): the entries left. */
export function removeHosts(field: string, entries: readonly string[], rm: string): string[] {
  const hasIp = /[:=]/.test(rm);
  const target = hasIp ? parseExtraHost(field, rm).split(' ') : [undefined, rm.trim()];
  const [ip, name] = target as [string | undefined, string];
  const out: string[] = [];
  for (const e of entries) {
    const [eip, ...names] = e.trim().split(/[ \t]+/);
    if (ip !== undefined && eip !== ip) {
      out.push(e);
      continue;
    }
    const left = names.filter((n) => n !== name);
    if (left.length === names.length) out.push(e);
    else if (left.length) out.push([eip, ...left].join(' '));
  }
  return out;
}

// ------------------------------------------------------------------ groups, oom score

export function checkGroup(field: string, g: string): void {
  if (!g || g.length > OPTION_LIMITS.groupLength || !/^[^\s:,]+$/.test(g))
    throw bad(field, `"${g}" is not a group: give a group name from the image's /etc/group, or a numeric gid`);
  if (/^\d+$/.test(g) && Number(g) > 0xffff_fffe) throw bad(field, `gid ${g} is out of range: at most 4294967294`);
}

export function checkOomScoreAdj(field: string, n: number): void {
  if (!(Number.isInteger(n) && n >= -OPTION_LIMITS.oomScoreAdj && n <= OPTION_LIMITS.oomScoreAdj))
    throw bad(field, `must be a whole number from -1000 to 1000 (got ${n})`);
}

// ------------------------------------------------------------------ generic resources

const KIND_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function checkGenericResource(field: string, r: GenericResource): void {
  if (!KIND_RE.test(r.kind) || r.kind.length > OPTION_LIMITS.genericKindLength)
    throw bad(field, `"${r.kind}" is not a resource kind: use letters, digits, "_", "." and "-", e.g. gpu`);
  if (!(Number.isInteger(r.value) && r.value >= 1 && r.value <= OPTION_LIMITS.genericValue))
    throw bad(field, `${r.kind} must be a whole number from 1 to ${OPTION_LIMITS.genericValue} (got ${r.value})`);
}

/**
 * `KIND=VALUE` with a count (`gpu=2`). Docker's named resources (`gpu=UUID`)
 * are refused: nodes here advertise counts only.
 */
export function parseGenericResource(field: string, v: string): GenericResource {
  const eq = v.indexOf('=');
  if (eq <= 0) throw bad(field, `"${v}" is not KIND=COUNT: write e.g. ${field} gpu=2`);
  const kind = v.slice(0, eq).trim();
  const value = v.slice(eq + 1).trim();
  if (!/^\d+$/.test(value))
    throw bad(
      field,
      `"${v}": named generic resources (KIND=NAME) are not supported, only counts (discrete resources): write KIND=COUNT, e.g. gpu=2`,
    );
  const r = { kind, value: Number(value) };
  checkGenericResource(field, r);
  return r;
}

export function checkGenericResources(field: string, rs: readonly GenericResource[]): void {
  if (rs.length > OPTION_LIMITS.genericResources)
    throw bad(field, `has ${rs.length} entries: at most ${OPTION_LIMITS.genericResources} are allowed`);
  const seen = new Set<string>();
  rs.forEach((r, i) => {
    checkGenericResource(`${field}[${i}]`, r);
    if (seen.has(r.kind)) throw bad(`${field}[${i}]`, `${r.kind} is given twice: give each kind once`);
    seen.add(r.kind);
  });
}

/** Adds counts of the same kind together (`gpu=1 gpu=2` → `gpu=3`), in first-seen order. */
export function sumGenericResources(rs: readonly GenericResource[]): GenericResource[] {
  const m = new Map<string, number>();
  for (const r of rs) m.set(r.kind, (m.get(r.kind) ?? 0) + r.value);
  return [...m].map(([kind, value]) => ({ kind, value }));
}

// ------------------------------------------------------------------ all of them

/** The options of a container spec, as the Control API receives them. */
export function checkContainerOptions(c: ContainerSpec): void {
  const f = 'spec.task.container';
  checkSysctls(`${f}.sysctls (--sysctl)`, c.sysctls ?? {});
  checkUlimits(`${f}.ulimits (--ulimit)`, c.ulimits ?? []);
  if (c.dnsConfig) checkDnsConfig(`${f}.dnsConfig`, c.dnsConfig);
  const hosts = c.hosts ?? [];
  if (hosts.length > OPTION_LIMITS.hosts)
    throw bad(`${f}.hosts (--host)`, `has ${hosts.length} entries: at most ${OPTION_LIMITS.hosts} are allowed`);
  hosts.forEach((h, i) => checkHostEntry(`${f}.hosts[${i}] (--host)`, h));
  const groups = c.groups ?? [];
  if (groups.length > OPTION_LIMITS.groups)
    throw bad(`${f}.groups (--group)`, `has ${groups.length} entries: at most ${OPTION_LIMITS.groups} are allowed`);
  groups.forEach((g, i) => checkGroup(`${f}.groups[${i}] (--group)`, g));
  checkOomScoreAdj(`${f}.oomScoreAdj (--oom-score-adj)`, c.oomScoreAdj ?? 0);
}
