// lib/log.ts: JSON lines, levels from the option or TSSWARM_LOG_LEVEL, and
// component child loggers.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/errors.js';
import { componentLogger, createLogger, parseLogLevel } from '../../lib/log.js';

function collector(): { write(s: string): void; lines(): Record<string, unknown>[] } {
  const chunks: string[] = [];
  return {
    write: (s) => void chunks.push(s),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  it('writes one JSON object per line with a level name, an ISO time and the message', () => {
    const out = collector();
    createLogger({ destination: out, env: {} }).info({ term: 3 }, 'became leader');
    const [line] = out.lines();
    expect(line).toMatchObject({ level: 'info', msg: 'became leader', term: 3, pid: process.pid });
    expect(String(line!.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
  });

  it('logs at info and above by default', () => {
    const out = collector();
    const log = createLogger({ destination: out, env: {} });
    log.debug('hidden');
    log.warn('shown');
    expect(out.lines().map((l) => l.msg)).toEqual(['shown']);
  });

  it('takes its level from TSSWARM_LOG_LEVEL, and the option overrides it', () => {
    const out = collector();
    createLogger({ destination: out, env: { TSSWARM_LOG_LEVEL: 'debug' } }).debug('from env');
    createLogger({ destination: out, env: { TSSWARM_LOG_LEVEL: 'debug' }, level: 'error' }).warn('suppressed');
    expect(out.lines().map((l) => l.msg)).toEqual(['from env']);
  });

  it('a bad TSSWARM_LOG_LEVEL is a UsageError naming the variable and the levels', () => {
    let err: unknown;
    try {
      createLogger({ env: { TSSWARM_LOG_LEVEL: 'loud' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect(err).toMatchObject({
      field: 'TSSWARM_LOG_LEVEL',
      message: 'TSSWARM_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent (got "loud")',
    });
    expect(() => parseLogLevel('x')).toThrow(/^--log-level must be one of/);
  });

  it('component child loggers carry component and the extra fields on every line', () => {
    const out = collector();
    const raft = componentLogger(createLogger({ destination: out, env: {}, base: { node: 'n1' } }), 'raft', { group: 7 });
    raft.info('tick');
    raft.child({ peer: 'n2' }).warn('slow');
    expect(out.lines()).toMatchObject([
      { component: 'raft', node: 'n1', group: 7, msg: 'tick' },
      { component: 'raft', node: 'n1', group: 7, peer: 'n2', msg: 'slow', level: 'warn' },
    ]);
  });
});
