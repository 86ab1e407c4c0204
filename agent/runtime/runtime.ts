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
import { type FileHandle, open } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join, posix } from 'node:path';
import { PassThrough } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type pino from 'pino';
import { TsswarmError } from '../../lib/errors.js';
import { DEFAULT_LOG_MAX_FILE, DEFAULT_LOG_MAX_SIZE } from '../../spec/log-driver.js';
import { isMounted, MNT_DETACH, mount, umount } from '../../native/libc.js';
import { type FileMount, mountFiles, unmountFiles } from './files.js';
import { ImageStore, type ResolvedImage } from './images.js';
import { conmonFileSize, LOG_FILE, LogRotator, logFiles } from './logrotate.js';
import { ociConfig, ociJson, resolveUser } from './spec.js';
import { hostsFile, resolvConfWith } from './etc.js';
import { resolveInRoot } from './inroot.js';
import {
  checkVolumeFills,
  type FillAllowance,
  MAX_VOLUME_FILL_BYTES,
  MAX_VOLUME_FILL_ENTRIES,
  measureFill,
  VOLUME_FILL_TIMEOUT_MS,
  type VolumeFill,
} from './volumefill.js';
import type { ContainerConfig, ContainerState, ExecHandle, LogLine, LogPolicy, MountConfig } from './types.js';

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
  /** Where its output goes: none, or rotated files (absent in containers made before rotation: one unbounded file). */
  log?: LogPolicy;
  /** The anonymous volumes made for this container (64 hex digits each, as Docker names them): removed with it. */
  anonymousVolumes?: string[];
}

const ANON_VOLUME_RE = /^[0-9a-f]{64}$/;

/**
 * Labels of an anonymous volume: Docker's marker, and the task labels of the container it was
 * made for (`tsswarm.task.id`, ...; the Engine API adds their `com.docker.swarm.*` names).
 */
function anonymousVolumeLabels(containerLabels: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = { 'com.docker.volume.anonymous': '' };
  for (const [k, v] of Object.entries(containerLabels ?? {})) if (k.startsWith('tsswarm.') || k.startsWith('com.docker.swarm.')) out[k] = v;
  return out;
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
  private readonly rotator: LogRotator;

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
    this.rotator = new LogRotator(this.log);
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
    // Containers that outlived the last agent (live restore) go on rotating.
    for (const m of this.metas()) if (m.log?.kind === 'file') this.rotator.add(m.id, this.dir(m.id), m.log.maxFiles);
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
    const { mounts, anonymous, fill } = this.volumeMounts(c, img);
    try {
      await this.make({ ...c, mounts }, img, d, anonymous, fill);
    } catch (e) {
      this.removeAnonymousVolumes(anonymous);
      // Nothing half-made stays: no mount, no runc state, no directory.
      await this.remove(c.id).catch((err: unknown) => this.log.warn({ err, container: c.id }, 'cleaning up a failed create'));
      throw e;
    }
  }

  /**
   * The container's mounts with its volumes planned: a named volume's directory on first use (kept
   * after the container), and for each anonymous one (a volume mount with no source, or a VOLUME
   * of the image that no mount covers, as Docker's) a new volume of its own, named by 64 random
   * hex digits as Docker's and removed with the container. `fill`: the new volumes to fill with
   * the image's content at their target (all anonymous ones unless volume-nocopy). Makes nothing
   * on disk (makeVolumes does, once meta.json records them).
   */
  private volumeMounts(c: ContainerConfig, img: ResolvedImage): { mounts: MountConfig[]; anonymous: string[]; fill: Set<string> } {
    const mounts: MountConfig[] = [];
    const anonymous: string[] = [];
    const fill = new Set<string>();
    const anon = (m: MountConfig): MountConfig => {
      const name = randomBytes(32).toString('hex');
      anonymous.push(name);
      if (!m.noCopy) fill.add(name);
      return { ...m, source: name };
    };
    for (const m of c.mounts ?? []) {
      if (m.type !== 'volume') mounts.push(m);
      else if (m.source === '') mounts.push(anon(m));
      else if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(m.source))
        throw new TsswarmError(
          'INVALID_ARGUMENT',
          `volume name "${m.source}" (mount at ${m.target}) must be letters, digits, _ . - (a named volume, not a path: use a bind mount for host paths)`,
        );
      else mounts.push(m);
    }
    const covered = new Set(mounts.map((m) => posix.normalize(m.target).replace(/\/+$/, '')));
    for (const v of img.volumes ?? []) if (!covered.has(v)) mounts.push(anon({ type: 'volume', source: '', target: v }));
    return { mounts, anonymous, fill };
  }

  /**
   * Makes the container's volume directories (and its anonymous ones' label files). Called once
   * meta.json names the anonymous ones, so whatever fails (or a daemon that dies) after this
   * point leaves them to remove() along with the container.
   */
  private makeVolumes(c: ContainerConfig, anonymous: readonly string[]): void {
    for (const m of c.mounts ?? []) if (m.type === 'volume') mkdirSync(join(this.root, 'volumes', m.source), { recursive: true });
    if (anonymous.length) {
      const labels = JSON.stringify(anonymousVolumeLabels(c.labels));
      mkdirSync(join(this.root, 'volume-labels'), { recursive: true });
      for (const name of anonymous) writeFileSync(join(this.root, 'volume-labels', `${name}.json`), labels);
    }
  }

  /**
   * Docker's copy into new volumes: what the image holds at each target (resolved inside the
   * rootfs, links never followed out of it). All checked (volumefill.ts: never the whole rootfs,
   * no directory aliased by a link) and measured against one allowance before any copy.
   */
  private async fillVolumes(rootfs: string, mounts: readonly MountConfig[], fill: ReadonlySet<string>): Promise<void> {
    const fills: VolumeFill[] = [];
    for (const m of mounts) {
      if (m.type !== 'volume' || !fill.has(m.source)) continue;
      let source: string;
      try {
        source = resolveInRoot(rootfs, m.target, { followFinal: true });
      } catch {
        continue; // nothing at that path in the image (or a path that cannot be): the volume starts empty
      }
      if (!statSync(source, { throwIfNoEntry: false })?.isDirectory()) continue;
      fills.push({ target: m.target, source, volume: join(this.root, 'volumes', m.source) });
    }
    checkVolumeFills(rootfs, fills);
    const left: FillAllowance = { bytes: MAX_VOLUME_FILL_BYTES, entries: MAX_VOLUME_FILL_ENTRIES };
    for (const f of fills) await measureFill(f.source, f.target, left);
    for (const f of fills) {
      // -a: owners, modes, times and links as they are (a link inside is copied as a link, never followed).
      await exec('cp', ['-a', '--', `${f.source}/.`, f.volume], VOLUME_FILL_TIMEOUT_MS).catch((e: Error) => {
        throw new TsswarmError('INTERNAL', `volume at ${f.target}: copying the image's content into it failed: ${e.message}`);
      });
    }
  }

  /** Removes a container's anonymous volumes (named by meta.json, each checked to be one). */
  private removeAnonymousVolumes(names: readonly string[] | undefined): void {
    for (const name of names ?? []) {
      if (!ANON_VOLUME_RE.test(name)) continue;
      rmSync(join(this.root, 'volumes', name), { recursive: true, force: true });
      rmSync(join(this.root, 'volume-labels', `${name}.json`), { force: true });
    }
  }

  private async make(c: ContainerConfig, img: ResolvedImage, d: string, anonymous: string[] = [], fill = new Set<string>()): Promise<void> {
    const bundle = join(d, 'bundle');
    const rootfs = join(bundle, 'rootfs');
    for (const x of [rootfs, join(d, 'upper'), join(d, 'work'), join(d, 'empty')]) mkdirSync(x, { recursive: true });
    // A container of the same name removed earlier may have left its exit file behind.
    rmSync(join(this.exits, c.id), { force: true });
    this.seenExits.delete(c.id);
    const meta: Meta = { id: c.id, image: c.image, imageId: img.id, labels: c.labels ?? {}, createdAt: Date.now() };
    if (anonymous.length) meta.anonymousVolumes = anonymous;
    const stopSignal = c.stopSignal || img.stopSignal;
    if (stopSignal) meta.stopSignal = stopSignal;
    const logPolicy: LogPolicy = c.log ?? { kind: 'file', maxSize: DEFAULT_LOG_MAX_SIZE, maxFiles: DEFAULT_LOG_MAX_FILE };
    meta.log = logPolicy;
    writeFileSync(join(d, 'meta.json'), JSON.stringify(meta));
    this.makeVolumes(c, anonymous);
    // overlayfs: the image's layers, top first, below a private upper dir. The mount source is the container id.
    const lower = img.layers.length ? [...img.layers].reverse().join(':') : join(d, 'empty');
    // A syscall, not a `mount` process: every fork of the daemon blocks its event loop for a while.
    mount(c.id, rootfs, 'overlay', `lowerdir=${lower},upperdir=${join(d, 'upper')},workdir=${join(d, 'work')}`);
    if (fill.size) await this.fillVolumes(rootfs, c.mounts ?? [], fill);
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
      // --tty: conmon makes the console socket, passes it to runc, and holds the pty's master for the container's life.
      ...(c.tty ? ['-t'] : []),
      // conmon bounds each file (a new one when the next record would pass the size); the rotator keeps max-file of them (logrotate.ts).
      ...(logPolicy.kind === 'none'
        ? ['-l', 'none']
        : ['-l', `k8s-file:${join(d, LOG_FILE)}`, '--log-size-max', String(conmonFileSize(logPolicy.maxSize, logPolicy.maxFiles))]),
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
    if (logPolicy.kind === 'file') this.rotator.add(c.id, d, logPolicy.maxFiles);
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

  /**
   * The volumes this node holds: directories under volumes/. A named one is made on a task's first
   * use and kept; an anonymous one (labelled com.docker.volume.anonymous and with its task's
   * labels) lives as long as its container.
   */
  volumes(): { name: string; mountpoint: string; createdAt: number; labels: Record<string, string> }[] {
    const dir = join(this.root, 'volumes');
    if (!existsSync(dir)) return [];
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => {
        const mountpoint = join(dir, e.name);
        const st = statSync(mountpoint, { throwIfNoEntry: false });
        let labels: Record<string, string> = {};
        if (ANON_VOLUME_RE.test(e.name)) {
          try {
            labels = JSON.parse(readFileSync(join(this.root, 'volume-labels', `${e.name}.json`), 'utf8')) as Record<string, string>;
          } catch {
            /* made before labels were kept, or its file went first */
          }
        }
        return { name: e.name, mountpoint, createdAt: st ? Math.floor(st.birthtimeMs || st.mtimeMs) : 0, labels };
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
    this.rotator.remove(id);
    let anonymous: string[] | undefined;
    try {
      anonymous = (JSON.parse(readFileSync(join(d, 'meta.json'), 'utf8')) as Meta).anonymousVolumes;
    } catch {
      /* no meta (a half-made container): no volume was recorded for it */
    }
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
    // Docker removes a container's anonymous volumes with it (swarm tasks' containers are removed so).
    this.removeAnonymousVolumes(anonymous);
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

  /**
   * The container's output, parsed from conmon's k8s-file logs, oldest
   * rotated file first. `since`/`until` (Unix ms) keep the lines written in
   * [since, until); `tail` the last N of those. Follow goes on across
   * rotations until `signal` aborts, the container stops, or a line passes `until`.
   */
  async *logs(
    id: string,
    o: { follow?: boolean; tail?: number; since?: number; until?: number; signal?: AbortSignal } = {},
  ): AsyncIterable<LogLine> {
    const d = this.dir(id);
    if (!existsSync(d)) throw new TsswarmError('NOT_FOUND', `no container ${id} on this node`);
    let meta: Meta | undefined;
    try {
      meta = JSON.parse(readFileSync(join(d, 'meta.json'), 'utf8')) as Meta;
    } catch {
      /* half-made: no logs yet */
    }
    if (meta?.log?.kind === 'none')
      throw new TsswarmError(
        'FAILED_PRECONDITION',
        'configured logging driver does not support reading: the task runs with --log-driver none',
      );
    const since = o.since ?? 0;
    const until = o.until || Number.POSITIVE_INFINITY;
    const parser = new K8sFileParser();
    const keep = (l: LogLine): boolean => l.time >= since && l.time < until;
    let reader: { fh: FileHandle; ino: number; pos: number } | null = null;
    /** The kept lines of the open file from where it was left, a buffer's worth at a time (a 100 MiB log is never held whole). */
    async function* drain(): AsyncGenerator<LogLine[]> {
      const r = reader;
      if (!r) return;
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const { bytesRead } = await r.fh.read(buf, 0, buf.length, r.pos);
        if (bytesRead === 0) return;
        r.pos += bytesRead;
        yield parser.push(buf.subarray(0, bytesRead)).filter(keep);
      }
    }
    const openFile = async (f: { path: string; ino: number }): Promise<boolean> => {
      try {
        const fh = await open(f.path, 'r');
        if ((await fh.stat()).ino !== f.ino) {
          await fh.close();
          return false; // renamed by the rotator meanwhile: the caller lists again
        }
        if (reader) await reader.fh.close();
        reader = { fh, ino: f.ino, pos: 0 };
        return true;
      } catch {
        return false;
      }
    };
    /** The rest of the open file, then the files past it (the next ones after a rotation, oldest first). */
    async function* advance(): AsyncGenerator<LogLine[]> {
      for (let attempt = 0; attempt < 5; attempt++) {
        yield* drain();
        const files = logFiles(d);
        const at = reader ? files.findIndex((f) => f.ino === reader!.ino) : -1;
        // Our file already dropped (max-file passed while we read): go on with the newest.
        const rest = reader && at < 0 ? files.slice(-1) : files.slice(at + 1);
        if (rest.length === 0) return;
        let moved = true;
        for (const f of rest) {
          if (!(await openFile(f))) {
            moved = false;
            break;
          }
          yield* drain();
        }
        if (moved) return;
      }
    }
    try {
      if (o.tail) {
        // At most N lines and TAIL_MAX_BYTES of them are held, however large N and the log are.
        const tail = new TailRing(o.tail, TAIL_MAX_BYTES);
        for await (const batch of advance()) for (const l of batch) tail.push(l);
        for (const l of tail.lines()) yield l;
      } else for await (const batch of advance()) for (const l of batch) yield l;
      if (!o.follow) return;
      while (!o.signal?.aborted) {
        await sleep(200, o.signal);
        for await (const batch of advance()) for (const l of batch) yield l;
        // Past `until` nothing more can be kept (a line's time is when conmon read it).
        if (parser.lastTime >= until || Date.now() >= until) return;
        const s = await this.inspect(id);
        if (!s || s.status === 'stopped') {
          for await (const batch of advance()) for (const l of batch) yield l;
          return;
        }
      }
    } finally {
      if (reader) await (reader as { fh: FileHandle }).fh.close();
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
    this.rotator.close();
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

/** What `--tail N` holds of a task's log at most, whatever N: the newest lines that fit (each counted with LINE_OVERHEAD). */
export const TAIL_MAX_BYTES = 8 * 1024 * 1024;
/** What one held LogLine costs beyond its bytes (the object, its Buffer), for TailRing's budget. */
const LINE_OVERHEAD = 96;

/** The last `n` lines pushed, and no more of them than fit in `maxBytes`: older ones are dropped as newer come. */
export class TailRing {
  private held: (LogLine | undefined)[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    private readonly n: number,
    private readonly maxBytes: number,
  ) {}

  push(l: LogLine): void {
    this.held.push(l);
    this.bytes += l.line.length + LINE_OVERHEAD;
    while (this.held.length - this.head > this.n || (this.bytes > this.maxBytes && this.held.length - this.head > 1)) {
      this.bytes -= this.held[this.head]!.line.length + LINE_OVERHEAD;
      this.held[this.head++] = undefined;
    }
    // Dropped slots are given back once they are half of the array.
    if (this.head > 1024 && this.head * 2 > this.held.length) {
      this.held = this.held.slice(this.head);
      this.head = 0;
    }
  }

  /** The lines held, oldest first. */
  lines(): LogLine[] {
    return this.held.slice(this.head) as LogLine[];
  }

  /** The bytes held, with each line's overhead. */
  get size(): number {
    return this.bytes;
  }
}

/**
 * The longest line a log reader joins from partial records: a container that
 * writes without newlines gets its output in lines of this size (Docker splits
 * its log lines at 16 KiB too), so a reader never holds more of one line.
 */
export const MAX_LOG_LINE_BYTES = 16 * 1024;
/** The longest unterminated record kept between reads: conmon's are a few KiB; anything longer is not one. */
const MAX_RECORD_CHARS = 256 * 1024;

/**
 * conmon's k8s-file records (`TIME STREAM F|P TEXT`) into whole lines; a
 * partial record (P) is joined with the next of its stream, across files too,
 * up to MAX_LOG_LINE_BYTES: past that the text so far is a line of its own.
 */
export class K8sFileParser {
  private rest = '';
  private partial: { stream: 'stdout' | 'stderr'; text: string } | null = null;
  private readonly utf8 = new StringDecoder('utf8');
  /** The time of the last record seen, kept or not (Unix ms; 0 before any). */
  lastTime = 0;

  push(chunk: Buffer): LogLine[] {
    const out: LogLine[] = [];
    const lines = (this.rest + this.utf8.write(chunk)).split('\n');
    this.rest = lines.pop() ?? '';
    // Not a conmon record (they are short): dropped rather than grown without end.
    if (this.rest.length > MAX_RECORD_CHARS) this.rest = '';
    for (const l of lines) {
      // s: a --tty container's text ends in the terminal's CR, which `.` alone would not match.
      const m = /^(\S+) (stdout|stderr) ([FP]) ?(.*)$/s.exec(l);
      if (!m) continue;
      const stream = m[2] as 'stdout' | 'stderr';
      const time = Date.parse(m[1]!) || Date.now();
      this.lastTime = time;
      // A partial record of the other stream ends the one held: it is a line of its own, never lost.
      if (this.partial && this.partial.stream !== stream) {
        out.push({ stream: this.partial.stream, time, line: Buffer.from(`${this.partial.text}\n`) });
        this.partial = null;
      }
      let text = (this.partial?.text ?? '') + m[4]!;
      // Bounded: a container that never writes a newline gets lines of MAX_LOG_LINE_BYTES.
      while (Buffer.byteLength(text) > MAX_LOG_LINE_BYTES) {
        const cut = utf8Prefix(text, MAX_LOG_LINE_BYTES);
        out.push({ stream, time, line: Buffer.from(`${text.slice(0, cut)}\n`) });
        text = text.slice(cut);
      }
      if (m[3] === 'P') {
        this.partial = { stream, text };
        continue;
      }
      this.partial = null;
      out.push({ stream, time, line: Buffer.from(`${text}\n`) });
    }
    return out;
  }
}

/** The length (in UTF-16 units) of the longest prefix of `s` that is at most `maxBytes` in UTF-8, never splitting a character. */
function utf8Prefix(s: string, maxBytes: number): number {
  let bytes = 0;
  let i = 0;
  while (i < s.length) {
    const c = s.codePointAt(i)!;
    const n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (bytes + n > maxBytes) break;
    bytes += n;
    i += c >= 0x10000 ? 2 : 1;
  }
  return Math.max(i, 1);
}

/** An exec that could not start: its message on stderr, exit code 126 as a shell gives. */
function failedExec(message: string): ExecHandle {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.end();
  stderr.end(message);
  return { stdout, stderr, exit: Promise.resolve(126), kill: () => undefined };
}
