// Reading and writing the scalar shapes of Docker's Engine API JSON: integer
// nanosecond durations, RFC 3339 times as Go prints them, and typed reads of
// a parsed body that name the Docker field path when a value has the wrong
// type. Pure; the service and task conversions are built on these.
import { UsageError } from '../../lib/errors.js';

/** A parsed JSON object (a request body, or part of one). */
export type JsonObject = Record<string, unknown>;

const NS_PER_MS = 1_000_000;

/** Go's `time.Duration` in JSON: whole nanoseconds. tsswarm keeps milliseconds, so a value with a sub-millisecond part is refused, never rounded. */
export function durationFromDocker(path: string, v: unknown): number {
  if (v === null || v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    throw new UsageError(`${path} must be a whole number of nanoseconds (got ${short(v)})`, { field: path });
  if (v < 0) throw new UsageError(`${path} must be ≥ 0 (got ${v} ns)`, { field: path });
  if (v % NS_PER_MS !== 0)
    throw new UsageError(
      `${path} is ${v} ns: tsswarm keeps durations in whole milliseconds; give a multiple of 1000000 ns (1ms), e.g. ${Math.ceil(v / NS_PER_MS) * NS_PER_MS}`,
      { field: path },
    );
  return v / NS_PER_MS;
}

/** Milliseconds as Docker's nanoseconds. */
export function durationToDocker(ms: number): number {
  return ms * NS_PER_MS;
}

/** Go's zero time, which Docker prints for a time never set (`omitempty` does not omit a struct). */
export const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

/** Unix milliseconds as Go's RFC3339Nano in UTC (`2026-12-07T18:19:00.5Z`: trailing zeros of the fraction dropped); 0 is Go's zero time. */
export function timeToDocker(ms: number): string {
  if (!ms) return GO_ZERO_TIME;
  const iso = new Date(ms).toISOString(); // 2026-12-07T18:19:00.500Z
  return iso.replace(/\.(\d*?)0*Z$/, (_m, frac: string) => (frac ? `.${frac}Z` : 'Z'));
}

/** A value for an error message: short, whatever its size. */
export function short(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Whether a value is Go's zero value or an empty container of zero values:
 * what the docker CLI sends for a field it does not set (`"Init":false`,
 * `"DNSConfig":{}`, `"Privileges":{"CredentialSpec":null,...}`). Only a value
 * that is not zero can be a request tsswarm fails to honour.
 */
export function isZero(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.values(v as JsonObject).every(isZero);
  return false;
}

/** Typed reads of one JSON object, each naming `path.Key` when the value has the wrong type. */
export class JsonReader {
  constructor(
    readonly o: JsonObject,
    readonly path: string,
  ) {}

  /** The reader of a JSON object at `v`, or null for null/absent; anything else is refused. */
  static of(v: unknown, path: string): JsonReader | null {
    if (v === null || v === undefined) return null;
    if (typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`${path} must be an object (got ${short(v)})`, { field: path });
    return new JsonReader(v as JsonObject, path);
  }

  at(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  has(key: string): boolean {
    return !isZero(this.o[key]);
  }

  obj(key: string): JsonReader | null {
    return JsonReader.of(this.o[key], this.at(key));
  }

  str(key: string): string {
    const v = this.o[key];
    if (v === null || v === undefined) return '';
    if (typeof v !== 'string') throw this.wrong(key, 'a string', v);
    return v;
  }

  bool(key: string): boolean {
    const v = this.o[key];
    if (v === null || v === undefined) return false;
    if (typeof v !== 'boolean') throw this.wrong(key, 'true or false', v);
    return v;
  }

  /** A whole number from 0 to Number.MAX_SAFE_INTEGER (Go's unsigned and non-negative fields). */
  uint(key: string): number {
    const v = this.o[key];
    if (v === null || v === undefined) return 0;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw this.wrong(key, 'a whole number ≥ 0', v);
    return v;
  }

  /** A whole number, sign allowed. */
  int(key: string): number {
    const v = this.o[key];
    if (v === null || v === undefined) return 0;
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw this.wrong(key, 'a whole number', v);
    return v;
  }

  /** Any finite number (MaxFailureRatio). */
  float(key: string): number {
    const v = this.o[key];
    if (v === null || v === undefined) return 0;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.wrong(key, 'a number', v);
    return v;
  }

  duration(key: string): number {
    return durationFromDocker(this.at(key), this.o[key]);
  }

  strs(key: string): string[] {
    const v = this.o[key];
    if (v === null || v === undefined) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw this.wrong(key, 'a list of strings', v);
    return [...(v as string[])];
  }

  /** A list of objects, each with its reader (`Mounts[0]`). */
  list(key: string): JsonReader[] {
    const v = this.o[key];
    if (v === null || v === undefined) return [];
    if (!Array.isArray(v)) throw this.wrong(key, 'a list', v);
    return v.map((x, i) => {
      const r = JsonReader.of(x, `${this.at(key)}[${i}]`);
      if (!r) throw new UsageError(`${this.at(key)}[${i}] must be an object (got null)`, { field: `${this.at(key)}[${i}]` });
      return r;
    });
  }

  /** A map of strings (labels, options); null and absent are {}. */
  strMap(key: string): Record<string, string> {
    const v = this.o[key];
    if (v === null || v === undefined) return {};
    if (typeof v !== 'object' || Array.isArray(v) || Object.values(v as JsonObject).some((x) => typeof x !== 'string'))
      throw this.wrong(key, 'an object of strings', v);
    return { ...(v as Record<string, string>) };
  }

  private wrong(key: string, what: string, v: unknown): UsageError {
    return new UsageError(`${this.at(key)} must be ${what} (got ${short(v)})`, { field: this.at(key) });
  }
}
