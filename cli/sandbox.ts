// `tsswarm sandbox up | down | ls | stop | start | cut | heal | exec`: a cluster
// of hosts on this machine (network namespaces on one underlay bridge, a daemon
// in each), for trying tsswarm out and for end-to-end tests. Needs root.
import { oneOf, wholeNumber } from './args.js';
import { group, leaf, type Command, type Io } from './command.js';
import { table } from './table.js';
import { UsageError } from '../lib/errors.js';
import { DEFAULT_ROOT, Sandbox, type DaemonCommand, type HostStatus, type UpOptions } from '../deploy/sandbox/index.js';

export interface SandboxCommandOptions {
  /** Read for TSSWARM_SANDBOX_DIR and TSSWARM_SANDBOX_PREFIX. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Runs after every daemon is up (init the first manager, join the rest). */
  bootstrap?: UpOptions['bootstrap'];
  /** What each host runs; default `tsswarm daemon ...`. */
  daemonCommand?: DaemonCommand;
}

const environment = `Environment:
  TSSWARM_SANDBOX_DIR      Directory of the sandbox (default /tmp/tss-sandbox)
  TSSWARM_SANDBOX_PREFIX   Namespace name prefix of a new sandbox (default tss-)`;

function oneHost(positionals: string[], path: string): string {
  if (positionals.length !== 1) {
    throw new UsageError(
      `"${path}" needs exactly one host, as h2, tss-h2 or 2 (got ${positionals.length ? `"${positionals.join(' ')}"` : 'none'})`,
    );
  }
  return positionals[0]!;
}

function noArgs(positionals: string[], path: string): void {
  if (positionals.length) throw new UsageError(`"${path}" accepts no arguments (got "${positionals.join(' ')}")`);
}

export function hostsTable(hosts: readonly HostStatus[]): string {
  return table(
    ['HOST', 'ROLE', 'ADDRESS', 'DAEMON', 'PID', 'NETWORK'],
    hosts.map((h) => [
      h.name,
      h.role,
      h.addr,
      h.running ? 'running' : 'stopped',
      h.running && h.pid ? String(h.pid) : '-',
      !h.present ? 'missing' : h.cut ? 'cut' : 'connected',
    ]),
  );
}

export function makeSandboxCommand(options: SandboxCommandOptions = {}): Command {
  const sandbox = (io?: Io): Sandbox =>
    new Sandbox({
      env: options.env,
      daemonCommand: options.daemonCommand,
      progress: io ? (line) => io.stderr.write(`${line}\n`) : undefined,
    });

  const upCommand = leaf({
    name: 'up',
    summary: 'Create the sandbox: one namespace per host on an underlay bridge, a daemon in each',
    description: environment,
    flags: {
      managers: { type: 'string', short: 'm', valueName: 'N', description: 'Number of manager hosts (default 3)' },
      workers: { type: 'string', short: 'w', valueName: 'N', description: 'Number of worker hosts (default 2)' },
      subnet: { type: 'string', valueName: 'CIDR', description: 'Underlay network; host N gets address 10+N in it (default 10.77.0.0/24)' },
    },
    async run({ flags, positionals, io, path }) {
      noArgs(positionals, path);
      const managers = wholeNumber('--managers', flags.managers ?? '3');
      const workers = wholeNumber('--workers', flags.workers ?? '2');
      const sb = new Sandbox({
        env: options.env,
        daemonCommand: options.daemonCommand,
        subnet: flags.subnet,
        progress: (line) => io.stderr.write(`${line}\n`),
      });
      await sb.up({ managers, workers, bootstrap: options.bootstrap });
      io.stdout.write(hostsTable(await sb.ls()));
      const dir = sb.root === DEFAULT_ROOT ? '' : `TSSWARM_SANDBOX_DIR=${sb.root} `;
      io.stderr.write(`Run a command on a host with: ${dir}tsswarm sandbox exec h1 -- tsswarm node ls\n`);
      return 0;
    },
  });

  const downCommand = leaf({
    name: 'down',
    summary: 'Remove the sandbox: stop its daemons, delete its namespaces and directory',
    description: environment,
    flags: {},
    async run({ positionals, io, path }) {
      noArgs(positionals, path);
      const sb = sandbox(io);
      const r = await sb.down();
      io.stdout.write(
        r.existed
          ? `Removed the sandbox at ${sb.root}: ${r.namespaces.length} namespaces, ${r.processes} processes stopped\n`
          : `No sandbox at ${sb.root}; nothing to remove\n`,
      );
      return 0;
    },
  });

  const lsCommand = leaf({
    name: 'ls',
    summary: 'List the sandbox hosts: role, address, daemon, network',
    description: environment,
    flags: {
      format: { type: 'string', short: 'f', valueName: 'FORMAT', description: 'Output format: table (default) or json' },
    },
    async run({ flags, positionals, io, path }) {
      noArgs(positionals, path);
      const format = oneOf('--format', flags.format ?? 'table', ['table', 'json']);
      const hosts = await sandbox().ls();
      io.stdout.write(format === 'json' ? `${JSON.stringify(hosts, null, 2)}\n` : hostsTable(hosts));
      return 0;
    },
  });

  const stopCommand = leaf({
    name: 'stop',
    summary: "Stop a host's daemon (SIGTERM, then SIGKILL after 5 s)",
    usage: '[OPTIONS] HOST',
    flags: { kill: { type: 'boolean', description: 'Send SIGKILL at once, as a crash would' } },
    async run({ flags, positionals, io, path }) {
      const sb = sandbox();
      const host = sb.host(oneHost(positionals, path));
      if (!(await sb.stop(host.name, { kill: flags.kill }))) io.stderr.write(`the daemon of ${host.name} was not running\n`);
      io.stdout.write(`${host.name}\n`);
      return 0;
    },
  });

  const startCommand = leaf({
    name: 'start',
    summary: "Start a host's daemon again (same command, same state directory)",
    usage: 'HOST',
    flags: {},
    async run({ positionals, io, path }) {
      const sb = sandbox();
      const host = sb.host(oneHost(positionals, path));
      if (!(await sb.start(host.name))) io.stderr.write(`the daemon of ${host.name} is already running\n`);
      io.stdout.write(`${host.name}\n`);
      return 0;
    },
  });

  const cutCommand = leaf({
    name: 'cut',
    summary: 'Cut a host off the underlay network (both directions), until heal',
    usage: 'HOST',
    flags: {},
    async run({ positionals, io, path }) {
      const sb = sandbox();
      const host = sb.host(oneHost(positionals, path));
      if (!(await sb.cut(host.name))) io.stderr.write(`${host.name} was cut already\n`);
      io.stdout.write(`${host.name}\n`);
      return 0;
    },
  });

  const healCommand = leaf({
    name: 'heal',
    summary: 'Reconnect a host that was cut',
    usage: 'HOST',
    flags: {},
    async run({ positionals, io, path }) {
      const sb = sandbox();
      const host = sb.host(oneHost(positionals, path));
      if (!(await sb.heal(host.name))) io.stderr.write(`${host.name} was not cut\n`);
      io.stdout.write(`${host.name}\n`);
      return 0;
    },
  });

  const execCommand = leaf({
    name: 'exec',
    summary: "Run a command in a host's network namespace, talking to its daemon",
    usage: 'HOST [--] COMMAND [ARG...]',
    description:
      "The command gets TSSWARM_HOST set to the host's daemon socket, and `tsswarm` on its PATH.\nExample: tsswarm sandbox exec h2 -- tsswarm node ls",
    flags: {},
    stopAtPositional: true,
    async run({ positionals, rest }) {
      const [host, ...cmd] = [...positionals, ...rest];
      if (host === undefined) throw new UsageError('exec needs a host and a command: tsswarm sandbox exec h1 -- COMMAND [ARG...]');
      if (cmd[0] === '--') cmd.shift();
      return sandbox().exec(host, cmd);
    },
  });

  return group({
    name: 'sandbox',
    summary: 'Run a cluster of hosts on this machine (network namespaces; needs root)',
    subcommands: () => [upCommand, downCommand, lsCommand, stopCommand, startCommand, cutCommand, healCommand, execCommand],
  });
}

/** The `tsswarm sandbox` command group, for cli/main.ts's `commands`. */
export const sandboxCommand: Command = makeSandboxCommand();
