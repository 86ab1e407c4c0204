// Docker's scalar formats as the compose loader reads them: Go durations,
// go-units memory sizes, CPU counts as rationals, and Go's `%v` of a number
// (how env, label and sysctl values written as numbers become strings).
import { ComposeError } from './errors.js';
import type { YamlValue } from './yaml.js';

const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  µs: 1000n,
  μs: 1000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/** A Go duration (`1m30s`, `1.5h`, `-1s`, `0`) in nanoseconds. */
export function parseDuration(s: string): number {
  if (s === '0' || s === '+0' || s === '-0') return 0;
  const m = /^([-+]?)(.+)$/.exec(s) as RegExpExecArray;
  const re = /(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0n;
  let pos = 0;
  const body = m[2] as string;
  while (pos < body.length) {
    re.lastIndex = pos;
    const p = re.exec(body);
    if (!p || (p[1] === '' && (p[2] ?? '') === '')) throw new ComposeError(`time: invalid duration ${JSON.stringify(s)}`);
    const unit = UNIT_NS[p[3] as string] as bigint;
    const whole = BigInt(p[1] || '0') * unit;
    const frac = p[2] ?? '';
    const fracNs = frac ? (BigInt(frac) * unit) / 10n ** BigInt(frac.length) : 0n;
    total += whole + fracNs;
    pos = re.lastIndex;
  }
  return Number(m[1] === '-' ? -total : total);
}

const SIZE_UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** go-units RAMInBytes: `512M`, `128Mb`, `1.5g`, `100 kb`; every suffix is binary. */
export function parseMemory(s: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?([iI])?([bB])?$/.exec(s);
  if (!m) {
    const n = /^(\d+(?:\.\d+)?) ?(.*)$/.exec(s);
    if (n?.[2]) throw new ComposeError(`invalid suffix: '${(n[2] as string).toLowerCase()}'`);
    throw new ComposeError(`invalid size: '${s}'`);
  }
  if (m[3] && !m[4]) throw new ComposeError(`invalid suffix: '${`${m[2] ?? ''}${m[3]}`.toLowerCase()}'`);
  const unit = SIZE_UNITS[(m[2] ?? 'b').toLowerCase()] as number;
  return Math.floor(Number(m[1]) * unit);
}

/** opts.ParseCPUs: a decimal or `a/b`, times 1e9, which must come out whole. */
export function parseCpus(s: string): number {
  let num: bigint;
  let den: bigint;
  const frac = /^([-+]?)(\d*)(?:\.(\d*))?$/.exec(s);
  const ratio = /^([-+]?\d+)\/(\d+)$/.exec(s);
  if (frac && (frac[2] || frac[3])) {
    const f = frac[3] ?? '';
    num = BigInt(`${frac[1]}${frac[2] || '0'}${f}`);
    den = 10n ** BigInt(f.length);
  } else if (ratio && BigInt(ratio[2] as string) !== 0n) {
    num = BigInt(ratio[1] as string);
    den = BigInt(ratio[2] as string);
  } else throw new ComposeError(`failed to parse ${s} as a rational number`);
  const nano = num * 1_000_000_000n;
  if (nano % den !== 0n) throw new ComposeError('value is too precise');
  return Number(nano / den);
}

/** Go's `%v` of a float64 (strconv 'g', shortest: an exponent from 1e+06 up and below 1e-04). */
export function goFloat(n: number): string {
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
  if (n === 0) return Object.is(n, -0) ? '-0' : '0';
  const exp = Number(n.toExponential().split('e')[1]);
  return exp < -4 || exp >= 6 ? goExp(n) : String(n);
}

function goExp(n: number): string {
  const [mant, exp] = n.toExponential().split('e') as [string, string];
  const sign = exp.startsWith('-') ? '-' : '+';
  const digits = exp.replace(/^[-+]/, '').padStart(2, '0');
  return `${mant}e${sign}${digits}`;
}

/** A scalar as Go's fmt prints it into a string-valued map (env, labels, sysctls). */
export function scalarString(v: YamlValue): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint') return v.toString();
  // YAML integers arrive as bigint: a number here was written as a float.
  if (typeof v === 'number') return goFloat(v);
  if (typeof v === 'boolean') return String(v);
  if (v === null) return '';
  throw new ComposeError(`expected a scalar, got ${JSON.stringify(v)}`);
}
