// A small argv parser for the tsswarm CLI, in the spirit of docker's: long
// flags `--name value` and `--name=value`, one-letter `-q` (clustered `-qa`,
// `-fjson`), booleans, repeated flags collected into arrays, and `--` ending
// the flags. Every error names the flag and says what would be accepted.
import { UsageError } from '../lib/errors.js';

export interface FlagDef {
  /** `string` flags take a value; `boolean` flags are switches (`--x=false` turns one off). */
  type: 'string' | 'boolean';
  /** One letter, for `-x`. */
  short?: string;
  /** A string flag that may be given several times; its values are collected in order. */
  multiple?: boolean;
  description: string;
  /** The value's placeholder in help (`--format FORMAT`); default `VALUE`. */
  valueName?: string;
  /** A boolean that is undefined when not given, so `--x=false` is told apart from no `--x` (a setting to turn off). */
  optional?: boolean;
}

export type FlagDefs = Record<string, FlagDef>;

export type FlagValues<D extends FlagDefs> = {
  [K in keyof D]: D[K]['type'] extends 'boolean'
    ? D[K]['optional'] extends true
      ? boolean | undefined
      : boolean
    : D[K]['multiple'] extends true
      ? string[]
      : string | undefined;
};

export interface ParsedArgs<D extends FlagDefs> {
  flags: FlagValues<D>;
  /** Arguments that are not flags, before any `--`. */
  positionals: string[];
  /** Everything after `--`, untouched. */
  rest: string[];
}

export interface ParseOptions {
  /** Names the command in errors: `tsswarm service create`. */
  command?: string;
  /**
   * Stop at the first positional: it and everything after it go to
   * `positionals` unparsed. Used to dispatch subcommands, and by commands whose
   * trailing arguments belong to something else (`sandbox exec h1 ls -l`).
   */
  stopAtPositional?: boolean;
}

/** Declares a command's flags, keeping their literal types for `FlagValues`. */
export function defineFlags<const D extends FlagDefs>(defs: D): D {
  return defs;
}

export function parseArgs<const D extends FlagDefs>(argv: readonly string[], defs: D, options: ParseOptions = {}): ParsedArgs<D> {
  const where = options.command ? ` for "${options.command}"` : '';
  const byShort = new Map<string, string>();
  const values: Record<string, string | boolean | string[] | undefined> = {};
  for (const [name, def] of Object.entries(defs)) {
    if (def.short) byShort.set(def.short, name);
    values[name] = def.type === 'boolean' ? (def.optional ? undefined : false) : def.multiple ? [] : undefined;
  }
  const known = (): string =>
    Object.keys(defs).length
      ? `known flags: ${Object.keys(defs)
          .sort()
          .map((n) => `--${n}`)
          .join(', ')}`
      : 'it takes no flags';
  const unknown = (shown: string): UsageError => {
    const near = shown.startsWith('--') ? Object.keys(defs).find((n) => nearlyEqual(n, shown.slice(2))) : undefined;
    const hint = near ? `. Did you mean --${near}?` : '';
    return new UsageError(`unknown flag ${shown}${where}; ${known()}${hint}`, { field: shown });
  };

  const set = (name: string, shown: string, value: string | undefined, next: () => string | undefined): void => {
    const def = defs[name]!;
    if (def.type === 'boolean') {
      if (value === undefined) values[name] = true;
      else if (value === 'true' || value === '1') values[name] = true;
      else if (value === 'false' || value === '0') values[name] = false;
      else throw UsageError.invalid(shown, `given alone, or as ${shown}=true or ${shown}=false`, value);
      return;
    }
    let v = value;
    if (v === undefined) {
      v = next();
      // A missing value, or a flag where the value should be: `--name --quiet`.
      // (`-1` is a value, so `--replicas -1` reaches the replicas check.)
      if (v === undefined || v.startsWith('--')) {
        throw new UsageError(`${shown} needs a value: ${shown} ${def.valueName ?? 'VALUE'}`, { field: shown });
      }
    }
    if (def.multiple) (values[name] as string[]).push(v);
    else values[name] = v; // as docker does, the last one given wins
  };

  const positionals: string[] = [];
  let rest: string[] = [];
  let i = 0;
  const next = (): string | undefined => (i < argv.length ? argv[i++] : undefined);
  while (i < argv.length) {
    const arg = argv[i++]!;
    if (arg === '--') {
      rest = argv.slice(i);
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const shown = `--${name}`;
      if (!Object.hasOwn(defs, name)) throw unknown(shown);
      set(name, shown, eq < 0 ? undefined : arg.slice(eq + 1), next);
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // `-qa` is `-q -a`; `-fjson` and `-f json` give `json` to a string flag.
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const name = byShort.get(letter);
        if (name === undefined) throw unknown(`-${letter}`);
        const shown = `-${letter}`;
        if (defs[name]!.type === 'string') {
          const attached = arg.slice(j + 1);
          set(name, shown, attached === '' ? undefined : attached.replace(/^=/, ''), next);
          break;
        }
        set(name, shown, undefined, next);
      }
      continue;
    }
    if (options.stopAtPositional) {
      positionals.push(...argv.slice(i - 1));
      break;
    }
    positionals.push(arg);
  }
  return { flags: values as FlagValues<D>, positionals, rest };
}

/** `--replicas must be a whole number ≥ 0 (got "-1")` */
export function wholeNumber(field: string, value: string, opts: { min?: number; max?: number } = {}): number {
  const min = opts.min ?? 0;
  const n = /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
  const range = opts.max === undefined ? `≥ ${min}` : `from ${min} to ${opts.max}`;
  if (!Number.isSafeInteger(n) || n < min || (opts.max !== undefined && n > opts.max)) {
    throw UsageError.invalid(field, `a whole number ${range}`, value);
  }
  return n;
}

/** `--format must be one of text, json (got "yaml")` */
export function oneOf<const T extends string>(field: string, value: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw UsageError.invalid(field, `one of ${choices.join(', ')}`, value);
}

/** Help lines for a set of flags: `  -f, --format FORMAT   Output format: text or json`. */
export function formatFlags(defs: FlagDefs): string[] {
  const rows = Object.entries(defs)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, d]) => {
      const left = `${d.short ? `-${d.short}, ` : '    '}--${name}${d.type === 'string' ? ` ${d.valueName ?? 'VALUE'}` : ''}`;
      return [left, d.description + (d.multiple ? ' (may be repeated)' : '')] as const;
    });
  const width = Math.max(0, ...rows.map(([l]) => l.length));
  return rows.map(([l, r]) => `  ${l.padEnd(width)}   ${r}`);
}

/** Within one edit (insert, delete, change or swap two letters): `--frmat` for `--format`. */
function nearlyEqual(a: string, b: string): boolean {
  if (a === b || Math.abs(a.length - b.length) > 1) return a === b;
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  const swap = a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2);
  return swap || a.slice(i + 1) === b.slice(i + 1) || a.slice(i) === b.slice(i + 1) || a.slice(i + 1) === b.slice(i);
}
