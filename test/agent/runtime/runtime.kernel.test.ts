// The container runtime for real: runc + conmon on an overlayfs rootfs from
// the busybox image (both tarball formats). Every runtime root is a /tmp/tss-
// directory and every container is removed after its test, pass or fail.
// The pure logic (references, env, user, health) is in runtime.test.ts.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage } from '../../../deploy/images/busybox.js';
import { HealthMonitor, Runtime, readTar, unpackLayer, writeTar } from '../../../agent/runtime/index.js';
import { have, isRoot } from '../../have.js';
import { until as waitUntil } from '../../lib/wait.js';

const log = pino({ level: 'silent' });
const canRun = isRoot && have('runc') && have('conmon') && existsSync('/bin/busybox');
if (!canRun) console.log('runtime tests on runc skipped: need root, runc, conmon and busybox-static');

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
/**
 * Polls `cond` every 50 ms until it holds or `ms` have passed; returns whether
 * it held. Waits on a loaded machine are deadlines, never fixed sleeps; the
 * assertion after the wait says what was expected.
 */
const poll = (cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> =>
  waitUntil('a runtime condition', cond, { timeoutMs: ms, everyMs: 50 }).then(
    () => true,
    () => false,
  );

const T = 1_700_000_000;

/** Writes an OCI image layout directory holding one image made of `layers` (plain tars, stored gzipped). */
function ociLayout(dir: string, ref: string, layers: Buffer[], config: Record<string, unknown> = { Cmd: ['sh'] }): void {
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer): string => {
    writeFileSync(join(blobs, sha(b)), b);
    return `sha256:${sha(b)}`;
  };
  const cfg = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config,
      rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${sha(l)}`) },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: put(cfg), size: cfg.length },
      layers: layers.map((l) => {
        const gz = gzipSync(l);
        return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: put(gz), size: gz.length };
      }),
    }),
  );
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: put(manifest),
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': ref },
        },
      ],
    }),
  );
}

/** Two layers over each other: the second deletes a file and makes a directory opaque. */
const lowerLayer = (): Buffer =>
  writeTar([
    { name: 'a', type: 'dir', mode: 0o755, mtime: T },
    { name: 'a/keep', type: 'file', data: Buffer.from('keep\n'), mtime: T },
    { name: 'a/gone', type: 'file', data: Buffer.from('gone\n'), mtime: T },
    { name: 'b', type: 'dir', mode: 0o755, mtime: T },
    { name: 'b/old', type: 'file', data: Buffer.from('old\n'), mtime: T },
    { name: 'b/sub', type: 'dir', mode: 0o755, mtime: T },
    { name: 'b/sub/x', type: 'file', data: Buffer.from('x\n'), mtime: T },
    { name: 'c', type: 'file', mode: 0o4755, data: Buffer.from('#!/bin/sh\n'), mtime: T },
    { name: 'c-link', type: 'hardlink', linkname: 'c' },
  ]);
const upperLayer = (): Buffer =>
  writeTar([
    { name: 'a', type: 'dir', mode: 0o755, mtime: T },
    { name: 'a/.wh.gone', type: 'file', mtime: T },
    { name: 'b', type: 'dir', mode: 0o755, mtime: T },
    { name: 'b/.wh..wh..opq', type: 'file', mtime: T },
    { name: 'b/new', type: 'file', data: Buffer.from('new\n'), mtime: T },
    { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3 },
  ]);

describe.skipIf(!isRoot)('layer unpacking (root)', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('OCI whiteouts become overlay whiteouts; modes, hard links and mtimes are kept; devices skipped', async () => {
    const d = mkdtempSync('/tmp/tss-layer-');
    dirs.push(d);
    mkdirSync(join(d, 'l1'));
    mkdirSync(join(d, 'l2'));
    const r1 = await unpackLayer([lowerLayer()], join(d, 'l1'));
    const r2 = await unpackLayer([upperLayer()], join(d, 'l2'));
    expect(r1).toMatchObject({ whiteouts: 0, opaqueDirs: 0 });
    expect(r2).toMatchObject({ whiteouts: 1, opaqueDirs: 1, skipped: 1 });
    const wh = statSync(join(d, 'l2/a/gone'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    expect(execFileSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', join(d, 'l2/b')], { encoding: 'utf8' })).toBe('y');
    expect(statSync(join(d, 'l1/c')).mode & 0o7777).toBe(0o4755);
    expect(statSync(join(d, 'l1/c')).ino).toBe(statSync(join(d, 'l1/c-link')).ino);
    expect(Math.round(statSync(join(d, 'l1/a')).mtimeMs / 1000)).toBe(T);
    expect(existsSync(join(d, 'l2/dev/null'))).toBe(false);
    await expect(unpackLayer([writeTar([{ name: '../escape', type: 'file' }])], join(d, 'l2'))).rejects.toThrow(/climbs out/);
  });
});

describe.skipIf(!canRun)('runtime on runc and conmon', () => {
  let dir = '';
  let rt: Runtime;
  const made: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync('/tmp/tss-rt-');
    await buildBusyboxImage({ outPath: join(dir, 'oci.tar'), format: 'oci', tag: 'tsswarm/busybox:latest' });
    await buildBusyboxImage({ outPath: join(dir, 'docker.tar'), format: 'docker', tag: 'tsswarm/bbdocker:1' });
    rt = new Runtime({ root: join(dir, 'root'), logger: log });
    await rt.init();
    await rt.images.load(join(dir, 'oci.tar')); // every test may run alone (-t)
  });

  afterEach(async () => {
    for (const id of made.splice(0)) await rt.remove(id);
  });

  afterAll(async () => {
    rt?.close();
    if (dir) {
      const mounts = readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .filter((l) => l.includes(dir));
      for (const m of mounts) execFileSync('umount', ['-l', m.split(' ')[1]!]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const run = async (id: string, cfg: Partial<Parameters<Runtime['create']>[0]> = {}): Promise<void> => {
    made.push(id);
    await rt.create({ id, image: 'tsswarm/busybox:latest', ...cfg });
    await rt.start(id);
  };
  const exited = (id: string): Promise<number> =>
    new Promise((res) => {
      const off = rt.onExit((x, code) => {
        if (x === id) {
          off();
          res(code);
        }
      });
    });

  it('loads OCI and docker-save archives; the layer is unpacked once and shared', async () => {
    await rt.images.load(join(dir, 'oci.tar'));
    await rt.images.load(join(dir, 'docker.tar'));
    const refs = rt.images
      .list()
      .flatMap((i) => i.references)
      .sort();
    expect(refs).toEqual(['tsswarm/bbdocker:1', 'tsswarm/busybox:latest']);
    expect(rt.images.list()).toHaveLength(1); // same config, same id: one image, two names
  });

  it('runs a container: exit code through conmon, stdout and stderr in the logs', async () => {
    const done = exited('tss-t1');
    const t0 = Date.now();
    await run('tss-t1', { command: ['sh', '-c', 'echo out; echo err >&2; sleep 0.2; exit 3'] });
    console.log(`create+start took ${Date.now() - t0} ms`);
    expect(await done).toBe(3);
    expect(await rt.inspect('tss-t1')).toMatchObject({ status: 'stopped', exitCode: 3 });
    const lines: string[] = [];
    for await (const l of rt.logs('tss-t1')) lines.push(`${l.stream}:${l.line.toString().trim()}`);
    expect(lines).toEqual(['stdout:out', 'stderr:err']);
  });

  it('env, workdir, user, hostname, mounts and limits reach the container', async () => {
    const host = join(dir, 'bind');
    rmSync(host, { recursive: true, force: true });
    execFileSync('mkdir', ['-p', host]);
    writeFileSync(join(host, 'f'), 'from-host');
    const done = exited('tss-t2');
    await run('tss-t2', {
      command: [
        'sh',
        '-c',
        'echo $K $(pwd) $(id -u):$(id -g) $(hostname) $(cat /data/f); touch /scratch/x && echo tmpfs-ok; cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us; cat /etc/hostname; grep -c tsshost /etc/hosts',
      ],
      env: ['K=V'],
      workdir: '/tmp',
      user: '65534',
      hostname: 'tsshost',
      mounts: [
        { type: 'bind', source: host, target: '/data', readOnly: true },
        { type: 'tmpfs', source: '', target: '/scratch' },
      ],
      limits: { pids: 64, memoryBytes: 32 << 20, nanoCpus: 5e8 },
    });
    expect(await done).toBe(0);
    const out: string[] = [];
    for await (const l of rt.logs('tss-t2')) out.push(l.line.toString().trim());
    expect(out[0]).toBe('V /tmp 65534:65534 tsshost from-host');
    expect(out).toContain('tmpfs-ok');
    expect(out).toContain('64');
    expect(out).toContain(String(32 << 20));
    expect(out.slice(2)).toEqual(['64', String(32 << 20), '50000', 'tsshost', '1']);
  });

  it('init names the missing package; a bad container id or volume name is refused before anything is made', async () => {
    const bad = new Runtime({ root: join(dir, 'badroot'), logger: log, runc: '/nonexistent/runc' });
    await expect(bad.init()).rejects.toThrow(/apt-get install runc/);
    await expect(rt.create({ id: 'mine', image: 'tsswarm/busybox' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      rt.create({ id: 'tss-v', image: 'tsswarm/busybox', mounts: [{ type: 'volume', source: '../x', target: '/x' }] }),
    ).rejects.toThrow(/volume name/);
    await expect(rt.create({ id: 'tss-u', image: 'tsswarm/busybox', user: 'ghost' })).rejects.toThrow(/ghost/);
    expect(existsSync(join(dir, 'root', 'containers', 'tss-u'))).toBe(false);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain('tss-u ');
  });

  it('a read-only root, a network namespace given by path, exec as a named user', async () => {
    const ns = `tssrt${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      const inode = statSync(`/run/netns/${ns}`).ino;
      await run('tss-n1', {
        command: ['sh', '-c', 'touch /x 2>/dev/null || echo ro-ok; readlink /proc/self/ns/net; sleep 60'],
        readOnly: true,
        netnsPath: `/run/netns/${ns}`,
      });
      const h = rt.exec('tss-n1', { cmd: ['id', '-u'], user: 'nobody' });
      let out = '';
      h.stdout.on('data', (b: Buffer) => (out += b.toString()));
      expect(await h.exit).toBe(0);
      expect(out.trim()).toBe('65534');
      const bad = rt.exec('tss-n1', { cmd: ['true'], user: 'ghost' });
      expect(await bad.exit).toBe(126);
      const lines: string[] = [];
      await poll(async () => {
        lines.splice(0);
        for await (const l of rt.logs('tss-n1')) lines.push(l.line.toString().trim());
        return lines.length >= 2;
      }, 30_000);
      expect(lines).toEqual(['ro-ok', `net:[${inode}]`]);
      await rt.remove('tss-n1');
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });

  it('a health check runs inside the container: unhealthy after retries failures, healthy once it passes', async () => {
    await run('tss-h1', { command: ['sleep', '60'] });
    const seen: string[] = [];
    // A probe timeout far above what `runc exec` of `test -f` takes even on a
    // loaded machine: a probe killed by its timeout has no output and would
    // turn 'unhealthy:missing' into 'unhealthy:'.
    const m = new HealthMonitor(
      rt,
      'tss-h1',
      {
        test: ['CMD-SHELL', 'test -f /tmp/ok || { echo missing; exit 1; }'],
        startIntervalMs: 0,
        intervalMs: 100,
        timeoutMs: 10_000,
        retries: 2,
        startPeriodMs: 0,
      },
      (st, out) => seen.push(`${st}:${out.trim()}`),
    );
    try {
      m.start();
      await poll(() => seen.includes('unhealthy:missing'), 30_000);
      expect(seen).toEqual(['starting:', 'unhealthy:missing']);
      await rt.exec('tss-h1', { cmd: ['touch', '/tmp/ok'] }).exit;
      await poll(() => seen.length >= 3, 30_000);
      expect(seen[2]).toBe('healthy:');
    } finally {
      m.stop();
    }
  });

  it('logs follow the output until the container exits, and stop when the signal aborts', async () => {
    await run('tss-f1', { command: ['sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.2; done; echo bye >&2'] });
    const got: string[] = [];
    for await (const l of rt.logs('tss-f1', { follow: true })) got.push(`${l.stream}:${l.line.toString().trim()}`);
    expect(got).toEqual(['stdout:line1', 'stdout:line2', 'stdout:line3', 'stderr:bye']);
    const tail: string[] = [];
    for await (const l of rt.logs('tss-f1', { tail: 2 })) tail.push(l.line.toString().trim());
    expect(tail).toEqual(['line3', 'bye']);
    await run('tss-f2', { command: ['sh', '-c', 'echo first; sleep 60'] });
    const ac = new AbortController();
    const seen: string[] = [];
    for await (const l of rt.logs('tss-f2', { follow: true, signal: ac.signal })) {
      seen.push(l.line.toString().trim());
      ac.abort();
    }
    expect(seen).toEqual(['first']);
  });

  it('exec returns output and exit code; stop sends SIGKILL after the grace period', async () => {
    await run('tss-t3', { command: ['sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done'] });
    const h = rt.exec('tss-t3', { cmd: ['sh', '-c', 'echo inside; exit 5'] });
    let out = '';
    h.stdout.on('data', (b: Buffer) => (out += b.toString()));
    expect(await h.exit).toBe(5);
    expect(out).toBe('inside\n');
    // A probe past its timeout: aborting kills the exec'd process itself, not only runc exec.
    const sleeps = async (): Promise<string> => {
      const ps = rt.exec('tss-t3', { cmd: ['sh', '-c', 'ps | grep -c "[s]leep 60"'] });
      let n = '';
      ps.stdout.on('data', (b: Buffer) => (n += b.toString()));
      await ps.exit;
      return n.trim();
    };
    const ac = new AbortController();
    const slow = rt.exec('tss-t3', { cmd: ['sleep', '60'], signal: ac.signal });
    // Abort once the sleep runs and runc has written its pid (the one SIGKILL
    // goes to), not after a fixed delay that a loaded machine may outlast
    // (the ps probe's own pid file is gone once it has exited).
    const cdir = join(dir, 'root', 'containers', 'tss-t3');
    expect(
      await poll(async () => (await sleeps()) === '1' && readdirSync(cdir).some((f) => /^exec-.*\.pid$/.test(f)), 30_000),
      "the exec'd sleep 60 running, its pid file written",
    ).toBe(true);
    ac.abort();
    expect(await slow.exit).toBe(137);
    expect(await sleeps()).toBe('0');
    // Aborted before runc has even written the pid file: the command must not be left running.
    for (let i = 0; i < 24; i++) {
      const early = new AbortController();
      const h2 = rt.exec('tss-t3', { cmd: ['sleep', '60'], signal: early.signal });
      setTimeout(() => early.abort(), i * 4);
      await h2.exit;
    }
    expect(await poll(async () => (await sleeps()) === '0', 15_000), 'no sleep 60 left after early aborts').toBe(true);
    const t0 = Date.now();
    await rt.stop('tss-t3', 500);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    expect((await rt.inspect('tss-t3'))?.status).toBe('stopped');
  });

  it('a container outlives its Runtime; a new Runtime on the same root adopts it, stops and removes it without leftovers', async () => {
    await run('tss-t4', { command: ['sleep', '3600'], labels: { 'tsswarm.task.id': 'abc' } });
    const pid = (await rt.inspect('tss-t4'))!.pid;
    rt.close();
    rt = new Runtime({ root: join(dir, 'root'), logger: log });
    await rt.init();
    const all = await rt.list();
    expect(all.find((c) => c.id === 'tss-t4')).toMatchObject({ status: 'running', pid, labels: { 'tsswarm.task.id': 'abc' } });
    const done = exited('tss-t4');
    await rt.stop('tss-t4', 2000);
    // sleep is PID 1 in its namespace and has no TERM handler: the kernel ignores TERM, so the grace ends in SIGKILL.
    expect(await done).toBe(137);
    await rt.remove('tss-t4');
    made.splice(made.indexOf('tss-t4'), 1);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain('tss-t4');
    expect(existsSync('/sys/fs/cgroup/memory/tss/tss-t4')).toBe(false);
    expect(execFileSync('runc', ['--root', join(dir, 'root', 'runc'), 'list', '-q'], { encoding: 'utf8' })).not.toContain('tss-t4');
  });

  /** Runs `script` in a new container with `cfg`, waits for its exit, returns its exit code and output lines. */
  const runScript = async (
    id: string,
    script: string,
    cfg: Partial<Parameters<Runtime['create']>[0]> = {},
  ): Promise<{ code: number; out: string[] }> => {
    const done = exited(id);
    await run(id, { command: ['sh', '-c', script], ...cfg });
    const code = await done;
    const out: string[] = [];
    for await (const l of rt.logs(id)) out.push(l.line.toString().trim());
    return { code, out };
  };
  const statusOf = "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\\t' | tr : =";
  // Creating a user namespace needs no capability, so only seccomp stops it:
  // the one probe here that tells the profile from a missing capability.
  const probes = [
    statusOf,
    // /proc/kcore is absent on some kernels: read the masked files this host has, which show nothing inside
    'echo masked=$(cat /proc/interrupts /proc/timer_list 2>&1 | wc -c)$(ls /sys/firmware | wc -l)',
    '(echo tss > /proc/sys/kernel/domainname) 2>/dev/null && echo procsys=written || echo procsys=refused',
    'awk \'$2 == "/sys" { print "sys=" $4 }\' /proc/mounts',
    'unshare -n true 2>&1 | grep -q "Operation not permitted" && echo unshare-net=EPERM || echo unshare-net=other',
    'unshare -U true 2>/dev/null && echo userns=ok || echo userns=refused',
    'mkdir -p /tmp/m && mount -t tmpfs tss /tmp/m 2>/dev/null && echo mount=ok || echo mount=refused',
  ].join('; ');

  it("a container gets Docker's defaults: its capability set, the seccomp profile, masked and read-only /proc and /sys", async () => {
    const { code, out } = await runScript('tss-sec1', probes);
    expect(code).toBe(0);
    expect(out).toEqual([
      'CapInh=0000000000000000',
      'CapPrm=00000000a80425fb',
      'CapEff=00000000a80425fb',
      'CapBnd=00000000a80425fb',
      'CapAmb=0000000000000000',
      'NoNewPrivs=0',
      'Seccomp=2',
      'masked=00',
      'procsys=refused',
      expect.stringMatching(/^sys=ro,nosuid,nodev,noexec(,|$)/),
      'unshare-net=EPERM',
      'userns=refused',
      'mount=refused',
    ]);
  });

  it('--cap-add NET_ADMIN and no-new-privileges reach the container; --cap-drop ALL with seccomp=unconfined leaves no capability and no filter', async () => {
    const a = await runScript('tss-sec2', `${statusOf}; ip link set lo mtu 1280 && echo netadmin=ok`, {
      capAdd: ['net_admin'],
      noNewPrivileges: true,
    });
    expect(a.out).toContain('CapEff=00000000a80435fb'); // bit 12, CAP_NET_ADMIN
    expect(a.out).toContain('NoNewPrivs=1');
    expect(a.out).toContain('Seccomp=2');
    expect(a.out).toContain('netadmin=ok');
    const b = await runScript('tss-sec3', probes, { capDrop: ['ALL'], seccomp: 'unconfined' });
    expect(b.out).toEqual(
      expect.arrayContaining([
        'CapEff=0000000000000000',
        'CapBnd=0000000000000000',
        'Seccomp=0',
        'NoNewPrivs=0',
        'mount=refused',
        'userns=ok',
      ]),
    );
  });

  /** Output of a command run in the container. */
  const execOut = async (id: string, cmd: string[]): Promise<string> => {
    const h = rt.exec(id, { cmd });
    let out = '';
    h.stdout.on('data', (b: Buffer) => (out += b.toString()));
    await h.exit;
    return out;
  };

  it("--init: the node's tini is PID 1, the command its child, and a stop signal reaches the command through it", async () => {
    const done = exited('tss-i1');
    await run('tss-i1', {
      init: true,
      command: ['sh', '-c', 'echo self=$$ parent=$PPID; trap "echo got-term; exit 0" TERM; while true; do sleep 0.1; done'],
    });
    expect((await execOut('tss-i1', ['cat', '/proc/1/cmdline'])).split('\0')).toEqual(
      expect.arrayContaining(['/sbin/docker-init', '--', 'sh', '-c']),
    );
    // The init is the node's static tini, mounted read-only.
    expect(await execOut('tss-i1', ['sh', '-c', '/sbin/docker-init --version; echo x > /sbin/docker-init || echo read-only'])).toMatch(
      /tini version[\s\S]*read-only/,
    );
    await rt.stop('tss-i1', 30_000);
    expect(await done).toBe(0);
    const out: string[] = [];
    for await (const l of rt.logs('tss-i1')) out.push(l.line.toString().trim());
    const [, self, parent] = /^self=(\d+) parent=(\d+)$/.exec(out[0] ?? '') ?? [];
    expect(parent, out.join(' | ')).toBe('1');
    expect(Number(self)).toBeGreaterThan(1);
    expect(out).toContain('got-term');
  });

  it('--init on a node without tini is refused before anything is made, naming the flag and the package', async () => {
    const noInit = new Runtime({ root: join(dir, 'root'), logger: log, init: '/nonexistent/tini-static' });
    await expect(noInit.create({ id: 'tss-i2', image: 'tsswarm/busybox:latest', init: true, command: ['true'] })).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: expect.stringMatching(/--init needs \/nonexistent\/tini-static .*apt-get install tini/),
    });
    expect(existsSync(join(dir, 'root', 'containers', 'tss-i2'))).toBe(false);
  });

  it('--tty: stdin, stdout and stderr are a terminal (tty prints /dev/pts/…), its output is in the logs with CRLF, exec, adoption and stop work; without it stdout is no terminal', async () => {
    const script =
      'test -t 0 && test -t 1 && test -t 2 && tty && stty size && echo "term=$TERM"; trap "echo got-term; exit 0" TERM; while true; do sleep 0.1; done';
    await run('tss-y1', { tty: true, command: ['sh', '-c', script] });
    const lines = async (): Promise<string[]> => {
      const out: string[] = [];
      for await (const l of rt.logs('tss-y1')) out.push(l.line.toString());
      return out;
    };
    expect(await poll(async () => (await lines()).some((l) => l.startsWith('term=')), 10_000), (await lines()).join('|')).toBe(true);
    const out = await lines();
    // The terminal's line ends, as in Docker's logs of a -t container: all of it is stdout.
    expect(out.slice(0, 3)).toEqual([expect.stringMatching(/^\/dev\/pts\/\d+\r\n$/), '24 80\r\n', 'term=xterm\r\n']);
    for await (const l of rt.logs('tss-y1')) expect(l.stream).toBe('stdout');
    // exec runs without a terminal of its own, beside the container's.
    expect(await execOut('tss-y1', ['sh', '-c', 'test -t 1 && echo exec-tty || echo exec-pipe'])).toBe('exec-pipe\n');
    // conmon holds the pty's master: a new Runtime adopts the container and stops it.
    rt.close();
    rt = new Runtime({ root: join(dir, 'root'), logger: log });
    await rt.init();
    expect(await rt.inspect('tss-y1')).toMatchObject({ status: 'running' });
    const done = exited('tss-y1');
    await rt.stop('tss-y1', 30_000);
    expect(await done).toBe(0);
    expect(await poll(async () => (await lines()).includes('got-term\r\n'), 10_000), (await lines()).join('|')).toBe(true);
    // Without --tty the same checks fail: stdin, stdout and stderr are conmon's pipes.
    const plain = await runScript(
      'tss-y2',
      'test -t 1 && echo stdout-tty || echo stdout-pipe; test -t 0 && echo stdin-tty || echo stdin-other; tty; echo "term=$TERM"',
    );
    expect(plain.out).toEqual(['stdout-pipe', 'stdin-other', 'not a tty', 'term=']);
  });

  it("the image's STOPSIGNAL is what stop sends when none is given; a given one wins", async () => {
    await buildBusyboxImage({ outPath: join(dir, 'stopsig.tar'), format: 'oci', tag: 'tss/stopsig:1', config: { StopSignal: 'SIGUSR1' } });
    await rt.images.load(join(dir, 'stopsig.tar'));
    const host = join(dir, 'stopsig');
    mkdirSync(host, { recursive: true });
    // TERM ignored: only the image's signal ends it before the grace period.
    const script =
      'trap "" TERM; trap "echo usr1 > /out/$0; exit 0" USR1; trap "echo hup > /out/$0; exit 0" HUP; while true; do sleep 0.1; done';
    const mounts = [{ type: 'bind' as const, source: host, target: '/out' }];
    const d1 = exited('tss-s1');
    await run('tss-s1', { image: 'tss/stopsig:1', command: ['sh', '-c', script, 's1'], mounts });
    await rt.stop('tss-s1', 30_000);
    expect(await d1).toBe(0);
    expect(readFileSync(join(host, 's1'), 'utf8')).toBe('usr1\n');
    const d2 = exited('tss-s2');
    await run('tss-s2', { image: 'tss/stopsig:1', command: ['sh', '-c', script, 's2'], mounts, stopSignal: 'SIGHUP' });
    await rt.stop('tss-s2', 30_000);
    expect(await d2).toBe(0);
    expect(readFileSync(join(host, 's2'), 'utf8')).toBe('hup\n');
    // The image's author wrote it and it reaches runc's argv: anything but a signal name or number is refused at load.
    await buildBusyboxImage({
      outPath: join(dir, 'badsig.tar'),
      format: 'oci',
      tag: 'tss/badsig:1',
      config: { StopSignal: '--root=/ KILL' },
    });
    await expect(rt.images.load(join(dir, 'badsig.tar'))).rejects.toThrow(
      /config\.StopSignal "--root=\/ KILL" is not a signal name or number/,
    );
    expect(rt.images.resolve('tss/badsig:1')).toBeUndefined();
  });

  it('a missing image is a clear error naming the fix', async () => {
    await expect(rt.create({ id: 'tss-t5', image: 'nope:1' })).rejects.toThrow(
      /image nope:1 not found on this node: load it with `tsswarm image load/,
    );
  });

  it('layers stack: whiteouts hide lower files, opaque directories hide lower contents', async () => {
    // The busybox layer from the OCI archive, then the two test layers.
    const files = new Map([...readTar(readFileSync(join(dir, 'oci.tar')))].map((e) => [e.name, e.data]));
    const index = JSON.parse(files.get('index.json')!.toString()) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(files.get(`blobs/sha256/${index.manifests[0]!.digest.slice(7)}`)!.toString()) as {
      layers: { digest: string }[];
    };
    const bb = (await import('node:zlib')).gunzipSync(files.get(`blobs/sha256/${manifest.layers[0]!.digest.slice(7)}`)!);
    const layout = join(dir, 'layered');
    ociLayout(layout, 'tss/layered:1', [bb, lowerLayer(), upperLayer()], { Cmd: ['sh'], Env: ['PATH=/bin'] });
    const [img] = await rt.images.load(layout);
    expect(img!.references).toEqual(['tss/layered:1']);
    const done = exited('tss-l1');
    await run('tss-l1', { image: 'tss/layered:1', command: ['sh', '-c', 'ls /a; echo --; ls /b; cat /b/new'] });
    expect(await done).toBe(0);
    const out: string[] = [];
    for await (const l of rt.logs('tss-l1')) out.push(l.line.toString().trim());
    expect(out).toEqual(['keep', '--', 'new', 'new']);
  });

  it('an image with no layers runs (an empty lower directory), here with busybox bind-mounted in; volumes are made on demand and kept', async () => {
    const layout = join(dir, 'empty');
    ociLayout(layout, 'tss/empty:1', []);
    await rt.images.load(layout);
    const done = exited('tss-e1');
    await run('tss-e1', {
      image: 'tss/empty:1',
      command: ['/busybox', 'sh', '-c', '/busybox echo empty-ok; /busybox echo v > /vol/f'],
      mounts: [
        { type: 'bind', source: '/bin/busybox', target: '/busybox', readOnly: true },
        { type: 'volume', source: 'tssvol', target: '/vol' },
      ],
    });
    expect(await done).toBe(0);
    const out: string[] = [];
    for await (const l of rt.logs('tss-e1')) out.push(l.line.toString().trim());
    expect(out).toEqual(['empty-ok']);
    await rt.remove('tss-e1');
    made.splice(made.indexOf('tss-e1'), 1);
    expect(readFileSync(join(dir, 'root', 'volumes', 'tssvol', 'f'), 'utf8')).toBe('v\n');
  });

  it('an anonymous volume whose image VOLUME links to / (or aliases another) fails the create with the volume named, and leaves nothing behind', async () => {
    const layer = writeTar([
      { name: 'data', type: 'dir', mode: 0o755, mtime: T },
      { name: 'data/seed', type: 'file', data: Buffer.from('seed\n'), mtime: T },
      // The whole rootfs, once per VOLUME and replica, if it were copied.
      { name: 'all', type: 'symlink', linkname: '/', mtime: T },
      { name: 'also', type: 'symlink', linkname: 'data', mtime: T },
    ]);
    const volumesDir = join(dir, 'root', 'volumes');
    const labelsDir = join(dir, 'root', 'volume-labels');
    const entries = (d: string): string[] => (existsSync(d) ? readdirSync(d).sort() : []);
    const cases: [string, Record<string, object>, RegExp][] = [
      ['root', { '/data': {}, '/all': {} }, /^volume at \/all: the image's \/all is its root directory \(through a link\)/],
      ['alias', { '/data': {}, '/also': {} }, /^volumes at \/(data|also) and \/(data|also): .* through a link/],
    ];
    for (const [name, volumes, message] of cases) {
      const layout = join(dir, `volroot-${name}`);
      ociLayout(layout, `tss/volroot-${name}:1`, [layer], { Cmd: ['sh'], Volumes: volumes });
      await rt.images.load(layout);
      const volumesBefore = entries(volumesDir);
      const labelsBefore = entries(labelsDir);
      const id = `tss-vr-${name}`;
      await expect(
        rt.create({ id, image: `tss/volroot-${name}:1`, command: ['sh'], labels: { 'tsswarm.task.id': 'tsstask9' } }),
      ).rejects.toThrow(message);
      expect(entries(volumesDir)).toEqual(volumesBefore);
      expect(entries(labelsDir)).toEqual(labelsBefore);
      expect(existsSync(join(dir, 'root', 'containers', id))).toBe(false);
      expect((await rt.list()).map((c) => c.id)).not.toContain(id);
    }
  });

  it("anonymous volumes as Docker's: one per mount without a source and per image VOLUME no mount covers, filled from the image (not with volume-nocopy, links kept inside), labelled with the task, removed with the container", async () => {
    const layout = join(dir, 'vols');
    const layer = writeTar([
      { name: 'data', type: 'dir', mode: 0o755, mtime: T },
      { name: 'data/seed', type: 'file', data: Buffer.from('seed\n'), mtime: T },
      { name: 'opt', type: 'dir', mode: 0o750, mtime: T },
      { name: 'opt/o', type: 'file', mode: 0o600, data: Buffer.from('from-image\n'), mtime: T },
      { name: 'opt/link', type: 'symlink', linkname: '/etc/hostname', mtime: T },
      // A VOLUME behind a link out of the image: resolved inside the rootfs, so nothing of the host is copied.
      { name: 'esc', type: 'symlink', linkname: '/../../../../etc', mtime: T },
    ]);
    ociLayout(layout, 'tss/vols:1', [layer], { Cmd: ['sh'], Volumes: { '/data': {}, '/cache/': {}, '/esc': {} } });
    await rt.images.load(layout);
    const before = new Set(rt.volumes().map((v) => v.name));
    const done = exited('tss-av1');
    await run('tss-av1', {
      image: 'tss/vols:1',
      labels: { 'tsswarm.task.id': 'tsstask1', other: 'x' },
      command: ['/busybox', 'sh', '-c', '/busybox cat /opt/o; /busybox ls -A /data /esc | /busybox wc -l; /busybox echo w > /cache/f'],
      mounts: [
        { type: 'bind', source: '/bin/busybox', target: '/busybox', readOnly: true },
        { type: 'volume', source: '', target: '/opt' },
        { type: 'volume', source: '', target: '/data', noCopy: true },
      ],
    });
    expect(await done).toBe(0);
    const out: string[] = [];
    for await (const l of rt.logs('tss-av1')) out.push(l.line.toString().trim());
    // /data (nocopy) is empty; /esc's volume got nothing of the host's /etc: "/data:", "", "/esc:" → 3 lines.
    expect(out).toEqual(['from-image', '3']);
    const anon = rt.volumes().filter((v) => !before.has(v.name));
    expect(anon.map((v) => v.name).every((n) => /^[0-9a-f]{64}$/.test(n))).toBe(true);
    expect(anon).toHaveLength(4); // /opt, /data, /cache, /esc: /data's mount covers the image's VOLUME
    for (const v of anon) expect(v.labels).toEqual({ 'com.docker.volume.anonymous': '', 'tsswarm.task.id': 'tsstask1' });
    const files = anon.map((v) => readdirSync(v.mountpoint).sort().join(',')).sort();
    expect(files).toEqual(['', '', 'f', 'link,o']);
    const opt = anon.find((v) => existsSync(join(v.mountpoint, 'o')))!;
    expect(statSync(opt.mountpoint).mode & 0o777).toBe(0o750);
    expect(statSync(join(opt.mountpoint, 'o')).mode & 0o777).toBe(0o600);
    expect(execFileSync('readlink', [join(opt.mountpoint, 'link')], { encoding: 'utf8' }).trim()).toBe('/etc/hostname');
    await rt.remove('tss-av1');
    made.splice(made.indexOf('tss-av1'), 1);
    expect(rt.volumes().filter((v) => !before.has(v.name))).toEqual([]);
    for (const v of anon) expect(existsSync(v.mountpoint)).toBe(false);
    // The image's author wrote the paths: a relative one, or / itself, is refused at load.
    for (const [i, bad] of ['data', '/', '/..'].entries()) {
      const l = join(dir, `badvol${i}`);
      ociLayout(l, `tss/badvol${i}:1`, [], { Cmd: ['sh'], Volumes: { [bad]: {} } });
      await expect(rt.images.load(l)).rejects.toThrow(/config\.Volumes path .* is not an absolute path below \//);
    }
  });

  it('exits that happen while no Runtime watches are reported to the next one', async () => {
    await run('tss-x1', { command: ['sh', '-c', 'sleep 0.3; exit 4'] });
    rt.close();
    // The exit must happen while no Runtime watches: wait for conmon's exit file, not a fixed time.
    const exitFile = join(dir, 'root', 'exits', 'tss-x1');
    expect(
      await poll(() => existsSync(exitFile) && readFileSync(exitFile, 'utf8').trim() !== '', 10_000),
      "conmon's exit file within 10 s",
    ).toBe(true);
    rt = new Runtime({ root: join(dir, 'root'), logger: log });
    await rt.init();
    expect(await rt.inspect('tss-x1')).toMatchObject({ status: 'stopped', exitCode: 4, finishedAt: expect.any(Number) });
    expect(await exited('tss-x1')).toBe(4);
  });

  it('create+start latency (logged, not asserted) and remove leaves no conmon behind', async () => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await run(`tss-lat${i}`, { command: ['sleep', '60'] });
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    console.log(
      `create+start latency over 5 containers: median ${times[2]!.toFixed(1)} ms, min ${times[0]!.toFixed(1)} ms, max ${times[4]!.toFixed(1)} ms`,
    );
    const conmon = Number(readFileSync(join(dir, 'root', 'containers', 'tss-lat0', 'conmon.pid'), 'utf8'));
    for (let i = 0; i < 5; i++) await rt.remove(`tss-lat${i}`);
    made.splice(0);
    // Gone, or a zombie waiting for its parent (pid 1 here, as conmon daemonizes) to reap it.
    expect(existsSync(`/proc/${conmon}`) ? readFileSync(`/proc/${conmon}/stat`, 'utf8').split(' ')[2] : 'gone').toMatch(/^(gone|Z)$/);
    expect(existsSync(join(dir, 'root', 'exits', 'tss-lat0'))).toBe(false);
    await rt.remove('tss-lat0'); // again: missing is fine
  });

  describe('pull from a local registry', () => {
    let reg: ChildProcess | null = null;
    let port = 0;
    let why = '';

    // The port is found by binding port 0 and releasing it, so another process
    // may take it before the registry binds: such a registry exits (or never
    // answers), and a fresh port is tried. Only a missing binary skips the test.
    beforeAll(async () => {
      if (!have('docker-registry')) {
        why = 'docker-registry is not installed';
        return;
      }
      const rdir = join(dir, 'registry');
      mkdirSync(rdir, { recursive: true });
      const failures: string[] = [];
      for (let attempt = 0; attempt < 5; attempt++) {
        port = await new Promise<number>((res) => {
          const srv = createServer().listen(0, '127.0.0.1', () => {
            const p = (srv.address() as { port: number }).port;
            srv.close(() => res(p));
          });
        });
        writeFileSync(
          join(rdir, 'config.yml'),
          `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${rdir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`,
        );
        const p = spawn('docker-registry', ['serve', join(rdir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
        reg = p;
        let stderr = '';
        p.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-1000)));
        let exited = false;
        p.once('exit', () => (exited = true));
        const up = await poll(async () => {
          if (exited) return true; // stop waiting: this attempt is lost
          try {
            return (await fetch(`http://127.0.0.1:${port}/v2/`, { signal: AbortSignal.timeout(5_000) })).ok && !exited;
          } catch {
            return false; // not up yet
          }
        }, 30_000);
        if (up && !exited) return;
        p.kill('SIGKILL');
        failures.push(
          `port ${port}: ${exited ? 'exited' : 'no answer within 30 s'}${stderr.trim() ? ` (${stderr.trim().split('\n').pop()})` : ''}`,
        );
      }
      reg = null;
      throw new Error(`docker-registry did not start after ${failures.length} attempts: ${failures.join('; ')}`);
    }, 200_000);

    afterAll(() => {
      reg?.kill('SIGKILL');
    });

    /** Pushes the busybox OCI archive's blobs and manifest, and an index pointing at it. */
    async function push(repo: string): Promise<void> {
      const files = new Map([...readTar(readFileSync(join(dir, 'oci.tar')))].map((e) => [e.name, e.data]));
      const base = `http://127.0.0.1:${port}/v2/${repo}`;
      for (const [name, data] of files) {
        if (!name.startsWith('blobs/sha256/')) continue;
        const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
        expect(start.status).toBe(202);
        const loc = new URL(start.headers.get('location')!, base);
        loc.searchParams.set('digest', `sha256:${name.slice(13)}`);
        const put = await fetch(loc, {
          method: 'PUT',
          body: new Uint8Array(data),
          headers: { 'content-type': 'application/octet-stream' },
        });
        expect(put.status).toBe(201);
      }
      const index = JSON.parse(files.get('index.json')!.toString()) as { manifests: { digest: string; size: number }[] };
      const mdigest = index.manifests[0]!.digest;
      const manifest = files.get(`blobs/sha256/${mdigest.slice(7)}`)!;
      const r1 = await fetch(`${base}/manifests/v1`, {
        method: 'PUT',
        body: new Uint8Array(manifest),
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      });
      expect(r1.status).toBe(201);
      const idx = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: mdigest,
            size: manifest.length,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      });
      const r2 = await fetch(`${base}/manifests/multi`, {
        method: 'PUT',
        body: idx,
        headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
      });
      expect(r2.status).toBe(201);
    }

    it('pulls a manifest and an index (linux/amd64) over http and runs the image', async (ctx) => {
      if (why) {
        console.log(`registry pull test skipped: ${why}`);
        ctx.skip();
      }
      await push('tss/bb');
      const prt = new Runtime({ root: join(dir, 'pullroot'), logger: log });
      await prt.init();
      try {
        const [a] = await prt.images.pull(`localhost:${port}/tss/bb:v1`);
        const [b] = await prt.images.pull(`127.0.0.1:${port}/tss/bb:multi`);
        expect(a!.id).toBe(b!.id);
        expect(prt.images.list()[0]!.references.sort()).toEqual([`127.0.0.1:${port}/tss/bb:multi`, `localhost:${port}/tss/bb:v1`]);
        // Each pull by tag recorded the digest of what the tag named (the manifest, the index).
        const [mdigest] = prt.images
          .list()[0]!
          .repoDigests.filter((d) => d.startsWith('localhost'))
          .map((d) => d.split('@')[1]!);
        expect(mdigest).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(prt.images.list()[0]!.repoDigests).toHaveLength(2);
        // By digest (a tag beside it only a label): stored under repo@digest, found again without a second pull.
        const [c] = await prt.images.pull(`127.0.0.1:${port}/tss/bb:ignored@${mdigest}`);
        expect(c!.id).toBe(a!.id);
        expect(c!.repoDigests).toContain(`127.0.0.1:${port}/tss/bb@${mdigest}`);
        expect(prt.images.resolve(`127.0.0.1:${port}/tss/bb@${mdigest}`)?.id).toBe(a!.id);
        await expect(prt.images.pull(`localhost:${port}/tss/bb@sha256:${'0'.repeat(64)}`)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(prt.images.pull(`localhost:${port}/tss/none:v1`)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        const done = new Promise<number>((res) => prt.onExit((id, code) => id === 'tss-p1' && res(code)));
        await prt.create({ id: 'tss-p1', image: `localhost:${port}/tss/bb:v1`, command: ['sh', '-c', 'echo pulled'] });
        await prt.start('tss-p1');
        expect(await done).toBe(0);
        const out: string[] = [];
        for await (const l of prt.logs('tss-p1')) out.push(l.line.toString().trim());
        expect(out).toEqual(['pulled']);
        // Untag only; the repository's last tag takes its digest with it, as docker does.
        await expect(prt.images.remove(`localhost:${port}/tss/bb:v1`)).resolves.toEqual([
          `localhost:${port}/tss/bb:v1`,
          `localhost:${port}/tss/bb@${mdigest}`,
        ]);
        await expect(prt.images.remove(`127.0.0.1:${port}/tss/bb:multi`)).rejects.toMatchObject({ code: 'FAILED_PRECONDITION' });
      } finally {
        await prt.remove('tss-p1');
        prt.close();
      }
    });
  });
});
