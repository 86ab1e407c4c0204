// The container confinement in the OCI config, as pure logic: Docker's default
// capabilities and their add/drop rules, our default seccomp profile (which
// syscalls it allows, under which capabilities), masked and read-only paths.
// runtime.kernel.test.ts proves the effect in real containers.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  capabilityMask,
  effectiveCapabilities,
  normalizeCapabilities,
  normalizeCapability,
} from '../../../lib/capabilities.js';
import { DEFAULT_PROFILE, type LinuxSeccomp, kernelAtLeast, seccompFor } from '../../../agent/runtime/seccomp/profile.js';
import { INIT_PATH, ociConfig, resolveUser, TTY_SIZE } from '../../../agent/runtime/index.js';
import { USER_DB_MAX_BYTES } from '../../../agent/runtime/spec.js';
import type { ContainerConfig } from '../../../agent/runtime/index.js';

const img = { id: 'sha256:x', references: [], layers: [], entrypoint: [], cmd: ['sh'], env: [], workdir: '', user: '' };
type Spec = {
  process: { capabilities: Record<string, string[]>; noNewPrivileges: boolean };
  mounts: { destination: string; options?: string[] }[];
  linux: { seccomp?: LinuxSeccomp; maskedPaths: string[]; readonlyPaths: string[] };
};
const spec = (c: Partial<ContainerConfig> = {}): Spec =>
  ociConfig(
    { id: 'tss-s', image: 'x', ...c },
    img,
    { rootfs: '/r', hostname: 'h', etcFiles: {}, volumesDir: '/v' },
    null,
  ) as unknown as Spec;

/** How the profile treats one syscall: 'allow' unconditionally, 'args' (allowed for some arguments), `errno:N`, or 'deny' (the default EPERM). */
function verdict(s: LinuxSeccomp, name: string): string {
  const rules = s.syscalls.filter((r) => r.names.includes(name));
  if (rules.some((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args)) return 'allow';
  if (rules.some((r) => r.action === 'SCMP_ACT_ALLOW')) return 'args';
  const e = rules.find((r) => r.action === 'SCMP_ACT_ERRNO');
  return e ? `errno:${e.errnoRet}` : 'deny';
}

describe('capabilities', () => {
  it("Docker's default set is the CapEff mask a docker container shows", () => {
    expect(effectiveCapabilities()).toHaveLength(14);
    expect(capabilityMask(effectiveCapabilities())).toBe('00000000a80425fb');
    expect(new Set(effectiveCapabilities())).toEqual(new Set(DEFAULT_CAPABILITIES));
  });

  it('names are normalized with or without CAP_, in any case; unknown names are refused naming the field and value', () => {
    expect(normalizeCapability('--cap-add', 'net_admin')).toBe('CAP_NET_ADMIN');
    expect(normalizeCapability('--cap-add', ' Cap_Sys_Ptrace ')).toBe('CAP_SYS_PTRACE');
    expect(normalizeCapability('--cap-add', 'all')).toBe('ALL');
    expect(() => normalizeCapability('--cap-add', 'NET_WIZARD')).toThrow(/--cap-add: unknown capability "NET_WIZARD"/);
    expect(normalizeCapabilities('f', ['kill', 'CAP_CHOWN', 'chown'])).toEqual(['CAP_CHOWN', 'CAP_KILL']);
    expect(normalizeCapabilities('f', ['kill', 'all'])).toEqual(['ALL']);
  });

  it("add and drop follow Docker's rule: drop ALL keeps only the added, add ALL keeps all but the dropped", () => {
    expect(capabilityMask(effectiveCapabilities(['NET_ADMIN']))).toBe('00000000a80435fb'); // bit 12
    expect(effectiveCapabilities([], ['ALL'])).toEqual([]);
    expect(effectiveCapabilities(['NET_BIND_SERVICE'], ['ALL'])).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(effectiveCapabilities(['ALL'], ['SYS_ADMIN'])).toEqual(ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_ADMIN'));
    expect(effectiveCapabilities(['CHOWN'], ['CHOWN', 'NET_RAW'])).toContain('CAP_CHOWN');
    expect(effectiveCapabilities([], ['NET_RAW'])).not.toContain('CAP_NET_RAW');
    expect(() => effectiveCapabilities(['bogus'])).toThrow(/unknown capability "bogus"/);
  });

  it('the OCI process gets the set in bounding, effective and permitted; inheritable and ambient stay empty', () => {
    const caps = spec({ capAdd: ['SYS_PTRACE'], capDrop: ['MKNOD'] }).process.capabilities;
    expect(caps.bounding).toContain('CAP_SYS_PTRACE');
    expect(caps.bounding).not.toContain('CAP_MKNOD');
    expect(caps.effective).toEqual(caps.bounding);
    expect(caps.permitted).toEqual(caps.bounding);
    expect(caps.inheritable).toBeUndefined();
    expect(caps.ambient).toBeUndefined();
  });
});

describe('the default seccomp profile', () => {
  const dflt = seccompFor(DEFAULT_CAPABILITIES, 'x64', '6.1.0');

  it('denies with EPERM by default, on x86-64 with its 32-bit ABIs and on arm64 with arm', () => {
    expect(dflt).toMatchObject({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    });
    expect(seccompFor(DEFAULT_CAPABILITIES, 'arm64', '6.1.0').architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    expect(() => seccompFor(DEFAULT_CAPABILITIES, 'riscv64', '6.1.0')).toThrow(/seccomp=unconfined/);
  });

  it('allows what programs need and refuses what breaks out, under the default capabilities', () => {
    for (const name of [
      'read',
      'write',
      'openat',
      'execve',
      'mmap',
      'futex',
      'wait4',
      'setuid',
      'kill',
      'chroot',
      'name_to_handle_at',
      'ptrace',
    ])
      expect(verdict(dflt, name), name).toBe('allow');
    const denied = [
      'mount',
      'umount2',
      'pivot_root',
      'unshare',
      'setns',
      'keyctl',
      'add_key',
      'request_key',
      'bpf',
      'perf_event_open',
      'kexec_load',
      'kexec_file_load',
      'init_module',
      'finit_module',
      'delete_module',
      'reboot',
      'swapon',
      'swapoff',
      'settimeofday',
      'clock_settime',
      'acct',
      'open_by_handle_at',
      'userfaultfd',
      'move_pages',
      'quotactl',
      'iopl',
      'ioperm',
      'lookup_dcookie',
      'nfsservctl',
      'vm86',
      'create_module',
      'get_kernel_syms',
      'query_module',
      'uselib',
      'sysfs',
      '_sysctl',
      'ustat',
      'mbind',
      'set_mempolicy',
      'get_mempolicy',
      'syslog',
      'fsopen',
      'open_tree',
    ];
    for (const name of denied) expect(verdict(dflt, name), name).toBe('deny');
  });

  it('clone only without namespace flags, clone3 fails with ENOSYS, socket never AF_ALG or AF_VSOCK, personality only known values', () => {
    expect(verdict(dflt, 'clone')).toBe('args');
    expect(dflt.syscalls.find((r) => r.names.includes('clone'))!.args).toEqual([
      { index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' },
    ]);
    expect(verdict(dflt, 'clone3')).toBe('errno:38');
    const families = dflt.syscalls.filter((r) => r.names.includes('socket')).map((r) => r.args![0]!);
    const allowed = (fam: number): boolean =>
      families.some((a) => (a.op === 'SCMP_CMP_LT' ? fam < a.value : a.op === 'SCMP_CMP_GT' ? fam > a.value : fam === a.value));
    expect([1, 2, 10, 16, 17, 37, 39, 41].every(allowed)).toBe(true);
    expect(allowed(38) || allowed(40)).toBe(false);
    const personas = dflt.syscalls.filter((r) => r.names.includes('personality')).map((r) => r.args![0]!.value);
    expect(personas.sort((a, b) => a - b)).toEqual([0, 8, 0x20000, 0x20008, 0xffffffff]);
  });

  it('capabilities open their syscalls as in Docker: CAP_SYS_ADMIN lifts the clone mask, and each other cap its own calls', () => {
    const admin = seccompFor([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], 'x64', '6.1.0');
    for (const name of ['mount', 'umount2', 'unshare', 'setns', 'clone', 'clone3', 'bpf', 'perf_event_open', 'sethostname'])
      expect(verdict(admin, name), name).toBe('allow');
    expect(admin.syscalls.some((r) => r.names.includes('clone') && r.args)).toBe(false);
    const more = (cap: string): LinuxSeccomp => seccompFor([...DEFAULT_CAPABILITIES, cap], 'x64', '6.1.0');
    expect(verdict(more('CAP_SYS_MODULE'), 'finit_module')).toBe('allow');
    expect(verdict(more('CAP_SYS_TIME'), 'clock_settime')).toBe('allow');
    expect(verdict(more('CAP_SYS_BOOT'), 'reboot')).toBe('allow');
    expect(verdict(more('CAP_SYS_PTRACE'), 'kcmp')).toBe('allow');
    expect(verdict(more('CAP_DAC_READ_SEARCH'), 'open_by_handle_at')).toBe('allow');
    expect(verdict(more('CAP_SYS_NICE'), 'mbind')).toBe('allow');
    // chroot follows CAP_SYS_CHROOT, which the defaults hold
    expect(
      verdict(
        seccompFor(
          DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_SYS_CHROOT'),
          'x64',
          '6.1.0',
        ),
        'chroot',
      ),
    ).toBe('deny');
  });

  it('arch-only calls follow the architecture; ptrace needs kernel 4.8 without CAP_SYS_PTRACE', () => {
    expect(verdict(dflt, 'arch_prctl')).toBe('allow');
    expect(verdict(dflt, 'set_tls')).toBe('deny');
    expect(verdict(seccompFor(DEFAULT_CAPABILITIES, 'arm64', '6.1.0'), 'set_tls')).toBe('allow');
    expect(verdict(seccompFor(DEFAULT_CAPABILITIES, 'x64', '4.4.0-1'), 'ptrace')).toBe('deny');
    expect(kernelAtLeast('6.18.44-fc-v1300', '4.8')).toBe(true);
    expect(kernelAtLeast('4.10.0', '4.8')).toBe(true);
    expect(kernelAtLeast('4.7.9', '4.8')).toBe(false);
  });

  it('every rule of the data file names syscalls and says why', () => {
    for (const r of DEFAULT_PROFILE.rules) {
      expect(r.why.length).toBeGreaterThan(5);
      expect([...(r.allow ?? []), ...(r.errno ?? [])].length).toBeGreaterThan(0);
      for (const n of [...(r.allow ?? []), ...(r.errno ?? [])]) expect(n).toMatch(/^[a-z_][a-z0-9_]*$/);
    }
  });
});

describe('the OCI config confines the container as Docker does', () => {
  it('by default: the seccomp profile for its capabilities, no no_new_privs', () => {
    const s = spec();
    expect(s.linux.seccomp).toEqual(seccompFor(DEFAULT_CAPABILITIES, process.arch, release()));
    expect(s.process.noNewPrivileges).toBe(false);
  });

  it('seccomp=unconfined leaves the seccomp section out; no-new-privileges sets it; added capabilities reach the profile', () => {
    expect(spec({ seccomp: 'unconfined' }).linux.seccomp).toBeUndefined();
    expect(spec({ noNewPrivileges: true }).process.noNewPrivileges).toBe(true);
    expect(verdict(spec({ capAdd: ['SYS_ADMIN'] }).linux.seccomp!, 'mount')).toBe('allow');
  });

  it("masks Docker's paths and makes the kernel's tunables read-only; /proc and /sys are nosuid, noexec, nodev", () => {
    const s = spec();
    for (const p of [
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
    ]) {
      expect(s.linux.maskedPaths).toContain(p);
    }
    expect(
      s.linux.maskedPaths
        .filter((p) => !p.startsWith('/proc/') && !p.startsWith('/sys/devices/virtual') && p !== '/sys/firmware')
        .every((p) => /^\/sys\/devices\/system\/cpu\/cpu\d+\/thermal_throttle$/.test(p)),
    ).toBe(true);
    expect(s.linux.readonlyPaths).toEqual(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
    for (const d of ['/proc', '/sys'])
      expect(s.mounts.find((m) => m.destination === d)!.options).toEqual(expect.arrayContaining(['nosuid', 'noexec', 'nodev']));
    expect(s.mounts.find((m) => m.destination === '/sys')!.options).toContain('ro');
  });
});

describe("--user reads the image's /etc/passwd and /etc/group inside its rootfs", () => {
  it('an absolute symlink resolves inside the rootfs, never to the host file it names', () => {
    const host = mkdtempSync('/tmp/tss-hostpw-');
    const rootfs = mkdtempSync('/tmp/tss-rootfs-');
    try {
      writeFileSync(join(host, 'passwd'), 'app:x:4242:4242::/:/bin/sh\n');
      mkdirSync(join(rootfs, 'etc'));
      symlinkSync(join(host, 'passwd'), join(rootfs, 'etc/passwd'));
      expect(() => resolveUser('app', rootfs)).toThrow(/user "app" is not in the image's \/etc\/passwd/);
      // the same path under the rootfs is the one read
      mkdirSync(join(rootfs, host), { recursive: true });
      writeFileSync(join(rootfs, host, 'passwd'), 'app:x:100:101::/:/bin/sh\n');
      expect(resolveUser('app', rootfs)).toEqual({ uid: 100, gid: 101 });
      // a relative symlink climbing out stops at the rootfs too
      symlinkSync(`../../../../../../..${join(host, 'passwd')}`, join(rootfs, 'etc/group'));
      expect(resolveUser('0:app', rootfs)).toEqual({ uid: 0, gid: 100 }); // lands on the rootfs's copy (app's gid field there is 100), not the host's
    } finally {
      rmSync(host, { recursive: true, force: true });
      rmSync(rootfs, { recursive: true, force: true });
    }
  });

  it('a FIFO at /etc/passwd is refused at once, and an oversized one with the limit; numeric uid:gid reads nothing', () => {
    const rootfs = mkdtempSync('/tmp/tss-rootfs-');
    try {
      mkdirSync(join(rootfs, 'etc'));
      execFileSync('mkfifo', [join(rootfs, 'etc/passwd')]);
      expect(() => resolveUser('app', rootfs)).toThrow(/\/etc\/passwd in the image is not a regular file \(it is a FIFO\)/);
      expect(resolveUser('1000:1000', rootfs)).toEqual({ uid: 1000, gid: 1000 });
      writeFileSync(join(rootfs, 'etc/group'), Buffer.alloc(USER_DB_MAX_BYTES + 1, 0x61));
      expect(() => resolveUser('1000:staff', rootfs)).toThrow(
        new RegExp(`/etc/group in the image is ${USER_DB_MAX_BYTES + 1} bytes, over the limit of ${USER_DB_MAX_BYTES}`),
      );
    } finally {
      rmSync(rootfs, { recursive: true, force: true });
    }
  });
});

describe('--init, --tty and container labels in the OCI config', () => {
  type Full = Spec & {
    process: { args: string[]; terminal: boolean; consoleSize?: { height: number; width: number }; env: string[] };
    annotations?: Record<string, string>;
  };
  const full = (c: Partial<ContainerConfig>, init?: string): Full =>
    ociConfig(
      { id: 'tss-s', image: 'x', command: ['sleep', '9'], ...c },
      img,
      { rootfs: '/r', hostname: 'h', etcFiles: {}, volumesDir: '/v', ...(init ? { init } : {}) },
      null,
    ) as unknown as Full;

  it("--init runs the command under the node's tini, bind-mounted read-only where Docker puts its docker-init", () => {
    const s = full({ init: true }, '/usr/bin/tini-static');
    expect(s.process.args).toEqual([INIT_PATH, '--', 'sleep', '9']);
    expect(INIT_PATH).toBe('/sbin/docker-init');
    expect(s.mounts.find((m) => m.destination === INIT_PATH)).toMatchObject({
      source: '/usr/bin/tini-static',
      options: expect.arrayContaining(['ro']),
    });
    const plain = full({});
    expect(plain.process.args).toEqual(['sleep', '9']);
    expect(plain.mounts.some((m) => m.destination === INIT_PATH)).toBe(false);
  });

  it('--init without an init binary is refused, naming the flag', () => {
    expect(() => full({ init: true })).toThrow(/--init/);
  });

  it('--tty runs the process on a terminal of 80x24 with TERM=xterm, which the image or the service can override', () => {
    const t = full({ tty: true });
    expect(t.process.terminal).toBe(true);
    expect(t.process.consoleSize).toEqual({ height: 24, width: 80 });
    expect(TTY_SIZE).toEqual({ height: 24, width: 80 });
    expect(t.process.env).toContain('TERM=xterm');
    expect(full({ tty: true, env: ['TERM=vt100'] }).process.env).toContain('TERM=vt100');
    expect(full({ tty: true, env: ['TERM=vt100'] }).process.env).not.toContain('TERM=xterm');
    for (const off of [full({}), full({ tty: false })]) {
      expect(off.process.terminal).toBe(false);
      expect(off.process.consoleSize).toBeUndefined();
      expect(off.process.env.some((e) => e.startsWith('TERM='))).toBe(false);
    }
  });

  it("the container's labels are its OCI annotations", () => {
    expect(full({ labels: { team: 'a', 'tsswarm.task.id': 't1' } }).annotations).toEqual({ team: 'a', 'tsswarm.task.id': 't1' });
    expect(full({}).annotations).toBeUndefined();
  });
});
