// The command tree of the tsswarm CLI: leaf commands with typed flags, and
// groups (`tsswarm node ls`, `tsswarm service create`) that dispatch to their
// subcommands. Later verbs add a file under cli/ and one line in cli/main.ts.
import { TsswarmError, UsageError } from '../lib/errors.js';
import { defineFlags, formatFlags, parseArgs, type FlagDefs, type FlagValues } from './args.js';

export interface Writer {
  write(chunk: string): unknown;
}

export interface Io {
  stdout: Writer;
  stderr: Writer;
}

export interface Command {
  readonly name: string;
  /** One line, shown in the parent's list of commands. */
  readonly summary: string;
  /** Full help text; `path` is how the user reached it (`tsswarm node ls`). */
  help(path: string): string;
  /** Runs with the arguments after the command's name; returns the exit code. */
  run(argv: readonly string[], io: Io, path: string): Promise<number>;
}

export interface LeafContext<D extends FlagDefs> {
  flags: FlagValues<D>;
  positionals: string[];
  rest: string[];
  io: Io;
  /** `tsswarm node ls`, for messages. */
  path: string;
}

const helpFlag = defineFlags({ help: { type: 'boolean', short: 'h', description: 'Print usage' } });

export interface LeafSpec<D extends FlagDefs> {
  name: string;
  summary: string;
  /** What follows the name in the usage line, e.g. `[OPTIONS] SERVICE`. */
  usage?: string;
  /** Extra paragraphs after the usage line. */
  description?: string;
  flags: D;
  /** As `parseArgs`'s option: trailing arguments belong to something else. */
  stopAtPositional?: boolean;
  run(ctx: LeafContext<D & typeof helpFlag>): Promise<number>;
}

export function leaf<const D extends FlagDefs>(spec: LeafSpec<D>): Command {
  const flags = { ...spec.flags, ...helpFlag } as D & typeof helpFlag;
  const help = (path: string): string =>
    [
      `Usage:  ${path} ${spec.usage ?? '[OPTIONS]'}`.trimEnd(),
      '',
      spec.summary,
      ...(spec.description ? ['', spec.description] : []),
      '',
      'Options:',
      ...formatFlags(flags),
      '',
    ].join('\n');
  return {
    name: spec.name,
    summary: spec.summary,
    help,
    async run(argv, io, path) {
      const parsed = parseArgs(argv, flags, { command: path, stopAtPositional: spec.stopAtPositional });
      if (parsed.flags.help) {
        io.stdout.write(help(path));
        return 0;
      }
      return spec.run({ ...parsed, io, path });
    },
  };
}

/** A command whose module loads when it first runs (or when help needs it); `tsswarm --help` lists it by name and summary alone. */
export interface LazyCommand extends Command {
  load(): Promise<Command>;
}

export function lazy(name: string, summary: string, loader: () => Promise<Command>): LazyCommand {
  let loaded: Command | undefined;
  let loading: Promise<Command> | undefined;
  const load = (): Promise<Command> =>
    (loading ??= loader().then((c) => {
      if (c.name !== name) throw new TsswarmError('INTERNAL', `command "${name}" loaded as "${c.name}"`);
      return (loaded = c);
    }));
  return {
    name,
    summary,
    load,
    help(path) {
      if (!loaded) throw new TsswarmError('INTERNAL', `help of "${path}" asked for before its module loaded`);
      return loaded.help(path);
    },
    async run(argv, io, path) {
      return (await load()).run(argv, io, path);
    },
  };
}

export interface GroupSpec<D extends FlagDefs> {
  name: string;
  summary: string;
  /** Flags of the group itself, before the subcommand (`tsswarm --version`). */
  flags?: D;
  subcommands: () => readonly Command[];
  /** Handles the group's own flags; returns an exit code to stop there, or undefined to go on. */
  before?(flags: FlagValues<D & typeof helpFlag>, io: Io): number | undefined;
}

export function group<const D extends FlagDefs = Record<never, never>>(spec: GroupSpec<D>): Command {
  const flags = { ...(spec.flags ?? ({} as D)), ...helpFlag } as D & typeof helpFlag;
  const help = (path: string): string => {
    const subs = spec.subcommands();
    const width = Math.max(0, ...subs.map((c) => c.name.length));
    return [
      `Usage:  ${path} [OPTIONS] COMMAND`,
      '',
      spec.summary,
      '',
      'Commands:',
      ...subs.map((c) => `  ${c.name.padEnd(width)}   ${c.summary}`),
      '',
      'Options:',
      ...formatFlags(flags),
      '',
      `Run '${path} COMMAND --help' for more information on a command.`,
      '',
    ].join('\n');
  };
  return {
    name: spec.name,
    summary: spec.summary,
    help,
    async run(argv, io, path) {
      const parsed = parseArgs(argv, flags, { command: path, stopAtPositional: true });
      const early = spec.before?.(parsed.flags, io);
      if (early !== undefined) return early;
      const [name, ...args] = [...parsed.positionals, ...parsed.rest];
      if (parsed.flags.help || name === undefined) {
        io.stdout.write(help(path));
        return 0;
      }
      const sub = findCommand(spec.subcommands(), name, path);
      return sub.run(args, io, `${path} ${sub.name}`);
    },
  };
}

/** The named command, or a UsageError naming it and listing the known ones. */
export function findCommand(commands: readonly Command[], name: string, path: string): Command {
  const found = commands.find((c) => c.name === name);
  if (found) return found;
  const names = commands.map((c) => c.name).sort();
  const near = names.filter((n) => editDistance(n, name) <= 2);
  const hint = near.length ? ` Did you mean "${near[0]}"?` : '';
  throw new UsageError(
    `unknown command "${name}" for "${path}"; known commands: ${names.join(', ')}.${hint} Run '${path} --help' for usage.`,
    { field: name },
  );
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * A verb over several objects, as docker runs them: each one in turn; a failure
 * is printed (`tsswarm: ...`) and the rest still run; exit code 1 if any failed.
 */
export async function forEachArg<T>(io: Io, args: readonly T[], fn: (arg: T) => Promise<void>): Promise<number> {
  let code = 0;
  for (const a of args) {
    try {
      await fn(a);
    } catch (e) {
      if (!(e instanceof TsswarmError)) throw e;
      io.stderr.write(`tsswarm: ${e.message}\n`);
      code = 1;
    }
  }
  return code;
}
