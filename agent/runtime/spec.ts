// The OCI runtime config (config.json) for a container, built in code: the
// process (entrypoint and cmd resolved as docker does, env, cwd, user),
// namespaces, the usual /proc /dev /sys mounts, the user's mounts, cgroup
// limits, and docker's confinement: its default capabilities (with the
// service's --cap-add/--cap-drop), our default seccomp profile, masked and
// read-only /proc and /sys paths; and the service's sysctls, ulimits,
// supplementary groups and OOM score adjustment. Pure but for the host's
// architecture, kernel and CPU list, so it is unit-tested.
import { existsSync, readFileSync } from 'node:fs';
import { arch, release } from 'node:os';
import { join } from 'node:path';
import { effectiveCapabilities } from '../../lib/capabilities.js';
import { TsswarmError } from '../../lib/errors.js';
import { isVolumeName, VOLUME_NAME_HINT } from '../../lib/volumes.js';
import type { FileMount } from './files.js';
import type { ResolvedImage } from './images.js';
import { readFileInRoot } from './inroot.js';
import { seccompFor } from './seccomp/profile.js';
import { ULIMIT_RESOURCES, ULIMIT_UNLIMITED } from '../../spec/container-options.js';
import type { ContainerConfig } from './types.js';

/** Docker's masked paths: files that leak host state or reach host devices, hidden behind /dev/null (files) or an empty read-only tmpfs (directories). */
export const MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/sys/devices/virtual/powercap',
  '/sys/firmware',
];
/** Docker's read-only paths: kernel tunables a container must not change for the whole host. */
export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

let thermal: string[] | undefined;
/** Per-CPU thermal_throttle counters leak host activity (as /proc/interrupts does); Docker masks those present, once per daemon. */
function thermalThrottlePaths(): string[] {
  if (thermal) return thermal;
  const cpus: number[] = [];
  try {
    for (const range of readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim().split(',')) {
      const [a, b] = range.split('-').map(Number) as [number, number | undefined];
      for (let i = a; i <= (b ?? a); i++) cpus.push(i);
    }
  } catch {
    // no sysfs (not Linux, or a minimal chroot): nothing to mask
  }
  thermal = cpus.map((i) => `/sys/devices/system/cpu/cpu${i}/thermal_throttle`).filter((p) => existsSync(p));
  return thermal;
}
/**
 * The size of a --tty container's terminal. Without one runc leaves the new pty at 0x0, which
 * full-screen programs (top, less) take for no terminal at all; nobody is attached to resize it.
 */
export const TTY_SIZE = { height: 24, width: 80 } as const;

/** The most of an image's /etc/passwd or /etc/group read for --user. */
export const USER_DB_MAX_BYTES = 1 << 20;
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CPU_PERIOD = 100_000;

/** Docker's rule: the entrypoint, then cmd; a service's command replaces the entrypoint (and drops the image's cmd), its args replace cmd. */
export function processArgs(c: Pick<ContainerConfig, 'command' | 'args'>, img: Pick<ResolvedImage, 'entrypoint' | 'cmd'>): string[] {
  const entry = c.command?.length ? c.command : img.entrypoint;
  const cmd = c.args?.length ? c.args : c.command?.length ? [] : img.cmd;
  return [...entry, ...cmd];
}

/** KEY=VALUE lists merged, later keys winning, PATH defaulted. */
export function mergeEnv(...lists: (readonly string[] | undefined)[]): string[] {
  const m = new Map<string, string>();
  for (const l of lists) for (const e of l ?? []) m.set(e.split('=')[0]!, e);
  if (!m.has('PATH')) m.set('PATH', DEFAULT_PATH);
  return [...m.values()];
}

/** `uid`, `uid:gid`, `name`, `name:group` → numeric ids, looked up in the rootfs's passwd and group files. */
export function resolveUser(user: string, rootfs: string | null): { uid: number; gid: number } {
  if (!user) return { uid: 0, gid: 0 };
  const [u, g] = user.split(':') as [string, string | undefined];
  // Inside the rootfs only, size-capped, never blocking: the image's author wrote these files.
  const read = (f: string): string[][] => {
    if (!rootfs) return [];
    const b = readFileInRoot(rootfs, `etc/${f}`, USER_DB_MAX_BYTES);
    return b
      ? b
          .toString('utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split(':'))
      : [];
  };
  let uid: number;
  let gid = 0;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    // with a group given, the uid's primary group is not needed
    if (g === undefined) gid = Number(read('passwd').find((p) => Number(p[2]) === uid)?.[3] ?? 0);
  } else {
    const p = read('passwd').find((x) => x[0] === u);
    if (!p)
      throw new TsswarmError('INVALID_ARGUMENT', `user "${u}" is not in the image's /etc/passwd: give a numeric uid (--user 1000:1000)`);
    uid = Number(p[2]);
    gid = Number(p[3]);
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const gr = read('group').find((x) => x[0] === g);
      if (!gr) throw new TsswarmError('INVALID_ARGUMENT', `group "${g}" is not in the image's /etc/group: give a numeric gid`);
      gid = Number(gr[2]);
    }
  }
  return { uid, gid };
}

/** Supplementary groups: gids as given, names looked up in the rootfs's /etc/group (as --user's group is). */
export function resolveGroups(groups: readonly string[], rootfs: string | null): number[] {
  let db: string[][] | undefined;
  return groups.map((g) => {
    if (/^\d+$/.test(g)) return Number(g);
    db ??=
      (rootfs ? readFileInRoot(rootfs, 'etc/group', USER_DB_MAX_BYTES) : null)
        ?.toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(':')) ?? [];
    const hit = db.find((x) => x[0] === g);
    if (!hit || !/^\d+$/.test(hit[2] ?? ''))
      throw new TsswarmError(
        'INVALID_ARGUMENT',
        `group "${g}" (--group) is not in the image's /etc/group: give a numeric gid (--group 1001)`,
      );
    return Number(hit[2]);
  });
}

/** RLIM_INFINITY as runc reads it (a uint64): written into the JSON text, as no JS number holds it exactly. */
const RLIM_INFINITY_MARK = '__tss_rlim_infinity__';

/** Docker's ulimits as OCI rlimits; -1 is unlimited. */
export function ociRlimits(ulimits: readonly { name: string; soft: number; hard: number }[]): Record<string, unknown>[] {
  return ulimits.map((u) => {
    const type = ULIMIT_RESOURCES[u.name];
    if (!type)
      throw new TsswarmError('INVALID_ARGUMENT', `ulimit "${u.name}" (--ulimit) is not one of Docker's names (nofile, nproc, ...)`);
    const v = (n: number): number | string => (n === ULIMIT_UNLIMITED ? RLIM_INFINITY_MARK : n);
    return { type, soft: v(u.soft), hard: v(u.hard) };
  });
}

/** config.json's text for an ociConfig result. */
export function ociJson(spec: Record<string, unknown>): string {
  return JSON.stringify(spec).replaceAll(`"${RLIM_INFINITY_MARK}"`, '18446744073709551615');
}

export interface SpecPaths {
  rootfs: string;
  hostname: string;
  /** Files bind-mounted over /etc/<name>. */
  etcFiles: Record<string, string>;
  volumesDir: string;
  /** Secrets and configs: files on the container's tmpfs, bind-mounted read-only at their targets (files.ts). */
  files?: readonly FileMount[];
  /** The host's static tini, bind-mounted read-only at INIT_PATH when the container runs with an init. */
  init?: string;
}

/** Where an init is mounted in the container, as Docker mounts its docker-init. */
export const INIT_PATH = '/sbin/docker-init';

export function ociConfig(
  c: ContainerConfig,
  img: ResolvedImage,
  p: SpecPaths,
  readUsersFrom: string | null = p.rootfs,
): Record<string, unknown> {
  const cmd = processArgs(c, img);
  if (cmd.length === 0)
    throw new TsswarmError('INVALID_ARGUMENT', `image ${c.image} has no command and none was given: add one after the image name`);
  if (c.init && !p.init)
    throw new TsswarmError('FAILED_PRECONDITION', 'the container asks for an init (--init) but no init binary was given');
  const args = c.init ? [INIT_PATH, '--', ...cmd] : cmd;
  const user = resolveUser(c.user || img.user, readUsersFrom);
  const additionalGids = resolveGroups(c.groups ?? [], readUsersFrom);
  const mounts: Record<string, unknown>[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
  for (const [name, src] of Object.entries(p.etcFiles))
    mounts.push({ destination: `/etc/${name}`, type: 'bind', source: src, options: ['rbind', 'rprivate'] });
  for (const m of c.mounts ?? []) {
    if (!m.target.startsWith('/')) throw new TsswarmError('INVALID_ARGUMENT', `mount target "${m.target}" must be an absolute path`);
    const ro = m.readOnly ? ['ro'] : ['rw'];
    if (m.type === 'tmpfs')
      mounts.push({ destination: m.target, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', ...ro] });
    else if (m.type === 'volume') {
      // The name is joined to the volumes directory: anything but a volume name ("/", "..", empty) would bind another host path.
      if (!isVolumeName(m.source))
        throw new TsswarmError(
          'INVALID_ARGUMENT',
          `volume name ${JSON.stringify(m.source)} (mount at ${m.target}) is not a volume name: ${VOLUME_NAME_HINT}`,
        );
      mounts.push({ destination: m.target, type: 'bind', source: join(p.volumesDir, m.source), options: ['rbind', 'rprivate', ...ro] });
    } else mounts.push({ destination: m.target, type: 'bind', source: m.source, options: ['rbind', 'rprivate', ...ro] });
  }
  if (c.init) mounts.push({ destination: INIT_PATH, type: 'bind', source: p.init, options: ['rbind', 'rprivate', 'ro'] });
  // After the user's mounts, so that a tmpfs at /run does not hide /run/secrets/<name>.
  for (const f of p.files ?? []) {
    if (!f.target.startsWith('/')) throw new TsswarmError('INVALID_ARGUMENT', `file target "${f.target}" must be an absolute path`);
    mounts.push({
      destination: f.target,
      type: 'bind',
      source: f.source,
      options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev', 'noexec'],
    });
  }
  const resources: Record<string, unknown> = { devices: [{ allow: false, access: 'rwm' }] };
  const l = c.limits ?? {};
  if (l.memoryBytes) resources.memory = { limit: l.memoryBytes };
  if (l.nanoCpus) resources.cpu = { quota: Math.max(1000, Math.round((l.nanoCpus / 1e9) * CPU_PERIOD)), period: CPU_PERIOD };
  if (l.pids) resources.pids = { limit: l.pids };
  const ns: Record<string, unknown>[] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  ns.push(c.netnsPath ? { type: 'network', path: c.netnsPath } : { type: 'network' });
  // Docker leaves the inheritable set empty (CVE-2022-24769) and ambient unset.
  const caps = effectiveCapabilities(c.capAdd, c.capDrop);
  const linux: Record<string, unknown> = {
    cgroupsPath: `/tss/${c.id}`,
    resources,
    namespaces: ns,
    maskedPaths: [...MASKED_PATHS, ...thermalThrottlePaths()],
    readonlyPaths: [...READONLY_PATHS],
  };
  // Capability rules follow the bounding set, as Docker's do.
  if (c.seccomp !== 'unconfined') linux.seccomp = seccompFor(caps, arch(), release());
  if (c.sysctls && Object.keys(c.sysctls).length) linux.sysctl = { ...c.sysctls };
  return {
    ociVersion: '1.0.2',
    process: {
      // --tty: runc makes a pty and hands its master to conmon (-t), which logs what the process writes to it.
      terminal: !!c.tty,
      ...(c.tty ? { consoleSize: { ...TTY_SIZE } } : {}),
      user: { uid: user.uid, gid: user.gid, ...(additionalGids.length ? { additionalGids } : {}) },
      args,
      // Docker sets TERM=xterm in a --tty container; the image's or the service's own TERM wins.
      env: mergeEnv(c.tty ? ['TERM=xterm'] : [], img.env, [`HOSTNAME=${p.hostname}`], c.env),
      cwd: c.workdir || img.workdir || '/',
      capabilities: { bounding: caps, effective: [...caps], permitted: [...caps] },
      noNewPrivileges: !!c.noNewPrivileges,
      ...(c.ulimits?.length ? { rlimits: ociRlimits(c.ulimits) } : {}),
      ...(c.oomScoreAdj ? { oomScoreAdj: c.oomScoreAdj } : {}),
    },
    root: { path: p.rootfs, readonly: !!c.readOnly },
    hostname: p.hostname,
    mounts,
    linux,
    // The container's labels, where OCI tools look for them.
    ...(c.labels && Object.keys(c.labels).length ? { annotations: { ...c.labels } } : {}),
  };
}
