// The `tsswarm` command: a docker-like verb tree. `main(argv)` returns the exit
// code; bin/tsswarm.mjs and `tsx cli/main.ts ...` both end up here. New verbs
// (init, join, swarm, node, service, network, secret, config, sandbox) are added to `commands`.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TsswarmError } from '../lib/errors.js';
import { group, findCommand, lazy, leaf, type Command, type Io } from './command.js';
import { commandEnded, setHost } from './host.js';
import { tsswarmVersion, versionCommand } from './version.js';

// Each command module loads when its command runs (the gRPC client, the
// generated codecs and the service spec code are not needed to print a
// version): a build splits them into chunks. The names and summaries here are
// what `tsswarm --help` lists; test/cli/lazy.test.ts checks they match.
const cluster = () => import('./cluster.js');
const clusterCommand = (name: string, summary: string): Command =>
  lazy(name, summary, async () => (await cluster()).clusterCommands.find((c) => c.name === name)!);

const helpCommand = leaf({
  name: 'help',
  summary: 'Show help for tsswarm or one of its commands',
  usage: '[COMMAND...]',
  flags: {},
  async run({ positionals, io }) {
    // `tsswarm help node ls` walks the tree the way `tsswarm node ls --help` would.
    await Promise.all(commands.map((c) => ('load' in c ? (c as { load(): Promise<Command> }).load() : undefined)));
    let cmd: Command = root;
    let path = 'tsswarm';
    for (const name of positionals) {
      const subs = subcommandsOf.get(cmd);
      if (!subs) break;
      cmd = findCommand(subs(), name, path);
      path = `${path} ${cmd.name}`;
    }
    io.stdout.write(cmd.help(path));
    return 0;
  },
});

/** The top-level commands, in the order help lists them. */
export const commands: readonly Command[] = [
  clusterCommand('daemon', 'Run the tsswarm daemon on this host (agent, and manager when the node is one)'),
  clusterCommand('init', 'Initialize a cluster: this node becomes its first manager'),
  clusterCommand('join', 'Join a cluster as a node (worker or manager, as the token says)'),
  clusterCommand('join-token', 'Show (or rotate) the join token for workers or managers'),
  clusterCommand('leave', 'Leave the cluster'),
  clusterCommand('info', 'Show cluster-wide information: cluster id, managers, leader, Raft status'),
  clusterCommand('unlock', 'Unlock a locked manager (autolock) with the unlock key'),
  clusterCommand('unlock-key', "Show (or rotate) the managers' unlock key"),
  clusterCommand('swarm', 'Manage the cluster: update its settings, unlock (and init, join, join-token, leave as the top-level commands)'),
  clusterCommand('node', 'Manage the nodes of the cluster'),
  lazy('service', 'Manage services', async () => (await import('./service.js')).serviceCommand),
  lazy('network', 'Manage overlay networks', async () => (await import('./network.js')).networkCommand),
  lazy('secret', 'Manage secrets', async () => (await import('./secret.js')).secretCommand),
  lazy('config', 'Manage configs', async () => (await import('./secret.js')).configCommand),
  lazy('stack', 'Manage stacks', async () => (await import('./stack.js')).stackCommand),
  lazy('image', "Manage this node's images", async () => (await import('./image.js')).imageCommand),
  lazy('login', 'Log in to a registry', async () => (await import('./login.js')).loginCommand),
  lazy('logout', 'Log out from a registry', async () => (await import('./login.js')).logoutCommand),
  lazy(
    'ca',
    'Client certificates of the cluster CA (the Docker Engine API over TCP)',
    async () => (await import('./client-cert.js')).caCommand,
  ),
  lazy('sandbox', 'Run a cluster of hosts on this machine (network namespaces; needs root)', async () => {
    const [{ makeSandboxCommand }, { bootstrapCluster }] = await Promise.all([
      import('./sandbox.js'),
      import('../deploy/sandbox/bootstrap.js'),
    ]);
    return makeSandboxCommand({ bootstrap: (sb) => bootstrapCluster(sb, (line) => process.stderr.write(`${line}\n`)) });
  }),
  versionCommand,
  helpCommand,
];

const subcommandsOf = new Map<Command, () => readonly Command[]>();

const root: Command = group({
  name: 'tsswarm',
  summary: 'A Docker-Swarm-style orchestrator: Raft-replicated managers, runc workers, VXLAN overlays.',
  flags: {
    version: { type: 'boolean', short: 'v', description: 'Print version information and quit' },
    host: {
      type: 'string',
      short: 'H',
      valueName: 'SOCKET',
      description: 'Daemon socket to connect to (unix:///path; default TSSWARM_HOST or unix:///run/tsswarm/tsswarm.sock)',
    },
  },
  subcommands: () => commands,
  before(flags, io) {
    setHost(flags.host);
    if (!flags.version) return undefined;
    io.stdout.write(`tsswarm version ${tsswarmVersion()}\n`);
    return 0;
  },
});
subcommandsOf.set(root, () => commands);

const processIo: Io = { stdout: process.stdout, stderr: process.stderr };

/** Runs the CLI; errors become a one-line message on stderr and exit code 1. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  try {
    return await root.run(argv, io, 'tsswarm');
  } catch (err) {
    if (err instanceof TsswarmError) {
      io.stderr.write(`tsswarm: ${err.message}\n`);
    } else {
      // Not an error we anticipated: a bug. Show everything.
      io.stderr.write(`tsswarm: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
    return 1;
  } finally {
    commandEnded();
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = await main(process.argv.slice(2));
}
