// A cluster of hosts on one machine: network namespaces on an underlay bridge,
// one daemon per host. `Sandbox` reads state.json afresh for every operation,
// so a new object (a new CLI process, or one after a crash) can run any of them.
import { defaultNameTag, vniOfNetnsName } from '../../agent/overlay/names.js';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../lib/paths.js';
import { TsswarmError, UsageError } from '../../lib/errors.js';
import { daemonAlive, launchDaemon, stopDaemon, waitForSocket } from './daemons.js';
import {
  inNetns,
  ipBatch,
  listNetns,
  mountsUnder,
  mustRun,
  netnsExists,
  netnsKey,
  pidsInNetns,
  groupMembers,
  run,
  signal,
  signalNumber,
  sleep,
  type RunResult,
} from './kernel.js';
import {
  DAEMON_PORT,
  DEFAULT_PREFIX,
  DEFAULT_ROOT,
  DEFAULT_SUBNET,
  UNDERLAY_BRIDGE,
  checkPrefix,
  findHost,
  isSandboxNamespace,
  layoutHosts,
  parseSubnet,
  resolveRoot,
  underlayNamespace,
  type HostRole,
  type SandboxHost,
} from './layout.js';
import {
  cutElementArgs,
  cutTableRuleset,
  deleteNamespacesProgram,
  hostProgram,
  namespacesProgram,
  oneWayElementArgs,
  oneWayTableRuleset,
  parseCutSet,
  parseOneWaySet,
  underlayProgram,
  CUT_SET,
  CUT_TABLE,
  ONEWAY_SET,
  ONEWAY_TABLE,
} from './plan.js';
import { readState, stateFile, writeState, type HostRecord, type SandboxState } from './state.js';
import { preloadImages } from './images.js';

/** What runs as a host's daemon. TSSWARM_HOST (the host's socket) is always added to `env`. */
export interface DaemonLaunch {
  argv: string[];
  env?: Record<string, string>;
}
export type DaemonCommand = (host: SandboxHost) => DaemonLaunch;

export const tsswarmBin = join(packageRoot(), 'bin', 'tsswarm.mjs');

/**
 * `tsswarm daemon` for a host. The socket goes in TSSWARM_HOST (which the
 * daemon and every tsswarm command read), not in a `--host` flag, because the
 * daemon verb does not declare one.
 */
export function defaultDaemonCommand(host: SandboxHost): DaemonLaunch {
  return {
    argv: [
      process.execPath,
      // TSSWARM_SANDBOX_NODE_ARGS: extra node flags for every daemon, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (NODE_OPTIONS refuses --cpu-prof).
      ...(process.env.TSSWARM_SANDBOX_NODE_ARGS ?? '').split(' ').filter(Boolean),
      tsswarmBin,
      'daemon',
      '--node-name',
      host.name,
      '--state-dir',
      host.stateDir,
      '--listen-addr',
      `${host.addr}:${DAEMON_PORT}`,
      '--advertise-addr',
      host.addr,
      '--metrics-addr',
      `${host.addr}:9323`,
      '--docker-socket',
      host.dockerSocketPath,
    ],
  };
}

export interface SandboxOptions {
  /** Default: TSSWARM_SANDBOX_DIR, else /tmp/tss-sandbox. */
  root?: string;
  /** Namespace name prefix for a new sandbox (an existing one keeps its own). Default: TSSWARM_SANDBOX_PREFIX, else `tss-`. */
  prefix?: string;
  /** The underlay network; host N gets address +10+N. Default 10.77.0.0/24. */
  subnet?: string;
  daemonCommand?: DaemonCommand;
  /** How long a daemon may take to create its socket. Default 30 s. */
  readyTimeoutMs?: number;
  /** How long a daemon has between SIGTERM and SIGKILL. Default 5 s. */
  stopTimeoutMs?: number;
  /** One line per step, for a CLI to show. */
  progress?: (message: string) => void;
  /** Where TSSWARM_SANDBOX_DIR and TSSWARM_SANDBOX_PREFIX are read from. Default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface UpOptions {
  managers: number;
  workers: number;
  /** Runs once every daemon's socket exists (e.g. init and join); a failure tears the sandbox down. */
  bootstrap?: (sandbox: Sandbox) => Promise<void> | void;
  /** Leave whatever was made when up fails, to look at it (then `down`). */
  keepOnFailure?: boolean;
  /** Load the sandbox's busybox image on every host before bootstrapping (default: when the daemons are real tsswarm daemons, i.e. no custom daemonCommand). */
  preloadImages?: boolean;
}

export interface HostStatus {
  name: string;
  index: number;
  role: HostRole;
  addr: string;
  /** The last daemon started on the host; null before its first start. */
  pid: number | null;
  running: boolean;
  /** Cut off the underlay (`cut`), until `heal`. */
  cut: boolean;
  /** Whether the host's namespace exists. */
  present: boolean;
  socketPath: string;
  logFile: string;
  stateDir: string;
}

export interface DownReport {
  /** Whether there was anything to remove. */
  existed: boolean;
  namespaces: string[];
  /** Processes signalled (daemons and anything else living in the namespaces). */
  processes: number;
}

export interface ExecOptions {
  env?: Record<string, string>;
}

export class Sandbox {
  readonly root: string;
  private readonly opts: SandboxOptions;
  private readonly env: NodeJS.ProcessEnv;

  constructor(opts: SandboxOptions = {}) {
    this.opts = opts;
    this.env = opts.env ?? process.env;
    this.root = resolveRoot(opts.root, this.env);
  }

  /** The prefix of this sandbox: the recorded one, else the configured one. */
  get prefix(): string {
    return this.tryState()?.prefix ?? this.configuredPrefix();
  }

  private configuredPrefix(): string {
    return checkPrefix(this.opts.prefix ?? (this.env.TSSWARM_SANDBOX_PREFIX || DEFAULT_PREFIX));
  }

  private progress(message: string): void {
    this.opts.progress?.(message);
  }

  /** `tsswarm sandbox CMD`, with the directory when it is not the default. */
  private hint(cmd: string): string {
    const dir = this.root === DEFAULT_ROOT ? '' : `TSSWARM_SANDBOX_DIR=${this.root} `;
    return `\`${dir}tsswarm sandbox ${cmd}\``;
  }

  private tryState(): SandboxState | undefined {
    try {
      return readState(this.root);
    } catch {
      return undefined;
    }
  }

  /** The recorded state; an error saying how to make a sandbox when there is none. */
  state(): SandboxState {
    const s = readState(this.root);
    if (!s)
      throw new TsswarmError('NOT_FOUND', `no sandbox at ${this.root} (no ${stateFile(this.root)}): create one with ${this.hint('up')}`);
    return s;
  }

  exists(): boolean {
    return readState(this.root) !== undefined;
  }

  hosts(): SandboxHost[] {
    return this.state().hosts.map(({ daemon: _daemon, ...host }) => host);
  }

  /** A host by `h2`, `tss-h2` or `2`. */
  host(ref: string): SandboxHost {
    const { daemon: _daemon, ...host } = this.record(ref).host;
    return host;
  }

  private record(ref: string): { state: SandboxState; host: HostRecord } {
    const state = this.state();
    return { state, host: findHost(state.hosts, ref, state.prefix) };
  }

  private requireNetns(name: string): void {
    if (!netnsExists(name)) {
      throw new TsswarmError(
        'FAILED_PRECONDITION',
        `the sandbox's namespace ${name} is missing (deleted by hand?): run ${this.hint('down')}, then ${this.hint('up')}`,
      );
    }
  }

  /** Creates the namespaces, starts the daemons, waits for their sockets, then runs `bootstrap`. */
  async up(o: UpOptions): Promise<this> {
    if (process.getuid?.() !== 0) {
      throw new TsswarmError('FAILED_PRECONDITION', 'the sandbox creates network namespaces and needs root: run it as root (sudo)');
    }
    const prefix = this.configuredPrefix();
    const subnet = parseSubnet(this.opts.subnet ?? DEFAULT_SUBNET);
    const hosts = layoutHosts({ managers: o.managers, workers: o.workers, root: this.root, prefix, subnet: subnet.cidr });
    const ul = underlayNamespace(prefix);
    const leftovers = listNetns().filter((n) => isSandboxNamespace(prefix, n));
    if (readState(this.root) || leftovers.length) {
      const what = [readState(this.root) ? stateFile(this.root) : '', leftovers.length ? `namespaces ${leftovers.join(', ')}` : '']
        .filter(Boolean)
        .join('; ');
      throw new TsswarmError('ALREADY_EXISTS', `a sandbox already exists (${what}): run ${this.hint('down')} first`);
    }
    const daemonCommand = this.opts.daemonCommand ?? defaultDaemonCommand;
    const records: HostRecord[] = hosts.map((h) => {
      const launch = daemonCommand(h);
      if (!launch.argv.length) throw new UsageError(`the daemon command for ${h.name} is empty`);
      return {
        ...h,
        daemon: {
          argv: launch.argv,
          env: { ...launch.env, TSSWARM_HOST: `unix://${h.socketPath}` },
          pid: null,
          startTime: null,
          startedAt: null,
        },
      };
    });
    const state: SandboxState = {
      version: 1,
      root: this.root,
      prefix,
      subnet: subnet.cidr,
      underlay: { namespace: ul, bridge: UNDERLAY_BRIDGE },
      createdAt: new Date().toISOString(),
      hosts: records,
    };
    // First, so that `down` finds everything below even if this process dies.
    writeState(state);
    // Stops the other hosts' readiness polls when one of them fails.
    const abort = new AbortController();
    try {
      this.progress(`Creating namespaces ${ul} and ${records[0]!.name}..${records[records.length - 1]!.name} on ${subnet.cidr}`);
      await ipBatch(namespacesProgram([ul, ...records.map((h) => h.name)]), 'creating the sandbox namespaces');
      await ipBatch(underlayProgram(records), `creating the underlay bridge in ${ul}`, ul);
      await mustRun(inNetns(ul, ['nft', '-f', '-']), `creating the cut table in ${ul}`, { input: cutTableRuleset() });
      await Promise.all(records.map((h) => ipBatch(hostProgram(h, subnet.bits), `configuring eth0 of ${h.name}`, h.name)));
      for (const h of records) mkdirSync(h.stateDir, { recursive: true });
      this.writeTsswarmShim();
      for (const h of records) {
        this.progress(`Starting the daemon of ${h.name} (${h.role}, ${h.addr})`);
        await this.launch(state, h);
      }
      const fix = o.keepOnFailure
        ? `Look around, then run ${this.hint('down')}`
        : `The sandbox was removed; fix the daemon, then run ${this.hint('up')} again`;
      await Promise.all(records.map((h) => waitForSocket(h, { timeoutMs: this.opts.readyTimeoutMs ?? 30_000, fix, signal: abort.signal })));
      if (o.preloadImages ?? !this.opts.daemonCommand) await preloadImages(this, (l) => this.progress(l));
      if (o.bootstrap) {
        this.progress('Bootstrapping the cluster');
        await o.bootstrap(this);
      }
      return this;
    } catch (err) {
      abort.abort();
      if (!o.keepOnFailure) {
        this.progress(`up failed; removing what it made: ${(err as Error).message.split('\n')[0]}`);
        try {
          await this.down();
        } catch (downErr) {
          throw new TsswarmError(
            'INTERNAL',
            `${(err as Error).message}\n(and removing the half-made sandbox failed too: ${(downErr as Error).message}; run ${this.hint('down')})`,
            { cause: err },
          );
        }
      }
      throw err;
    }
  }

  /** `<root>/bin/tsswarm`, first on PATH in `exec`, so `sandbox exec h1 -- tsswarm node ls` works uninstalled. */
  private writeTsswarmShim(): void {
    const dir = join(this.root, 'bin');
    mkdirSync(dir, { recursive: true });
    const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
    writeFileSync(join(dir, 'tsswarm'), `#!/bin/sh\nexec ${q(process.execPath)} ${q(tsswarmBin)} "$@"\n`);
    chmodSync(join(dir, 'tsswarm'), 0o755);
  }

  private async launch(state: SandboxState, host: HostRecord): Promise<void> {
    const { pid, startTime } = await launchDaemon(host);
    host.daemon.pid = pid;
    host.daemon.startTime = startTime;
    host.daemon.startedAt = new Date().toISOString();
    writeState(state);
  }

  /**
   * Stops every daemon and every other process in the sandbox's namespaces,
   * deletes the namespaces and the sandbox directory. Works on a sandbox that
   * is half made, half removed, or whose state file is gone.
   */
  async down(): Promise<DownReport> {
    const state = this.tryState();
    const prefix = state?.prefix ?? this.configuredPrefix();
    const recorded = state ? [state.underlay.namespace, ...state.hosts.map((h) => h.name)] : [];
    const hostNs = [...new Set([...recorded, ...listNetns().filter((n) => isSandboxNamespace(prefix, n))])];
    // The agents' per-network namespaces (tss-ov-VNI-TAG, the tag made from the host namespace's name) outlive their daemons on purpose (live restore): they go with the sandbox.
    const tags = hostNs.map((n) => defaultNameTag(n));
    const overlays = listNetns().filter((n) => tags.some((t) => vniOfNetnsName(n, t) !== undefined));
    const names = [...new Set([...hostNs, ...overlays])].filter(netnsExists);
    const keys = new Set(names.map(netnsKey).filter((k): k is string => k !== undefined));
    const leaders = (state?.hosts ?? []).filter((h) => daemonAlive(h.daemon)).map((h) => h.daemon.pid!);
    const targets = (): number[] => [...new Set([...pidsInNetns(keys), ...leaders.flatMap(groupMembers)])];
    const existed = names.length > 0 || state !== undefined || this.rootExists();

    const victims = targets();
    let survivors: number[] = [];
    if (victims.length) {
      this.progress(`Stopping ${victims.length} process${victims.length === 1 ? '' : 'es'}`);
      for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
        for (const pid of leaders) signal(-pid, sig);
        for (const pid of targets()) signal(pid, sig);
        const deadline = Date.now() + (sig === 'SIGTERM' ? (this.opts.stopTimeoutMs ?? 5000) : 3000);
        while ((survivors = targets()).length && Date.now() < deadline) await sleep(50);
        if (!survivors.length) break;
      }
    }

    // Containers live in namespaces of their own, outside the hosts': runc removes them (and their cgroups).
    await this.removeContainers(state);

    if (names.length) {
      this.progress(`Deleting namespaces ${names.join(', ')}`);
      // -force: go on past a name that vanished meanwhile; what is left is checked below.
      await ipBatch(deleteNamespacesProgram(names), 'deleting the sandbox namespaces', undefined, { force: true });
    }
    const leftNs = names.filter(netnsExists);
    await this.removeFiles(state, prefix);

    const problems = [
      survivors.length ? `processes ${survivors.join(', ')} survived SIGKILL` : '',
      leftNs.length ? `namespaces ${leftNs.join(', ')} could not be deleted (ip netns del ${leftNs[0]})` : '',
    ].filter(Boolean);
    if (problems.length) throw new TsswarmError('INTERNAL', `sandbox down left ${problems.join('; ')}`);
    return { existed, namespaces: names, processes: victims.length };
  }

  /** Deletes every container the hosts' agents made (each host has its own runc root in its state directory). */
  private async removeContainers(state: SandboxState | undefined): Promise<void> {
    const dirs = new Set([...(state?.hosts.map((h) => h.stateDir) ?? [])]);
    for (const dir of dirs) {
      const runcRoot = join(dir, 'runtime', 'runc');
      if (!existsSync(runcRoot)) continue;
      const r = await run(['runc', '--root', runcRoot, 'list', '-q']);
      const ids = r.stdout.split('\n').filter((x) => x.startsWith('tss'));
      if (ids.length) this.progress(`Removing ${ids.length} container${ids.length === 1 ? '' : 's'} of ${dir}`);
      for (const id of ids) await run(['runc', '--root', runcRoot, 'delete', '-f', id]);
    }
  }

  private rootExists(): boolean {
    try {
      readdirSync(this.root);
      return true;
    } catch {
      return false;
    }
  }

  /** Removes the files the sandbox made (not arbitrary contents of a user-given directory), then the directory if empty. */
  private async removeFiles(state: SandboxState | undefined, prefix: string): Promise<void> {
    let entries: string[];
    try {
      entries = readdirSync(this.root);
    } catch {
      return;
    }
    // A daemon that died holding mounts (container rootfs) must not make rm walk into them.
    // (A failed umount shows up as an rm error below.)
    for (const m of mountsUnder(this.root)) await run(['umount', '-l', m]);
    const ours = new Set(['state.json', 'state.json.tmp', 'bin', 'images', ...(state?.hosts.map((h) => h.name) ?? [])]);
    for (const e of entries) {
      if (ours.has(e) || isSandboxNamespace(prefix, e)) rmSync(join(this.root, e), { recursive: true, force: true });
    }
    try {
      rmdirSync(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY') this.progress(`Left ${this.root}: it holds files the sandbox did not make`);
      else if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /** Every host with its daemon and network status; [] when there is no sandbox. */
  async ls(): Promise<HostStatus[]> {
    const state = readState(this.root);
    if (!state) return [];
    const cut = await this.cutPorts(state, false);
    return state.hosts.map((h) => ({
      name: h.name,
      index: h.index,
      role: h.role,
      addr: h.addr,
      pid: h.daemon.pid,
      running: daemonAlive(h.daemon),
      cut: cut.includes(h.underlayPort),
      present: netnsExists(h.name),
      socketPath: h.socketPath,
      logFile: h.logFile,
      stateDir: h.stateDir,
    }));
  }

  /** Stops a host's daemon (SIGTERM; SIGKILL at once with `kill`). False when it was not running. */
  async stop(ref: string, opts: { kill?: boolean } = {}): Promise<boolean> {
    const { host } = this.record(ref);
    return stopDaemon(host, { kill: opts.kill, graceMs: this.opts.stopTimeoutMs ?? 5000 });
  }

  /** Starts a host's daemon again, with the same command and state directory. False when it was running. */
  async start(ref: string): Promise<boolean> {
    const { state, host } = this.record(ref);
    if (daemonAlive(host.daemon)) return false;
    this.requireNetns(host.name);
    // A socket left by a killed daemon would pass for the new one's.
    rmSync(host.socketPath, { force: true });
    mkdirSync(host.stateDir, { recursive: true });
    await this.launch(state, host);
    await waitForSocket(host, {
      timeoutMs: this.opts.readyTimeoutMs ?? 30_000,
      fix: `Fix the daemon, then run ${this.hint(`start ${host.name}`)} again (its command is in ${stateFile(this.root)})`,
    });
    return true;
  }

  /** Freezes a host's daemon with SIGSTOP (its containers run on); `resume` sends SIGCONT. False when it was not running. */
  pause(ref: string): boolean {
    return this.signalDaemon(ref, 'SIGSTOP');
  }

  resume(ref: string): boolean {
    return this.signalDaemon(ref, 'SIGCONT');
  }

  private signalDaemon(ref: string, sig: NodeJS.Signals): boolean {
    const { host } = this.record(ref);
    if (!daemonAlive(host.daemon)) return false;
    signal(host.daemon.pid!, sig);
    return true;
  }

  /** Cuts a host off the underlay: no frame reaches it or leaves it. False when it was cut already. */
  async cut(ref: string): Promise<boolean> {
    return this.setCut(ref, true);
  }

  /** Undoes `cut`. False when the host was not cut. */
  async heal(ref: string): Promise<boolean> {
    return this.setCut(ref, false);
  }

  private async setCut(ref: string, cut: boolean): Promise<boolean> {
    const { state, host } = this.record(ref);
    this.requireNetns(state.underlay.namespace);
    const ports = await this.cutPorts(state, true);
    if (ports.includes(host.underlayPort) === cut) return false;
    await mustRun(
      inNetns(state.underlay.namespace, ['nft', ...cutElementArgs(host.underlayPort, cut)]),
      `${cut ? 'cutting' : 'healing'} ${host.name}`,
    );
    return true;
  }

  /** The underlay ports in the cut set; with `create`, makes the table when it is missing. */
  private async cutPorts(state: SandboxState, create: boolean): Promise<string[]> {
    const ul = state.underlay.namespace;
    if (!netnsExists(ul)) return [];
    const list = (): Promise<RunResult> => run(inNetns(ul, ['nft', '-j', 'list', 'set', 'bridge', CUT_TABLE, CUT_SET]));
    let r = await list();
    if (r.code !== 0 && create) {
      await mustRun(inNetns(ul, ['nft', '-f', '-']), `creating the cut table in ${ul}`, { input: cutTableRuleset() });
      r = await list();
    }
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return [];
      throw new TsswarmError('INTERNAL', `reading the cut set in ${ul}: ${r.stderr.trim()}`);
    }
    return parseCutSet(r.stdout);
  }

  /** Drops every frame from host `from` to host `to` (not back): a one-way partition. False when it was cut already. */
  async cutOneWay(from: string, to: string): Promise<boolean> {
    return this.setOneWay(from, to, true);
  }

  /** Undoes `cutOneWay`. False when that direction was not cut. */
  async healOneWay(from: string, to: string): Promise<boolean> {
    return this.setOneWay(from, to, false);
  }

  /** The one-way cuts in place, as [from, to] host names. */
  async oneWayCuts(): Promise<Array<[string, string]>> {
    const state = this.state();
    const byPort = new Map(state.hosts.map((h) => [h.underlayPort, h.name]));
    return (await this.oneWayPorts(state, false)).map(([a, b]) => [byPort.get(a) ?? a, byPort.get(b) ?? b]);
  }

  private async setOneWay(fromRef: string, toRef: string, cut: boolean): Promise<boolean> {
    const state = this.state();
    const from = findHost(state.hosts, fromRef, state.prefix);
    const to = findHost(state.hosts, toRef, state.prefix);
    if (from.name === to.name) throw new UsageError(`a one-way cut needs two different hosts (got ${from.name} twice)`);
    this.requireNetns(state.underlay.namespace);
    const pairs = await this.oneWayPorts(state, true);
    if (pairs.some(([a, b]) => a === from.underlayPort && b === to.underlayPort) === cut) return false;
    await mustRun(
      inNetns(state.underlay.namespace, ['nft', ...oneWayElementArgs(from.underlayPort, to.underlayPort, cut)]),
      `${cut ? 'cutting' : 'healing'} ${from.name} -> ${to.name}`,
    );
    return true;
  }

  private async oneWayPorts(state: SandboxState, create: boolean): Promise<Array<[string, string]>> {
    const ul = state.underlay.namespace;
    if (!netnsExists(ul)) return [];
    const list = (): Promise<RunResult> => run(inNetns(ul, ['nft', '-j', 'list', 'set', 'bridge', ONEWAY_TABLE, ONEWAY_SET]));
    let r = await list();
    if (r.code !== 0 && create) {
      await mustRun(inNetns(ul, ['nft', '-f', '-']), `creating the one-way cut table in ${ul}`, { input: oneWayTableRuleset() });
      r = await list();
    }
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return [];
      throw new TsswarmError('INTERNAL', `reading the one-way cut set in ${ul}: ${r.stderr.trim()}`);
    }
    return parseOneWaySet(r.stdout);
  }

  private execEnv(host: HostRecord, env: Record<string, string> | undefined): NodeJS.ProcessEnv {
    return {
      ...process.env,
      PATH: `${join(this.root, 'bin')}:${process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`,
      TSSWARM_HOST: `unix://${host.socketPath}`,
      // The docker CLI talks to the host's Engine API (a sandbox recorded before it had one: the same place).
      DOCKER_HOST: `unix://${host.dockerSocketPath ?? join(host.dir, 'docker.sock')}`,
      ...env,
    };
  }

  private execTarget(ref: string, argv: readonly string[]): HostRecord {
    if (!argv.length) throw new UsageError('exec needs a command: tsswarm sandbox exec HOST -- COMMAND [ARG...]');
    const { host } = this.record(ref);
    this.requireNetns(host.name);
    return host;
  }

  /** Runs a command in a host's network namespace with TSSWARM_HOST set, stdio inherited; resolves to its exit code. */
  exec(ref: string, argv: readonly string[], opts: ExecOptions = {}): Promise<number> {
    const host = this.execTarget(ref, argv);
    return new Promise((resolvePromise, reject) => {
      const child = spawn('nsenter', [`--net=${host.netnsPath}`, '--', ...argv], { stdio: 'inherit', env: this.execEnv(host, opts.env) });
      child.on('error', reject);
      child.on('close', (code, sig) => resolvePromise(code ?? 128 + signalNumber(sig)));
    });
  }

  /** As `exec`, collecting the output (for tests and scripts). */
  execCapture(ref: string, argv: readonly string[], opts: ExecOptions & { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    const host = this.execTarget(ref, argv);
    return run(inNetns(host.name, argv), { env: this.execEnv(host, opts.env), input: opts.input, timeoutMs: opts.timeoutMs });
  }
}

/** Makes a sandbox: `up({ managers: 3, workers: 2 })`. */
export async function up(opts: SandboxOptions & UpOptions): Promise<Sandbox> {
  return new Sandbox(opts).up(opts);
}

/** Removes the sandbox at `root` (default TSSWARM_SANDBOX_DIR or /tmp/tss-sandbox), whatever state it is in. */
export async function down(opts: SandboxOptions = {}): Promise<DownReport> {
  return new Sandbox(opts).down();
}

export async function ls(opts: SandboxOptions = {}): Promise<HostStatus[]> {
  return new Sandbox(opts).ls();
}
