// cli/args.ts: the flag forms the CLI accepts, and errors that name the flag.
import { describe, expect, it } from 'vitest';
import { usageError } from '../errors.js';
import { defineFlags, formatFlags, oneOf, parseArgs, wholeNumber } from '../../cli/args.js';

const flags = defineFlags({
  name: { type: 'string', description: 'Service name', valueName: 'NAME' },
  env: { type: 'string', short: 'e', multiple: true, description: 'Environment variable', valueName: 'KEY=VALUE' },
  format: { type: 'string', short: 'f', description: 'Output format', valueName: 'FORMAT' },
  quiet: { type: 'boolean', short: 'q', description: 'Only display IDs' },
  all: { type: 'boolean', short: 'a', description: 'Show all' },
});

describe('parseArgs', () => {
  it('reads --flag value and --flag=value, and keeps positionals in order', () => {
    const r = parseArgs(['web', '--name', 'a', 'nginx', '--format=json'], flags);
    expect(r.flags).toEqual({ name: 'a', env: [], format: 'json', quiet: false, all: false });
    expect(r.positionals).toEqual(['web', 'nginx']);
    expect(r.rest).toEqual([]);
  });

  it('a value may contain = and may begin with a single dash', () => {
    expect(parseArgs(['--name=a=b', '--format', '-1'], flags).flags).toMatchObject({ name: 'a=b', format: '-1' });
  });

  it('booleans are switches, and accept =true and =false', () => {
    expect(parseArgs(['--quiet'], flags).flags.quiet).toBe(true);
    expect(parseArgs(['--quiet=false'], flags).flags.quiet).toBe(false);
    expect(parseArgs(['--quiet=true'], flags).flags.quiet).toBe(true);
  });

  it('repeated flags collect their values in order; a single-valued flag keeps the last', () => {
    const r = parseArgs(['-e', 'A=1', '--env', 'B=2', '--env=C=3', '--name', 'x', '--name', 'y'], flags);
    expect(r.flags.env).toEqual(['A=1', 'B=2', 'C=3']);
    expect(r.flags.name).toBe('y');
  });

  it('short flags cluster, and a string short flag takes the rest of its argument or the next one', () => {
    expect(parseArgs(['-qa'], flags).flags).toMatchObject({ quiet: true, all: true });
    expect(parseArgs(['-qfjson'], flags).flags).toMatchObject({ quiet: true, format: 'json' });
    expect(parseArgs(['-f', 'json'], flags).flags.format).toBe('json');
  });

  it('-- ends the flags: what follows goes to rest untouched', () => {
    const r = parseArgs(['h1', '--quiet', '--', 'ls', '--name', '-l'], flags);
    expect(r.flags.quiet).toBe(true);
    expect(r.positionals).toEqual(['h1']);
    expect(r.rest).toEqual(['ls', '--name', '-l']);
  });

  it('stopAtPositional leaves the first positional and everything after it unparsed', () => {
    const r = parseArgs(['-q', 'service', 'ls', '--bogus'], flags, { stopAtPositional: true });
    expect(r.flags.quiet).toBe(true);
    expect(r.positionals).toEqual(['service', 'ls', '--bogus']);
  });

  it('an unknown flag is an error naming it, the command and the known flags, with a suggestion when close', () => {
    const e = usageError(() => parseArgs(['--nmae', 'x'], flags, { command: 'tsswarm service create' }));
    expect(e.message).toBe(
      'unknown flag --nmae for "tsswarm service create"; known flags: --all, --env, --format, --name, --quiet. Did you mean --name?',
    );
    expect(e.field).toBe('--nmae');
    expect(usageError(() => parseArgs(['-z'], flags)).message).toMatch(/^unknown flag -z; known flags:/);
    expect(usageError(() => parseArgs(['--x'], {})).message).toBe('unknown flag --x; it takes no flags');
  });

  it('a string flag without a value is an error naming the flag and its placeholder', () => {
    expect(usageError(() => parseArgs(['--name'], flags)).message).toBe('--name needs a value: --name NAME');
    expect(usageError(() => parseArgs(['--name', '--quiet'], flags)).message).toBe('--name needs a value: --name NAME');
    expect(usageError(() => parseArgs(['-f'], flags)).message).toBe('-f needs a value: -f FORMAT');
  });

  it('a boolean given a value other than true or false is an error naming the flag', () => {
    expect(usageError(() => parseArgs(['--quiet=yes'], flags)).message).toBe(
      '--quiet must be given alone, or as --quiet=true or --quiet=false (got "yes")',
    );
  });
});

describe('value checks', () => {
  it('wholeNumber accepts whole numbers in range and names the flag otherwise', () => {
    expect(wholeNumber('--replicas', '3')).toBe(3);
    expect(wholeNumber('--replicas', '0')).toBe(0);
    expect(usageError(() => wholeNumber('--replicas', '-1')).message).toBe('--replicas must be a whole number ≥ 0 (got "-1")');
    expect(usageError(() => wholeNumber('--replicas', '1.5')).message).toBe('--replicas must be a whole number ≥ 0 (got "1.5")');
    expect(usageError(() => wholeNumber('--replicas', 'three')).field).toBe('--replicas');
    expect(usageError(() => wholeNumber('--port', '70000', { min: 1, max: 65535 })).message).toBe(
      '--port must be a whole number from 1 to 65535 (got "70000")',
    );
  });

  it('oneOf accepts the listed choices only', () => {
    expect(oneOf('--format', 'json', ['text', 'json'])).toBe('json');
    expect(usageError(() => oneOf('--format', 'yaml', ['text', 'json'])).message).toBe('--format must be one of text, json (got "yaml")');
  });

  it('help lines list short and long names, placeholders and descriptions, aligned', () => {
    expect(formatFlags({ env: flags.env, quiet: flags.quiet })).toEqual([
      '  -e, --env KEY=VALUE   Environment variable (may be repeated)',
      '  -q, --quiet           Only display IDs',
    ]);
  });
});
