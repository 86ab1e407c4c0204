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

/**
 * A point in time as `docker service logs --since/--until` take it, in Unix
 * ms: a duration back from `nowMs` (Go's spelling: 10m, 1h30m, 2.5s), an
 * RFC 3339 time (2026-12-07T10:00:00Z, a date alone is its midnight UTC), or
 * Unix seconds with an optional fraction (1765100000.5), which is what the
 * docker CLI sends to the Engine API.
 */
export function parseLogTime(flag: string, v: string, nowMs: number): number {
  const s = v.trim();
  if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(s)) {
    let ms = 0;
    for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    return Math.floor(nowMs - ms);
  }
  if (/^\d+(\.\d{1,9})?$/.test(s)) return Math.floor(Number(s) * 1000);
  if (/^\d{4}-\d{2}-\d{2}$/.test(s) || /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})?$/.test(s)) {
    // JavaScript keeps ms: drop the digits past them; a time without a zone is UTC, as Docker reads it.
    let t = s.replace(/(\.\d{3})\d+/, '$1');
    if (t.length > 10 && !/([Zz]|[+-]\d{2}:\d{2})$/.test(t)) t += 'Z';
    const ms = Date.parse(t.length === 10 ? `${t}T00:00:00Z` : t);
    if (Number.isFinite(ms)) return ms;
  }
  throw new LogDriverError(
    `${flag} must be a duration back from now (10m, 1h30m), an RFC 3339 time (2026-12-07T10:00:00Z) or Unix seconds (got "${v}")`,
  );
}
