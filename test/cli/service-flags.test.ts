// Issue 18's flag-table property: every flag of `tsswarm service create` and
// `service update` (read from the CLI's own tables) has a row in
// service-flags.table.ts with a round trip, run here without a daemon (flags →
// spec → the store's encoding → `service inspect`'s JSON), and an effect test
// that exists (its file holds its title). A refused flag must be refused, and a
// flag that only changes the CLI's behaviour says so. Messages name the flag
// and what it lacks.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseCreateArgv, parseUpdateArgv, SERVICE_FLAG_TABLES, serviceJson } from '../../cli/service.js';
import { Meta, Service } from '../../proto/gen/objects.js';
import { type EffectTest, type FlagRow, type RoundTrip, SERVICE_FLAGS } from './service-flags.table.js';

const ROOT = join(import.meta.dirname, '..', '..');
const createFlags = Object.keys(SERVICE_FLAG_TABLES.create);
const allFlags = [...createFlags, ...Object.keys(SERVICE_FLAG_TABLES.updateOnly)];

/** The effect test a row names, following `sameAs`; a string when it cannot be found. */
function effectOf(flag: string, seen: string[] = []): EffectTest | string {
  const row = SERVICE_FLAGS[flag];
  if (!row) return `--${flag} has no row in test/cli/service-flags.table.ts`;
  const eff = row.effect;
  if ('sameAs' in eff) {
    if (seen.includes(eff.sameAs)) return `--${flag}: sameAs loops through ${[...seen, eff.sameAs].join(' → ')}`;
    return effectOf(eff.sameAs, [...seen, flag]);
  }
  return eff;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Why an effect test cannot be found ('' when it is there): its file must
 * declare a test (`it(` or `test(`, `.each(…)` allowed) whose title starts
 * with `t.test`; a skipped or todo one, or a file that skips a describe block, does not count.
 */
function missingTest(t: EffectTest, read: (path: string) => string | undefined = readTest): string {
  const src = read(t.file);
  if (src === undefined) return `its effect test file ${t.file} does not exist`;
  const quote = `\\(\\s*['"\`]${escapeRe(t.test)}`;
  if (new RegExp(`\\b(it|test)\\.(skip|todo)${quote}`).test(src)) return `${t.file} skips the test titled "${t.test}"`;
  if (/\bdescribe\.(skip|todo)\(/.test(src)) return `${t.file} skips a describe block (describe.skip or describe.todo)`;
  if (!new RegExp(`\\b(it|test)(\\.each\\(.*?\\))?${quote}`).test(src)) return `${t.file} has no test titled "${t.test}"`;
  return '';
}

function readTest(file: string): string | undefined {
  const path = join(ROOT, file);
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/** Whether argv uses the flag: `--flag`, `--flag=…`, or its short form (`-e` for --env) from the CLI's table. */
function usesFlag(flag: string, argv: readonly string[]): boolean {
  const def =
    (SERVICE_FLAG_TABLES.create as Record<string, { short?: string }>)[flag] ??
    (SERVICE_FLAG_TABLES.updateOnly as Record<string, { short?: string }>)[flag];
  const short = def?.short;
  return argv.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`) || (short !== undefined && a === `-${short}`));
}

/** What `service inspect` prints for a spec, after the store's encoding. */
function inspected(spec: Service['spec']): Record<string, unknown> {
  const stored = Service.decode(Service.encode(Service.create({ meta: Meta.create({ id: 'svc1', version: 1 }), spec })));
  return JSON.parse(JSON.stringify(serviceJson(stored))) as Record<string, unknown>;
}

const positional = (argv: string[]): string[] =>
  argv.some((a) => a === 'busybox' || a.startsWith('busybox:')) ? argv : [...argv, 'busybox'];

function runRoundTrip(rt: RoundTrip): Record<string, unknown> {
  if (!rt.base) return inspected(parseCreateArgv(positional(rt.argv)).spec);
  const base = parseCreateArgv(positional(rt.base)).spec;
  return inspected(parseUpdateArgv([...rt.argv, 'svc'], base));
}

const at = (o: unknown, path: string): unknown =>
  path.split('.').reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);

/** The paths of `expect` whose value in `json` is not exactly the one expected (an expected {} must be empty). */
function mismatches(json: unknown, expect: Record<string, unknown>): string[] {
  return Object.entries(expect).flatMap(([path, want]) => {
    const got = at(json, path);
    return isDeepStrictEqual(got, want) ? [] : [`${path}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`];
  });
}

describe('the service flag table', () => {
  it('every flag of service create and update has a row, and every row is a flag of the CLI', () => {
    const missing = allFlags.filter((f) => !SERVICE_FLAGS[f]).map((f) => `--${f} has no row in test/cli/service-flags.table.ts`);
    const stale = Object.keys(SERVICE_FLAGS)
      .filter((f) => !allFlags.includes(f))
      .map((f) => `--${f} has a row but is no flag of service create or update`);
    expect([...missing, ...stale]).toEqual([]);
  });

  it('every flag names an effect test that exists (a running container or the scheduler sees it)', () => {
    const problems = allFlags.flatMap((f) => {
      if (!SERVICE_FLAGS[f]) return [];
      const eff = effectOf(f);
      if (typeof eff === 'string') return [eff];
      const why = missingTest(eff);
      return why ? [`--${f}: ${why}`] : [];
    });
    expect(problems).toEqual([]);
  });

  it('every flag has its round trip, is refused as its row says, or says why it changes no spec', () => {
    const problems = allFlags.flatMap((f) => {
      const row = SERVICE_FLAGS[f] as FlagRow | undefined;
      if (!row) return [];
      if ('roundTrip' in row) {
        if (!usesFlag(f, row.roundTrip.argv))
          return [`--${f}: its round trip does not use the flag (argv ${JSON.stringify(row.roundTrip.argv)})`];
        if (!row.roundTrip.base !== createFlags.includes(f))
          return [
            `--${f}: a ${createFlags.includes(f) ? 'create' : 'update-only'} flag needs ${createFlags.includes(f) ? 'no' : 'a'} base`,
          ];
        return Object.keys(row.roundTrip.expect).length ? [] : [`--${f}: its round trip expects nothing`];
      }
      if ('refused' in row) {
        if (!row.refused) return [`--${f}: refused without a reason`];
        return usesFlag(f, row.argv) ? [] : [`--${f}: its refused argv does not use the flag (argv ${JSON.stringify(row.argv)})`];
      }
      return row.cliOnly ? [] : [`--${f}: cliOnly without a reason`];
    });
    expect(problems).toEqual([]);
  });

  const rows = Object.entries(SERVICE_FLAGS);
  it.each(rows.filter(([, r]) => 'roundTrip' in r))('--%s round-trips through the spec to service inspect', (flag, row) => {
    const rt = (row as { roundTrip: RoundTrip }).roundTrip;
    // Exact: an expected {} or [] must be empty, an object holds the keys it lists and no others.
    expect(mismatches(runRoundTrip(rt), rt.expect), `--${flag}`).toEqual([]);
  });

  it.each(rows.filter(([, r]) => 'refused' in r))('--%s is refused, naming the flag', (flag, row) => {
    const r = row as { argv: string[]; error: RegExp };
    expect(() => parseCreateArgv(positional(r.argv)), `--${flag}`).toThrow(r.error);
  });
});

describe('the flag table’s own checks', () => {
  const file = (src: string) => (path: string) => (path === 't.test.ts' ? src : undefined);
  const title = { file: 't.test.ts', test: 'a flag reaches the container' };

  it('an effect test is a test whose title starts with the row’s text, not any mention of it', () => {
    expect(missingTest(title, file("it('a flag reaches the container: env', async () => {});"))).toBe('');
    expect(missingTest(title, file('test(\n  "a flag reaches the container", () => {});'))).toBe('');
    expect(missingTest(title, file("it.each([[1], [2]])('a flag reaches the container %s', () => {});"))).toBe('');
    expect(missingTest(title, file("// a flag reaches the container\nit('something else', () => {});"))).toMatch(/has no test titled/);
    expect(missingTest(title, file("it('so a flag reaches the container', () => {});"))).toMatch(/has no test titled/);
    expect(missingTest(title, file("it.skip('a flag reaches the container', () => {});"))).toMatch(/skips the test/);
    expect(missingTest(title, file("it.todo('a flag reaches the container');"))).toMatch(/skips the test/);
    expect(missingTest(title, file("describe.skip('x', () => { it('a flag reaches the container', () => {}); });"))).toMatch(
      /skips a describe block/,
    );
    expect(missingTest({ file: 'nope.test.ts', test: 'x' }, file(''))).toMatch(/does not exist/);
  });

  it('a round trip or refusal uses the flag by its long name or its own short option, not any -x', () => {
    expect(usesFlag('env', ['-e', 'A=1'])).toBe(true);
    expect(usesFlag('env', ['--env=A=1'])).toBe(true);
    expect(usesFlag('env', ['-w', '/srv'])).toBe(false);
    expect(usesFlag('env', ['--env-file', 'f'])).toBe(false);
    expect(usesFlag('workdir', ['-w', '/srv'])).toBe(true);
    expect(usesFlag('tty', ['-t'])).toBe(true);
    expect(usesFlag('tty', ['--init'])).toBe(false);
  });

  it('a round trip’s expected value is matched exactly: {} is empty, an object has no keys it does not list', () => {
    const json = { spec: { labels: { a: 'b' }, ports: [{ name: '', targetPort: 80 }] } };
    expect(mismatches(json, { 'spec.labels': { a: 'b' } })).toEqual([]);
    expect(mismatches(json, { 'spec.labels': {} })).toHaveLength(1);
    expect(mismatches(json, { 'spec.ports': [{ targetPort: 80 }] })).toHaveLength(1);
    expect(mismatches(json, { 'spec.missing': {} })).toHaveLength(1);
  });
});
