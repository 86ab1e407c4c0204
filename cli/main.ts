// The `tsswarm` command: a docker-like verb tree. `main(argv)` returns the exit
// code; bin/tsswarm.mjs and `tsx cli/main.ts ...` both end up here. New verbs
// (init, join, node, service, network, sandbox) are added to `commands`.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TsswarmError } from '../lib/errors.js';
import { group, findCommand, leaf, passThrough, type Command, type Io } from './command.js';
import { setHost } from './client.js';
import { closeClients, clusterCommands } from './cluster.js';
import { imageCommand } from './image.js';
import { networkCommand } from './network.js';
import { raftDemo } from './raft-demo.js';
import { makeSandboxCommand } from './sandbox.js';
import { serviceCommand } from './service.js';
import { bootstrapCluster } from '../deploy/sandbox/bootstrap.js';
import { tsswarmVersion, versionCommand } from './version.js';

const helpCommand = leaf({
  name: 'help',
  summary: 'Show help for tsswarm or one of its commands',
  usage: '[COMMAND...]',
  flags: {},
  async run({ positionals, io }) {
    // `tsswarm help node ls` walks the tree the way `tsswarm node ls --help` would.
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

const raftDemoCommand = passThrough({
  name: 'raft-demo',
  summary: 'Run a 3-member Raft key-value cluster on loopback: writes, leader failover, catch-up',
  run: (argv) => raftDemo(argv),
});

/** The top-level commands, in the order help lists them. */
const sandboxCommand = makeSandboxCommand({ bootstrap: (sb) => bootstrapCluster(sb, (line) => process.stderr.write(`${line}\n`)) });
const commands: readonly Command[] = [...clusterCommands, serviceCommand, networkCommand, imageCommand, sandboxCommand, versionCommand, helpCommand, raftDemoCommand];

const subcommandsOf = new Map<Command, () => readonly Command[]>();

const root: Command = group({
  name: 'tsswarm',
  summary: 'A Docker-Swarm-style orchestrator: Raft-replicated managers, runc workers, VXLAN overlays.',
  flags: {
    version: { type: 'boolean', short: 'v', description: 'Print version information and quit' },
    host: { type: 'string', short: 'H', valueName: 'SOCKET', description: 'Daemon socket to connect to (unix:///path; default TSSWARM_HOST or unix:///run/tsswarm/tsswarm.sock)' },
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
    closeClients();
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
