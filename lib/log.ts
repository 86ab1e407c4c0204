// The pino logger every daemon and library component uses: JSON lines on
// stderr (or a given destination), level from the option or TSSWARM_LOG_LEVEL,
// and one child logger per component carrying `component` (then `node`,
// `service`, `task` as they become known).
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { UsageError } from './errors.js';

export type { Logger } from 'pino';
export type LogLevel = LevelWithSilent;

export const logLevels: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface LoggerOptions {
  /** Overrides TSSWARM_LOG_LEVEL; the default is `info`. */
  level?: string;
  /**
   * Where the JSON lines go: a stream (tests pass one that collects lines), a
   * file descriptor, or a file path. Default: stderr, written synchronously so
   * that nothing is lost when a process crashes.
   */
  destination?: DestinationStream | number | string;
  /** Fields on every line, e.g. `{ node: 'n1' }`. */
  base?: Record<string, unknown>;
  /** Environment to read TSSWARM_LOG_LEVEL from (tests pass their own). */
  env?: NodeJS.ProcessEnv;
}

/** Validates a level name; the error names where the bad value came from. */
export function parseLogLevel(value: string, source = '--log-level'): LogLevel {
  const v = value.trim().toLowerCase();
  if ((logLevels as readonly string[]).includes(v)) return v as LogLevel;
  throw UsageError.invalid(source, `one of ${logLevels.join(', ')}`, value);
}

/** Keys whose values are never logged, at any depth up to five. */
const SECRET_KEYS = ['pullOptions', 'registryAuth', 'password', 'identityToken', 'registryToken'];
export const REDACT_PATHS: string[] = SECRET_KEYS.flatMap((k) => [0, 1, 2, 3, 4, 5].map((d) => [...Array(d).fill('*'), k].join('.')));

export function createLogger(options: LoggerOptions = {}): Logger {
  const env = options.env ?? process.env;
  const envLevel = env.TSSWARM_LOG_LEVEL;
  const level =
    options.level !== undefined
      ? parseLogLevel(options.level)
      : envLevel !== undefined && envLevel !== ''
        ? parseLogLevel(envLevel, 'TSSWARM_LOG_LEVEL')
        : 'info';
  const dest = options.destination;
  const stream: DestinationStream =
    dest === undefined
      ? pino.destination({ fd: 2, sync: true })
      : typeof dest === 'number'
        ? pino.destination({ fd: dest, sync: true })
        : typeof dest === 'string'
          ? pino.destination({ dest, sync: true, mkdir: true })
          : dest;
  return pino(
    {
      level,
      base: { pid: process.pid, ...options.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "level":"info" rather than 30: the lines are read by people and grep.
      formatters: { level: (label) => ({ level: label }) },
      // Registry credentials (--with-registry-auth's pullOptions, a login's password) never reach a log line,
      // whichever object carries them to it: a spec, a task, a request.
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    stream,
  );
}

/** The child logger a component keeps: `componentLogger(log, 'raft', { node: 'n1' })`. */
export function componentLogger(parent: Logger, component: string, fields: Record<string, unknown> = {}): Logger {
  return parent.child({ component, ...fields });
}

/** A logger that writes nothing, for tests and library defaults. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
