// A task's log driver (--log-driver, --log-opt, the Engine API's
// TaskTemplate.LogDriver, compose `logging:`): which names and options we
// honour, and the rotation bound they come to on the node. Pure: the CLI,
// the spec validator and the agent's runtime all ask this one file.
import type { LogDriver } from '../proto/gen/objects.js';

/** Drivers whose logs stay on the node as rotated files that `service logs` reads. Both write conmon's k8s-file format. */
export const FILE_DRIVERS = ['json-file', 'local'] as const;
export const LOG_DRIVERS = [...FILE_DRIVERS, 'none'] as const;
/** Options of the file drivers; anything else is refused by name. */
export const LOG_OPTIONS = ['max-size', 'max-file', 'compress'] as const;

/** The bound when a service gives none (Docker's `local` driver default): 20 MiB × 5 files per container. */
export const DEFAULT_LOG_MAX_SIZE = 20 * 1024 * 1024;
export const DEFAULT_LOG_MAX_FILE = 5;
/**
 * conmon writes a read of up to 8 KiB plus its timestamp header as one
 * record and never splits it across files; with the runtime's margin for
 * files not yet rotated (a file is max-size × max-file / (max-file + 2),
 * agent/runtime/logrotate.ts), 32 KiB keeps every file above one record.
 */
export const MIN_LOG_MAX_SIZE = 32 * 1024;
export const MAX_LOG_MAX_SIZE = 2 ** 40;
export const MAX_LOG_MAX_FILE = 100;

/** What the node does with a task's output: nothing kept, or files of at most maxSize bytes, at most maxFiles of them. */
export type LogPolicy = { kind: 'none' } | { kind: 'file'; maxSize: number; maxFiles: number };

export class LogDriverError extends Error {}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** A size as Docker's log options write it (binary multiples, as its RAMInBytes): `10m`, `1g`, `512k`, `1.5m`, `100kb`, `2MiB`, `4096`. */
export function parseLogSize(v: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  return Number.isFinite(n) ? Math.floor(n) : undefined;
}

/**
 * The node's policy for a driver as stored in a task spec; throws
 * LogDriverError naming the option and the fix. Unset: the bounded
 * default; options without a name (compose `logging: {options: ...}`, an
 * Engine API body) apply to the default driver, as dockerd takes them.
 */
export function logPolicy(d: LogDriver | null | undefined): LogPolicy {
  const name = d?.name ?? '';
  const options = d?.options ?? {};
  if (name !== '' && !(LOG_DRIVERS as readonly string[]).includes(name))
    throw new LogDriverError(
      `--log-driver ${name} is not supported: tsswarm keeps logs on the node, give ${LOG_DRIVERS.join(', ')} (got "${name}")`,
    );
  if (name === 'none') {
    const k = Object.keys(options)[0];
    if (k !== undefined) throw new LogDriverError(`--log-opt ${k}: the none log driver takes no options (got "${k}=${options[k]}")`);
    return { kind: 'none' };
  }
  let maxSize = DEFAULT_LOG_MAX_SIZE;
  let maxFiles = DEFAULT_LOG_MAX_FILE;
  for (const [k, v] of Object.entries(options)) {
    if (k === 'max-size') {
      const n = parseLogSize(v);
      if (n === undefined) throw new LogDriverError(`--log-opt max-size must be a size such as 10m, 512k or 1g (got "${v}")`);
      if (n < MIN_LOG_MAX_SIZE || n > MAX_LOG_MAX_SIZE)
        throw new LogDriverError(
          `--log-opt max-size must be from 32k to 1t (got "${v}"): a log file holds at least one 8 KiB write and logs are always bounded`,
        );
      maxSize = n;
    } else if (k === 'max-file') {
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_LOG_MAX_FILE)
        throw new LogDriverError(`--log-opt max-file must be a whole number from 1 to ${MAX_LOG_MAX_FILE} (got "${v}")`);
      maxFiles = Number(v);
    } else if (k === 'compress') {
      if (v !== 'false')
        throw new LogDriverError(
          `--log-opt compress=${v}: tsswarm does not compress rotated log files; give compress=false or leave it out`,
        );
    } else {
      throw new LogDriverError(`--log-opt ${k} is not supported by the ${name || 'default'} log driver: give ${LOG_OPTIONS.join(', ')}`);
    }
  }
  return { kind: 'file', maxSize, maxFiles };
}

/** `KEY=VALUE` words of --log-opt into a map; a word without `=` or a repeated key is refused. */
export function parseLogOpts(words: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of words) {
    const i = w.indexOf('=');
    if (i <= 0) throw new LogDriverError(`--log-opt must be KEY=VALUE, such as max-size=10m (got "${w}")`);
    out[w.slice(0, i)] = w.slice(i + 1);
  }
  return out;
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The largest time a JavaScript Date holds (±100,000,000 days from 1970), in ms: past it a time is no time. */
export const MAX_LOG_TIME_MS = 8.64e15;
/** `service logs --tail N`: the largest N, the wire's (uint32); a reader holds at most N lines and 8 MiB of them anyway. */
export const MAX_LOG_TAIL = 0xffff_ffff;

const DOCKER_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?([Zz]|[+-]\d{2}:\d{2})?$/;

/**
 * A time as docker's GetTimestamp reads it: `2006-01-02`, `2006-01-02T15`,
 * `2006-01-02T15:04`, `2006-01-02T15:04:05[.999999999]`, each with an optional
 * zone (`Z`, `+07:00`); without one the time is in this machine's local zone,
 * as docker reads it (the docker CLI reads it on the client). Unix ms, or
 * undefined when it is not such a time or names no real one (month 13, Feb 30).
 */
function dockerTime(s: string): number | undefined {
  const m = DOCKER_TIME.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [number, number, number, number, number, number];
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  const zone = m[8];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return undefined;
  let t: number;
  if (zone) {
    const off = /^[Zz]$/.test(zone) ? 0 : (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
    // setUTCFullYear, not Date.UTC: years 0-99 are not 1900-1999.
    const utc = new Date(0);
    utc.setUTCFullYear(y, mo - 1, d);
    if (utc.getUTCDate() !== d) return undefined;
    utc.setUTCHours(h, mi, sec, ms);
    t = utc.getTime() - off * 60_000;
  } else {
    const local = new Date(2000, 0, 1);
    local.setFullYear(y, mo - 1, d);
    if (local.getDate() !== d) return undefined;
    local.setHours(h, mi, sec, ms);
    t = local.getTime();
  }
  return Number.isFinite(t) ? t : undefined;
}

/**
 * A point in time as `docker service logs --since/--until` take it, in Unix
 * ms: a duration back from `nowMs` (Go's spelling: 10m, 1h30m, 2.5s), a time
 * as docker writes it (2026-12-07T10:00:00Z, 2026-12-07T10:00, 2026-12-07T10,
 * a date alone is its midnight; no zone is the local zone, as docker reads
 * it), or Unix seconds with an optional fraction (1765100000.5), which is what
 * the docker CLI sends to the Engine API. A time past what a date can hold
 * (±8.64e15 ms) is refused.
 */
export function parseLogTime(flag: string, v: string, nowMs: number): number {
  const s = v.trim();
  const inRange = (ms: number): number => {
    if (!Number.isFinite(ms) || Math.abs(ms) > MAX_LOG_TIME_MS)
      throw new LogDriverError(`${flag} is out of range: a time must lie within 100,000,000 days of 1970 (got "${v.slice(0, 64)}")`);
    return ms;
  };
  if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(s)) {
    let ms = 0;
    for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    return inRange(Math.floor(nowMs - ms));
  }
  if (/^\d+(\.\d{1,9})?$/.test(s)) return inRange(Math.floor(Number(s) * 1000));
  const t = dockerTime(s);
  if (t !== undefined) return inRange(t);
  throw new LogDriverError(
    `${flag} must be a duration back from now (10m, 1h30m), an RFC 3339 time (2026-12-07T10:00:00Z; 2026-12-07T10:00 or 2026-12-07 in the local zone) or Unix seconds (got "${v}")`,
  );
}
