// Containers through runc, each watched by its own conmon (Debian's
// container monitor): conmon holds the container's stdio, writes its output
// to a log file (k8s-file format) and its exit code to the exit directory,
// and outlives the agent, so a restarted agent finds its containers running
// and adopts them (live restore). The rootfs is an overlayfs over the image's
// shared layers. Each Runtime has its own runc root, so several agents on one
// machine (the sandbox) never see each other's containers.
import { execFile, spawn } from 'node:child_process';
import {
  closeSync,
  constants as fsConstants,
  existsSync,
  type FSWatcher,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  rmdirSync,
  statSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type pino from 'pino';
import { TsswarmError } from '../../lib/errors.js';
import { isMounted, MNT_DETACH, mount, umount } from '../../native/libc.js';
import { type FileMount, mountFiles, unmountFiles } from './files.js';
import { ImageStore, type ResolvedImage } from './images.js';
import { ociConfig, ociJson, resolveUser, TTY_REFUSED } from './spec.js';
import { hostsFile, resolvConfWith } from './etc.js';
import type { ContainerConfig, ContainerState, ExecHandle, LogLine } from './types.js';

const ID_RE = /^tss[A-Za-z0-9_.-]+$/;
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((r) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      r();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
const CGROUP_CONTROLLERS = [
  'memory',
  'cpu,cpuacct',
  'cpu',
  'cpuacct',
  'pids',
  'cpuset',
  'blkio',
  'devices',
  'freezer',
  'net_cls,net_prio',
  'net_cls',
  'net_prio',
  'perf_event',
  'hugetlb',
  'rdma',
  'misc',
  'systemd',
  'unified',
];

export interface RuntimeOptions {
  root: string;
  logger: pino.Logger;
  runc?: string;
  conmon?: string;
  /** The static init bind-mounted into containers run with --init (Debian's tini-static). */
  init?: string;
}

/** Debian's package `tini` installs its static build here. */
export const DEFAULT_INIT = '/usr/bin/tini-static';

interface Meta {
  id: string;
  image: string;
  imageId: string;
  labels: Record<string, string>;
  createdAt: number;
  startedAt?: number;
  /** The signal stop sends by default: the spec's, else the image's STOPSIGNAL. */
  stopSignal?: string;
}

function exec(file: string, args: string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (e, stdout, stderr) => {
      if (e) rej(Object.assign(new Error(`${file} ${args.slice(0, 4).join(' ')}: ${(stderr || e.message).toString().trim()}`), { stderr }));
      else res({ stdout: stdout.toString(), stderr: stderr.toString() });
    });
  });
}

export class Runtime {
  readonly images: ImageStore;
  private readonly root: string;
  private readonly runcRoot: string;
  private readonly exits: string;
  private readonly sockets: string;
  private readonly containers: string;
  private runcBin: string;
  private conmonBin: string;
  private readonly initBin: string;
  private readonly log: pino.Logger;
  private readonly exitFns = new Set<(id: string, code: number) => void>();
  private watcher: FSWatcher | null = null;
  private poll: NodeJS.Timeout | null = null;
  private readonly seenExits = new Set<string>();
  private execSeq = 0;

  constructor(o: RuntimeOptions) {
    this.root = o.root;
    this.runcRoot = join(o.root, 'runc');
    this.exits = join(o.root, 'exits');
    this.sockets = join(o.root, 'sock');
    this.containers = join(o.root, 'containers');
    this.runcBin = o.runc ?? 'runc';
    this.conmonBin = o.conmon ?? 'conmon';
    this.initBin = o.init ?? DEFAULT_INIT;
    this.log = o.logger.child({ component: 'runtime' });
    this.images = new ImageStore(o.root, this.log);
    this.images.inUse = () => new Set(this.metas().map((m) => m.imageId));
  }

  async init(): Promise<void> {
    for (const [bin, pkg] of [
      [this.runcBin, 'runc'],
      [this.conmonBin, 'conmon'],
    ] as const) {
      try {
        await exec(bin, ['--version']);
      } catch {
        throw new TsswarmError('FAILED_PRECONDITION', `${bin} is not installed: containers need it (apt-get install ${pkg})`);
      }
    }
    // conmon wants the runtime's absolute path.
    this.runcBin = which(this.runcBin);
    this.conmonBin = which(this.conmonBin);
    for (const d of [this.runcRoot, this.exits, this.sockets, this.containers]) mkdirSync(d, { recursive: true });
    this.images.init();
    // Exits recorded while no agent watched stay as files; the first scan with a listener reports them.
    this.watcher = watch(this.exits, () => this.scanExits());
    this.poll = setInterval(() => this.scanExits(), 2000);
    this.poll.unref();
  }

  /**
   * Calls `fn` once per container exit seen by this Runtime, including exits
   * that happened while no agent watched (reported soon after the first
   * listener subscribes). Returns the unsubscribe function.
   */
  onExit(fn: (id: string, code: number) => void): () => void {
    this.exitFns.add(fn);
    if (this.watcher) setImmediate(() => this.scanExits());
    return () => this.exitFns.delete(fn);
  }

  private scanExits(): void {
    if (this.exitFns.size === 0) return; // kept for the first listener
    let files: string[];
    try {
      files = readdirSync(this.exits);
    } catch {
      return;
    }
    for (const id of files) {
      if (this.seenExits.has(id) || !existsSync(this.dir(id))) continue; // removed: not ours to report
      let text: string;
      try {
        text = readFileSync(join(this.exits, id), 'utf8').trim();
      } catch {
        continue;
      }
      if (!text) continue; // conmon writes it in one go; an empty read is a race
      this.seenExits.add(id);
      // The container is over: its secrets and configs go (its own mounts of them went with its last process).
      this.releaseFiles(id);
      const code = Number(text);
      this.log.debug({ container: id, code }, 'container exited');
      for (const fn of this.exitFns) fn(id, Number.isFinite(code) ? code : -1);
    }
  }

  private dir(id: string): string {
    return join(this.containers, id);
  }

  private metas(): Meta[] {
    const out: Meta[] = [];
    let ids: string[] = [];
    try {
      ids = readdirSync(this.containers);
    } catch {
      return out;
    }
    for (const id of ids) {
      try {
        out.push(JSON.parse(readFileSync(join(this.dir(id), 'meta.json'), 'utf8')) as Meta);
      } catch {
        /* a half-made container: remove() cleans it */
      }
    }
    return out;
  }

  private runc(args: string[], timeoutMs?: number): Promise<{ stdout: string; stderr: string }> {
    return exec(this.runcBin, ['--root', this.runcRoot, ...args], timeoutMs);
  }

  async create(c: ContainerConfig): Promise<void> {
    if (!ID_RE.test(c.id))
      throw new TsswarmError('INVALID_ARGUMENT', `container id "${c.id}" must start with tss and hold only letters, digits, _ . -`);
    if (c.tty) throw new TsswarmError('UNIMPLEMENTED', TTY_REFUSED);
    if (c.init && !existsSync(this.initBin))
      throw new TsswarmError(
        'FAILED_PRECONDITION',
        `--init needs ${this.initBin} on this node, and it is missing: install it (apt-get install tini) or run the service with --init=false`,
      );
    const img = this.images.resolve(c.image);
    if (!img)
      throw new TsswarmError(
        'NOT_FOUND',
        `image ${c.image} not found on this node: load it with \`tsswarm image load -i FILE\` or pull it`,
      );
    const d = this.dir(c.id);
    if (existsSync(d)) throw new TsswarmError('ALREADY_EXISTS', `container ${c.id} already exists`);
    for (const m of c.mounts ?? []) {
      if (m.type !== 'volume') continue;
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(m.source))
        throw new TsswarmError(
          'INVALID_ARGUMENT',
          `volume name "${m.source}" (mount at ${m.target}) must be letters, digits, _ . - (a named volume, not a path: use a bind mount for host paths)`,
        );
      mkdirSync(join(this.root, 'volumes', m.source), { recursive: true }); // made on demand, kept after remove
    }
    try {
      await this.make(c, img, d);
    } catch (e) {
      // Nothing half-made stays: no mount, no runc state, no directory.
      await this.remove(c.id).catch((err: unknown) => this.log.warn({ err, container: c.id }, 'cleaning up a failed create'));
      throw e;
    }
  }

  private async make(c: ContainerConfig, img: ResolvedImage, d: string): Promise<void> {
    const bundle = join(d, 'bundle');
    const rootfs = join(bundle, 'rootfs');
    for (const x of [rootfs, join(d, 'upper'), join(d, 'work'), join(d, 'empty')]) mkdirSync(x, { recursive: true });
    // A container of the same name removed earlier may have left its exit file behind.
    rmSync(join(this.exits, c.id), { force: true });
    this.seenExits.delete(c.id);
    const meta: Meta = { id: c.id, image: c.image, imageId: img.id, labels: c.labels ?? {}, createdAt: Date.now() };
    const stopSignal = c.stopSignal || img.stopSignal;
    if (stopSignal) meta.stopSignal = stopSignal;
    writeFileSync(join(d, 'meta.json'), JSON.stringify(meta));
    // overlayfs: the image's layers, top first, below a private upper dir. The mount source is the container id.
    const lower = img.layers.length ? [...img.layers].reverse().join(':') : join(d, 'empty');
    // A syscall, not a `mount` process: every fork of the daemon blocks its event loop for a while.
    mount(c.id, rootfs, 'overlay', `lowerdir=${lower},upperdir=${join(d, 'upper')},workdir=${join(d, 'work')}`);
    const hostname = c.hostname || c.id.slice(0, 12);
    writeFileSync(join(d, 'hostname'), `${hostname}\n`);
    writeFileSync(join(d, 'hosts'), hostsFile(hostname, c.extraHosts));
    let resolv = c.resolvConf ?? '';
    if (!resolv) {
      try {
        resolv = readFileSync('/etc/resolv.conf', 'utf8');
      } catch {
        resolv = 'nameserver 127.0.0.11\n';
      }
    }
    writeFileSync(join(d, 'resolv.conf'), resolvConfWith(resolv, c.dns));
    // Secrets and configs on a tmpfs of the container's own (files.ts); a failed create unmounts it in remove().
    const files: FileMount[] = c.files?.length ? mountFiles(d, c.files) : [];
    const spec = ociConfig(c, img, {
      rootfs,
      hostname,
      etcFiles: { hostname: join(d, 'hostname'), hosts: join(d, 'hosts'), 'resolv.conf': join(d, 'resolv.conf') },
      volumesDir: join(this.root, 'volumes'),
      files,
      ...(c.init ? { init: this.initBin } : {}),
    });
    writeFileSync(join(bundle, 'config.json'), ociJson(spec));
    // conmon daemonizes at once; it reports runc's create through the sync pipe (fd 3): {"data": pid} or a negative data with a message.
    const args = [
      '--api-version',
      '1',
      '-c',
      c.id,
      '-u',
      c.id,
      '-n',
      c.id,
      '-r',
      this.runcBin,
      '--runtime-arg',
      `--root=${this.runcRoot}`,
      '-b',
      bundle,
      '-p',
      join(d, 'pid'),
      '-P',
      join(d, 'conmon.pid'),
      '-l',
      `k8s-file:${join(d, 'ctr.log')}`,
      '--exit-dir',
      this.exits,
      '--socket-dir-path',
      this.sockets,
      '--log-level',
      'error',
    ];
    await new Promise<void>((res, rej) => {
      const p = spawn(this.conmonBin, args, {
        stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
        env: { ...process.env, _OCI_SYNCPIPE: '3' },
        detached: true,
      });
      let stderr = '';
      let sync = '';
      let done = false;
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) rej(err);
        else res();
      };
      const timer = setTimeout(() => finish(new TsswarmError('INTERNAL', `conmon did not report ${c.id} created within 30 s`)), 30_000);
      p.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
      const pipe = p.stdio[3] as NodeJS.ReadableStream;
      pipe.on('data', (b: Buffer) => {
        sync += b.toString();
        for (const line of sync.split('\n')) {
          try {
            const m = JSON.parse(line) as { data: number; message?: string };
            if (m.data > 0) finish();
            else finish(new TsswarmError('INTERNAL', `runc could not create ${c.id}: ${(m.message ?? stderr).trim()}`));
            return;
          } catch {
            /* not a whole message yet */
          }
        }
      });
      pipe.on('end', () =>
        finish(
          new TsswarmError('INTERNAL', `conmon could not create ${c.id}: ${stderr.trim() || 'it closed the sync pipe without a pid'}`),
        ),
      );
      p.on('error', (e) => finish(new TsswarmError('INTERNAL', `starting conmon failed: ${e.message}`)));
      p.unref();
    });
    if (!existsSync(join(d, 'pid'))) throw new TsswarmError('INTERNAL', `runc did not create ${c.id} (no pid file); see the daemon log`);
  }

  async start(id: string): Promise<ContainerState> {
    if (!(await this.releaseExecFifo(id))) await this.runc(['start', id]);
    const metaPath = join(this.dir(id), 'meta.json');
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as Meta;
    meta.startedAt = Date.now();
    writeFileSync(metaPath, JSON.stringify(meta));
    const s = await this.inspect(id);
    if (!s) throw new TsswarmError('INTERNAL', `container ${id} vanished right after it started`);
    return s;
  }

  /**
   * Starts a created container the way `runc start` does, without its
   * process: the container's init waits, blocked, to write to runc's exec
   * FIFO; opening it for reading lets it go on to exec the user's process,
   * and removing the FIFO afterwards is what marks the container running
   * for `runc state`. A runc process costs about 10 ms of CPU to start (Go
   * runtime), which a burst of container starts pays once each. False when
   * there is no FIFO to release (runc then decides).
   */
  private async releaseExecFifo(id: string): Promise<boolean> {
    const fifo = join(this.runcRoot, id, 'exec.fifo');
    let fd: number;
    try {
      // Non-blocking: an init that died never opens its end, and a blocking open would hang.
      fd = openSync(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    } catch {
      return false;
    }
    try {
      const pid = Number(readText(join(this.dir(id), 'pid')) || 0);
      const buf = Buffer.alloc(16);
      const end = Date.now() + 10_000;
      for (;;) {
        let n = 0;
        try {
          n = readSync(fd, buf, 0, buf.length, null);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        }
        // A byte from init: it is past the FIFO. Nothing yet (no writer has opened, or it has not written): wait.
        if (n > 0) break;
        if (pid > 0 && !processAlive(pid)) throw new TsswarmError('INTERNAL', `container ${id} died before it could start`);
        if (Date.now() > end) throw new TsswarmError('INTERNAL', `container ${id} did not take the start signal within 10 s`);
        await new Promise((r) => setTimeout(r, 1));
      }
    } finally {
      closeSync(fd);
    }
    rmSync(fifo, { force: true });
    return true;
  }

  /**
   * The container's state, mostly without asking runc (each runc call costs a process start):
   * an exit file means stopped; a live init process (conmon's pid file) means running, or created
   * when it was never started; runc is asked only when neither settles it.
   */
  async inspect(id: string): Promise<ContainerState | undefined> {
    let meta: Meta;
    try {
      meta = JSON.parse(readFileSync(join(this.dir(id), 'meta.json'), 'utf8')) as Meta;
    } catch {
      return undefined;
    }
    const base = { id, startedAt: meta.startedAt, labels: meta.labels, image: meta.image };
    const exitText = readText(join(this.exits, id));
    if (exitText) return { ...base, status: 'stopped', pid: 0, exitCode: Number(exitText), finishedAt: mtimeOf(join(this.exits, id)) };
    const pid = Number(readText(join(this.dir(id), 'pid')) || 0);
    if (pid > 0 && processAlive(pid)) return { ...base, status: meta.startedAt ? 'running' : 'created', pid };
    let status: ContainerState['status'] = 'stopped';
    let rpid = 0;
    try {
      const st = JSON.parse((await this.runc(['state', id])).stdout) as { status: string; pid: number };
      status = st.status === 'running' ? 'running' : st.status === 'created' ? 'created' : st.status === 'stopped' ? 'stopped' : 'unknown';
      rpid = status === 'stopped' ? 0 : st.pid;
    } catch {
      status = 'stopped';
    }
    const again = readText(join(this.exits, id));
    return {
      ...base,
      status,
      pid: rpid,
      exitCode: status === 'stopped' && again ? Number(again) : undefined,
      finishedAt: status === 'stopped' && again ? mtimeOf(join(this.exits, id)) : undefined,
    };
  }

  /** The named volumes this node holds: directories under volumes/, made on a task's first use and kept. */
  volumes(): { name: string; mountpoint: string; createdAt: number }[] {
    const dir = join(this.root, 'volumes');
    if (!existsSync(dir)) return [];
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => {
        const mountpoint = join(dir, e.name);
        const st = statSync(mountpoint, { throwIfNoEntry: false });
        return { name: e.name, mountpoint, createdAt: st ? Math.floor(st.birthtimeMs || st.mtimeMs) : 0 };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async list(): Promise<ContainerState[]> {
    const out: ContainerState[] = [];
    for (const m of this.metas()) {
      const s = await this.inspect(m.id);
      if (s) out.push(s);
    }
    return out;
  }

  async kill(id: string, signal: string): Promise<void> {
    await this.runc(['kill', id, signal.replace(/^SIG/, '')]).catch((e: Error) => {
      if (!/not running|does not exist|container not running|process already finished/i.test(e.message)) throw e;
    });
  }

  /**
   * The stop signal (`signal`, else the container's own: the spec's or its
   * image's STOPSIGNAL, else SIGTERM), up to `graceMs` for the process to
   * go, then SIGKILL. Resolves once it is stopped, its secrets and configs gone.
   */
  async stop(id: string, graceMs: number, signal?: string): Promise<void> {
    let sig = signal;
    if (!sig) {
      try {
        sig = (JSON.parse(readFileSync(join(this.dir(id), 'meta.json'), 'utf8')) as Meta).stopSignal;
      } catch {
        /* gone: stopProcess finds it stopped */
      }
    }
    await this.stopProcess(id, graceMs, sig || 'SIGTERM');
    this.releaseFiles(id);
  }

  /** Unmounts the container's secrets and configs tmpfs, if it has one (files.ts); never throws. */
  private releaseFiles(id: string): void {
    try {
      unmountFiles(this.dir(id));
    } catch (err) {
      this.log.warn({ err, container: id }, "could not unmount the container's secrets and configs");
    }
  }

  private async stopProcess(id: string, graceMs: number, signal: string): Promise<void> {
    const stopped = async (): Promise<boolean> => {
      const s = await this.inspect(id);
      return !s || s.status === 'stopped' || s.status === 'unknown';
    };
    if (await stopped()) return;
    await this.kill(id, signal);
    const end = Date.now() + graceMs;
    while (Date.now() < end) {
      if (await stopped()) return;
      await sleep(Math.min(100, Math.max(10, end - Date.now())));
    }
    this.log.info({ container: id, graceMs }, 'container ignored its stop signal: SIGKILL');
    await this.kill(id, 'SIGKILL');
    for (let i = 0; i < 100; i++) {
      if (await stopped()) return;
      await sleep(50);
    }
    throw new TsswarmError('INTERNAL', `container ${id} survived SIGKILL`);
  }

  /** Removes the container and everything made for it: process, conmon, runc state, mount, cgroups, files. Idempotent. */
  async remove(id: string): Promise<void> {
    const d = this.dir(id);
    const conmonPid = Number(readText(join(d, 'conmon.pid')) || 0);
    await this.runc(['delete', '-f', id]).catch((e: Error) => {
      if (!/does not exist|not exist/i.test(e.message)) this.log.warn({ container: id, err: e.message }, 'runc delete failed');
    });
    // conmon sees its container go, writes the exit file and exits; it must be gone before its files are.
    if (conmonPid > 0 && isConmonOf(conmonPid, id)) {
      for (let i = 0; i < 100 && processAlive(conmonPid); i++) await sleep(i < 10 ? 5 : 20);
      if (processAlive(conmonPid)) {
        this.log.warn({ container: id, pid: conmonPid }, 'conmon outlived its container: SIGKILL');
        try {
          process.kill(conmonPid, 'SIGKILL');
        } catch {
          /* gone meanwhile */
        }
      }
    }
    // Before the directory goes: rmSync would empty the tmpfs and then fail on its mount point.
    this.releaseFiles(id);
    const rootfs = join(d, 'bundle', 'rootfs');
    if (isMounted(rootfs)) {
      try {
        umount(rootfs);
      } catch {
        umount(rootfs, MNT_DETACH);
      }
    }
    rmSync(d, { recursive: true, force: true });
    rmSync(join(this.exits, id), { force: true });
    rmSync(join(this.sockets, id), { recursive: true, force: true });
    this.seenExits.delete(id);
    for (const ctl of CGROUP_CONTROLLERS) {
      try {
        rmdirSync(join('/sys/fs/cgroup', ctl, 'tss', id));
      } catch {
        /* gone, or never made */
      }
    }
  }

  /** The container's output, parsed from conmon's k8s-file log; follow tails it until `signal` aborts or the container stops. */
  async *logs(id: string, o: { follow?: boolean; tail?: number; signal?: AbortSignal } = {}): AsyncIterable<LogLine> {
    const file = join(this.dir(id), 'ctr.log');
    if (!existsSync(file)) {
      if (!existsSync(this.dir(id))) throw new TsswarmError('NOT_FOUND', `no container ${id} on this node`);
      return;
    }
    const fh = await open(file, 'r');
    try {
      let pos = 0;
      let rest = '';
      let partial: { stream: 'stdout' | 'stderr'; time: number; text: string } | null = null;
      const parse = (chunk: string, out: LogLine[]): void => {
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) {
          const m = /^(\S+) (stdout|stderr) ([FP]) ?(.*)$/.exec(l);
          if (!m) continue;
          const stream = m[2] as 'stdout' | 'stderr';
          const time = Date.parse(m[1]!) || Date.now();
          const text = (partial && partial.stream === stream ? partial.text : '') + m[4]!;
          if (m[3] === 'P') {
            partial = { stream, time, text };
            continue;
          }
          partial = null;
          out.push({ stream, time, line: Buffer.from(`${text}\n`) });
        }
      };
      const readMore = async (): Promise<LogLine[]> => {
        const out: LogLine[] = [];
        for (;;) {
          const buf = Buffer.alloc(64 * 1024);
          const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
          if (bytesRead === 0) break;
          pos += bytesRead;
          parse(buf.subarray(0, bytesRead).toString('utf8'), out);
        }
        return out;
      };
      let first = await readMore();
      if (o.tail && first.length > o.tail) first = first.slice(first.length - o.tail);
      for (const l of first) yield l;
      if (!o.follow) return;
      while (!o.signal?.aborted) {
        await sleep(200, o.signal);
        for (const l of await readMore()) yield l;
        const s = await this.inspect(id);
        if (!s || s.status === 'stopped') {
          for (const l of await readMore()) yield l;
          return;
        }
      }
    } finally {
      await fh.close();
    }
  }

  /** Runs a command in the running container (runc exec). */
  exec(id: string, o: { cmd: string[]; env?: string[]; user?: string; workdir?: string; signal?: AbortSignal }): ExecHandle {
    const args = ['--root', this.runcRoot, 'exec'];
    for (const e of o.env ?? []) args.push('--env', e);
    if (o.user) {
      // runc takes uid[:gid]; a name is looked up in the container's own /etc/passwd, as for its main process.
      let user = o.user;
      if (!/^\d+(:\d+)?$/.test(user)) {
        try {
          const u = resolveUser(user, join(this.dir(id), 'bundle', 'rootfs'));
          user = `${u.uid}:${u.gid}`;
        } catch (e) {
          return failedExec(`exec: ${(e as Error).message}\n`);
        }
      }
      args.push('--user', user);
    }
    if (o.workdir) args.push('--cwd', o.workdir);
    if (!existsSync(this.dir(id))) return failedExec(`exec: no container ${id} on this node\n`);
    // The exec'd process's pid: a signal to runc exec is forwarded, but SIGKILL cannot be, so it goes straight to the process.
    const pidFile = join(this.dir(id), `exec-${process.pid}-${++this.execSeq}.pid`);
    args.push('--pid-file', pidFile, id, ...o.cmd);
    const p = spawn(this.runcBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    p.stdout.pipe(stdout);
    p.stderr.pipe(stderr);
    const exit = new Promise<number>((res) => {
      p.on('error', (e) => {
        stderr.end(`exec failed: ${e.message}\n`);
        res(126);
      });
      p.on('close', (code, sig) => {
        rmSync(pidFile, { force: true });
        res(code ?? (sig ? 128 + (osConstants.signals[sig] ?? 0) : 1));
      });
    });
    let exited = false;
    void exit.then(() => {
      exited = true;
    });
    const kill = (signal = 'SIGKILL'): void => {
      const sig = (signal.startsWith('SIG') ? signal : `SIG${signal}`) as NodeJS.Signals;
      const pid = Number(readText(pidFile) || 0);
      try {
        if (pid > 0) {
          process.kill(pid, sig);
          return;
        }
      } catch {
        return; // the process is gone already
      }
      if (sig !== 'SIGKILL') {
        p.kill(sig); // runc exec forwards it to the process, once that has started
        return;
      }
      // No pid file yet: runc writes it only after the command started. A SIGKILL to runc exec
      // itself (which cannot forward it) would leave the command running in the container, so
      // runc gets a SIGTERM to forward, and the command a SIGKILL as soon as its pid is known.
      p.kill('SIGTERM');
      const deadline = Date.now() + 10_000;
      const t = setInterval(() => {
        if (exited) return clearInterval(t);
        const late = Number(readText(pidFile) || 0);
        if (late > 0 || Date.now() > deadline) {
          clearInterval(t);
          try {
            if (late > 0) process.kill(late, 'SIGKILL');
            else p.kill('SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
      }, 25);
      t.unref();
    };
    const onAbort = (): void => kill('SIGKILL');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    void exit.then(() => o.signal?.removeEventListener('abort', onAbort));
    return { stdout, stderr, exit, kill };
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
    this.exitFns.clear();
  }
}

function which(bin: string): string {
  if (bin.includes('/')) return bin;
  for (const d of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (d && existsSync(join(d, bin))) return join(d, bin);
  }
  for (const d of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) if (existsSync(join(d, bin))) return join(d, bin);
  return bin;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Alive and not a zombie (a zombie's exit is about to be written by conmon). */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

function mtimeOf(path: string): number | undefined {
  try {
    return Math.round(statSync(path).mtimeMs);
  } catch {
    return undefined;
  }
}

/** The pid is still the conmon of this container (pids are reused). */
function isConmonOf(pid: number, id: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes(id) && /conmon/.test(argv[0] ?? '');
  } catch {
    return false;
  }
}

/** An exec that could not start: its message on stderr, exit code 126 as a shell gives. */
function failedExec(message: string): ExecHandle {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.end();
  stderr.end(message);
  return { stdout, stderr, exit: Promise.resolve(126), kill: () => undefined };
}
