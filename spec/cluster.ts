// The cluster settings `tsswarm swarm update` changes, shared by the CLI (flag
// checks) and the managers (the Control API's UpdateCluster, and every part
// that reads a setting): Docker's duration syntax, SwarmKit's bounds, and the
// value in effect when the cluster object leaves a setting at its default.
import { UsageError } from '../lib/errors.js';
import type { ClusterSettings } from '../proto/gen/control.js';
import type { ClusterSpec } from '../proto/gen/objects.js';

/** SwarmKit's defaults (manager/manager.go, dispatcher, ca, raft). */
export const DEFAULT_TASK_HISTORY = 5;
export const DEFAULT_HEARTBEAT_MS = 5000;
export const DEFAULT_CERT_EXPIRY_MS = 90 * 24 * 3_600_000;
export const DEFAULT_SNAPSHOT_INTERVAL = 10_000;

/** SwarmKit's ca.MinNodeCertExpiration. */
export const MIN_CERT_EXPIRY_MS = 3_600_000;
/** The daemon's --heartbeat-period floor, so a seeded value can always be set again. */
export const MIN_HEARTBEAT_MS = 100;
/** Three periods (the grace before a node is DOWN) must fit a Node.js timer; a day is far beyond any real use. */
export const MAX_HEARTBEAT_MS = 24 * 3_600_000;

/** The settings `swarm update` takes, by flag name (also UpdateClusterRequest.set). */
export const CLUSTER_SETTING_FLAGS = [
  'task-history-limit',
  'dispatcher-heartbeat',
  'cert-expiry',
  'snapshot-interval',
  'autolock',
] as const;
export type ClusterSettingFlag = (typeof CLUSTER_SETTING_FLAGS)[number];

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration as Go's time.ParseDuration reads it (what docker's duration flags take): a sequence
 * of decimal numbers with units ns, us, ms, s, m, h, e.g. 5s, 1.5h, 2h45m, 2160h. Returns
 * milliseconds, rounded to a whole one. No sign: none of these settings can be negative.
 */
export function parseGoDuration(field: string, text: string): number {
  const s = text.trim();
  const bad = (): UsageError => UsageError.invalid(field, 'a duration such as 5s, 1m30s or 2160h (units ns, us, ms, s, m, h)', text);
  if (s === '0') return 0;
  if (s === '' || !/^(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/.test(s)) throw bad();
  let ms = 0;
  let rest = s;
  const part = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  while (rest) {
    const m = part.exec(rest);
    if (!m) throw bad();
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return Math.round(ms);
}

/** Milliseconds as Go prints a time.Duration (docker info): 5s, 1m30s, 2160h0m0s, 500ms. */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  const sec = `${Number.isInteger(s) ? s : s.toFixed(3).replace(/0+$/, '')}s`;
  if (h) return `${h}h${m}m${sec}`;
  if (m) return `${m}m${sec}`;
  return sec;
}

function wholeNumber(field: string, text: string, expected: string): number {
  const s = text.trim();
  if (!/^-?\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw UsageError.invalid(field, expected, text);
  return Number(s);
}

/** --task-history-limit: an integer; 0 keeps no ended task, a negative one keeps all (SwarmKit). */
export function parseTaskHistoryLimit(text: string, field = '--task-history-limit'): number {
  const n = wholeNumber(field, text, 'a whole number of ended tasks to keep per slot, e.g. 5 (0: none, -1: all)');
  return checkTaskHistoryLimit(n < 0 ? -1 : n, field);
}

export function checkTaskHistoryLimit(n: number, field = '--task-history-limit'): number {
  if (!Number.isInteger(n) || n < -1 || n > 2 ** 31 - 1)
    throw UsageError.invalid(field, 'a whole number of ended tasks to keep per slot, e.g. 5 (0: none, -1: all)', n);
  return n;
}

/** --dispatcher-heartbeat: a duration from 100ms to 24h. */
export function parseDispatcherHeartbeat(text: string, field = '--dispatcher-heartbeat'): number {
  return checkDispatcherHeartbeat(parseGoDuration(field, text), field, text);
}

export function checkDispatcherHeartbeat(ms: number, field = '--dispatcher-heartbeat', shown: unknown = `${ms}ms`): number {
  if (!Number.isInteger(ms) || ms < MIN_HEARTBEAT_MS || ms > MAX_HEARTBEAT_MS)
    throw UsageError.invalid(field, 'a duration from 100ms to 24h, e.g. 5s (the default)', shown);
  return ms;
}

/** --cert-expiry: a duration of at least 1h (SwarmKit's minimum certificate expiry). */
export function parseCertExpiry(text: string, field = '--cert-expiry'): number {
  return checkCertExpiry(parseGoDuration(field, text), field, text);
}

export function checkCertExpiry(ms: number, field = '--cert-expiry', shown: unknown = `${ms}ms`): number {
  if (!Number.isSafeInteger(ms) || ms < MIN_CERT_EXPIRY_MS)
    throw UsageError.invalid(field, 'a duration of at least 1h (the minimum certificate expiry), e.g. 2160h for 90 days', shown);
  return ms;
}

/** --snapshot-interval: Raft entries between two snapshots, at least 1. */
export function parseSnapshotInterval(text: string, field = '--snapshot-interval'): number {
  return checkSnapshotInterval(wholeNumber(field, text, 'a whole number of Raft entries ≥ 1, e.g. 10000 (the default)'), field);
}

export function checkSnapshotInterval(n: number, field = '--snapshot-interval'): number {
  if (!Number.isSafeInteger(n) || n < 1) throw UsageError.invalid(field, 'a whole number of Raft entries ≥ 1, e.g. 10000 (the default)', n);
  return n;
}

/** Every setting named in `set` checked (the Control API runs this on what a caller sent). */
export function checkClusterSettings(s: ClusterSettings, set: readonly string[]): void {
  if (set.length === 0)
    throw new UsageError(`nothing to update: give at least one of ${CLUSTER_SETTING_FLAGS.map((f) => `--${f}`).join(', ')}`);
  for (const name of set) {
    switch (name) {
      case 'task-history-limit':
        checkTaskHistoryLimit(Number(s.taskHistoryLimit));
        break;
      case 'dispatcher-heartbeat':
        checkDispatcherHeartbeat(Number(s.dispatcherHeartbeatMs));
        break;
      case 'cert-expiry':
        checkCertExpiry(Number(s.certExpiryMs));
        break;
      case 'snapshot-interval':
        checkSnapshotInterval(Number(s.snapshotInterval));
        break;
      case 'autolock':
        if (typeof s.autolock !== 'boolean') throw UsageError.invalid('--autolock', 'true or false', s.autolock);
        break;
      default:
        throw UsageError.invalid('set', `settings among ${CLUSTER_SETTING_FLAGS.join(', ')}`, name);
    }
  }
}

/** Ended tasks kept per slot: negative keeps all. A cluster from before the setting existed reads its old field (0: 5). */
export function taskHistoryLimit(spec: ClusterSpec | undefined): number {
  if (spec?.orchestration) return Number(spec.orchestration.taskHistoryRetentionLimit);
  return spec?.taskHistoryLimit || DEFAULT_TASK_HISTORY;
}

/** The settings in effect, defaults filled in. */
export function clusterSettings(spec: ClusterSpec | undefined): ClusterSettings {
  return {
    taskHistoryLimit: taskHistoryLimit(spec),
    dispatcherHeartbeatMs: spec?.heartbeatPeriodMs || DEFAULT_HEARTBEAT_MS,
    certExpiryMs: Number(spec?.nodeCertExpiryMs) || DEFAULT_CERT_EXPIRY_MS,
    snapshotInterval: Number(spec?.raft?.snapshotInterval) || DEFAULT_SNAPSHOT_INTERVAL,
    autolock: spec?.encryption?.autoLockManagers ?? false,
  };
}

/**
 * `spec` with the settings named in `set` taken from `s` (checked first). Autolock keeps the unlock
 * key it had; the Control API makes one when autolock goes on and drops it when autolock goes off.
 */
export function applyClusterSettings(spec: ClusterSpec, s: ClusterSettings, set: readonly string[]): ClusterSpec {
  checkClusterSettings(s, set);
  const out: ClusterSpec = { ...spec };
  for (const name of set) {
    if (name === 'task-history-limit') out.orchestration = { taskHistoryRetentionLimit: Number(s.taskHistoryLimit) };
    else if (name === 'dispatcher-heartbeat') out.heartbeatPeriodMs = Number(s.dispatcherHeartbeatMs);
    else if (name === 'cert-expiry') out.nodeCertExpiryMs = Number(s.certExpiryMs);
    else if (name === 'snapshot-interval')
      out.raft = {
        snapshotInterval: Number(s.snapshotInterval),
        logEntriesForSlowFollowers: spec.raft?.logEntriesForSlowFollowers ?? 0,
        heartbeatTick: spec.raft?.heartbeatTick ?? 0,
        electionTick: spec.raft?.electionTick ?? 0,
      };
    else if (name === 'autolock')
      out.encryption = { autoLockManagers: s.autolock, managerUnlockKey: spec.encryption?.managerUnlockKey ?? '' };
  }
  return out;
}

/** A duration as docker info shows it (go-units HumanDuration): 5 seconds, 3 months. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}
