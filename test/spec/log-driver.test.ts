import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LOG_MAX_FILE,
  DEFAULT_LOG_MAX_SIZE,
  LogDriverError,
  logPolicy,
  parseLogOpts,
  parseLogSize,
  parseLogTime,
} from '../../spec/log-driver.js';
import { validateServiceSpec } from '../../spec/validate.js';
import { ContainerSpec, ServiceSpec, TaskSpec } from '../../proto/gen/objects.js';
import { serviceSpecFromDocker, serviceSpecToDocker } from '../../spec/docker/service.js';
import { service as composeService } from './compose/helpers.js';

const MiB = 1024 * 1024;

describe('log driver options', () => {
  it('sizes are read as docker reads them: binary multiples, an optional b or ib', () => {
    expect(parseLogSize('10m')).toBe(10 * MiB);
    expect(parseLogSize('1g')).toBe(1024 * MiB);
    expect(parseLogSize('512k')).toBe(512 * 1024);
    expect(parseLogSize('100KB')).toBe(100 * 1024);
    expect(parseLogSize('2MiB')).toBe(2 * MiB);
    expect(parseLogSize('1.5m')).toBe(1.5 * MiB);
    expect(parseLogSize('65536')).toBe(65536);
    for (const bad of ['', 'm', '-1', '10x', '10 mb extra', '1e9']) expect(parseLogSize(bad), bad).toBeUndefined();
  });

  it('no driver is the bounded default, so a chatty task never fills the disk', () => {
    const d = { kind: 'file', maxSize: DEFAULT_LOG_MAX_SIZE, maxFiles: DEFAULT_LOG_MAX_FILE };
    expect(logPolicy(undefined)).toEqual(d);
    expect(logPolicy({ name: '', options: {} })).toEqual(d);
    expect(logPolicy({ name: 'json-file', options: {} })).toEqual(d);
    expect(DEFAULT_LOG_MAX_SIZE * DEFAULT_LOG_MAX_FILE).toBe(100 * MiB);
  });

  it('json-file and local take max-size, max-file and compress=false; none takes nothing', () => {
    expect(logPolicy({ name: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } })).toEqual({
      kind: 'file',
      maxSize: 10 * MiB,
      maxFiles: 3,
    });
    expect(logPolicy({ name: 'local', options: { 'max-file': '1', compress: 'false' } })).toEqual({
      kind: 'file',
      maxSize: DEFAULT_LOG_MAX_SIZE,
      maxFiles: 1,
    });
    expect(logPolicy({ name: 'none', options: {} })).toEqual({ kind: 'none' });
    // Options without a name apply to the default driver, as dockerd takes a compose `logging: {options}`.
    expect(logPolicy({ name: '', options: { 'max-size': '1m' } })).toEqual({ kind: 'file', maxSize: MiB, maxFiles: DEFAULT_LOG_MAX_FILE });
  });

  it('refuses other drivers with the list, and each bad option by name', () => {
    const refused = (name: string, options: Record<string, string> = {}): string => {
      try {
        logPolicy({ name, options });
      } catch (e) {
        expect(e).toBeInstanceOf(LogDriverError);
        return (e as Error).message;
      }
      throw new Error(`${name} ${JSON.stringify(options)} was accepted`);
    };
    for (const d of ['syslog', 'journald', 'gelf', 'fluentd', 'awslogs', 'splunk', 'JSON-FILE'])
      expect(refused(d)).toBe(
        `--log-driver ${d} is not supported: tsswarm keeps logs on the node, give json-file, local, none (got "${d}")`,
      );
    expect(refused('json-file', { labels: 'team' })).toBe(
      '--log-opt labels is not supported by the json-file log driver: give max-size, max-file, compress',
    );
    expect(refused('local', { 'max-size': 'big' })).toMatch(/^--log-opt max-size must be a size such as 10m.*\(got "big"\)$/);
    expect(refused('local', { 'max-size': '31k' })).toMatch(/^--log-opt max-size must be from 32k to 1t \(got "31k"\)/);
    expect(refused('local', { 'max-size': '2t' })).toMatch(/^--log-opt max-size must be from 32k to 1t/);
    for (const n of ['0', '-1', '1.5', 'x', '101'])
      expect(refused('json-file', { 'max-file': n })).toBe(`--log-opt max-file must be a whole number from 1 to 100 (got "${n}")`);
    expect(refused('json-file', { compress: 'true' })).toMatch(/^--log-opt compress=true: tsswarm does not compress rotated log files/);
    expect(refused('none', { 'max-size': '10m' })).toBe('--log-opt max-size: the none log driver takes no options (got "max-size=10m")');
  });

  it('--log-opt words are KEY=VALUE', () => {
    expect(parseLogOpts(['max-size=10m', 'max-file=2', 'max-file=3'])).toEqual({ 'max-size': '10m', 'max-file': '3' });
    expect(() => parseLogOpts(['max-size'])).toThrow('--log-opt must be KEY=VALUE, such as max-size=10m (got "max-size")');
    expect(() => parseLogOpts(['=1'])).toThrow(/KEY=VALUE/);
  });

  it('the service spec is refused with the field and the reason', () => {
    const spec = ServiceSpec.create({
      name: 'w',
      task: TaskSpec.create({ container: ContainerSpec.create({ image: 'busybox' }), logDriver: { name: 'syslog', options: {} } }),
    });
    expect(() => validateServiceSpec(spec)).toThrow(/^spec\.task\.logDriver is not valid: --log-driver syslog is not supported/);
    spec.task.logDriver = { name: 'local', options: { 'max-size': '10m' } };
    expect(validateServiceSpec(spec).spec.task.logDriver).toEqual({ name: 'local', options: { 'max-size': '10m' } });
    spec.task.logDriver = { name: 'x'.repeat(100), options: {} };
    expect(() => validateServiceSpec(spec)).toThrow(/^spec\.task\.logDriver\.name .*at most 64/);
  });
});

describe('log times', () => {
  const now = Date.UTC(2026, 11, 7, 12, 0, 0);
  it('durations count back from now, in Go spelling', () => {
    expect(parseLogTime('--since', '10m', now)).toBe(now - 600_000);
    expect(parseLogTime('--since', '1h30m', now)).toBe(now - 5_400_000);
    expect(parseLogTime('--since', '2.5s', now)).toBe(now - 2500);
    expect(parseLogTime('--since', '150ms', now)).toBe(now - 150);
  });

  it('RFC 3339 times, dates and Unix seconds (what the docker CLI sends) are absolute', () => {
    expect(parseLogTime('--since', '2026-12-07T10:00:00Z', now)).toBe(Date.UTC(2026, 11, 7, 10));
    expect(parseLogTime('--since', '2026-12-07T10:00:00.123456789+02:00', now)).toBe(Date.UTC(2026, 11, 7, 8, 0, 0, 123));
    expect(parseLogTime('--since', '2026-12-07T10Z', now)).toBe(Date.UTC(2026, 11, 7, 10));
    expect(parseLogTime('--since', '2026-12-07T10:30-01:00', now)).toBe(Date.UTC(2026, 11, 7, 11, 30));
    expect(parseLogTime('--since', '1765100000', now)).toBe(1_765_100_000_000);
    expect(parseLogTime('--since', '1765100000.000000001', now)).toBe(1_765_100_000_000);
    expect(parseLogTime('--since', '1765100000.25', now)).toBe(1_765_100_000_250);
  });

  it('a time without a zone is in the local zone, as docker reads it; docker’s short forms too', () => {
    const tz = process.env.TZ;
    process.env.TZ = 'Asia/Kolkata'; // +05:30, no daylight saving
    try {
      expect(parseLogTime('--since', '2026-12-07T10:00', now)).toBe(Date.UTC(2026, 11, 7, 4, 30));
      expect(parseLogTime('--since', '2026-12-07T10:00:00.5', now)).toBe(Date.UTC(2026, 11, 7, 4, 30, 0, 500));
      expect(parseLogTime('--since', '2026-12-07T10', now)).toBe(Date.UTC(2026, 11, 7, 4, 30));
      expect(parseLogTime('--since', '2026-12-07', now)).toBe(Date.UTC(2026, 11, 6, 18, 30));
      expect(parseLogTime('--since', '2026-12-07T10:00:00Z', now)).toBe(Date.UTC(2026, 11, 7, 10));
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('a time past what a date holds is refused, not Infinity', () => {
    for (const v of ['9'.repeat(400), '9'.repeat(20), '99999999999999999h', '275760-09-14'.replace('275760', '2757600')])
      expect(() => parseLogTime('--since', v, now), v).toThrow(/--since (is out of range|must be)/);
    expect(() => parseLogTime('--since', '9'.repeat(400), now)).toThrow(
      /^--since is out of range: a time must lie within 100,000,000 days of 1970/,
    );
    expect(() => parseLogTime('--since', '8640000000001', now)).toThrow(/out of range/);
    expect(parseLogTime('--since', '8640000000000', now)).toBe(8.64e15);
  });

  it('anything else is refused, naming the flag', () => {
    for (const v of ['yesterday', '-5m', '10d', '2026-13-45T00:00:00Z', '2026-02-30', '2026-12-07T24:00', '2026/12/07', '5m ago'])
      expect(() => parseLogTime('--until', v, now), v).toThrow(/^--until must be a duration back from now/);
  });
});

describe('log drivers through the Engine API and compose', () => {
  const body = (logDriver: unknown) => ({ Name: 'w', TaskTemplate: { ContainerSpec: { Image: 'busybox' }, LogDriver: logDriver } });

  it('TaskTemplate.LogDriver maps both ways; no driver stays absent', () => {
    const spec = serviceSpecFromDocker(body({ Name: 'json-file', Options: { 'max-size': '10m', 'max-file': '2' } }));
    expect(spec.task.logDriver).toEqual({ name: 'json-file', options: { 'max-size': '10m', 'max-file': '2' } });
    expect(serviceSpecToDocker(spec).TaskTemplate.LogDriver).toEqual({
      Name: 'json-file',
      Options: { 'max-size': '10m', 'max-file': '2' },
    });
    expect(serviceSpecToDocker(serviceSpecFromDocker(body({ Name: 'none' }))).TaskTemplate.LogDriver).toEqual({ Name: 'none' });
    expect(serviceSpecFromDocker(body(null)).task.logDriver).toBeNull();
    expect(serviceSpecToDocker(serviceSpecFromDocker(body(null))).TaskTemplate.LogDriver).toBeUndefined();
  });

  it('refusals name the Docker field', () => {
    const msg = (d: unknown): string => {
      try {
        serviceSpecFromDocker(body(d));
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(msg({ Name: 'gelf' })).toMatch(/^TaskTemplate\.LogDriver\.Name is not valid: --log-driver gelf is not supported/);
    expect(msg({ Name: 'local', Options: { 'max-file': '0' } })).toMatch(
      /^TaskTemplate\.LogDriver\.Options is not valid: --log-opt max-file/,
    );
  });

  it("a stack's logging: {driver, options} reaches the spec", () => {
    const cs = composeService('services: {web: {image: nginx, logging: {driver: local, options: {max-size: 1m, max-file: 2}}}}\n');
    const spec = serviceSpecFromDocker(JSON.parse(JSON.stringify(cs)));
    expect(spec.task.logDriver).toEqual({ name: 'local', options: { 'max-size': '1m', 'max-file': '2' } });
    expect(logPolicy(spec.task.logDriver)).toEqual({ kind: 'file', maxSize: MiB, maxFiles: 2 });
  });
});
