// Issue 18's flag-table property: every flag of `tsswarm service create` and
// `service update` (read from the CLI's own tables) has a row in
// service-flags.table.ts with a round trip, run here without a daemon (flags →
// spec → the store's encoding → `service inspect`'s JSON), and an effect test
// that exists (its file holds its title). A refused flag must be refused, and a
// flag that only changes the CLI's behaviour says so. Messages name the flag
// and what it lacks.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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

/** Why an effect test cannot be found ('' when it is there). */
function missingTest(t: EffectTest): string {
  const path = join(ROOT, t.file);
  if (!existsSync(path)) return `its effect test file ${t.file} does not exist`;
  return readFileSync(path, 'utf8').includes(t.test) ? '' : `${t.file} has no test titled "${t.test}"`;
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
        if (!row.roundTrip.argv.some((a) => a === `--${f}` || a.startsWith(`--${f}=`) || (a.length === 2 && a.startsWith('-'))))
          return [`--${f}: its round trip does not use the flag (argv ${JSON.stringify(row.roundTrip.argv)})`];
        if (!row.roundTrip.base !== createFlags.includes(f))
          return [
            `--${f}: a ${createFlags.includes(f) ? 'create' : 'update-only'} flag needs ${createFlags.includes(f) ? 'no' : 'a'} base`,
          ];
        return Object.keys(row.roundTrip.expect).length ? [] : [`--${f}: its round trip expects nothing`];
      }
      if ('refused' in row) return row.refused ? [] : [`--${f}: refused without a reason`];
      return row.cliOnly ? [] : [`--${f}: cliOnly without a reason`];
    });
    expect(problems).toEqual([]);
  });

  const rows = Object.entries(SERVICE_FLAGS);
  it.each(rows.filter(([, r]) => 'roundTrip' in r))('--%s round-trips through the spec to service inspect', (flag, row) => {
    const rt = (row as { roundTrip: RoundTrip }).roundTrip;
    const json = runRoundTrip(rt);
    for (const [path, want] of Object.entries(rt.expect)) {
      const got = at(json, path);
      if (want !== null && typeof want === 'object') expect(got, `--${flag}: ${path}`).toMatchObject(want as object);
      else expect(got, `--${flag}: ${path}`).toEqual(want);
    }
  });

  it.each(rows.filter(([, r]) => 'refused' in r))('--%s is refused, naming the flag', (flag, row) => {
    const r = row as { argv: string[]; error: RegExp };
    expect(() => parseCreateArgv(positional(r.argv)), `--${flag}`).toThrow(r.error);
  });
});
