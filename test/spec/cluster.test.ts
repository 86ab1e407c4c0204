// The cluster settings' flags (spec/cluster.ts): Docker's duration syntax,
// SwarmKit's bounds, errors that name the flag and the fix, and the values in
// effect for a cluster object that leaves a setting at its default.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/errors.js';
import { ClusterSpec } from '../../proto/gen/objects.js';
import {
  applyClusterSettings,
  checkClusterSettings,
  clusterSettings,
  formatGoDuration,
  humanDuration,
  parseCertExpiry,
  parseDispatcherHeartbeat,
  parseGoDuration,
  parseSnapshotInterval,
  parseTaskHistoryLimit,
  taskHistoryLimit,
} from '../../spec/cluster.js';

function usage(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error('expected a UsageError');
}

const H = 3_600_000;

describe('durations as docker parses them (Go time.ParseDuration)', () => {
  it('units ns, us, µs, ms, s, m, h, compound and fractional', () => {
    expect(parseGoDuration('--x', '5s')).toBe(5000);
    expect(parseGoDuration('--x', '2160h')).toBe(2160 * H);
    expect(parseGoDuration('--x', '1h30m')).toBe(1.5 * H);
    expect(parseGoDuration('--x', '1.5h')).toBe(1.5 * H);
    expect(parseGoDuration('--x', '2h45m10.5s')).toBe(2 * H + 45 * 60_000 + 10_500);
    expect(parseGoDuration('--x', '250ms')).toBe(250);
    expect(parseGoDuration('--x', '1500000us')).toBe(1500);
    expect(parseGoDuration('--x', '1500000µs')).toBe(1500);
    expect(parseGoDuration('--x', '2000000000ns')).toBe(2000);
    expect(parseGoDuration('--x', '.5s')).toBe(500);
    expect(parseGoDuration('--x', '0')).toBe(0);
  });

  it('refuses what Go refuses: no unit, unknown units (d), spaces inside, signs, empty', () => {
    for (const bad of ['5', '90d', '1 h', '-5s', '+5s', '', 's', '5sec', '1h 30m'])
      expect(usage(() => parseGoDuration('--dispatcher-heartbeat', bad)).message).toBe(
        `--dispatcher-heartbeat must be a duration such as 5s, 1m30s or 2160h (units ns, us, ms, s, m, h) (got ${JSON.stringify(bad)})`,
      );
  });

  it('prints as Go does, and as docker info does', () => {
    expect(formatGoDuration(5000)).toBe('5s');
    expect(formatGoDuration(90_000)).toBe('1m30s');
    expect(formatGoDuration(2160 * H)).toBe('2160h0m0s');
    expect(formatGoDuration(250)).toBe('250ms');
    expect(formatGoDuration(1500)).toBe('1.5s');
    expect(humanDuration(5000)).toBe('5 seconds');
    expect(humanDuration(1000)).toBe('1 second');
    expect(humanDuration(500)).toBe('Less than a second');
    expect(humanDuration(60_000)).toBe('About a minute');
    expect(humanDuration(H)).toBe('About an hour');
    expect(humanDuration(36 * H)).toBe('36 hours');
    expect(humanDuration(2160 * H)).toBe('3 months');
  });
});

describe('each setting: bounds and the error that names the flag', () => {
  it('--task-history-limit: integers; 0 keeps none, negative keeps all (stored as -1)', () => {
    expect(parseTaskHistoryLimit('5')).toBe(5);
    expect(parseTaskHistoryLimit('0')).toBe(0);
    expect(parseTaskHistoryLimit('-1')).toBe(-1);
    expect(parseTaskHistoryLimit('-7')).toBe(-1);
    expect(usage(() => parseTaskHistoryLimit('five')).message).toBe(
      '--task-history-limit must be a whole number of ended tasks to keep per slot, e.g. 5 (0: none, -1: all) (got "five")',
    );
    expect(usage(() => parseTaskHistoryLimit('1.5')).field).toBe('--task-history-limit');
    expect(usage(() => parseTaskHistoryLimit('99999999999')).message).toContain('--task-history-limit must be');
  });

  it('--dispatcher-heartbeat: 100ms to 24h', () => {
    expect(parseDispatcherHeartbeat('5s')).toBe(5000);
    expect(parseDispatcherHeartbeat('100ms')).toBe(100);
    expect(parseDispatcherHeartbeat('24h')).toBe(24 * H);
    expect(usage(() => parseDispatcherHeartbeat('0s')).message).toBe(
      '--dispatcher-heartbeat must be a duration from 100ms to 24h, e.g. 5s (the default) (got "0s")',
    );
    expect(usage(() => parseDispatcherHeartbeat('25h')).field).toBe('--dispatcher-heartbeat');
    expect(usage(() => parseDispatcherHeartbeat('5000')).message).toContain('a duration such as 5s');
  });

  it('--cert-expiry: at least 1h (SwarmKit minimum)', () => {
    expect(parseCertExpiry('2160h')).toBe(2160 * H);
    expect(parseCertExpiry('1h')).toBe(H);
    expect(usage(() => parseCertExpiry('59m')).message).toBe(
      '--cert-expiry must be a duration of at least 1h (the minimum certificate expiry), e.g. 2160h for 90 days (got "59m")',
    );
  });

  it('--snapshot-interval: whole number ≥ 1', () => {
    expect(parseSnapshotInterval('10000')).toBe(10_000);
    expect(parseSnapshotInterval('1')).toBe(1);
    for (const bad of ['0', '-1', '1e4', 'x'])
      expect(usage(() => parseSnapshotInterval(bad)).message).toBe(
        `--snapshot-interval must be a whole number of Raft entries ≥ 1, e.g. 10000 (the default) (got ${JSON.stringify(bad)})`,
      );
  });

  it('the Control API checks the same, autolock a boolean, and refuses unknown names and an empty change', () => {
    const none = { taskHistoryLimit: 0, dispatcherHeartbeatMs: 0, certExpiryMs: 0, snapshotInterval: 0, autolock: false };
    expect(() => checkClusterSettings({ ...none, taskHistoryLimit: 0 }, ['task-history-limit'])).not.toThrow();
    expect(usage(() => checkClusterSettings(none, ['dispatcher-heartbeat'])).message).toContain('--dispatcher-heartbeat must be');
    expect(() => checkClusterSettings(none, ['autolock'])).not.toThrow();
    expect(usage(() => checkClusterSettings({ ...none, autolock: 'yes' as unknown as boolean }, ['autolock'])).message).toBe(
      '--autolock must be true or false (got "yes")',
    );
    expect(usage(() => checkClusterSettings(none, ['name'])).message).toContain('set must be');
    expect(usage(() => checkClusterSettings(none, [])).message).toContain('nothing to update');
  });
});

describe('settings in effect', () => {
  it('defaults for a bare cluster object; the old history field (0: 5) when orchestration is absent', () => {
    expect(clusterSettings(ClusterSpec.create({ name: 'default' }))).toEqual({
      taskHistoryLimit: 5,
      dispatcherHeartbeatMs: 5000,
      certExpiryMs: 2160 * H,
      snapshotInterval: 10_000,
      autolock: false,
    });
    expect(taskHistoryLimit(ClusterSpec.create({ taskHistoryLimit: 2 }))).toBe(2);
    expect(taskHistoryLimit(ClusterSpec.create({ taskHistoryLimit: 2, orchestration: { taskHistoryRetentionLimit: 0 } }))).toBe(0);
    expect(taskHistoryLimit(ClusterSpec.create({ orchestration: { taskHistoryRetentionLimit: -1 } }))).toBe(-1);
  });

  it('applies only the named settings, keeping the rest of the spec (tokens, CA, raft ticks)', () => {
    const spec = ClusterSpec.create({
      name: 'default',
      workerToken: 'W',
      heartbeatPeriodMs: 2000,
      raft: { snapshotInterval: 0, logEntriesForSlowFollowers: 0, heartbeatTick: 1, electionTick: 10 },
    });
    const out = applyClusterSettings(
      spec,
      { taskHistoryLimit: -1, dispatcherHeartbeatMs: 0, certExpiryMs: 0, snapshotInterval: 42, autolock: false },
      ['task-history-limit', 'snapshot-interval'],
    );
    expect(out.workerToken).toBe('W');
    expect(out.heartbeatPeriodMs).toBe(2000);
    expect(out.raft).toMatchObject({ snapshotInterval: 42, heartbeatTick: 1, electionTick: 10 });
    expect(clusterSettings(out)).toMatchObject({ taskHistoryLimit: -1, dispatcherHeartbeatMs: 2000, snapshotInterval: 42 });
  });
});
